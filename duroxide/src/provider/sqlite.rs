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

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How hard SQLite works to keep committed data on power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteDurability {
    /// `synchronous = FULL` for starts, events and turns: nothing acknowledged is lost.
    /// Lock-only writes and activity completions skip their own fsync (a power loss only
    /// repeats that work; see the module docs).
    #[default]
    Full,
    /// `synchronous = NORMAL`: WAL is fsynced at checkpoints. A power loss may drop the
    /// most recent commits (the database stays consistent; the affected turns run again).
    Normal,
}

/// Options for [`SqliteProvider::new`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Durability mode (default [`SqliteDurability::Full`]).
    pub durability: SqliteDurability,
    /// Read connections (file databases; in memory the one writer connection also reads).
    /// Writes always go through one connection.
    pub max_connections: u32,
    /// How long a write waits for another process's write lock.
    pub busy_timeout: Duration,
    /// Page size in bytes of a database file this store creates (a power of two from 512
    /// to 65536); an existing file keeps the size it was created with. The default, 1024,
    /// suits duroxide's small rows: a turn modifies several B-tree pages, and every
    /// modified page is written to the WAL and fsynced in full, so smaller pages make
    /// each durable commit cheaper (see `docs/performance.md`).
    pub page_size: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            durability: SqliteDurability::Full,
            max_connections: 4,
            busy_timeout: Duration::from_secs(10),
            page_size: 1024,
        }
    }
}

/// The SQLite store.
pub struct SqliteProvider {
    conns: Arc<Conns>,
    notifiers: Arc<Notifiers>,
    /// Durable writes waiting for the group commit (see `GroupCommit`).
    group: Arc<GroupCommit>,
}

/// The connections of one store.
struct Conns {
    /// Every write of this process goes through this one connection, which also serializes
    /// them (they queue here instead of in SQLite's busy handler). A dedicated connection
    /// skips the pool's checkout and its check-in round trip on every write.
    writer: tokio::sync::Mutex<Writer>,
    /// Read connections (file databases); `None` in memory, where the writer also reads.
    readers: Option<SqlitePool>,
    /// Starts a write whose commit is acknowledged (fsynced under `Full`).
    begin_durable: &'static str,
}

/// The writer connection. Most writes run in one round trip as a statement batch that
/// begins and commits its own transaction (`Writer::one_trip`); `open` says such a batch
/// was sent and has not been seen to finish, which happens when its caller is cancelled
/// mid-way. The next user then rolls back whatever it left open (see `Conns::writer`).
struct Writer {
    conn: sqlx::SqliteConnection,
    open: bool,
}

impl Writer {
    /// Runs `batch` (which starts with a `BEGIN` and ends with `COMMIT`) in one round trip.
    /// On an error the transaction is rolled back: none of the batch is kept.
    async fn one_trip(&mut self, mut batch: Batch) -> Result<Vec<SqliteRow>, sqlx::Error> {
        self.one_trip_query(batch.q.build()).await
    }

    /// `one_trip` for a query written out (its SQL begins and commits the transaction).
    async fn one_trip_query(
        &mut self,
        query: sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<Vec<SqliteRow>, sqlx::Error> {
        self.open = true;
        let result = query.fetch_all(&mut self.conn).await;
        if result.is_err() {
            // Fails harmlessly when the error came before BEGIN or from COMMIT's success.
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
        }
        self.open = false;
        result
    }
}

/// Starts a write that only takes or releases locks, or records an activity result: no
/// fsync of its own (see the module docs).
const BEGIN_LIGHT: &str = "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE";

/// A connection to read from.
enum ReadConn<'a> {
    Pool(sqlx::pool::PoolConnection<Sqlite>),
    Writer(tokio::sync::MutexGuard<'a, Writer>),
}

impl std::ops::Deref for ReadConn<'_> {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        match self {
            ReadConn::Pool(c) => c,
            ReadConn::Writer(w) => &w.conn,
        }
    }
}

impl std::ops::DerefMut for ReadConn<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            ReadConn::Pool(c) => c,
            ReadConn::Writer(w) => &mut w.conn,
        }
    }
}

impl Conns {
    /// Locks the writer connection, first rolling back a transaction that a cancelled
    /// caller's one-trip batch may have left open.
    async fn writer(&self) -> tokio::sync::MutexGuard<'_, Writer> {
        let mut w = self.writer.lock().await;
        if w.open {
            // "No transaction is active" when the batch had committed (or never began).
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut w.conn).await;
            w.open = false;
        }
        w
    }

    async fn reader(&self) -> Result<ReadConn<'_>, ProviderError> {
        match &self.readers {
            Some(pool) => Ok(ReadConn::Pool(pool.acquire().await.map_err(storage)?)),
            None => Ok(ReadConn::Writer(self.writer().await)),
        }
    }
}

