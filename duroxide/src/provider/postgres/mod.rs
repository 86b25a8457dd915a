//! The PostgreSQL provider (sqlx), for several runtime processes on one database.
//!
//! `PostgresProvider::new("postgres://user@host/db", None)` connects, creates its schema if
//! missing and applies the embedded migrations (`migrations/postgres/`). Every table lives in
//! one schema (default `public`; set [`PostgresOptions::schema`] to give each deployment or
//! test its own), selected through `search_path` on every pooled connection.
//!
//! ## Several processes
//! - Opening is safe when many processes start at once: schema creation runs under a
//!   per-schema advisory lock and sqlx's migrator takes its own database-wide advisory lock.
//! - Queue fetches use `FOR UPDATE SKIP LOCKED`, so concurrent dispatchers never block on or
//!   double-take the same row. Batch fetches and completions (with the instances they lock)
//!   are one statement each where they can, so an idle fetch is one read that writes
//!   nothing. Instance locks carry a token and an expiry (`locked_until`):
//!   a dead process's instances and activities are taken over once their locks expire, and
//!   the dead process's late commit fails with [`ProviderError::LockLost`].
//! - `commit_turn` is one transaction that first re-checks the lock token under a row lock,
//!   then writes the turn in a few statements however many events, activities and messages
//!   it has (arrays bound as parameters and expanded with `UNNEST`).
//! - Wake-ups: every enqueue sends `pg_notify` on the channel `duroxide_<schema>` inside
//!   its transaction (delivered on commit). A background task owned by the provider (stopped
//!   when it is dropped) LISTENs and wakes this process's dispatchers, so idle runtimes in
//!   other processes react at once; polling remains the fallback.
//!
//! ## Errors
//! Connection loss and other database failures are [`ProviderError::Storage`] (retryable);
//! a malformed URL or schema name is [`ProviderError::Configuration`]; a failed migration is
//! [`ProviderError::Migration`].

mod commit;
mod connection;
mod fetch;
mod notify;
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
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row, Transaction};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use fetch::*;
use notify::*;
use work::*;

pub use options::{PostgresOptions, validate_schema_name};

/// The PostgreSQL store.
pub struct PostgresProvider {
    pool: PgPool,
    schema: String,
    channel: String,
    notifiers: Arc<Notifiers>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for PostgresProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresProvider").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl Drop for PostgresProvider {
    fn drop(&mut self) {
        if let Some(l) = self.listener.take() {
            l.abort();
        }
    }
}

/// Classifies a database failure: the data itself refused (class 22 "data exception", such
/// as a NUL byte in text; class 54 "program limit exceeded", such as an index row too
/// large; a value that cannot be encoded) is [`ProviderError::InvalidInput`], permanent;
/// anything else is [`ProviderError::Storage`], which retrying may fix.
fn storage(e: sqlx::Error) -> ProviderError {
    classify(e, |code| code.starts_with("22") || code.starts_with("54"))
}

fn lock_lost(kind: &str, lock_token: &str) -> ProviderError {
    ProviderError::LockLost(format!("{kind} lock {lock_token} is no longer held"))
}

#[async_trait::async_trait]
impl Provider for PostgresProvider {
    async fn create_instance(
        &self,
        instance: &str,
        name: &str,
        version: Option<&str>,
        input: &str,
    ) -> Result<(), ProviderError> {
        self.start_instance(instance, name, version, input).await
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
        self.commit(lock_token, commit).await
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
        let mut conn = self.pool.acquire().await.map_err(storage)?;
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
        sqlx::query_scalar("SELECT instance_id FROM instances ORDER BY created_at, instance_id COLLATE \"C\"")
            .fetch_all(&self.pool)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_validated() {
        for ok in ["public", "tenant_1", "_x", "a"] {
            assert!(validate_schema_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1abc", "Upper", "a-b", "a\"b", "pg_temp", &"x".repeat(49), "a b", "é"] {
            assert!(matches!(validate_schema_name(bad), Err(ProviderError::Configuration(_))), "{bad}");
        }
    }

    #[test]
    fn notification_payloads() {
        let n = Arc::new(Notifiers::default());
        let mut rx = n.finished.subscribe();
        handle_notification(&n, "f:inst-1");
        assert_eq!(rx.try_recv().unwrap(), Finished::id_only("inst-1"));
        handle_notification(&n, "f");
        assert!(rx.try_recv().unwrap().concerns("any"));
        assert_eq!(finished_wake("inst-1"), "f:inst-1");
        assert_eq!(finished_wake(&"x".repeat(8000)), "f");
        handle_notification(&n, "w");
        handle_notification(&n, "o");
    }
}
