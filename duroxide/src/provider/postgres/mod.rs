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
//! - Wake-ups: every enqueue is announced with `pg_notify` on the channel
//!   `duroxide_<schema>` once it has committed, several commits' worth per statement, from
//!   a task of the provider (`wakeups`: a notifying transaction holds a database-wide lock
//!   until its commit is flushed, so notifying inside the durable writes kept them from
//!   sharing a flush). A second task LISTENs and wakes this process's dispatchers, so idle
//!   runtimes in other processes react at once; polling remains the fallback.
//!
//! ## Errors
//! Connection loss and other database failures are [`ProviderError::Storage`] (retryable);
//! a malformed URL or schema name is [`ProviderError::Configuration`]; a failed migration is
//! [`ProviderError::Migration`].
//!
//! ## Layout
//! This file holds the store type, its error classification and its tests; the
//! `Provider` impl is the shared forwarding one (`provider::sql::provider_impl`).
//! `options` (what callers tune, schema names), `connection` (pool, schema, migrations),
//! `notify` (wake-up payloads and the listener), `wakeups` (sending them after commit),
//! `commit` (a start and a turn commit), `fetch` (instance locks), `work` (the activity
//! queue), `sessions` (session leases), `queries` (client reads and management writes),
//! `transfer` (export and import). Code the SQLite store shares lives in `provider::sql`.

/// A select-list item that makes the statement's transaction commit without waiting for
/// its WAL flush (`synchronous_commit = off` for that transaction only). Used where
/// `SqliteDurability::Full` skips the fsync too: activity completions and lock-only
/// writes. Losing one to a crash of the server only repeats work (an activity runs again,
/// a lock is taken again); starts and turns always wait for the flush. Never corrupts.
macro_rules! async_commit {
    () => {
        "set_config('synchronous_commit', 'off', true) AS async_commit"
    };
}

/// The instance an instance lock token names, for the token parameter `$p`. A token is
/// `<uuid>.<instance id>` (the lock statement appends the id, see `LockTarget::lock_sql`),
/// so every statement that takes a token finds its instance by primary key and checks the
/// token there: `lock_token` needs no index, and an update that only locks or unlocks
/// touches no indexed column, which lets PostgreSQL keep it on its page without index
/// writes (a HOT update). A token without a dot names no instance.
macro_rules! token_instance {
    ($p:literal) => {
        concat!("substr(", $p, ", strpos(", $p, ", '.') + 1)")
    };
}

/// The parts of a turn statement that record its outcome, over `held` (the instance the
/// turn holds, one row or none): `$1` lock token, `$2` execution, `$3` now, `$4`..`$18` the
/// turn state as `TurnState::bind_state` binds it. The execution row is created when the
/// turn started the execution (`$4`; version `$5`, duroxide version `$6`), otherwise
/// updated when the turn appended events (`$7`); its state is `$8`. The messages the turn
/// consumed are deleted.
macro_rules! turn_state_ctes {
    () => {
        "started AS (\
           INSERT INTO executions (instance_id, execution_id, version, state, duroxide_version, started_at, updated_at) \
           SELECT h.instance_id, $2, $5, $8, $6, $3, $3 FROM held h WHERE $4), \
         advanced AS (\
           UPDATE executions x SET state = $8, updated_at = $3 FROM held h \
           WHERE x.instance_id = h.instance_id AND x.execution_id = $2 AND $7 AND NOT $4), \
         consumed AS (DELETE FROM orchestrator_queue \
           WHERE instance_id = (SELECT instance_id FROM held) AND lock_token = $1)"
    };
}

/// The columns of an instance's record (see `sql::record_from_row`), in the order every
/// read and every `RETURNING` of the record lists them.
macro_rules! instance_record_columns {
    () => {
        "instance_id, name, version, execution_id, state, output, error, custom_status, \
         custom_status_version, parent_instance, duroxide_version, status_note, created_at, updated_at"
    };
}