/// Opens a write transaction on the writer connection: `write_tx!(conns, guard, tx, BEGIN)`.
macro_rules! write_tx {
    ($conns:expr, $guard:ident, $tx:ident, $begin:expr) => {
        let mut $guard = $conns.writer().await;
        #[allow(unused_mut)]
        let mut $tx = sqlx::Connection::begin_with(&mut $guard.conn, $begin).await.map_err(storage)?;
    };
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

/// Whether `url` names an in-memory database (`sqlite::memory:`, `sqlite://:memory:`, or
/// `mode=memory` among the query parameters), and whether it names no database at all (an
/// empty path that is not in memory: SQLite would give every pooled connection its own
/// private temporary database, so writes through one would be invisible to the others).
fn classify_url(url: &str) -> (bool, bool) {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = path == ":memory:" || params.split('&').any(|p| p == "mode=memory");
    (memory, !memory && path.trim().is_empty())
}

impl SqliteProvider {
    /// Opens `url` (`sqlite:path`, `sqlite://path`, or `sqlite::memory:`), creating the file
    /// if missing and applying migrations.
    ///
    /// A URL without a database path (`""`, `sqlite:`, `sqlite://`, `sqlite:?mode=rwc`) or
    /// with another scheme is a [`ProviderError::Configuration`]. In-memory forms
    /// (`sqlite::memory:`, `sqlite://:memory:`, `sqlite:name?mode=memory`) give one database
    /// for the store, served by a single connection.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), duroxide::ProviderError> {
    /// use duroxide::SqliteProvider;
    /// let store = SqliteProvider::new("sqlite:./duroxide.db", None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn new(url: &str, options: Option<SqliteOptions>) -> Result<Self, ProviderError> {
        let options = options.unwrap_or_default();
        let scheme_ok = url.starts_with("sqlite:") || !url.contains("://");
        let (memory, no_database) = classify_url(url);
        if !scheme_ok || no_database {
            return Err(ProviderError::Configuration(format!(
                "bad SQLite URL '{url}': expected sqlite:<path> or sqlite::memory:"
            )));
        }
        let mut connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| ProviderError::Configuration(format!("bad SQLite URL '{url}': {e}")))?
            .create_if_missing(true)
            .foreign_keys(false)
            .busy_timeout(options.busy_timeout)
            // Batches of writes (several items, several statements) differ in text by how
            // many items they hold; room for all their shapes keeps them prepared.
            .statement_cache_capacity(1024);
        if !memory {
            if !(512..=65536).contains(&options.page_size) || !options.page_size.is_power_of_two() {
                return Err(ProviderError::Configuration(format!(
                    "SQLite page_size must be a power of two from 512 to 65536, got {}",
                    options.page_size
                )));
            }
            connect = connect.page_size(options.page_size);
            connect = connect.journal_mode(SqliteJournalMode::Wal).synchronous(match options.durability {
                SqliteDurability::Full => SqliteSynchronous::Full,
                SqliteDurability::Normal => SqliteSynchronous::Normal,
            });
        }
        let open_err = |e: sqlx::Error| match e {
            sqlx::Error::Configuration(c) => ProviderError::Configuration(c.to_string()),
            other => ProviderError::Storage(format!("cannot open '{url}': {other}")),
        };
        // An in-memory database lives as long as its one connection: the writer, kept for
        // the store's lifetime, also serves reads.
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { options.max_connections.max(1) })
            // A local file does not drop connections: skip the ping before every checkout.
            .test_before_acquire(false)
            .connect_with(connect)
            .await
            .map_err(open_err)?;
        MIGRATOR.run(&pool).await.map_err(|e| ProviderError::Migration(e.to_string()))?;
        let writer = pool.acquire().await.map_err(open_err)?.detach();
        let readers = if memory { None } else { Some(pool) };
        let conns = Arc::new(Conns {
            writer: tokio::sync::Mutex::new(Writer { conn: writer, open: false }),
            readers,
            begin_durable: match options.durability {
                SqliteDurability::Full => "PRAGMA synchronous = FULL; BEGIN IMMEDIATE",
                SqliteDurability::Normal => BEGIN_LIGHT,
            },
        });
        let notifiers = Arc::new(Notifiers::default());
        Ok(Self {
            conns: conns.clone(),
            group: Arc::new(GroupCommit {
                conns,
                notifiers: notifiers.clone(),
                state: std::sync::Mutex::default(),
            }),
            notifiers,
        })
    }

    /// A fresh private in-memory store.
    pub async fn in_memory() -> Result<Self, ProviderError> {
        Self::new("sqlite::memory:", None).await
    }

    async fn instance_row(
        conn: &mut sqlx::SqliteConnection,
        instance: &str,
    ) -> Result<Option<InstanceRecord>, ProviderError> {
        let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(instance)
            .fetch_optional(&mut *conn)
            .await
            .map_err(storage)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn insert_message(
        tx: &mut sqlx::SqliteConnection,
        instance: &str,
        message: &OrchestratorMessage,
        visible_at_ms: Option<u64>,
        now: u64,
    ) -> Result<(), ProviderError> {
        sqlx::query(
            "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) VALUES (?, ?, ?, ?)",
        )
        .bind(instance)
        .bind(to_json(message)?)
        .bind(ms(visible_at_ms.unwrap_or(now)))
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        Ok(())
    }

    /// Appends the statements that delete locked work items and enqueue their completions;
    /// each deleted item returns a row tagged 'd' with its token (see `completed`). An item
    /// whose lock is gone writes nothing.
    fn push_completions(
        batch: &mut Batch,
        items: &[(String, OutboundMessage)],
        now: u64,
    ) -> Result<(), ProviderError> {
        for (lock_token, completion) in items {
            // The session touch and the insert only happen if the token is held; the idle
            // clock of a session starts when its last activity finished.
            let q = batch.stmt("UPDATE sessions SET last_activity_at = ");
            q.push_bind(ms(now))
                .push(" WHERE session_id = (SELECT session_id FROM worker_queue WHERE lock_token = ");
            q.push_bind(lock_token.clone()).push(")");
            let q = batch.stmt(
                "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) SELECT ",
            );
            q.push_bind(completion.instance.clone()).push(", ").push_bind(to_json(&completion.message)?);
            q.push(", ").push_bind(ms(now)).push(", ").push_bind(ms(now));
            q.push(" WHERE EXISTS (SELECT 1 FROM worker_queue WHERE lock_token = ")
                .push_bind(lock_token.clone());
            q.push(")");
            batch
                .stmt("DELETE FROM worker_queue WHERE lock_token = ")
                .push_bind(lock_token.clone())
                .push(" RETURNING 'd' AS tag, lock_token");
        }
        Ok(())
    }

    /// Which of `items` the rows of `push_completions` say were done.
    fn completed(
        items: &[(String, OutboundMessage)],
        rows: &[SqliteRow],
    ) -> Result<Vec<bool>, ProviderError> {
        let mut deleted = std::collections::HashSet::new();
        for r in rows {
            if r.try_get::<String, _>("tag").map_err(storage)? == "d" {
                deleted.insert(r.try_get::<String, _>("lock_token").map_err(storage)?);
            }
        }
        Ok(items.iter().map(|(token, _)| deleted.contains(token)).collect())
    }

    /// Appends the statements that lock up to `max` instances (see `LockTarget`) and their
    /// visible messages, and read the stored history length of each: rows tagged 'i'
    /// (instance), 'q' (message) and 'h' (length), read by `locked_items`. However many
    /// instances, three statements; each instance gets its own lock token (a token shared
    /// by the batch, a dot and the instance's row id).
    fn push_lock(batch: &mut Batch, target: LockTarget<'_>, max: usize, now: u64, lock_timeout: Duration) {
        let batch_token = token();
        let (from, to) = (format!("{batch_token}."), format!("{batch_token}/"));
        let locked_until = now + lock_timeout.as_millis() as u64;
        // Only instances nobody holds (or whose lock expired) that the filter allows.
        let (clause, binds) = filter_sql(target.filter());
        let q = batch.stmt("UPDATE instances SET lock_token = ");
        q.push_bind(batch_token).push(" || '.' || rowid, locked_until = ").push_bind(ms(locked_until));
        q.push(" WHERE instance_id IN (");
        match target {
            LockTarget::Oldest(_) => {
                q.push("SELECT q.instance_id FROM orchestrator_queue q JOIN instances i ON i.instance_id = q.instance_id WHERE q.visible_at <= ");
                q.push_bind(ms(now))
                    .push(" AND (i.lock_token IS NULL OR i.locked_until <= ")
                    .push_bind(ms(now));
                q.push(") AND ");
                push_filter(q, &clause, binds);
                q.push(" GROUP BY q.instance_id ORDER BY MIN(q.id)");
            }
            LockTarget::Instances(ids, _) => {
                q.push("SELECT i.instance_id FROM instances i WHERE i.instance_id IN (");
                let mut list = q.separated(", ");
                for id in ids {
                    list.push_bind(id.to_string());
                }
                q.push(") AND (i.lock_token IS NULL OR i.locked_until <= ").push_bind(ms(now));
                q.push(") AND EXISTS (SELECT 1 FROM orchestrator_queue q WHERE q.instance_id = i.instance_id AND q.visible_at <= ");
                q.push_bind(ms(now)).push(") AND ");
                push_filter(q, &clause, binds);
            }
        }
        q.push(" LIMIT ").push_bind(max.max(1) as i64);
        q.push(format!(") RETURNING 'i' AS tag, lock_token, history_rev, {INSTANCE_COLUMNS}"));
        // The instances just locked are those whose token starts with the batch's.
        let q = batch.stmt(
            "UPDATE orchestrator_queue SET attempt_count = attempt_count + 1, lock_token = \
             (SELECT i.lock_token FROM instances i WHERE i.instance_id = orchestrator_queue.instance_id) \
             WHERE visible_at <= ",
        );
        q.push_bind(ms(now));
        q.push(" AND instance_id IN (SELECT instance_id FROM instances WHERE lock_token > ")
            .push_bind(from.clone());
        q.push(" AND lock_token < ").push_bind(to.clone());
        q.push(") RETURNING 'q' AS tag, instance_id, id, message, attempt_count");
        // Event ids run 1..=n, so the last id is the stored length: an index seek, where a
        // count would read the whole history.
        let q = batch.stmt(
            "SELECT 'h' AS tag, i.instance_id AS instance_id, COALESCE((SELECT MAX(h.event_id) FROM history h \
             WHERE h.instance_id = i.instance_id AND h.execution_id = i.execution_id), 0) AS stored \
             FROM instances i WHERE i.lock_token > ",
        );
        q.push_bind(from).push(" AND i.lock_token < ").push_bind(to);
    }

    /// The items `push_lock`'s statements locked, oldest message first, completed with
    /// their history where this node does not hold the instance in memory (`cached`).
    async fn locked_items(
        &self,
        rows: &[SqliteRow],
        cached: &(dyn for<'s> Fn(&'s str) -> Option<(u64, u64)> + Send + Sync),
    ) -> Result<Vec<OrchestrationItem>, ProviderError> {
        let mut locked = Vec::new();
        let mut messages: HashMap<String, Vec<(i64, String, i64)>> = HashMap::new();
        let mut stored_len: HashMap<String, u64> = HashMap::new();
        for r in rows {
            let tag: String = r.try_get("tag").map_err(storage)?;
            match tag.as_str() {
                "i" => {
                    let (record, bad_state) = locked_record_from_row(r)?;
                    locked.push((
                        r.try_get::<String, _>("lock_token").map_err(storage)?,
                        r.try_get::<i64, _>("history_rev").map_err(storage)? as u64,
                        record,
                        bad_state,
                    ))
                }
                "q" => {
                    let instance: String = r.try_get("instance_id").map_err(storage)?;
                    let id: i64 = r.try_get("id").map_err(storage)?;
                    let data: String = r.try_get("message").map_err(storage)?;
                    let attempts: i64 = r.try_get("attempt_count").map_err(storage)?;
                    messages.entry(instance).or_default().push((id, data, attempts));
                }
                "h" => {
                    let instance: String = r.try_get("instance_id").map_err(storage)?;
                    stored_len.insert(instance, r.try_get::<i64, _>("stored").map_err(storage)? as u64);
                }
                _ => {}
            }
        }
        let mut items = Vec::with_capacity(locked.len());
        for (lock_token, history_rev, record, bad_state) in locked {
            let instance = record.instance.clone();
            // RETURNING has no order: by id, the enqueue order.
            let mut rows = messages.remove(&instance).unwrap_or_default();
            rows.sort_by_key(|(id, _, _)| *id);
            let oldest = rows.first().map(|(id, _, _)| *id).unwrap_or(i64::MAX);
            let mut queued = Vec::with_capacity(rows.len());
            let mut attempt = 0u32;
            let mut unreadable = None;
            for (id, data, attempts) in rows {
                attempt = attempt.max(attempts as u32);
                match serde_json::from_str::<OrchestratorMessage>(&data) {
                    Ok(m) => queued.push(m),
                    Err(e) => unreadable = Some(format!("queued message {id}: {e}")),
                }
            }
            let known =
                cached(&instance).filter(|(exec, _)| *exec == record.execution_id).map(|(_, len)| len);
            let (history, history_error, history_len) = match known {
                Some(len) if len > 0 && stored_len.get(&instance) == Some(&len) => (Vec::new(), None, len),
                // Never started: no history to read.
                None if record.execution_id == 0 => (Vec::new(), None, 0),
                // The instance is locked: its history cannot change meanwhile.
                _ => {
                    Self::load_history(&mut *self.conns.reader().await?, &instance, record.execution_id)
                        .await?
                }
            };
            items.push((
                oldest,
                OrchestrationItem {
                    instance,
                    lock_token,
                    record,
                    history,
                    history_error: history_error.or(unreadable).or(bad_state),
                    history_len,
                    history_rev,
                    messages: queued,
                    attempt,
                },
            ));
        }
        items.sort_by_key(|(oldest, _)| *oldest);
        Ok(items.into_iter().map(|(_, item)| item).collect())
    }

    /// Completes work items and optionally locks the instances they report to (see
    /// `Provider::complete_work_items_and_lock`). The commit does not wait for an fsync of
    /// its own (`synchronous = NORMAL`): an activity result is made durable by the next
    /// durable commit, normally the turn that consumes it a moment later. A power loss in
    /// between loses the result and the activity runs again, which at-least-once execution
    /// allows; nothing acknowledged to a caller depends on it.
    async fn complete_and_lock(
        &self,
        items: Vec<(String, OutboundMessage)>,
        lock: Option<LockAfterComplete<'_>>,
    ) -> (Vec<Result<(), ProviderError>>, Vec<OrchestrationItem>) {
        let now = crate::now_ms();
        let all_failed =
            |e: ProviderError, n: usize| ((0..n).map(|_| Err(e.clone())).collect::<Vec<_>>(), Vec::new());
        // One round trip: the completions, then the locks of the instances they went to
        // (those with visible messages: a completion whose lock was lost added none).
        let mut batch = Batch::new();
        batch.stmt(BEGIN_LIGHT);
        if let Err(e) = Self::push_completions(&mut batch, &items, now) {
            return all_failed(e, items.len());
        }
        let mut targets: Vec<&str> = Vec::new();
        for (_, completion) in &items {
            if !targets.contains(&completion.instance.as_str()) {
                targets.push(&completion.instance);
            }
        }
        let lock = lock.filter(|l| l.max_instances > 0);
        if let Some(lock) = &lock {
            let target = LockTarget::Instances(&targets, lock.filter);
            Self::push_lock(&mut batch, target, lock.max_instances, now, lock.lock_timeout);
        }
        batch.stmt("COMMIT");
        let rows = match self.conns.writer().await.one_trip(batch).await {
            Ok(rows) => rows,
            Err(e) => return all_failed(storage(e), items.len()),
        };
        let completed = match Self::completed(&items, &rows) {
            Ok(done) => done,
            Err(e) => return all_failed(e, items.len()),
        };
        let mut results = Vec::with_capacity(items.len());
        let mut instances: Vec<&str> = Vec::new();
        for ((lock_token, completion), done) in items.iter().zip(completed) {
            if done {
                results.push(Ok(()));
                if !instances.contains(&completion.instance.as_str()) {
                    instances.push(&completion.instance);
                }
            } else {
                results.push(Err(ProviderError::LockLost(format!(
                    "activity lock {lock_token} is no longer held"
                ))));
            }
        }
        // Committed: an error from here on leaves the completions done and the instances
        // locked (their locks expire if this node cannot run them).
        let locked = match &lock {
            Some(lock) => match self.locked_items(&rows, lock.cached).await {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(error = %e, "reading instances locked by completions failed; their locks will expire");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        // Dispatchers need waking only for completions whose instance was not locked here.
        if instances.len() > locked.len() {
            self.notifiers.wake_orchestrator_at(None);
        }
        (results, locked)
    }

    async fn load_history(
        conn: &mut sqlx::SqliteConnection,
        instance: &str,
        execution_id: u64,
    ) -> Result<(Vec<Event>, Option<String>, u64), ProviderError> {
        let rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT event_id, data FROM history WHERE instance_id = ? AND execution_id = ? ORDER BY event_id",
        )
        .bind(instance)
        .bind(ms(execution_id))
        .fetch_all(&mut *conn)
        .await
        .map_err(storage)?;
        Ok(parse_history(rows, execution_id))
    }
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
        let now = crate::now_ms();
        write_tx!(self.conns, _w, tx, self.conns.begin_durable);
        let exists = sqlx::query("SELECT 1 FROM instances WHERE instance_id = ?")
            .bind(&message.instance)
            .fetch_optional(&mut *tx)
            .await
            .map_err(storage)?;
        if exists.is_none() {
            return Err(ProviderError::InstanceNotFound(message.instance));
        }
        Self::insert_message(&mut tx, &message.instance, &message.message, message.visible_at_ms, now)
            .await?;
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
        let (clause, binds) = filter_sql(filter);
        // Look before taking the write lock: an idle dispatcher's fetch then costs a read,
        // which does not hold up writers (WAL).
        let sql = format!("SELECT 1 {} LIMIT 1", ready_instances(&clause));
        let mut peek = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(now)).bind(ms(now));
        for b in binds {
            peek = b.bind_to_query(peek);
        }
        if peek.fetch_optional(&mut *self.conns.reader().await?).await.map_err(storage)?.is_none() {
            return Ok(Vec::new());
        }
        let mut batch = Batch::new();
        batch.stmt(BEGIN_LIGHT);
        Self::push_lock(&mut batch, LockTarget::Oldest(filter), max, now, lock_timeout);
        batch.stmt("COMMIT");
        let rows = self.conns.writer().await.one_trip(batch).await.map_err(storage)?;
        self.locked_items(&rows, cached).await
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
        let now = crate::now_ms();
        let visible = now + delay.map(|d| d.as_millis() as u64).unwrap_or(0);
        write_tx!(self.conns, _w, tx, BEGIN_LIGHT);
        let done = sqlx::query(
            "UPDATE instances SET lock_token = NULL, locked_until = 0, status_note = COALESCE(?, status_note), \
             updated_at = ? WHERE lock_token = ?",
        )
        .bind(note)
        .bind(ms(now))
        .bind(lock_token)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if done.rows_affected() == 0 {
            return Err(ProviderError::LockLost(format!("instance lock {lock_token} is no longer held")));
        }
        sqlx::query(
            "UPDATE orchestrator_queue SET lock_token = NULL, visible_at = MAX(visible_at, ?), \
             attempt_count = attempt_count - ? WHERE lock_token = ?",
        )
        .bind(ms(visible))
        .bind(if count_attempt { 0 } else { 1 })
        .bind(lock_token)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
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
        write_tx!(self.conns, _w, tx, BEGIN_LIGHT);
        let done = sqlx::query("UPDATE instances SET locked_until = ? WHERE lock_token = ?")
            .bind(ms(until))
            .bind(lock_token)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        if done.rows_affected() == 0 {
            return Err(ProviderError::LockLost(format!("instance lock {lock_token} is no longer held")));
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
        // Look before taking the write lock (see fetch_orchestration_item_cached).
        let peek = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM worker_queue w WHERE {} LIMIT 1",
            unlocked_work("?1")
        )))
        .bind(ms(now))
        .fetch_optional(&mut *self.conns.reader().await?)
        .await
        .map_err(storage)?;
        if peek.is_none() {
            return Ok(Vec::new());
        }
        // The common case in one statement (and one round trip, with its transaction): the
        // oldest runnable items have no session. Only the run of them before the first
        // session item is taken, so the order is the one single fetches would give; each
        // gets its own token (a shared prefix and its id).
        let batch_token = token();
        let locked_until = ms(now + lock_timeout.as_millis() as u64);
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{BEGIN_LIGHT}; WITH head AS (SELECT w.id, w.session_id FROM worker_queue w WHERE {} ORDER BY w.id LIMIT ?4) \
             UPDATE worker_queue SET lock_token = ?1 || '.' || id, locked_until = ?2, \
             attempt_count = attempt_count + 1 \
             WHERE id IN (SELECT id FROM head WHERE session_id IS NULL AND id < \
               COALESCE((SELECT MIN(id) FROM head WHERE session_id IS NOT NULL), 9223372036854775807)) \
             RETURNING id, lock_token, instance_id, execution_id, event_id, name, input, attempt_count; \
             COMMIT",
            unlocked_work("?3")
        )))
        .bind(&batch_token)
        .bind(locked_until)
        .bind(ms(now))
        .bind(max.max(1) as i64);
        let rows = self.conns.writer().await.one_trip_query(query).await.map_err(storage)?;
        if !rows.is_empty() {
            let mut items = rows
                .iter()
                .map(|r| {
                    let token = r.try_get("lock_token").map_err(storage)?;
                    let item = work_item_from_row(r, token, None, false, 0)?;
                    Ok((r.try_get::<i64, _>("id").map_err(storage)?, item))
                })
                .collect::<Result<Vec<_>, ProviderError>>()?;
            // RETURNING has no order.
            items.sort_by_key(|(id, _)| *id);
            return Ok(items.into_iter().map(|(_, item)| item).collect());
        }
        write_tx!(self.conns, _w, tx, BEGIN_LIGHT);
        // Runnable: no session; or a session this worker holds; or, if it holds fewer than
        // `max_sessions` sessions with work, a session nobody holds or whose lease expired. Work cancelled by its
        // orchestration is never handed out (renew_sessions deletes it once unlocked). One
        // statement: fetching is on every activity's path.
        let row = sqlx::query(
            "SELECT w.id AS id, w.instance_id AS instance_id, w.execution_id AS execution_id, \
             w.event_id AS event_id, w.name AS name, w.input AS input, w.attempt_count AS attempt_count, \
             w.session_id AS session_id, (s.worker_id = ?1 AND s.locked_until > ?2) AS mine \
             FROM worker_queue w LEFT JOIN sessions s ON s.session_id = w.session_id \
             WHERE w.visible_at <= ?2 AND (w.lock_token IS NULL OR w.locked_until <= ?2) \
               AND w.cancel_requested = 0 AND ( \
               w.session_id IS NULL \
               OR (s.worker_id = ?1 AND s.locked_until > ?2) \
               OR ((s.session_id IS NULL OR s.locked_until <= ?2) AND \
                   (SELECT COUNT(*) FROM sessions h WHERE h.worker_id = ?1 AND h.locked_until > ?2 \
                    AND EXISTS (SELECT 1 FROM worker_queue b WHERE b.session_id = h.session_id)) < ?3)) \
             ORDER BY w.id LIMIT 1",
        )
        .bind(&worker.worker_id)
        .bind(ms(now))
        .bind(i64::from(worker.max_sessions))
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage)?;
        let Some(r) = row else { return Ok(Vec::new()) };
        let id: i64 = r.try_get("id").map_err(storage)?;
        let session_id: Option<String> = r.try_get("session_id").map_err(storage)?;
        let mine: Option<bool> = r.try_get("mine").map_err(storage)?;
        let mut session_claimed = false;
        if let Some(sid) = &session_id {
            session_claimed = mine != Some(true);
            sqlx::query(
                "INSERT INTO sessions (session_id, worker_id, locked_until, last_activity_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (session_id) DO UPDATE SET worker_id = excluded.worker_id, \
                 locked_until = excluded.locked_until, last_activity_at = excluded.last_activity_at",
            )
            .bind(sid)
            .bind(&worker.worker_id)
            .bind(ms(now + worker.session_lease.as_millis() as u64))
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        let lock_token = token();
        sqlx::query("UPDATE worker_queue SET lock_token = ?, locked_until = ?, attempt_count = attempt_count + 1 WHERE id = ?")
            .bind(&lock_token)
            .bind(ms(now + lock_timeout.as_millis() as u64))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        // The row was read before the lock counted this attempt.
        let item = work_item_from_row(&r, lock_token, session_id, session_claimed, 1)?;
        tx.commit().await.map_err(storage)?;
        Ok(vec![item])
    }

    async fn renew_sessions(
        &self,
        worker: &WorkerIdentity,
        idle_timeout: Duration,
    ) -> Result<Vec<String>, ProviderError> {
        let now = crate::now_ms();
        let idle_since = now.saturating_sub(idle_timeout.as_millis() as u64);
        write_tx!(self.conns, _w, tx, BEGIN_LIGHT);
        // Housekeeping: work cancelled by its orchestration whose worker is gone.
        sqlx::query("DELETE FROM worker_queue WHERE cancel_requested = 1 AND locked_until <= ?")
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        let released: Vec<String> = sqlx::query_scalar(
            "DELETE FROM sessions WHERE worker_id = ? AND last_activity_at <= ? AND NOT EXISTS ( \
               SELECT 1 FROM worker_queue w WHERE w.session_id = sessions.session_id \
               AND w.lock_token IS NOT NULL AND w.locked_until > ?) \
             RETURNING session_id",
        )
        .bind(&worker.worker_id)
        .bind(ms(idle_since))
        .bind(ms(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(storage)?;
        sqlx::query("UPDATE sessions SET locked_until = ? WHERE worker_id = ?")
            .bind(ms(now + worker.session_lease.as_millis() as u64))
            .bind(&worker.worker_id)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(released)
    }

    async fn renew_work_item(&self, lock_token: &str, lock_timeout: Duration) -> Result<(), ProviderError> {
        let until = crate::now_ms() + lock_timeout.as_millis() as u64;
        write_tx!(self.conns, _w, tx, BEGIN_LIGHT);
        let cancel: Option<i64> = sqlx::query_scalar(
            "UPDATE worker_queue SET locked_until = ? WHERE lock_token = ? RETURNING cancel_requested",
        )
        .bind(ms(until))
        .bind(lock_token)
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        match cancel {
            None => Err(ProviderError::LockLost(format!("activity lock {lock_token} is no longer held"))),
            Some(1) => Err(ProviderError::Cancelled),
            Some(_) => Ok(()),
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
        write_tx!(self.conns, _w, tx, BEGIN_LIGHT);
        sqlx::query("UPDATE worker_queue SET lock_token = NULL, locked_until = 0, visible_at = ? WHERE lock_token = ?")
            .bind(ms(visible))
            .bind(lock_token)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(())
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
        let mut conn = self.conns.reader().await?;
        let exec = match execution_id {
            Some(e) => e,
            None => sql::current_execution(Self::instance_row(&mut conn, instance).await?, instance)?,
        };
        sql::events_or_corrupt(Self::load_history(&mut conn, instance, exec).await?)
    }

    async fn list_executions(&self, instance: &str) -> Result<Vec<ExecutionRecord>, ProviderError> {
        let mut conn = self.conns.reader().await?;
        let rows = sqlx::query(
            "SELECT e.execution_id AS execution_id, e.version AS version, e.state AS state, \
             (SELECT COUNT(*) FROM history h WHERE h.instance_id = e.instance_id AND h.execution_id = e.execution_id) AS n \
             FROM executions e WHERE e.instance_id = ? ORDER BY e.execution_id",
        )
        .bind(instance)
        .fetch_all(&mut *conn)
        .await
        .map_err(storage)?;
        rows.iter()
            .map(|r| sql::execution_from_row(r, r.try_get::<i64, _>("n").map_err(storage)? as u64))
            .collect()
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
        let now = crate::now_ms();
        let (clause, binds) = filter_sql(filter);
        let sql =
            format!("SELECT DISTINCT i.instance_id {} LIMIT ?", ready_instances(&format!("NOT ({clause})")));
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(ms(now)).bind(ms(now));
        for b in binds {
            query = b.bind_to(query);
        }
        let ids = query
            .bind(i64::from(limit))
            .fetch_all(&mut *self.conns.reader().await?)
            .await
            .map_err(storage)?;
        let mut conn = self.conns.reader().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = Self::instance_row(&mut conn, &id).await? {
                out.push(sql::blocked_instance(r));
            }
        }
        Ok(out)
    }

    async fn count_instances_by_version(&self) -> Result<Vec<VersionCount>, ProviderError> {
        let rows = sqlx::query(
            "SELECT name, version, state, COUNT(*) AS n FROM instances GROUP BY name, version, state \
             ORDER BY name, version, state",
        )
        .fetch_all(&mut *self.conns.reader().await?)
        .await
        .map_err(storage)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.extend(sql::version_count_from_row(&r)?);
        }
        Ok(out)
    }

    async fn export_instance(&self, instance: &str) -> Result<InstanceSnapshot, ProviderError> {
        // One read transaction, so the snapshot is consistent.
        let mut conn = self.conns.reader().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(storage)?;
        let snapshot = sql::export(&mut Tx(&mut tx), instance).await?;
        tx.rollback().await.map_err(storage)?;
        Ok(snapshot)
    }

    async fn import_instance(&self, snapshot: InstanceSnapshot) -> Result<(), ProviderError> {
        write_tx!(self.conns, _w, tx, self.conns.begin_durable);
        sql::import(&mut Tx(&mut tx), &snapshot, crate::now_ms()).await?;
        tx.commit().await.map_err(storage)?;
        self.notifiers.wake_orchestrator_at(None);
        self.notifiers.worker.notify_waiters();
        Ok(())
    }

    async fn set_status_note(&self, instance: &str, note: &str) -> Result<(), ProviderError> {
        write_tx!(self.conns, _w, tx, BEGIN_LIGHT);
        sqlx::query("UPDATE instances SET status_note = ?1 WHERE instance_id = ?2 AND status_note IS NOT ?1")
            .bind(note)
            .bind(instance)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(())
    }

    fn notifiers(&self) -> Option<Arc<Notifiers>> {
        Some(self.notifiers.clone())
    }
}

