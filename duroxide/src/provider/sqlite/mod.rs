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
//! its own savepoint, so the failure stays with its write). The fsync of a file store runs
//! outside the writer connection while the next round commits (`wal_sync`); activity
//! fetches and client reads wait for it, so nothing acts on a write before it is durable. Lock-only writes and activity completions commit
//! without their own fsync: losing them to a power loss only repeats work (the lock was not
//! taken; the activity runs again), and the next durable commit covers them.
//! [`SqliteDurability::Normal`] fsyncs nothing on commit: a power loss may also drop the
//! last acknowledged commits (never on a process crash, never corruption).
//! Writes from this process are serialized by an in-process lock so they queue in Rust
//! instead of spinning in SQLite's busy handler; other processes on the same file are
//! handled by `busy_timeout`.
//!
//! ## Layout
//! This file holds the store type and its error classification; the `Provider` impl is
//! the shared forwarding one (`provider::sql::provider_impl`). `options` (what callers
//! tune), `connection` (opening, the writer and readers, statement batches), `group`
//! (group commit of durable writes), `wal_sync` (its WAL flush), `commit` (a start's and
//! a turn's statements), `fetch` (instance locks), `work` (the activity queue), `sessions`
//! (session leases), `queries` (client reads and management writes), `transfer` (export
//! and import). Code the PostgreSQL store shares lives in `provider::sql`.

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
mod management;
mod options;
mod queries;
mod sessions;
mod transfer;
mod values;
mod wal_sync;
mod work;

use super::sql::{
    self, Dialect, SqlTx, Statement, Value, activity_from_row, classify, locked_record_from_row, ms,
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
use wal_sync::*;

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

sql::provider_impl!(SqliteProvider, "sqlite");
