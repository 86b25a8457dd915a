//! The embedded SQLite provider (sqlx, bundled SQLite, WAL).
//!
//! `SqliteProvider::new("sqlite:./data.db", None)` opens (creating if missing) a database
//! file; `sqlite::memory:` gives a private in-memory store for tests. The schema lives in
//! numbered migrations (`migrations/sqlite/`) embedded in the binary and applied on open;
//! sqlx's migrator refuses a database whose applied migrations were changed.
//!
//! ## Durability
//! Every write is one `BEGIN IMMEDIATE` transaction. The journal is WAL and, by default,
//! `synchronous = FULL` for writes that are acknowledged: when `create_instance` or
//! `commit_turn` returns, the write is on disk and survives a process crash *and* a power
//! loss. Turns and starts that arrive together share one commit and one fsync (group
//! commit, one statement batch each; a batch that fails is retried one by one, each in
//! its own savepoint, so the failure stays with its write). Lock-only writes and activity completions commit
//! without their own fsync: losing them to a power loss only repeats work (the lock was not
//! taken; the activity runs again), and the next durable commit covers them.
//! [`SqliteDurability::Normal`] fsyncs nothing on commit: a power loss may also drop the
//! last acknowledged commits (never on a process crash, never corruption).
//! Writes from this process are serialized by an in-process lock so they queue in Rust
//! instead of spinning in SQLite's busy handler; other processes on the same file are
//! handled by `busy_timeout`.

/// Opens a write transaction on the writer connection: `write_tx!(conns, guard, tx, BEGIN)`.
macro_rules! write_tx {
    ($conns:expr, $guard:ident, $tx:ident, $begin:expr) => {
        let mut $guard = $conns.writer().await;
        #[allow(unused_mut)]
        let mut $tx = sqlx::Connection::begin_with(&mut $guard.conn, $begin).await.map_err(storage)?;
    };
}

mod commit;
mod connection;
mod fetch;
mod group;
mod options;
mod queries;
mod sessions;
mod transfer;
mod work;

use super::sql::{
    self, Dialect, Statement, TransferTx, Value, activity_from_row, classify, locked_record_from_row, ms,
    parse_history, record_from_row, to_json, token,
};
use super::*;
use crate::history::EventKind;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool};
use std::collections::HashMap;
use std::str::FromStr;

use commit::*;
use connection::*;
use fetch::*;
use group::*;
use queries::*;

pub use options::{SqliteDurability, SqliteOptions};

/// The SQLite store.
pub struct SqliteProvider {
    conns: Arc<Conns>,
    notifiers: Arc<Notifiers>,
    /// Durable writes waiting for the group commit (see `GroupCommit`).
    group: Arc<GroupCommit>,
}

impl std::fmt::Debug for SqliteProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteProvider").finish_non_exhaustive()
    }
}

/// Classifies a database failure: a value SQLite refuses as too big (`SQLITE_TOOBIG`) or
/// cannot encode is [`ProviderError::InvalidInput`], permanent; anything else is
/// [`ProviderError::Storage`], which retrying may fix.
fn storage(e: sqlx::Error) -> ProviderError {
    classify(e, |code| code == "18")
}

#[async_trait::async_trait]
impl Provider for SqliteProvider {
    async fn create_instance(
        &self,
        instance: &str,
        name: &str,
        version: Option<&str>,
        input: &str,
    ) -> Result<(), ProviderError> {
        let write = DurableWrite::Create {
            instance: instance.to_string(),
            name: name.to_string(),
            version: version.map(str::to_string),
            input: input.to_string(),
        };
        self.group.submit(write).await
    }

    async fn enqueue_message(&self, message: OutboundMessage) -> Result<(), ProviderError> {
        self.enqueue(message).await
    }

    async fn fetch_orchestration_item(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
    ) -> Result<Option<OrchestrationItem>, ProviderError> {
        self.fetch_orchestration_item_cached(lock_timeout, filter, &|_| None).await
    }