/// The columns of an [`InstanceRecord`], for `SELECT` and `RETURNING`.
/// A durable write that joins the group commit.
enum DurableWrite {
    Turn { lock_token: String, commit: TurnCommit },
    Create { instance: String, name: String, version: Option<String>, input: String },
}

/// What to tell this process's dispatchers and waiters once a write is on disk.
#[derive(Default)]
struct Effects {
    wake_at: Vec<Option<u64>>,
    unlocked_work: bool,
    finished: Option<InstanceRecord>,
}

struct Job {
    write: DurableWrite,
    reply: tokio::sync::oneshot::Sender<Result<(), ProviderError>>,
}

#[derive(Default)]
struct GroupState {
    queue: Vec<Job>,
    leading: bool,
}

/// Group commit for durable writes (turns and new instances). The first writer to arrive
/// leads: it takes every write queued so far, applies each as one guarded statement batch
/// (a turn whose lock was lost, or a start whose id is taken, writes nothing and fails
/// alone) and commits them in one transaction, so they share one fsync. Writers arriving
/// meanwhile queue for the next round, which the leader runs too. Every writer returns only
/// after the commit holding its write is durable. Under no contention a write commits
/// alone, in one round trip.
struct GroupCommit {
    conns: Arc<Conns>,
    notifiers: Arc<Notifiers>,
    state: std::sync::Mutex<GroupState>,
}