/// The instance row after a turn (see [`turn_state_ctes`]): `$9`..`$17` (name, version,
/// current execution, state, output, error, custom status when `$15`, duroxide version
/// key), its custom status version raised by `$18`, its status note cleared, unlocked.
macro_rules! turn_instance_update {
    () => {
        "UPDATE instances SET name = $9, version = $10, execution_id = $11, state = $12, output = $13, \
           error = $14, custom_status = CASE WHEN $15 THEN $16 ELSE custom_status END, \
           custom_status_version = custom_status_version + $18, \
           duroxide_version = COALESCE($6, duroxide_version), \
           duroxide_version_key = COALESCE($17, duroxide_version_key), status_note = NULL, \
           updated_at = $3, lock_token = NULL, locked_until = 0 \
         WHERE instance_id = (SELECT instance_id FROM held)"
    };
}

mod commit;
mod connection;
mod fetch;
mod management;
mod notify;
mod options;
mod queries;
mod sessions;
mod transfer;
mod turn;
mod values;
mod wakeups;
mod work;

use super::sql::{
    self, Dialect, SqlTx, Statement, Value, activity_from_row, classify, locked_record_from_row, ms,
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
    notifiers: Arc<Notifiers>,
    listener: Option<tokio::task::JoinHandle<()>>,
    /// Wake-ups for other processes, sent after the writes they announce commit.
    wakeups: Arc<wakeups::Wakeups>,
    /// Names this store in the notifications it sends that it also delivers in-process, so
    /// its listener does not deliver them a second time.
    origin: String,
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
        // The sending task sends what is queued, then ends.
        self.wakeups.close();
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

sql::provider_impl!(PostgresProvider, "postgres");

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
        handle_notification(&n, "f:inst-1", "me");
        assert_eq!(rx.try_recv().unwrap(), Finished::id_only("inst-1"));
        handle_notification(&n, "f", "me");
        assert!(rx.try_recv().unwrap().concerns("any"));
        assert_eq!(finished_wake("inst-1"), "f:inst-1");
        assert_eq!(finished_wake(&"x".repeat(8000)), "f");
        let mut status = n.status_changed.subscribe();
        handle_notification(&n, "s:other:inst-2", "me");
        assert_eq!(status.try_recv().unwrap(), "inst-2");
        handle_notification(&n, "s:other:a:b", "me");
        assert_eq!(status.try_recv().unwrap(), "a:b", "ids may hold colons");
        handle_notification(&n, "s:other", "me");
        assert_eq!(status.try_recv().unwrap(), "");
        handle_notification(&n, "s:me:inst-2", "me");
        assert!(status.try_recv().is_err(), "a store's own notices were delivered in-process already");
        assert_eq!(status_wake("me", "inst-2"), "s:me:inst-2");
        assert_eq!(status_wake("me", &"x".repeat(8000)), "s:me");
        assert!(rx.try_recv().is_err(), "status notices are not finish notices");
        handle_notification(&n, "w", "me");
    }

    /// A wake-up for orchestrations wakes one dispatcher (a permit, with none waiting), except
    /// the store's own "now" notice, which its process acted on before committing it.
    #[tokio::test]
    async fn orchestrator_notices_skip_their_own_origin() {
        let n = Arc::new(Notifiers::default());
        let woken = |n: &Arc<Notifiers>| {
            let n = n.clone();
            async move { tokio::time::timeout(Duration::from_millis(50), n.orchestrator.notified()).await.is_ok() }
        };
        assert_eq!(orchestrator_wake("me", None), "o::me");
        let later = crate::now_ms() + 60_000;
        assert_eq!(orchestrator_wake("me", Some(later)), format!("o:{later}"));
        handle_notification(&n, "o::me", "me");
        assert!(!woken(&n).await, "this process woke its dispatcher before the notice came back");
        handle_notification(&n, "o::other", "me");
        assert!(woken(&n).await, "another process's work");
        handle_notification(&n, "o", "me");
        assert!(woken(&n).await, "an older version's notice");
        handle_notification(&n, "o:0", "me");
        assert!(woken(&n).await, "a time already passed is now");
    }
}
