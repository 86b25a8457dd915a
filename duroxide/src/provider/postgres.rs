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

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Options for [`PostgresProvider::new`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Schema holding all tables (created if missing). `None`: `public`. Lowercase ASCII
    /// letters, digits and `_`, starting with a letter or `_`, at most 48 characters.
    pub schema: Option<String>,
    /// Connections in the pool (one more is used by the notification listener).
    pub max_connections: u32,
    /// How long to wait for a connection before failing with [`ProviderError::Storage`].
    pub acquire_timeout: Duration,
    /// Listen for notifications from other processes (LISTEN/NOTIFY). Default true.
    pub listen: bool,
    /// `application_name` of the connections, shown in `pg_stat_activity`. Default
    /// `duroxide`.
    pub application_name: String,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            schema: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            listen: true,
            application_name: "duroxide".to_string(),
        }
    }
}

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

/// Checks a schema name: it is spliced into DDL and a channel name, so only a safe subset
/// of identifiers is accepted.
pub fn validate_schema_name(schema: &str) -> Result<(), ProviderError> {
    let mut chars = schema.chars();
    let first_ok = matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !first_ok || !rest_ok || schema.len() > 48 || schema.starts_with("pg_") {
        return Err(ProviderError::Configuration(format!(
            "invalid schema name '{schema}': use 1-48 lowercase ASCII letters, digits or '_', \
             starting with a letter or '_' (and not 'pg_')"
        )));
    }
    Ok(())
}

/// The fetch-filter condition over instance alias `i`, with parameters `$2..$7` (see
/// [`FilterParams`]). Names, pinned versions and the duroxide-version range are all checked
/// in the query, so items a node cannot run never block the ones it can.
const FILTER_SQL: &str = "($2::boolean OR i.name = ANY($3::text[])) \
     AND ($2::boolean OR i.version IS NULL \
          OR (i.name, i.version) IN (SELECT p.n, p.v FROM UNNEST($4::text[], $5::text[]) AS p(n, v))) \
     AND ($6::bigint IS NULL OR i.duroxide_version_key IS NULL \
          OR i.duroxide_version_key BETWEEN $6 AND $7)";

/// The bound values of [`FILTER_SQL`].
struct FilterParams {
    any_orchestration: bool,
    names: Vec<String>,
    pair_names: Vec<String>,
    pair_versions: Vec<String>,
    min_key: Option<i64>,
    max_key: Option<i64>,
}

impl FilterParams {
    fn new(filter: &FetchFilter) -> Self {
        let mut p = FilterParams {
            any_orchestration: filter.orchestrations.is_none(),
            names: Vec::new(),
            pair_names: Vec::new(),
            pair_versions: Vec::new(),
            min_key: filter.duroxide_versions.as_ref().map(|r| version_key(&r.min)),
            max_key: filter.duroxide_versions.as_ref().map(|r| version_key(&r.max)),
        };
        for (name, versions) in filter.orchestrations.iter().flatten() {
            p.names.push(name.clone());
            for v in versions {
                p.pair_names.push(name.clone());
                p.pair_versions.push(v.clone());
            }
        }
        p
    }

    fn bind<'q>(
        self,
        q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        q.bind(self.any_orchestration)
            .bind(self.names)
            .bind(self.pair_names)
            .bind(self.pair_versions)
            .bind(self.min_key)
            .bind(self.max_key)
    }
}

/// Most items one batch fetch takes, whatever the caller asks for.
const MAX_BATCH: usize = 256;

/// Which instances [`PostgresProvider::lock_instances`] takes.
#[derive(Clone, Copy)]
enum LockTarget<'a> {
    /// Those with the oldest visible messages.
    Oldest,
    /// Those of these that have visible messages (where completions just went).
    Instances(&'a [String]),
}

impl LockTarget<'_> {
    /// The query that selects and row-locks the instances: `$1` now, the filter `$2..$7`,
    /// at most `$8` rows (`$11`: the instance ids of `Instances`). Locked rows are skipped,
    /// so concurrent fetches never wait for each other.
    fn candidates(&self) -> String {
        match self {
            // One row per message: at most `$8` instances, fewer when one has several.
            LockTarget::Oldest => format!(
                "SELECT i.instance_id FROM orchestrator_queue q JOIN instances i ON i.instance_id = q.instance_id \
                 WHERE q.visible_at <= $1 AND (i.lock_token IS NULL OR i.locked_until <= $1) AND {FILTER_SQL} \
                 ORDER BY q.id LIMIT $8 FOR UPDATE OF i SKIP LOCKED"
            ),
            LockTarget::Instances(_) => format!(
                "SELECT i.instance_id FROM instances i WHERE i.instance_id = ANY($11::text[]) \
                 AND (i.lock_token IS NULL OR i.locked_until <= $1) AND {FILTER_SQL} \
                 AND EXISTS (SELECT 1 FROM orchestrator_queue q WHERE q.instance_id = i.instance_id AND q.visible_at <= $1) \
                 LIMIT $8 FOR UPDATE OF i SKIP LOCKED"
            ),
        }
    }

    /// One statement that locks the instances [`candidates`](Self::candidates) selects:
    /// each gets its own token from `$9` and the lock until `$10`, and its visible messages
    /// count an attempt. One row per instance: the record, the token, the stored history
    /// length (the last event id: an index seek, where a count would read the history) and
    /// the messages in enqueue order.
    fn lock_sql(&self) -> String {
        format!(
            "WITH c AS ({}), \
             t AS (SELECT d.instance_id, row_number() OVER () AS n FROM (SELECT DISTINCT instance_id FROM c) d), \
             l AS (UPDATE instances i SET lock_token = ($9::text[])[t.n::int], locked_until = $10 FROM t \
                   WHERE i.instance_id = t.instance_id RETURNING i.*), \
             m AS (UPDATE orchestrator_queue q SET lock_token = l.lock_token, attempt_count = q.attempt_count + 1 \
                   FROM l WHERE q.instance_id = l.instance_id AND q.visible_at <= $1 \
                   RETURNING q.instance_id, q.id, q.message, q.attempt_count) \
             SELECT l.*, \
               COALESCE((SELECT MAX(h.event_id) FROM history h \
                 WHERE h.instance_id = l.instance_id AND h.execution_id = l.execution_id), 0) AS stored_len, \
               ARRAY(SELECT m.id FROM m WHERE m.instance_id = l.instance_id ORDER BY m.id) AS message_ids, \
               ARRAY(SELECT m.message FROM m WHERE m.instance_id = l.instance_id ORDER BY m.id) AS messages, \
               COALESCE((SELECT MAX(m.attempt_count) FROM m WHERE m.instance_id = l.instance_id), 0) AS attempt \
             FROM l",
            self.candidates()
        )
    }
}

/// An instance a lock statement took, its history not read yet.
struct Locked {
    /// The item, with an empty history.
    item: OrchestrationItem,
    /// Its oldest message, to hand items out oldest first.
    oldest: i64,
    /// The last stored event id of the current execution.
    stored_len: u64,
}