/// Most writes one group commit takes.
const GROUP_MAX: usize = 64;

impl GroupCommit {
    fn state(&self) -> std::sync::MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn submit(self: &Arc<Self>, write: DurableWrite) -> Result<(), ProviderError> {
        let (reply, done) = tokio::sync::oneshot::channel();
        let lead = {
            let mut st = self.state();
            st.queue.push(Job { write, reply });
            !std::mem::replace(&mut st.leading, true)
        };
        if lead {
            // If this caller is cancelled while leading, a new task takes over the rest.
            let mut handoff = Handoff(Some(self.clone()));
            self.lead().await;
            handoff.0 = None;
        }
        done.await.unwrap_or_else(|_| {
            Err(ProviderError::Storage("the commit this write joined was cancelled; retry".into()))
        })
    }

    /// Commits rounds of queued writes until the queue is empty.
    async fn lead(&self) {
        loop {
            let jobs = {
                let mut st = self.state();
                if st.queue.is_empty() {
                    st.leading = false;
                    return;
                }
                let n = st.queue.len().min(GROUP_MAX);
                st.queue.drain(..n).collect::<Vec<_>>()
            };
            let results = self.commit_round(&jobs).await;
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(result.map(|effects| self.announce(effects)));
            }
        }
    }

    async fn commit_round(&self, jobs: &[Job]) -> Vec<Result<Effects, ProviderError>> {
        let all_failed = |e: ProviderError| jobs.iter().map(|_| Err(e.clone())).collect();
        let mut writer = self.conns.writer().await;
        if let Some(results) = fast_round(&mut writer, jobs, crate::now_ms(), self.conns.begin_durable).await
        {
            return results;
        }
        // A batch failed (an SQL error, not a lost lock or a taken id): the round again, each
        // write in its own savepoint, so the failure stays with the write that caused it.
        let mut tx = match sqlx::Connection::begin_with(&mut writer.conn, self.conns.begin_durable).await {
            Ok(tx) => tx,
            Err(e) => return all_failed(storage(e)),
        };
        let now = crate::now_ms();
        let alone = jobs.len() == 1;
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            let (result, open) = apply_batched(&mut tx, &job.write, now, !alone).await;
            if alone && result.is_err() {
                // Rolled back when the transaction is dropped.
                return vec![result];
            }
            if open && let Err(e) = sqlx::raw_sql("ROLLBACK TO w; RELEASE w").execute(&mut *tx).await {
                return all_failed(storage(e));
            }
            results.push(result);
        }
        match tx.commit().await {
            Ok(()) => results,
            Err(e) => all_failed(storage(e)),
        }
    }

    fn announce(&self, effects: Effects) {
        for w in effects.wake_at {
            self.notifiers.wake_orchestrator_at(w);
        }
        if effects.unlocked_work {
            self.notifiers.worker.notify_waiters();
        }
        if let Some(record) = effects.finished {
            let instance = record.instance.clone();
            let _ = self.notifiers.finished.send(Finished { instance, record: Some(Arc::new(record)) });
        }
    }
}