    async fn fetch_orchestration_item_cached(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
        cached: &(dyn for<'s> Fn(&'s str) -> Option<(u64, u64)> + Send + Sync),
    ) -> Result<Option<OrchestrationItem>, ProviderError> {
        Ok(self.fetch_orchestration_items_cached(lock_timeout, filter, cached, 1).await?.pop())
    }

    async fn fetch_orchestration_items_cached(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
        cached: &(dyn for<'s> Fn(&'s str) -> Option<(u64, u64)> + Send + Sync),
        max: usize,
    ) -> Result<Vec<OrchestrationItem>, ProviderError> {
        self.lock_ready_instances(lock_timeout, filter, cached, max).await
    }

    async fn commit_turn(&self, lock_token: &str, commit: TurnCommit) -> Result<(), ProviderError> {
        self.group.submit(DurableWrite::Turn { lock_token: lock_token.to_string(), commit }).await
    }

    async fn abandon_orchestration_item(
        &self,
        lock_token: &str,
        delay: Option<Duration>,
        note: Option<String>,
        count_attempt: bool,
    ) -> Result<(), ProviderError> {
        self.abandon_instance(lock_token, delay, note, count_attempt).await
    }

    async fn renew_orchestration_lock(
        &self,
        lock_token: &str,
        lock_timeout: Duration,
    ) -> Result<(), ProviderError> {
        self.renew_instance_lock(lock_token, lock_timeout).await
    }

    async fn fetch_work_item(
        &self,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
    ) -> Result<Option<ActivityWorkItem>, ProviderError> {
        Ok(self.fetch_work_items(lock_timeout, worker, 1).await?.pop())
    }

    async fn fetch_work_items(
        &self,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
        max: usize,
    ) -> Result<Vec<ActivityWorkItem>, ProviderError> {
        self.lock_work(lock_timeout, worker, max).await
    }

    async fn renew_sessions(
        &self,
        worker: &WorkerIdentity,
        idle_timeout: Duration,
    ) -> Result<Vec<String>, ProviderError> {
        self.renew_worker_sessions(worker, idle_timeout).await
    }

    async fn renew_work_item(&self, lock_token: &str, lock_timeout: Duration) -> Result<(), ProviderError> {
        self.renew_work_lock(lock_token, lock_timeout).await
    }

    async fn complete_work_item(
        &self,
        lock_token: &str,
        completion: OutboundMessage,
    ) -> Result<(), ProviderError> {
        let mut results = self.complete_work_items(vec![(lock_token.to_string(), completion)]).await;
        results.pop().unwrap_or_else(|| Err(ProviderError::Storage("no result".into())))
    }

    async fn complete_work_items(
        &self,
        items: Vec<(String, OutboundMessage)>,
    ) -> Vec<Result<(), ProviderError>> {
        self.complete_and_lock(items, None).await.0
    }

    async fn complete_work_items_and_lock(
        &self,
        items: Vec<(String, OutboundMessage)>,
        lock: LockAfterComplete<'_>,
    ) -> (Vec<Result<(), ProviderError>>, Vec<OrchestrationItem>) {
        self.complete_and_lock(items, Some(lock)).await
    }

    async fn abandon_work_item(
        &self,
        lock_token: &str,
        delay: Option<Duration>,
    ) -> Result<(), ProviderError> {
        self.abandon_work(lock_token, delay).await
    }

    async fn get_instance(&self, instance: &str) -> Result<Option<InstanceRecord>, ProviderError> {
        let mut conn = self.conns.reader().await?;
        Self::instance_row(&mut conn, instance).await
    }

    async fn read_history(
        &self,
        instance: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<Event>, ProviderError> {
        self.history_of(instance, execution_id).await
    }

    async fn list_executions(&self, instance: &str) -> Result<Vec<ExecutionRecord>, ProviderError> {
        self.executions_of(instance).await
    }

    async fn list_instances(&self) -> Result<Vec<String>, ProviderError> {
        sqlx::query_scalar("SELECT instance_id FROM instances ORDER BY created_at, instance_id")
            .fetch_all(&mut *self.conns.reader().await?)
            .await
            .map_err(storage)
    }

    async fn list_blocked_instances(
        &self,
        filter: &FetchFilter,
        limit: u32,
    ) -> Result<Vec<BlockedInstance>, ProviderError> {
        self.blocked_instances(filter, limit).await
    }

    async fn count_instances_by_version(&self) -> Result<Vec<VersionCount>, ProviderError> {
        self.version_counts().await
    }

    async fn export_instance(&self, instance: &str) -> Result<InstanceSnapshot, ProviderError> {
        self.export(instance).await
    }

    async fn import_instance(&self, snapshot: InstanceSnapshot) -> Result<(), ProviderError> {
        self.import(snapshot).await
    }

    async fn set_status_note(&self, instance: &str, note: &str) -> Result<(), ProviderError> {
        self.write_status_note(instance, note).await
    }

    fn notifiers(&self) -> Option<Arc<Notifiers>> {
        Some(self.notifiers.clone())
    }
}