impl Locked {
    fn from_row(r: &PgRow) -> Result<Self, ProviderError> {
        let (record, bad_state) = locked_record_from_row(r)?;
        let ids: Vec<i64> = r.try_get("message_ids").map_err(storage)?;
        let data: Vec<String> = r.try_get("messages").map_err(storage)?;
        let mut messages = Vec::with_capacity(data.len());
        let mut unreadable = None;
        for (id, data) in ids.iter().zip(data) {
            match serde_json::from_str::<OrchestratorMessage>(&data) {
                Ok(m) => messages.push(m),
                Err(e) => unreadable = Some(format!("queued message {id}: {e}")),
            }
        }
        Ok(Locked {
            item: OrchestrationItem {
                instance: record.instance.clone(),
                lock_token: r.try_get("lock_token").map_err(storage)?,
                record,
                history: Vec::new(),
                history_error: unreadable.or(bad_state),
                history_len: 0,
                history_rev: r.try_get::<i64, _>("history_rev").map_err(storage)?.max(0) as u64,
                messages,
                attempt: r.try_get::<i32, _>("attempt").map_err(storage)?.max(0) as u32,
            },
            oldest: ids.first().copied().unwrap_or(i64::MAX),
            stored_len: r.try_get::<i64, _>("stored_len").map_err(storage)?.max(0) as u64,
        })
    }
}

/// Deletes the work items whose tokens (`$1`) are still held and enqueues their
/// completions (`$2` instances, `$3` messages) in order, at `$4`; touches their sessions (the
/// idle clock of a session starts when its last activity finished). Returns the tokens
/// that were held; with `$5`, notifies channel `$6` when there were any.
const COMPLETE_SQL: &str = "WITH done AS (DELETE FROM worker_queue WHERE lock_token = ANY($1::text[]) \
       RETURNING lock_token, session_id), \
     touched AS (UPDATE sessions SET last_activity_at = $4 WHERE session_id IN (SELECT session_id FROM done)), \
     sent AS (INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) \
       SELECT c.instance_id, c.message, $4, $4 \
       FROM UNNEST($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS c(lock_token, instance_id, message, n) \
       WHERE c.lock_token IN (SELECT lock_token FROM done) ORDER BY c.n) \
     SELECT ARRAY(SELECT lock_token FROM done) AS done, \
       CASE WHEN $5 AND EXISTS (SELECT 1 FROM done) THEN pg_notify($6, 'o')::text END AS notified";

/// Appends events to execution `$2` of instance `$1`: `$3` event ids, `$4` event types, `$5`
/// the events as JSON. A duplicate event id fails the statement (primary key).
const APPEND_HISTORY_SQL: &str = "INSERT INTO history (instance_id, execution_id, event_id, event_type, data) \
     SELECT $1, $2, e.event_id, e.event_type, e.data \
     FROM UNNEST($3::bigint[], $4::text[], $5::text[]) AS e(event_id, event_type, data)";

/// Records the outcome of a turn of instance `$1`, execution `$2`, at `$3`, in one statement:
/// - the execution row: created when the turn started the execution (`$5`; version `$6`,
///   duroxide version `$7`), otherwise, when the turn appended events (`$8`), updated; its
///   state is `$9`;
/// - the messages the turn consumed (locked with `$4`) are deleted;
/// - the instance row gets `$10`..`$18` (name, version, current execution, state, output,
///   error, custom status when `$16`, duroxide version key) and is unlocked.
///
/// The parts touch different tables, so running them as one statement (one snapshot) changes
/// nothing; the instance row is locked by the caller.
const TURN_STATE_SQL: &str = "WITH started AS (\
       INSERT INTO executions (instance_id, execution_id, version, state, duroxide_version, started_at, updated_at) \
       SELECT $1, $2, $6, $9, $7, $3, $3 WHERE $5), \
     advanced AS (\
       UPDATE executions SET state = $9, updated_at = $3 \
       WHERE instance_id = $1 AND execution_id = $2 AND $8 AND NOT $5), \
     consumed AS (DELETE FROM orchestrator_queue WHERE lock_token = $4) \
     UPDATE instances SET name = $10, version = $11, execution_id = $12, state = $13, output = $14, \
       error = $15, custom_status = CASE WHEN $16 THEN $17 ELSE custom_status END, \
       duroxide_version = COALESCE($7, duroxide_version), \
       duroxide_version_key = COALESCE($18, duroxide_version_key), status_note = NULL, \
       updated_at = $3, lock_token = NULL, locked_until = 0 \
     WHERE instance_id = $1";

/// Enqueues activities of instance `$1`, visible at `$2`, in order: `$3` execution ids, `$4`
/// event ids, `$5` names, `$6` inputs, `$7` sessions, `$8` lock tokens (NULL: not locked),
/// `$9` lock expiries, `$10` attempts. An activity queued already is left as it is (the
/// first of two in one batch wins).
const ENQUEUE_ACTIVITIES_SQL: &str = "INSERT INTO worker_queue (instance_id, execution_id, event_id, name, input, \
       visible_at, session_id, lock_token, locked_until, attempt_count) \
     SELECT $1, a.execution_id, a.event_id, a.name, a.input, $2, a.session_id, a.lock_token, a.locked_until, \
       a.attempt_count \
     FROM UNNEST($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], \
       $10::integer[]) WITH ORDINALITY \
       AS a(execution_id, event_id, name, input, session_id, lock_token, locked_until, attempt_count, n) \
     ORDER BY a.n \
     ON CONFLICT (instance_id, execution_id, event_id) DO NOTHING";

/// Enqueues orchestrator messages in order: `$1` instances, `$2` messages, `$3` visible-at
/// times, all enqueued at `$4`.
const ENQUEUE_MESSAGES_SQL: &str = "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) \
     SELECT m.instance_id, m.message, m.visible_at, $4 \
     FROM UNNEST($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS m(instance_id, message, visible_at, n) \
     ORDER BY m.n";

/// Locks the oldest visible work items worker `$1` may run at `$2` that need no session
/// claim: the run of session-less items before the oldest session item the worker may run
/// (it holds the session, or may claim it while holding fewer than `$3`), so the order is
/// the one single fetches would give. At most `$4`, each with its own token (`$5`, a dot
/// and its id), locked until `$6`. Work cancelled by its orchestration whose worker is gone
/// is dropped on the way. The first row's `session_first` is that session item, if any;
/// a row without `id` means nothing was locked.
const FETCH_WORK_SQL: &str = "WITH gone AS (DELETE FROM worker_queue WHERE cancel_requested AND locked_until <= $2), \
     bound AS (SELECT MIN(w.id) AS id FROM worker_queue w LEFT JOIN sessions s ON s.session_id = w.session_id \
       WHERE w.session_id IS NOT NULL AND w.visible_at <= $2 AND (w.lock_token IS NULL OR w.locked_until <= $2) \
         AND NOT w.cancel_requested AND ((s.worker_id = $1 AND s.locked_until > $2) \
           OR ((s.session_id IS NULL OR s.locked_until <= $2) \
               AND (SELECT COUNT(*) FROM sessions h WHERE h.worker_id = $1 AND h.locked_until > $2 \
                    AND EXISTS (SELECT 1 FROM worker_queue b WHERE b.session_id = h.session_id)) < $3))), \
     head AS (SELECT w.id FROM worker_queue w \
       WHERE w.session_id IS NULL AND w.visible_at <= $2 AND (w.lock_token IS NULL OR w.locked_until <= $2) \
         AND NOT w.cancel_requested AND w.id < COALESCE((SELECT id FROM bound), 9223372036854775807) \
       ORDER BY w.id LIMIT $4 FOR UPDATE SKIP LOCKED), \
     taken AS (UPDATE worker_queue w SET lock_token = $5 || '.' || w.id, locked_until = $6, \
       attempt_count = w.attempt_count + 1 FROM head WHERE w.id = head.id \
       RETURNING w.id, w.lock_token, w.instance_id, w.execution_id, w.event_id, w.name, w.input, w.attempt_count) \
     SELECT b.id AS session_first, t.* FROM bound b LEFT JOIN taken t ON TRUE";