/// Hands the writes still queued to a new leader task if the leading caller is cancelled.
struct Handoff(Option<Arc<GroupCommit>>);

impl Drop for Handoff {
    fn drop(&mut self) {
        let Some(group) = self.0.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move { group.lead().await });
            }
            Err(_) => {
                // No runtime to continue on: fail the queued writes (their callers see an
                // error) rather than leave them waiting.
                let mut st = group.state();
                st.queue.clear();
                st.leading = false;
            }
        }
    }
}

/// A round of starts and turns, one round trip per write: the first write's batch begins
/// the transaction (`begin`) and the last one's commits it. `None` if a batch failed: the
/// transaction was rolled back, and the caller applies the writes again one by one.
async fn fast_round(
    w: &mut Writer,
    jobs: &[Job],
    now: u64,
    begin: &str,
) -> Option<Vec<Result<Effects, ProviderError>>> {
    let last = jobs.len().checked_sub(1)?;
    let mut records = Vec::with_capacity(jobs.len());
    w.open = true;
    for (k, job) in jobs.iter().enumerate() {
        let mut batch = Batch::new();
        if k == 0 {
            batch.stmt(begin);
        }
        let built = push_write(&mut batch, &job.write, now);
        if k == last {
            batch.stmt("COMMIT");
        }
        let rows = match built {
            Ok(()) => batch.q.build().fetch_all(&mut w.conn).await.ok(),
            Err(_) => None,
        };
        let Some(rows) = rows else {
            if k > 0 || built.is_ok() {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut w.conn).await;
            }
            w.open = false;
            return None;
        };
        records.push(rows);
    }
    w.open = false;
    Some(jobs.iter().zip(records).map(|(job, rows)| batched_result(&job.write, &rows)).collect())
}

/// Applies a start or a turn inside the caller's transaction in one round trip (see
/// `push_write`). With `savepoint`, the write runs inside savepoint `w`; the returned flag
/// says whether it is still open (the caller then rolls it back), which happens exactly
/// when the write failed after opening it.
async fn apply_batched(
    tx: &mut sqlx::SqliteConnection,
    write: &DurableWrite,
    now: u64,
    savepoint: bool,
) -> (Result<Effects, ProviderError>, bool) {
    let mut batch = Batch::new();
    if savepoint {
        batch.stmt("SAVEPOINT w");
    }
    if let Err(e) = push_write(&mut batch, write, now) {
        return (Err(e), savepoint);
    }
    if savepoint {
        batch.stmt("RELEASE w");
    }
    match batch.q.build().fetch_all(&mut *tx).await {
        Ok(rows) => (batched_result(write, &rows), false),
        Err(e) => (Err(storage(e)), savepoint),
    }
}

/// What a batched write did, from the rows its batch returned: the instance row (tag
/// 'r'; none when a turn's lock was gone or a start's id was taken: nothing was written)
/// and the messages delivered (tag 'm', by index).
fn batched_result(write: &DurableWrite, rows: &[SqliteRow]) -> Result<Effects, ProviderError> {
    let mut record = None;
    let mut delivered = std::collections::HashSet::new();
    for r in rows {
        match r.try_get::<String, _>("tag").map_err(storage)?.as_str() {
            "r" => record = Some(record_from_row(r)?),
            "m" => {
                delivered.insert(r.try_get::<i64, _>("k").map_err(storage)?);
            }
            _ => {}
        }
    }
    match (write, record) {
        (DurableWrite::Create { .. }, Some(_)) => Ok(Effects { wake_at: vec![None], ..Effects::default() }),
        (DurableWrite::Create { instance, .. }, None) => Err(ProviderError::InstanceExists(instance.clone())),
        (DurableWrite::Turn { commit, .. }, Some(record)) => {
            for (k, m) in commit.messages.iter().enumerate() {
                if delivered.contains(&(k as i64)) {
                    continue;
                }
                match &m.message {
                    // Answered by the conflict reply (see `push_guarded_messages`).
                    OrchestratorMessage::StartOrchestration { parent: Some(_), .. } => {}
                    OrchestratorMessage::StartOrchestration { parent: None, .. } => {
                        tracing::warn!(instance = %m.instance, "detached start skipped: instance already exists")
                    }
                    _ => {
                        tracing::warn!(instance = %m.instance, message = m.message.type_name(), "message to unknown instance dropped")
                    }
                }
            }
            Ok(Effects {
                wake_at: commit.messages.iter().map(|m| m.visible_at_ms).collect(),
                unlocked_work: commit.activities.iter().any(|a| a.lock_token.is_empty()),
                finished: commit.update.state.is_terminal().then_some(record),
            })
        }
        (DurableWrite::Turn { lock_token, .. }, None) => {
            Err(ProviderError::LockLost(format!("instance lock {lock_token} is no longer held")))
        }
    }
}

/// Appends a write's statements to a batch. Every statement is guarded by
/// the write's condition, so a write that cannot happen changes nothing: a turn's by its
/// lock (held until its last statement, the instance update, releases it), a start's by its
/// instance id being free. The write's instance row comes back tagged 'r' (see
/// `batched_result`).
fn push_write(batch: &mut Batch, write: &DurableWrite, now: u64) -> Result<(), ProviderError> {
    match write {
        DurableWrite::Create { instance, name, version, input } => {
            let msg = to_json(&OrchestratorMessage::StartOrchestration {
                name: name.to_string(),
                version: version.clone(),
                input: input.to_string(),
                parent: None,
            })?;
            let q = batch.stmt(
                "INSERT INTO instances (instance_id, name, version, state, parent_instance, created_at, updated_at) VALUES (",
            );
            q.separated(", ")
                .push_bind(instance.clone())
                .push_bind(name.clone())
                .push_bind(version.clone())
                .push_bind("Pending")
                .push_bind(None::<String>)
                .push_bind(ms(now))
                .push_bind(ms(now));
            q.push(format!(
                ") ON CONFLICT (instance_id) DO NOTHING RETURNING 'r' AS tag, {INSTANCE_COLUMNS}"
            ));
            // Only if the instance was inserted (by the statement just before).
            let q = batch.stmt(
                "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) SELECT ",
            );
            q.separated(", ")
                .push_bind(instance.clone())
                .push_bind(msg)
                .push_bind(ms(now))
                .push_bind(ms(now));
            q.push(" WHERE changes() = 1");
        }
        DurableWrite::Turn { lock_token, commit } => push_guarded_turn(batch, lock_token, commit, now)?,
    }
    Ok(())
}