/// An activity from a `worker_queue` row read after its lock counted the attempt.
fn work_item_from_row(
    r: &PgRow,
    lock_token: String,
    session_id: Option<String>,
    session_claimed: bool,
) -> Result<ActivityWorkItem, ProviderError> {
    activity_from_row(r, lock_token, session_id, session_claimed, attempt_of(r)?)
}

/// The `attempt_count` column (an `INTEGER`) as an attempt number.
fn attempt_of(r: &PgRow) -> Result<u32, ProviderError> {
    Ok(r.try_get::<i32, _>("attempt_count").map_err(storage)?.max(0) as u32)
}

/// The PostgreSQL spelling of the statements export and import share.
static DIALECT: Dialect = Dialect {
    numbered: true,
    insert_ignore: "INSERT INTO",
    ignore_suffix: " ON CONFLICT (instance_id) DO NOTHING",
    not_cancelled: "NOT cancel_requested",
    attempt: |a| Value::Int32(i32::try_from(a).unwrap_or(i32::MAX)),
};

/// An export's reads inside one repeatable-read transaction.
struct Tx<'a>(&'a mut PgConnection);

impl TransferTx for Tx<'_> {
    type Row = PgRow;

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    async fn rows(&mut self, sql: String, instance: &str) -> Result<Vec<PgRow>, ProviderError> {
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(instance).fetch_all(&mut *self.0).await.map_err(storage)
    }

    async fn record(&mut self, instance: &str) -> Result<Option<InstanceRecord>, ProviderError> {
        PostgresProvider::instance_row(self.0, instance).await
    }

    async fn history(
        &mut self,
        instance: &str,
        execution_id: u64,
    ) -> Result<(Vec<Event>, Option<String>, u64), ProviderError> {
        PostgresProvider::load_history(self.0, instance, execution_id).await
    }

    async fn execute(&mut self, statement: Statement) -> Result<u64, ProviderError> {
        let query = sql::bind_values!(sqlx::query(sqlx::AssertSqlSafe(statement.sql)), statement.values);
        Ok(query.execute(&mut *self.0).await.map_err(storage)?.rows_affected())
    }

    fn attempt(row: &PgRow) -> Result<u32, ProviderError> {
        attempt_of(row)
    }
}

/// The notification for orchestrator messages visible at `visible_at_ms`: `o:<time>` for a
/// future time, so dispatchers sleep until then, `o` for now.
fn orchestrator_wake(visible_at_ms: Option<u64>) -> String {
    match visible_at_ms {
        Some(t) if t > crate::now_ms() => format!("o:{t}"),
        _ => "o".to_string(),
    }
}

/// The notification that `instance` finished: `f:<instance>` when the id is within
/// [`MAX_INSTANCE_ID_BYTES`], else `f` (some instance finished). PostgreSQL refuses payloads
/// of 8,000 bytes or more and the refusal would fail the whole commit, so the payload never
/// carries an unbounded id (ids that bypassed the client's check stay committable).
fn finished_wake(instance: &str) -> String {
    if instance.len() <= MAX_INSTANCE_ID_BYTES { format!("f:{instance}") } else { "f".to_string() }
}

/// What a notification asks this process to do.
fn handle_notification(notifiers: &Arc<Notifiers>, payload: &str) {
    match payload.split_once(':') {
        Some(("o", at)) => notifiers.wake_orchestrator_at(at.parse().ok()),
        Some(("f", instance)) => {
            let _ = notifiers.finished.send(Finished::id_only(instance));
        }
        _ if payload == "f" => {
            let _ = notifiers.finished.send(Finished::unknown());
        }
        _ if payload == "w" => notifiers.worker.notify_waiters(),
        _ => notifiers.orchestrator.notify_waiters(),
    }
}