/// A turn (see `Provider::commit_turn`) as guarded statements (see `push_write`).
fn push_guarded_turn(
    batch: &mut Batch,
    lock_token: &str,
    commit: &TurnCommit,
    now: u64,
) -> Result<(), ProviderError> {
    let tok = lock_token.to_string();
    let exec = ms(commit.execution_id);
    let started = turn_started(commit);
    for chunk in commit.new_events.chunks(100) {
        let q = batch.stmt(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, data) \
             SELECT i.instance_id, v.column1, v.column2, v.column3, v.column4 FROM instances i, (",
        );
        let mut rows = Vec::with_capacity(chunk.len());
        for e in chunk {
            rows.push((ms(e.event_id), e.kind.type_name(), to_json(e)?));
        }
        q.push_values(rows, |mut b, (id, ty, json)| {
            b.push_bind(exec).push_bind(id).push_bind(ty).push_bind(json);
        });
        q.push(") v WHERE i.lock_token = ").push_bind(tok.clone());
    }
    let exec_state = execution_state(commit);
    if let Some((version, dv)) = &started {
        let q = batch.stmt(
            "INSERT INTO executions (instance_id, execution_id, version, state, duroxide_version, started_at, updated_at) \
             SELECT i.instance_id, ",
        );
        q.separated(", ")
            .push_bind(exec)
            .push_bind(version.clone())
            .push_bind(exec_state.as_str())
            .push_bind(dv.clone())
            .push_bind(ms(now))
            .push_bind(ms(now));
        q.push(" FROM instances i WHERE i.lock_token = ").push_bind(tok.clone());
    } else if !commit.new_events.is_empty() && exec_state != InstanceState::Running {
        let q = batch.stmt("UPDATE executions SET state = ");
        q.push_bind(exec_state.as_str()).push(", updated_at = ").push_bind(ms(now));
        q.push(" WHERE execution_id = ").push_bind(exec);
        q.push(" AND instance_id = (SELECT instance_id FROM instances WHERE lock_token = ")
            .push_bind(tok.clone());
        q.push(")");
    }
    let locked_until = ms(now + commit.activity_lock_timeout.as_millis() as u64);
    for chunk in commit.activities.chunks(100) {
        let q = batch.stmt(
            "INSERT OR IGNORE INTO worker_queue (instance_id, execution_id, event_id, name, input, visible_at, \
             session_id, lock_token, locked_until, attempt_count) \
             SELECT i.instance_id, v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, \
             v.column8, v.column9 FROM instances i, (",
        );
        q.push_values(chunk, |mut b, a| {
            let eager = !a.lock_token.is_empty();
            b.push_bind(ms(a.execution_id))
                .push_bind(ms(a.event_id))
                .push_bind(a.name.clone())
                .push_bind(a.input.clone())
                .push_bind(ms(now))
                .push_bind(a.session_id.clone())
                .push_bind(eager.then(|| a.lock_token.clone()))
                .push_bind(if eager { locked_until } else { 0 })
                .push_bind(i64::from(eager));
        });
        q.push(") v WHERE i.lock_token = ").push_bind(tok.clone());
    }
    for id in &commit.cancelled_activities {
        let q = batch.stmt("DELETE FROM worker_queue WHERE instance_id = (SELECT instance_id FROM instances WHERE lock_token = ");
        q.push_bind(tok.clone()).push(") AND execution_id = ").push_bind(exec);
        q.push(" AND event_id = ").push_bind(ms(*id));
        q.push(" AND (lock_token IS NULL OR locked_until <= ").push_bind(ms(now)).push(")");
        let q = batch.stmt(
            "UPDATE worker_queue SET cancel_requested = 1 WHERE instance_id = (SELECT instance_id FROM instances WHERE lock_token = ",
        );
        q.push_bind(tok.clone()).push(") AND execution_id = ").push_bind(exec);
        q.push(" AND event_id = ").push_bind(ms(*id));
    }
    let q = batch.stmt("DELETE FROM orchestrator_queue WHERE lock_token = ");
    q.push_bind(tok.clone())
        .push(" AND EXISTS (SELECT 1 FROM instances WHERE lock_token = ")
        .push_bind(tok.clone());
    q.push(")");
    // After the delete above, so none of them is taken for a consumed message.
    push_guarded_messages(batch, &tok, commit, now)?;
    // Last: the instance row, which releases the lock.
    let u = &commit.update;
    let (set_cs, cs) = match &u.custom_status {
        Some(v) => (1, v.clone()),
        None => (0, None),
    };
    let q = batch.stmt("UPDATE instances SET name = ");
    q.push_bind(u.name.clone()).push(", version = ").push_bind(u.version.clone());
    q.push(", execution_id = ").push_bind(commit.next_execution_id.map(ms).unwrap_or(exec));
    q.push(", state = ").push_bind(u.state.as_str()).push(", output = ").push_bind(u.output.clone());
    q.push(", error = ").push_bind(u.error.as_ref().map(to_json).transpose()?);
    q.push(", custom_status = CASE WHEN ").push_bind(set_cs).push(" = 1 THEN ").push_bind(cs);
    q.push(" ELSE custom_status END, duroxide_version = COALESCE(");
    q.push_bind(started.as_ref().map(|(_, dv)| dv.clone()));
    q.push(", duroxide_version), duroxide_version_key = COALESCE(");
    q.push_bind(
        started.as_ref().and_then(|(_, dv)| semver::Version::parse(dv).ok()).map(|v| version_key(&v)),
    );
    q.push(", duroxide_version_key), status_note = NULL, updated_at = ").push_bind(ms(now));
    q.push(", lock_token = NULL, locked_until = 0 WHERE lock_token = ").push_bind(tok);
    q.push(format!(" RETURNING 'r' AS tag, {INSTANCE_COLUMNS}"));
    Ok(())
}

/// A turn's messages as guarded statements: each only if the lock is held and its target
/// exists (a delivered one returns a row tagged 'm' with its index `k`). A sub-orchestration
/// start creates the child instance and its start message, or, when the id is taken,
/// sends the parent the start-conflict reply (`start_conflict_reply`); a detached start to
/// a taken id is skipped.
fn push_guarded_messages(
    batch: &mut Batch,
    tok: &str,
    commit: &TurnCommit,
    now: u64,
) -> Result<(), ProviderError> {
    let held = |q: &mut sqlx::QueryBuilder<Sqlite>| {
        q.push(" AND EXISTS (SELECT 1 FROM instances WHERE lock_token = ").push_bind(tok.to_string());
        q.push(")");
    };
    for (k, m) in commit.messages.iter().enumerate() {
        let visible = ms(m.visible_at_ms.unwrap_or(now));
        if let OrchestratorMessage::StartOrchestration { name, version, parent, .. } = &m.message {
            let q = batch.stmt(
                "INSERT OR IGNORE INTO instances (instance_id, name, version, state, parent_instance, created_at, updated_at) SELECT ",
            );
            q.separated(", ")
                .push_bind(m.instance.clone())
                .push_bind(name.clone())
                .push_bind(version.clone())
                .push_bind("Pending")
                .push_bind(parent.as_ref().map(|p| p.instance.clone()))
                .push_bind(ms(now))
                .push_bind(ms(now));
            q.push(" WHERE 1 = 1");
            held(q);
            // The start message only if the child was just inserted (the statement before);
            let q = batch.stmt(
                "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) SELECT ",
            );
            q.separated(", ")
                .push_bind(m.instance.clone())
                .push_bind(to_json(&m.message)?)
                .push_bind(visible)
                .push_bind(ms(now));
            q.push(" WHERE changes() = 1 RETURNING 'm' AS tag, ").push_bind(k as i64).push(" AS k");
            // the reply only if the start message was not (the child existed) and the lock
            // is held (otherwise nothing at all happened). A detached start has no one to
            // reply to (`batched_result` logs it).
            if parent.is_some()
                && let Some(reply) = start_conflict_reply(m)
            {
                let q = batch.stmt(
                    "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) SELECT ",
                );
                q.separated(", ")
                    .push_bind(reply.instance.clone())
                    .push_bind(to_json(&reply.message)?)
                    .push_bind(ms(now))
                    .push_bind(ms(now));
                q.push(" WHERE changes() = 0");
                held(q);
            }
            continue;
        }
        let q = batch
            .stmt("INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) SELECT ");
        q.separated(", ")
            .push_bind(m.instance.clone())
            .push_bind(to_json(&m.message)?)
            .push_bind(visible)
            .push_bind(ms(now));
        q.push(" WHERE EXISTS (SELECT 1 FROM instances WHERE instance_id = ").push_bind(m.instance.clone());
        q.push(")");
        held(q);
        q.push(" RETURNING 'm' AS tag, ").push_bind(k as i64).push(" AS k");
    }
    Ok(())
}

/// The version and duroxide version a turn starts its execution with, if it does.
fn turn_started(commit: &TurnCommit) -> Option<(String, String)> {
    commit.new_events.iter().find_map(|e| match &e.kind {
        EventKind::OrchestrationStarted { version, duroxide_version, .. } => {
            Some((version.clone(), duroxide_version.clone()))
        }
        _ => None,
    })
}

/// The state of the execution a turn wrote to.
fn execution_state(commit: &TurnCommit) -> InstanceState {
    match commit.update.state {
        InstanceState::Completed | InstanceState::Failed => commit.update.state,
        _ if commit.next_execution_id.is_some() => InstanceState::Completed,
        _ => InstanceState::Running,
    }
}

/// Appends SQL and binds to a multi-statement query (one round trip to SQLite's thread).
struct Batch {
    q: sqlx::QueryBuilder<Sqlite>,
    empty: bool,
}

impl Batch {
    fn new() -> Self {
        Self { q: sqlx::QueryBuilder::new(""), empty: true }
    }

    /// Starts the next statement.
    fn stmt(&mut self, sql: &str) -> &mut sqlx::QueryBuilder<Sqlite> {
        if !self.empty {
            self.q.push("; ");
        }
        self.empty = false;
        self.q.push(sql);
        &mut self.q
    }
}

const INSTANCE_COLUMNS: &str = "instance_id, name, version, execution_id, state, output, error, custom_status, \
     parent_instance, duroxide_version, status_note, created_at, updated_at";

/// An activity from a `worker_queue` row; `uncounted` attempts are added to its
/// `attempt_count` (1 when the row was read before the lock counted this attempt).
fn work_item_from_row(
    r: &SqliteRow,
    lock_token: String,
    session_id: Option<String>,
    session_claimed: bool,
    uncounted: u32,
) -> Result<ActivityWorkItem, ProviderError> {
    let attempt = r.try_get::<i64, _>("attempt_count").map_err(storage)? as u32 + uncounted;
    activity_from_row(r, lock_token, session_id, session_claimed, attempt)
}

/// The SQLite spelling of the statements export and import share.
static DIALECT: Dialect = Dialect {
    numbered: false,
    insert_ignore: "INSERT OR IGNORE INTO",
    ignore_suffix: "",
    not_cancelled: "cancel_requested = 0",
    attempt: |a| Value::Int(Some(i64::from(a))),
};

/// An export's reads inside one read transaction.
struct Tx<'a, 'c>(&'a mut sqlx::Transaction<'c, Sqlite>);

impl TransferTx for Tx<'_, '_> {
    type Row = SqliteRow;

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    async fn rows(&mut self, sql: String, instance: &str) -> Result<Vec<SqliteRow>, ProviderError> {
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(instance).fetch_all(&mut **self.0).await.map_err(storage)
    }

    async fn record(&mut self, instance: &str) -> Result<Option<InstanceRecord>, ProviderError> {
        SqliteProvider::instance_row(self.0, instance).await
    }

    async fn history(
        &mut self,
        instance: &str,
        execution_id: u64,
    ) -> Result<(Vec<Event>, Option<String>, u64), ProviderError> {
        SqliteProvider::load_history(self.0, instance, execution_id).await
    }

    async fn execute(&mut self, statement: Statement) -> Result<u64, ProviderError> {
        let query = sql::bind_values!(sqlx::query(sqlx::AssertSqlSafe(statement.sql)), statement.values);
        Ok(query.execute(&mut **self.0).await.map_err(storage)?.rows_affected())
    }

    fn attempt(row: &SqliteRow) -> Result<u32, ProviderError> {
        Ok(row.try_get::<i64, _>("attempt_count").map_err(storage)? as u32)
    }
}

/// `FROM … WHERE …` for instances with a visible message that nobody holds (or whose lock
/// expired) and that satisfy `clause` (over alias `i`); binds `now` twice, then the clause's.
fn ready_instances(clause: &str) -> String {
    format!(
        "FROM orchestrator_queue q JOIN instances i ON i.instance_id = q.instance_id \
         WHERE q.visible_at <= ? AND (i.lock_token IS NULL OR i.locked_until <= ?) AND {clause}"
    )
}

/// The condition (over alias `w`) for visible work nobody holds and nobody cancelled, with
/// `now` bound as parameter `now`.
fn unlocked_work(now: &str) -> String {
    format!(
        "w.visible_at <= {now} AND (w.lock_token IS NULL OR w.locked_until <= {now}) AND w.cancel_requested = 0"
    )
}

/// Which instances `lock_instances` locks.
enum LockTarget<'a> {
    /// Those with the oldest visible messages.
    Oldest(&'a FetchFilter),
    /// Those of these that have visible messages.
    Instances(&'a [&'a str], &'a FetchFilter),
}

impl LockTarget<'_> {
    fn filter(&self) -> &FetchFilter {
        match self {
            LockTarget::Oldest(f) | LockTarget::Instances(_, f) => f,
        }
    }
}

/// Appends a fetch filter's condition (from `filter_sql`) with its values bound.
fn push_filter(q: &mut sqlx::QueryBuilder<Sqlite>, clause: &str, binds: Vec<Bind>) {
    // The clause holds one `?` per value, in order.
    let mut parts = clause.split('?');
    q.push(parts.next().unwrap_or_default());
    for (b, rest) in binds.into_iter().zip(parts) {
        match b {
            Bind::Text(t) => q.push_bind(t),
            Bind::Int(i) => q.push_bind(i),
        };
        q.push(rest);
    }
}

/// A value bound into a filter clause.
enum Bind {
    Text(String),
    Int(i64),
}

impl Bind {
    fn bind_to<'q, O>(
        self,
        q: sqlx::query::QueryScalar<'q, Sqlite, O, sqlx::sqlite::SqliteArguments>,
    ) -> sqlx::query::QueryScalar<'q, Sqlite, O, sqlx::sqlite::SqliteArguments> {
        match self {
            Bind::Text(t) => q.bind(t),
            Bind::Int(i) => q.bind(i),
        }
    }

    fn bind_to_query<'q>(
        self,
        q: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments> {
        match self {
            Bind::Text(t) => q.bind(t),
            Bind::Int(i) => q.bind(i),
        }
    }
}

/// The SQL condition (over instance alias `i`) for a fetch filter, with its bound values.
/// Names, pinned versions and the duroxide-version range are all checked in the query, so
/// items a node cannot run never block the ones it can.
fn filter_sql(filter: &FetchFilter) -> (String, Vec<Bind>) {
    let mut parts = vec!["1 = 1".to_string()];
    let mut binds = Vec::new();
    if let Some(allowed) = &filter.orchestrations {
        if allowed.is_empty() {
            parts.push("0 = 1".into());
        } else {
            let names = vec!["?"; allowed.len()].join(", ");
            parts.push(format!("i.name IN ({names})"));
            binds.extend(allowed.iter().map(|(n, _)| Bind::Text(n.clone())));
            let pairs: Vec<String> =
                allowed.iter().flat_map(|(n, vs)| vs.iter().map(move |v| format!("{n}\u{0}{v}"))).collect();
            if pairs.is_empty() {
                parts.push("i.version IS NULL".into());
            } else {
                let marks = vec!["?"; pairs.len()].join(", ");
                parts.push(format!("(i.version IS NULL OR (i.name || char(0) || i.version) IN ({marks}))"));
                binds.extend(pairs.into_iter().map(Bind::Text));
            }
        }
    }
    if let Some(range) = &filter.duroxide_versions {
        parts.push("(i.duroxide_version_key IS NULL OR i.duroxide_version_key BETWEEN ? AND ?)".into());
        binds.push(Bind::Int(version_key(&range.min)));
        binds.push(Bind::Int(version_key(&range.max)));
    }
    (parts.join(" AND "), binds)
}