async fn listen_loop(pool: PgPool, channel: String, notifiers: Arc<Notifiers>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "postgres listener cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(&channel).await {
            tracing::warn!(error = %e, "postgres LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => handle_notification(&notifiers, n.payload()),
                Ok(None) => {
                    // Connection lost (sqlx reconnects): notifications may have been missed,
                    // so wake everyone to poll once.
                    notifiers.orchestrator.notify_waiters();
                    notifiers.worker.notify_waiters();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "postgres listener failed; reconnecting");
                    notifiers.orchestrator.notify_waiters();
                    notifiers.worker.notify_waiters();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}

impl PostgresProvider {
    /// Connects to `url` (`postgres://user:pass@host:port/db`), creates the schema if missing
    /// and applies migrations. Safe to call from many processes at once.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), duroxide::ProviderError> {
    /// use duroxide::{PostgresOptions, PostgresProvider};
    /// let store = PostgresProvider::new(
    ///     "postgres://postgres@127.0.0.1:5432/app",
    ///     Some(PostgresOptions { schema: Some("orders".into()), ..Default::default() }),
    /// )
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn new(url: &str, options: Option<PostgresOptions>) -> Result<Self, ProviderError> {
        let options = options.unwrap_or_default();
        let schema = options.schema.clone().unwrap_or_else(|| "public".to_string());
        validate_schema_name(&schema)?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ProviderError::Configuration(format!(
                "bad PostgreSQL URL '{url}': expected postgres://user@host:port/database"
            )));
        }
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| ProviderError::Configuration(format!("bad PostgreSQL URL '{url}': {e}")))?
            .application_name(&options.application_name);
        // One direct connection first: a pool hides why it cannot connect behind a timeout.
        let probe = tokio::time::timeout(options.acquire_timeout, PgConnection::connect_with(&connect))
            .await
            .map_err(|_| ProviderError::Storage(format!("cannot connect to '{url}': timed out")))?
            .map_err(|e| match e {
                sqlx::Error::Configuration(c) => ProviderError::Configuration(c.to_string()),
                other => ProviderError::Storage(format!("cannot connect to '{url}': {other}")),
            })?;
        let _ = probe.close().await;
        let search_path = format!("\"{schema}\"");
        let extra = if options.listen { 1 } else { 0 };
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1) + extra)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    sqlx::query("SELECT set_config('search_path', $1, false)")
                        .bind(search_path)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .connect_with(connect)
            .await
            .map_err(|e| match e {
                sqlx::Error::Configuration(c) => ProviderError::Configuration(c.to_string()),
                other => ProviderError::Storage(format!("cannot connect to '{url}': {other}")),
            })?;
        Self::migrate(&pool, &schema).await?;
        let channel = format!("duroxide_{schema}");
        let notifiers = Arc::new(Notifiers::default());
        let listener = if options.listen {
            Some(tokio::spawn(listen_loop(pool.clone(), channel.clone(), notifiers.clone())))
        } else {
            None
        };
        Ok(Self { pool, schema, channel, notifiers, listener })
    }

    /// The schema this store uses.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    async fn migrate(pool: &PgPool, schema: &str) -> Result<(), ProviderError> {
        let mut conn = pool.acquire().await.map_err(storage)?;
        // `CREATE SCHEMA IF NOT EXISTS` races with itself; serialize per schema.
        let key = format!("duroxide-schema:{schema}");
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind(&key)
            .execute(&mut *conn)
            .await
            .map_err(storage)?;
        let result = async {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")))
                .execute(&mut *conn)
                .await
                .map_err(|e| ProviderError::Migration(format!("cannot create schema '{schema}': {e}")))?;
            MIGRATOR
                .run_direct(None, &mut *conn, false)
                .await
                .map_err(|e| ProviderError::Migration(e.to_string()))
        }
        .await;
        let unlock =
            sqlx::query("SELECT pg_advisory_unlock(hashtext($1))").bind(&key).execute(&mut *conn).await;
        result?;
        unlock.map_err(storage)?;
        Ok(())
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, ProviderError> {
        self.pool.begin().await.map_err(storage)
    }

    async fn notify(&self, conn: &mut PgConnection, payload: &str) -> Result<(), ProviderError> {
        self.notify_all(conn, &[payload.to_string()]).await
    }

    async fn notify_orchestrator(
        &self,
        conn: &mut PgConnection,
        visible_at_ms: Option<u64>,
    ) -> Result<(), ProviderError> {
        self.notify(conn, &orchestrator_wake(visible_at_ms)).await
    }

    /// Sends several notifications in one statement.
    async fn notify_all(&self, conn: &mut PgConnection, payloads: &[String]) -> Result<(), ProviderError> {
        if payloads.is_empty() {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, p) FROM UNNEST($2::text[]) AS p")
            .bind(&self.channel)
            .bind(payloads)
            .execute(&mut *conn)
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn instance_row(
        conn: &mut PgConnection,
        instance: &str,
    ) -> Result<Option<InstanceRecord>, ProviderError> {
        let row = sqlx::query(
            "SELECT instance_id, name, version, execution_id, state, output, error, custom_status, \
             parent_instance, duroxide_version, status_note, created_at, updated_at \
             FROM instances WHERE instance_id = $1",
        )
        .bind(instance)
        .fetch_optional(&mut *conn)
        .await
        .map_err(storage)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn insert_message(
        conn: &mut PgConnection,
        instance: &str,
        message: &OrchestratorMessage,
        visible_at_ms: Option<u64>,
        now: u64,
    ) -> Result<(), ProviderError> {
        sqlx::query(
            "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(instance)
        .bind(to_json(message)?)
        .bind(ms(visible_at_ms.unwrap_or(now)))
        .bind(ms(now))
        .execute(&mut *conn)
        .await
        .map_err(storage)?;
        Ok(())
    }

    /// Inserts an instance row; false when it exists already.
    async fn insert_instance(
        conn: &mut PgConnection,
        instance: &str,
        name: &str,
        version: Option<&str>,
        parent: Option<&str>,
        now: u64,
    ) -> Result<bool, ProviderError> {
        let done = sqlx::query(
            "INSERT INTO instances (instance_id, name, version, state, parent_instance, created_at, updated_at) \
             VALUES ($1, $2, $3, 'Pending', $4, $5, $5) ON CONFLICT (instance_id) DO NOTHING",
        )
        .bind(instance)
        .bind(name)
        .bind(version)
        .bind(parent)
        .bind(ms(now))
        .execute(&mut *conn)
        .await
        .map_err(storage)?;
        Ok(done.rows_affected() == 1)
    }

    async fn instance_exists(conn: &mut PgConnection, instance: &str) -> Result<bool, ProviderError> {
        let row = sqlx::query("SELECT 1 FROM instances WHERE instance_id = $1")
            .bind(instance)
            .fetch_optional(&mut *conn)
            .await
            .map_err(storage)?;
        Ok(row.is_some())
    }

    async fn load_history(
        conn: &mut PgConnection,
        instance: &str,
        execution_id: u64,
    ) -> Result<(Vec<Event>, Option<String>, u64), ProviderError> {
        let rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT event_id, data FROM history WHERE instance_id = $1 AND execution_id = $2 ORDER BY event_id",
        )
        .bind(instance)
        .bind(ms(execution_id))
        .fetch_all(&mut *conn)
        .await
        .map_err(storage)?;
        Ok(parse_history(rows, execution_id))
    }

    /// One attempt of `fetch_work_item`: `Ok(None)` when a session claim lost a race (try
    /// again), `Ok(Some(None))` when there is no work.
    async fn try_fetch_work_item(
        &self,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
    ) -> Result<Option<Option<ActivityWorkItem>>, ProviderError> {
        let now = crate::now_ms();
        let mut tx = self.begin().await?;
        // Cancelled work whose worker died is dropped here.
        sqlx::query("DELETE FROM worker_queue WHERE cancel_requested AND locked_until <= $1")
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        let held: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions h WHERE h.worker_id = $1 AND h.locked_until > $2 \
                 AND EXISTS (SELECT 1 FROM worker_queue b WHERE b.session_id = h.session_id)",
        )
        .bind(&worker.worker_id)
        .bind(ms(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(storage)?;
        let can_claim = held < i64::from(worker.max_sessions);
        // Runnable: no session; or a session this worker holds; or (if it may claim more) a
        // session nobody holds or whose lease expired.
        let row = sqlx::query(
            "SELECT w.id AS id, w.session_id AS session_id, \
             COALESCE(s.worker_id = $1 AND s.locked_until > $2, FALSE) AS mine \
             FROM worker_queue w LEFT JOIN sessions s ON s.session_id = w.session_id \
             WHERE w.visible_at <= $2 AND (w.lock_token IS NULL OR w.locked_until <= $2) AND ( \
               w.session_id IS NULL \
               OR (s.worker_id = $1 AND s.locked_until > $2) \
               OR ($3 AND (s.session_id IS NULL OR s.locked_until <= $2))) \
             ORDER BY w.id LIMIT 1 FOR UPDATE OF w SKIP LOCKED",
        )
        .bind(&worker.worker_id)
        .bind(ms(now))
        .bind(can_claim)
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage)?;
        let Some(r) = row else { return Ok(Some(None)) };
        let id: i64 = r.try_get("id").map_err(storage)?;
        let session_id: Option<String> = r.try_get("session_id").map_err(storage)?;
        let mine: bool = r.try_get("mine").map_err(storage)?;
        let mut session_claimed = false;
        if let Some(sid) = &session_id {
            session_claimed = !mine;
            // Claim or extend, unless another worker got a valid lease meanwhile.
            let claimed = sqlx::query(
                "INSERT INTO sessions (session_id, worker_id, locked_until, last_activity_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO UPDATE SET \
                 worker_id = EXCLUDED.worker_id, locked_until = EXCLUDED.locked_until, \
                 last_activity_at = EXCLUDED.last_activity_at \
                 WHERE sessions.worker_id = EXCLUDED.worker_id OR sessions.locked_until <= $4",
            )
            .bind(sid)
            .bind(&worker.worker_id)
            .bind(ms(now + worker.session_lease.as_millis() as u64))
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
            if claimed.rows_affected() == 0 {
                return Ok(None);
            }
        }
        let lock_token = token();
        let r = sqlx::query(
            "UPDATE worker_queue SET lock_token = $1, locked_until = $2, attempt_count = attempt_count + 1 \
             WHERE id = $3 RETURNING instance_id, execution_id, event_id, name, input, attempt_count",
        )
        .bind(&lock_token)
        .bind(ms(now + lock_timeout.as_millis() as u64))
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(storage)?;
        let item = work_item_from_row(&r, lock_token, session_id, session_claimed)?;
        tx.commit().await.map_err(storage)?;
        Ok(Some(Some(item)))
    }

    /// Locks up to `max` instances (see [`LockTarget`]) in one statement, each with its own
    /// token.
    async fn lock_instances(
        conn: &mut PgConnection,
        target: LockTarget<'_>,
        filter: &FetchFilter,
        max: usize,
        now: u64,
        lock_timeout: Duration,
    ) -> Result<Vec<Locked>, ProviderError> {
        let max = max.clamp(1, MAX_BATCH);
        let tokens: Vec<String> = (0..max).map(|_| token()).collect();
        let sql = target.lock_sql();
        let mut query = FilterParams::new(filter)
            .bind(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(now)))
            .bind(max as i64)
            .bind(tokens)
            .bind(ms(now + lock_timeout.as_millis() as u64));
        if let LockTarget::Instances(ids) = target {
            query = query.bind(ids);
        }
        let rows = query.fetch_all(&mut *conn).await.map_err(storage)?;
        rows.iter().map(Locked::from_row).collect()
    }

    /// The locked instances as items, oldest message first, with their history where this
    /// node does not hold the execution in memory (`cached`). If the history cannot be read,
    /// the locks are released.
    async fn with_histories(
        &self,
        conn: &mut PgConnection,
        mut locked: Vec<Locked>,
        cached: &(dyn for<'s> Fn(&'s str) -> Option<(u64, u64)> + Send + Sync),
    ) -> Result<Vec<OrchestrationItem>, ProviderError> {
        let (mut ids, mut execs) = (Vec::new(), Vec::new());
        for l in &mut locked {
            let exec = l.item.record.execution_id;
            match cached(&l.item.instance).filter(|(e, _)| *e == exec) {
                // A node that holds this execution needs only the stored length to know its
                // copy is current.
                Some((_, len)) if len > 0 && len == l.stored_len => l.item.history_len = len,
                // Never started: no history to read.
                _ if exec == 0 => {}
                _ => {
                    ids.push(l.item.instance.clone());
                    execs.push(ms(exec));
                }
            }
        }
        if !ids.is_empty() {
            // The instances are locked: their histories cannot change meanwhile.
            let rows = sqlx::query_as::<_, (String, i64, String)>(
                "SELECT h.instance_id, h.event_id, h.data FROM history h \
                 JOIN UNNEST($1::text[], $2::bigint[]) AS t(instance_id, execution_id) \
                 ON h.instance_id = t.instance_id AND h.execution_id = t.execution_id \
                 ORDER BY h.instance_id, h.event_id",
            )
            .bind(&ids)
            .bind(&execs)
            .fetch_all(&mut *conn)
            .await;
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => {
                    self.release_locks(locked.iter().map(|l| l.item.lock_token.clone()).collect()).await;
                    return Err(storage(e));
                }
            };
            let mut histories: HashMap<String, Vec<(i64, String)>> = HashMap::new();
            for (instance, id, data) in rows {
                histories.entry(instance).or_default().push((id, data));
            }
            for l in &mut locked {
                if ids.contains(&l.item.instance) {
                    let rows = histories.remove(&l.item.instance).unwrap_or_default();
                    let (history, error, len) = parse_history(rows, l.item.record.execution_id);
                    l.item.history = history;
                    l.item.history_len = len;
                    l.item.history_error = error.or(l.item.history_error.take());
                }
            }
        }
        locked.sort_by_key(|l| l.oldest);
        Ok(locked.into_iter().map(|l| l.item).collect())
    }

    /// Unlocks instances this node locked but cannot hand over, without counting the
    /// attempt. Best effort: otherwise their locks expire.
    async fn release_locks(&self, tokens: Vec<String>) {
        let released = sqlx::query(
            "WITH i AS (UPDATE instances SET lock_token = NULL, locked_until = 0 WHERE lock_token = ANY($1::text[])) \
             UPDATE orchestrator_queue SET lock_token = NULL, attempt_count = attempt_count - 1 \
             WHERE lock_token = ANY($1::text[])",
        )
        .bind(tokens)
        .execute(&self.pool)
        .await;
        match released {
            Ok(_) => self.notifiers.wake_orchestrator_at(None),
            Err(e) => {
                tracing::warn!(error = %e, "releasing locked instances failed; their locks will expire")
            }
        }
    }

    /// Completes work items and, with `lock`, locks in the same transaction the instances
    /// they report to (see `Provider::complete_work_items_and_lock`).
    async fn complete_and_lock(
        &self,
        items: Vec<(String, OutboundMessage)>,
        lock: Option<LockAfterComplete<'_>>,
    ) -> (Vec<Result<(), ProviderError>>, Vec<OrchestrationItem>) {
        let n = items.len();
        let all_failed = |e: ProviderError| ((0..n).map(|_| Err(e.clone())).collect::<Vec<_>>(), Vec::new());
        if items.is_empty() {
            return (Vec::new(), Vec::new());
        }
        // A token listed twice completes once, as two calls would.
        let mut seen = HashSet::new();
        let first: Vec<bool> = items.iter().map(|(token, _)| seen.insert(token.as_str())).collect();
        let (mut tokens, mut instances, mut messages) = (Vec::new(), Vec::new(), Vec::new());
        for ((token, completion), _) in items.iter().zip(&first).filter(|(_, first)| **first) {
            match to_json(&completion.message) {
                Ok(m) => messages.push(m),
                Err(e) => return all_failed(e),
            }
            tokens.push(token.clone());
            instances.push(completion.instance.clone());
        }
        let lock = lock.filter(|l| l.max_instances > 0);
        let now = crate::now_ms();
        let mut conn = match self.pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => return all_failed(storage(e)),
        };
        let completed = async {
            let complete = |notify: bool| {
                sqlx::query(COMPLETE_SQL)
                    .bind(&tokens)
                    .bind(&instances)
                    .bind(&messages)
                    .bind(ms(now))
                    .bind(notify)
                    .bind(&self.channel)
            };
            let Some(lock) = &lock else {
                // One statement, so no transaction to open.
                let row = complete(true).fetch_one(&mut *conn).await.map_err(storage)?;
                let done: HashSet<String> =
                    row.try_get::<Vec<String>, _>("done").map_err(storage)?.into_iter().collect();
                let notified = !done.is_empty();
                return Ok((done, Vec::new(), notified));
            };
            let mut tx = conn.begin().await.map_err(storage)?;
            let row = complete(false).fetch_one(&mut *tx).await.map_err(storage)?;
            let done: HashSet<String> =
                row.try_get::<Vec<String>, _>("done").map_err(storage)?.into_iter().collect();
            let mut targets: Vec<String> = Vec::new();
            for (token, instance) in tokens.iter().zip(&instances) {
                if done.contains(token) && !targets.contains(instance) {
                    targets.push(instance.clone());
                }
            }
            let locked = match targets.is_empty() {
                true => Vec::new(),
                false => {
                    let target = LockTarget::Instances(&targets);
                    Self::lock_instances(
                        &mut tx,
                        target,
                        lock.filter,
                        lock.max_instances,
                        now,
                        lock.lock_timeout,
                    )
                    .await?
                }
            };
            // Dispatchers (here and elsewhere) need waking only for completions whose
            // instance was not locked here.
            let notified = targets.len() > locked.len();
            if notified {
                self.notify_orchestrator(&mut tx, None).await?;
            }
            tx.commit().await.map_err(storage)?;
            Ok((done, locked, notified))
        }
        .await;
        let (done, locked, notified) = match completed {
            Ok(c) => c,
            Err(e) => return all_failed(e),
        };
        if notified {
            self.notifiers.wake_orchestrator_at(None);
        }
        let results = items
            .iter()
            .zip(first)
            .map(|((token, _), first)| match first && done.contains(token) {
                true => Ok(()),
                false => Err(lock_lost("activity", token)),
            })
            .collect();
        // Committed: if the histories cannot be read, the instances are released again.
        let items = match (&lock, locked.is_empty()) {
            (Some(lock), false) => match self.with_histories(&mut conn, locked, lock.cached).await {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(error = %e, "reading instances locked by completions failed");
                    Vec::new()
                }
            },
            _ => Vec::new(),
        };
        (results, items)
    }
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
        let now = crate::now_ms();
        let mut tx = self.begin().await?;
        if !Self::insert_instance(&mut tx, instance, name, version, None, now).await? {
            return Err(ProviderError::InstanceExists(instance.to_string()));
        }
        let msg = OrchestratorMessage::StartOrchestration {
            name: name.to_string(),
            version: version.map(str::to_string),
            input: input.to_string(),
            parent: None,
        };
        Self::insert_message(&mut tx, instance, &msg, None, now).await?;
        self.notify_orchestrator(&mut tx, None).await?;
        tx.commit().await.map_err(storage)?;
        self.notifiers.wake_orchestrator_at(None);
        Ok(())
    }

    async fn enqueue_message(&self, message: OutboundMessage) -> Result<(), ProviderError> {
        let now = crate::now_ms();
        let mut tx = self.begin().await?;
        if !Self::instance_exists(&mut tx, &message.instance).await? {
            return Err(ProviderError::InstanceNotFound(message.instance));
        }
        Self::insert_message(&mut tx, &message.instance, &message.message, message.visible_at_ms, now)
            .await?;
        self.notify_orchestrator(&mut tx, message.visible_at_ms).await?;
        tx.commit().await.map_err(storage)?;
        self.notifiers.wake_orchestrator_at(message.visible_at_ms);
        Ok(())
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
        let now = crate::now_ms();
        let mut conn = self.pool.acquire().await.map_err(storage)?;
        // One statement, no transaction: when nothing is ready it is a read that locks and
        // writes nothing, so idle dispatchers cost little.
        let locked =
            Self::lock_instances(&mut conn, LockTarget::Oldest, filter, max, now, lock_timeout).await?;
        if locked.is_empty() {
            return Ok(Vec::new());
        }
        self.with_histories(&mut conn, locked, cached).await
    }

    async fn commit_turn(&self, lock_token: &str, commit: TurnCommit) -> Result<(), ProviderError> {
        // A constant number of statements whatever the size of the turn: events, activities,
        // cancellations and messages each go in one statement (arrays bound as parameters);
        // only a sub-orchestration start costs one more, to create its instance.
        let now = crate::now_ms();
        let mut tx = self.begin().await?;
        let instance: Option<String> =
            sqlx::query_scalar("SELECT instance_id FROM instances WHERE lock_token = $1 FOR UPDATE")
                .bind(lock_token)
                .fetch_optional(&mut *tx)
                .await
                .map_err(storage)?;
        let Some(instance) = instance else {
            return Err(lock_lost("instance", lock_token));
        };
        let exec = ms(commit.execution_id);
        let started = commit.new_events.iter().find_map(|e| match &e.kind {
            EventKind::OrchestrationStarted { version, duroxide_version, .. } => {
                Some((version.clone(), duroxide_version.clone()))
            }
            _ => None,
        });
        if let (Some(first), Some(last)) = (commit.new_events.first(), commit.new_events.last()) {
            let ids: Vec<i64> = commit.new_events.iter().map(|e| ms(e.event_id)).collect();
            let types: Vec<&str> = commit.new_events.iter().map(|e| e.kind.type_name()).collect();
            let data = commit.new_events.iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
            sqlx::query(APPEND_HISTORY_SQL)
                .bind(&instance)
                .bind(exec)
                .bind(ids)
                .bind(types)
                .bind(data)
                .execute(&mut *tx)
                .await
                .map_err(|err| {
                    ProviderError::Storage(format!(
                        "appending events {}..={} failed: {err}",
                        first.event_id, last.event_id
                    ))
                })?;
        }
        let exec_state = match commit.update.state {
            InstanceState::Completed | InstanceState::Failed => commit.update.state,
            _ if commit.next_execution_id.is_some() => InstanceState::Completed,
            _ => InstanceState::Running,
        };
        let u = &commit.update;
        let error = u.error.as_ref().map(to_json).transpose()?;
        let (set_cs, cs) = match &u.custom_status {
            Some(v) => (true, v.clone()),
            None => (false, None),
        };
        let next_exec = commit.next_execution_id.map(ms).unwrap_or(exec);
        let (started_version, started_dv) = match &started {
            Some((version, dv)) => (Some(version.as_str()), Some(dv.as_str())),
            None => (None, None),
        };
        sqlx::query(TURN_STATE_SQL)
            .bind(&instance)
            .bind(exec)
            .bind(ms(now))
            .bind(lock_token)
            .bind(started.is_some())
            .bind(started_version)
            .bind(started_dv)
            .bind(!commit.new_events.is_empty())
            .bind(exec_state.as_str())
            .bind(&u.name)
            .bind(&u.version)
            .bind(next_exec)
            .bind(u.state.as_str())
            .bind(&u.output)
            .bind(error)
            .bind(set_cs)
            .bind(cs)
            .bind(started_dv.and_then(|dv| semver::Version::parse(dv).ok()).map(|v| version_key(&v)))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        // An activity with a lock token is handed straight to a worker of this node: it is
        // stored locked, its first attempt counted.
        let eager = |a: &ActivityWorkItem| !a.lock_token.is_empty();
        if !commit.activities.is_empty() {
            let locked_until = ms(now + commit.activity_lock_timeout.as_millis() as u64);
            let acts = &commit.activities;
            sqlx::query(ENQUEUE_ACTIVITIES_SQL)
                .bind(&instance)
                .bind(ms(now))
                .bind(acts.iter().map(|a| ms(a.execution_id)).collect::<Vec<_>>())
                .bind(acts.iter().map(|a| ms(a.event_id)).collect::<Vec<_>>())
                .bind(acts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>())
                .bind(acts.iter().map(|a| a.input.as_str()).collect::<Vec<_>>())
                .bind(acts.iter().map(|a| a.session_id.as_deref()).collect::<Vec<_>>())
                .bind(acts.iter().map(|a| eager(a).then_some(a.lock_token.as_str())).collect::<Vec<_>>())
                .bind(acts.iter().map(|a| if eager(a) { locked_until } else { 0 }).collect::<Vec<_>>())
                .bind(acts.iter().map(|a| i32::from(eager(a))).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        }
        if !commit.cancelled_activities.is_empty() {
            // Queued work is dropped; running work is flagged so its lock renewal fails. Two
            // statements, so the flagging sees a worker that took the work meanwhile.
            let ids: Vec<i64> = commit.cancelled_activities.iter().map(|id| ms(*id)).collect();
            sqlx::query(
                "DELETE FROM worker_queue WHERE instance_id = $1 AND execution_id = $2 \
                 AND event_id = ANY($3::bigint[]) AND (lock_token IS NULL OR locked_until <= $4)",
            )
            .bind(&instance)
            .bind(exec)
            .bind(&ids)
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
            sqlx::query(
                "UPDATE worker_queue SET cancel_requested = TRUE \
                 WHERE instance_id = $1 AND execution_id = $2 AND event_id = ANY($3::bigint[])",
            )
            .bind(&instance)
            .bind(exec)
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        // Messages are checked in order against the instances that exist (looked up at once;
        // this instance exists, it is locked) or that an earlier start of this turn created,
        // then enqueued in one statement.
        let is_start =
            |m: &OutboundMessage| matches!(m.message, OrchestratorMessage::StartOrchestration { .. });
        let others: Vec<&str> = commit
            .messages
            .iter()
            .filter(|m| m.instance != instance && !is_start(m))
            .map(|m| m.instance.as_str())
            .collect();
        let mut known: HashSet<String> = match others.is_empty() {
            true => HashSet::new(),
            false => {
                sqlx::query_scalar("SELECT instance_id FROM instances WHERE instance_id = ANY($1::text[])")
                    .bind(&others)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(storage)?
                    .into_iter()
                    .collect()
            }
        };
        known.insert(instance.clone());
        let (mut targets, mut messages, mut visible_at) = (Vec::new(), Vec::new(), Vec::new());
        let mut wake_at: Vec<Option<u64>> = Vec::new();
        let mut enqueue = |target: &str, message: &OrchestratorMessage, at: Option<u64>| {
            targets.push(target.to_string());
            messages.push(to_json(message)?);
            visible_at.push(ms(at.unwrap_or(now)));
            wake_at.push(at);
            Ok::<_, ProviderError>(())
        };
        for m in &commit.messages {
            if let OrchestratorMessage::StartOrchestration { name, version, parent, .. } = &m.message {
                let created = Self::insert_instance(
                    &mut tx,
                    &m.instance,
                    name,
                    version.as_deref(),
                    parent.as_ref().map(|p| p.instance.as_str()),
                    now,
                )
                .await?;
                known.insert(m.instance.clone());
                if !created {
                    if let Some(reply) = start_conflict_reply(m) {
                        enqueue(&reply.instance, &reply.message, None)?;
                    }
                    continue;
                }
            } else if !known.contains(&m.instance) {
                tracing::warn!(instance = %m.instance, message = m.message.type_name(), "message to unknown instance dropped");
                continue;
            }
            enqueue(&m.instance, &m.message, m.visible_at_ms)?;
        }
        if !targets.is_empty() {
            sqlx::query(ENQUEUE_MESSAGES_SQL)
                .bind(&targets)
                .bind(&messages)
                .bind(&visible_at)
                .bind(ms(now))
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        }
        // Cross-process wake-ups, delivered by PostgreSQL when the transaction commits.
        let mut wake_ups = Vec::new();
        let mut notified_now = false;
        for w in &wake_at {
            match w {
                Some(t) if *t > now => wake_ups.push(orchestrator_wake(Some(*t))),
                _ if !notified_now => {
                    notified_now = true;
                    wake_ups.push(orchestrator_wake(None));
                }
                _ => {}
            }
        }
        let unlocked_work = commit.activities.iter().any(|a| !eager(a));
        if unlocked_work {
            wake_ups.push("w".to_string());
        }
        if commit.update.state.is_terminal() {
            wake_ups.push(finished_wake(&instance));
        }
        self.notify_all(&mut tx, &wake_ups).await?;
        tx.commit().await.map_err(storage)?;
        for w in wake_at {
            self.notifiers.wake_orchestrator_at(w);
        }
        if unlocked_work {
            self.notifiers.worker.notify_waiters();
        }
        if commit.update.state.is_terminal() {
            let _ = self.notifiers.finished.send(Finished::id_only(instance));
        }
        Ok(())
    }

    async fn abandon_orchestration_item(
        &self,
        lock_token: &str,
        delay: Option<Duration>,
        note: Option<String>,
        count_attempt: bool,
    ) -> Result<(), ProviderError> {
        let now = crate::now_ms();
        let visible = now + delay.map(|d| d.as_millis() as u64).unwrap_or(0);
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE instances SET lock_token = NULL, locked_until = 0, \
             status_note = COALESCE($1, status_note), updated_at = $2 WHERE lock_token = $3",
        )
        .bind(note)
        .bind(ms(now))
        .bind(lock_token)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if done.rows_affected() == 0 {
            return Err(lock_lost("instance", lock_token));
        }
        sqlx::query(
            "UPDATE orchestrator_queue SET lock_token = NULL, visible_at = GREATEST(visible_at, $1), \
             attempt_count = attempt_count - $2 WHERE lock_token = $3",
        )
        .bind(ms(visible))
        .bind(if count_attempt { 0i32 } else { 1i32 })
        .bind(lock_token)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        self.notify_orchestrator(&mut tx, Some(visible)).await?;
        tx.commit().await.map_err(storage)?;
        self.notifiers.wake_orchestrator_at(Some(visible));
        Ok(())
    }

    async fn renew_orchestration_lock(
        &self,
        lock_token: &str,
        lock_timeout: Duration,
    ) -> Result<(), ProviderError> {
        let until = crate::now_ms() + lock_timeout.as_millis() as u64;
        let done = sqlx::query("UPDATE instances SET locked_until = $1 WHERE lock_token = $2")
            .bind(ms(until))
            .bind(lock_token)
            .execute(&self.pool)
            .await
            .map_err(storage)?;
        if done.rows_affected() == 0 {
            return Err(lock_lost("instance", lock_token));
        }
        Ok(())
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
        let now = crate::now_ms();
        // The common case in one statement, without a transaction: items without a session.
        let rows = sqlx::query(FETCH_WORK_SQL)
            .bind(&worker.worker_id)
            .bind(ms(now))
            .bind(i64::from(worker.max_sessions))
            .bind(max.clamp(1, MAX_BATCH) as i64)
            .bind(token())
            .bind(ms(now + lock_timeout.as_millis() as u64))
            .fetch_all(&self.pool)
            .await
            .map_err(storage)?;
        let mut session_first = false;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            session_first |= r.try_get::<Option<i64>, _>("session_first").map_err(storage)?.is_some();
            let Some(id) = r.try_get::<Option<i64>, _>("id").map_err(storage)? else { continue };
            let token = r.try_get("lock_token").map_err(storage)?;
            let item = work_item_from_row(r, token, None, false)?;
            items.push((id, item));
        }
        if !items.is_empty() || !session_first {
            // RETURNING has no order.
            items.sort_by_key(|(id, _)| *id);
            return Ok(items.into_iter().map(|(_, item)| item).collect());
        }
        // The oldest item this worker may run is on a session: it comes alone, as a single
        // fetch gives it. A session claim can lose a race with another worker's; then look
        // again.
        for _ in 0..3 {
            if let Some(found) = self.try_fetch_work_item(lock_timeout, worker).await? {
                return Ok(found.into_iter().collect());
            }
        }
        Ok(Vec::new())
    }

    async fn renew_sessions(
        &self,
        worker: &WorkerIdentity,
        idle_timeout: Duration,
    ) -> Result<Vec<String>, ProviderError> {
        let now = crate::now_ms();
        let idle_since = now.saturating_sub(idle_timeout.as_millis() as u64);
        let mut tx = self.begin().await?;
        let released: Vec<String> = sqlx::query_scalar(
            "DELETE FROM sessions WHERE worker_id = $1 AND last_activity_at <= $2 AND NOT EXISTS ( \
               SELECT 1 FROM worker_queue w WHERE w.session_id = sessions.session_id \
               AND w.lock_token IS NOT NULL AND w.locked_until > $3) \
             RETURNING session_id",
        )
        .bind(&worker.worker_id)
        .bind(ms(idle_since))
        .bind(ms(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(storage)?;
        sqlx::query("UPDATE sessions SET locked_until = $1 WHERE worker_id = $2")
            .bind(ms(now + worker.session_lease.as_millis() as u64))
            .bind(&worker.worker_id)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        if !released.is_empty() {
            // Work of released sessions may now go to other workers.
            self.notify(&mut tx, "w").await?;
        }
        tx.commit().await.map_err(storage)?;
        Ok(released)
    }

    async fn renew_work_item(&self, lock_token: &str, lock_timeout: Duration) -> Result<(), ProviderError> {
        let until = crate::now_ms() + lock_timeout.as_millis() as u64;
        let cancel: Option<bool> = sqlx::query_scalar(
            "UPDATE worker_queue SET locked_until = $1 WHERE lock_token = $2 RETURNING cancel_requested",
        )
        .bind(ms(until))
        .bind(lock_token)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?;
        match cancel {
            None => Err(lock_lost("activity", lock_token)),
            Some(true) => Err(ProviderError::Cancelled),
            Some(false) => Ok(()),
        }
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
        let visible = crate::now_ms() + delay.map(|d| d.as_millis() as u64).unwrap_or(0);
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE worker_queue SET lock_token = NULL, locked_until = 0, visible_at = $1 WHERE lock_token = $2",
        )
        .bind(ms(visible))
        .bind(lock_token)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if done.rows_affected() > 0 {
            self.notify(&mut tx, "w").await?;
        }
        tx.commit().await.map_err(storage)?;
        Ok(())
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
        let mut conn = self.pool.acquire().await.map_err(storage)?;
        let exec = match execution_id {
            Some(e) => e,
            None => sql::current_execution(Self::instance_row(&mut conn, instance).await?, instance)?,
        };
        sql::events_or_corrupt(Self::load_history(&mut conn, instance, exec).await?)
    }

    async fn list_executions(&self, instance: &str) -> Result<Vec<ExecutionRecord>, ProviderError> {
        let rows = sqlx::query(
            "SELECT e.execution_id AS execution_id, e.version AS version, e.state AS state, \
             (SELECT COUNT(*) FROM history h WHERE h.instance_id = e.instance_id \
              AND h.execution_id = e.execution_id) AS n \
             FROM executions e WHERE e.instance_id = $1 ORDER BY e.execution_id",
        )
        .bind(instance)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        rows.iter()
            .map(|r| sql::execution_from_row(r, r.try_get::<i64, _>("n").map_err(storage)? as u64))
            .collect()
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
        let now = crate::now_ms();
        let sql = format!(
            "SELECT DISTINCT i.instance_id FROM orchestrator_queue q \
             JOIN instances i ON i.instance_id = q.instance_id \
             WHERE q.visible_at <= $1 AND (i.lock_token IS NULL OR i.locked_until <= $1) \
             AND NOT ({FILTER_SQL}) LIMIT $8"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(now));
        let ids = FilterParams::new(filter)
            .bind(query)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(storage)?
            .iter()
            .map(|r| r.try_get::<String, _>("instance_id"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(storage)?;
        let mut conn = self.pool.acquire().await.map_err(storage)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = Self::instance_row(&mut conn, &id).await? {
                out.push(sql::blocked_instance(r));
            }
        }
        Ok(out)
    }

    async fn count_instances_by_version(&self) -> Result<Vec<VersionCount>, ProviderError> {
        // Byte order and NULLs first, like SQLite, so both stores list the same way.
        let rows = sqlx::query(
            "SELECT name, version, state, COUNT(*) AS n FROM instances GROUP BY name, version, state \
             ORDER BY name COLLATE \"C\", version COLLATE \"C\" NULLS FIRST, state COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.extend(sql::version_count_from_row(&r)?);
        }
        Ok(out)
    }

    async fn export_instance(&self, instance: &str) -> Result<InstanceSnapshot, ProviderError> {
        // One repeatable-read transaction, so the snapshot is consistent.
        let mut tx = self.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        let snapshot = sql::export(&mut Tx(&mut tx), instance).await?;
        tx.rollback().await.map_err(storage)?;
        Ok(snapshot)
    }

    async fn import_instance(&self, snapshot: InstanceSnapshot) -> Result<(), ProviderError> {
        let mut tx = self.begin().await?;
        sql::import(&mut Tx(&mut tx), &snapshot, crate::now_ms()).await?;
        self.notify_orchestrator(&mut tx, None).await?;
        self.notify(&mut tx, "w").await?;
        tx.commit().await.map_err(storage)?;
        self.notifiers.wake_orchestrator_at(None);
        self.notifiers.worker.notify_waiters();
        Ok(())
    }

    async fn set_status_note(&self, instance: &str, note: &str) -> Result<(), ProviderError> {
        sqlx::query("UPDATE instances SET status_note = $1 WHERE instance_id = $2 AND status_note IS DISTINCT FROM $1")
            .bind(note)
            .bind(instance)
            .execute(&self.pool)
            .await
            .map_err(storage)?;
        Ok(())
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
