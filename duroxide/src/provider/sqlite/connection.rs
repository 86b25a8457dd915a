//! Opening a store and the connections it writes and reads through: the single writer
//! (with its one-round-trip statement batches), the read pool, and migrations. What the
//! statements say lives in the other files.

use super::*;

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The connections of one store.
pub(super) struct Conns {
    /// Every write of this process goes through this one connection, which also serializes
    /// them (they queue here instead of in SQLite's busy handler). A dedicated connection
    /// skips the pool's checkout and its check-in round trip on every write.
    pub(super) writer: tokio::sync::Mutex<Writer>,
    /// Read connections (file databases); `None` in memory, where the writer also reads.
    pub(super) readers: Option<SqlitePool>,
    /// Starts a write whose commit is acknowledged (fsynced under `Full`).
    pub(super) begin_durable: &'static str,
    /// Flushes the WAL for the group commit outside the writer: a file store under
    /// `Full` (see `WalSync`).
    pub(super) wal: Option<Arc<WalSync>>,
}

/// The writer connection. Most writes run in one round trip as a statement batch that
/// begins and commits its own transaction (`Writer::one_trip`); `open` says such a batch
/// was sent and has not been seen to finish, which happens when its caller is cancelled
/// mid-way. The next user then rolls back whatever it left open (see `Conns::writer`).
pub(super) struct Writer {
    pub(super) conn: sqlx::SqliteConnection,
    pub(super) open: bool,
}

impl Writer {
    /// Runs `batch` (which starts with a `BEGIN` and ends with `COMMIT`) in one round trip.
    /// On an error the transaction is rolled back: none of the batch is kept.
    pub(super) async fn one_trip(&mut self, mut batch: Batch) -> Result<Vec<SqliteRow>, sqlx::Error> {
        self.one_trip_query(batch.q.build()).await
    }

    /// `one_trip` for a query written out (its SQL begins and commits the transaction).
    pub(super) async fn one_trip_query(
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
pub(super) const BEGIN_LIGHT: &str = "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE";

/// A connection to read from.
pub(super) enum ReadConn<'a> {
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
    pub(super) async fn writer(&self) -> tokio::sync::MutexGuard<'_, Writer> {
        let mut w = self.writer.lock().await;
        if w.open {
            // "No transaction is active" when the batch had committed (or never began).
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut w.conn).await;
            w.open = false;
        }
        w
    }

    /// The writer connection if nobody holds it now (see `writer`).
    pub(super) fn try_writer(&self) -> Option<tokio::sync::MutexGuard<'_, Writer>> {
        let w = self.writer.try_lock().ok()?;
        // A batch a cancelled caller left open is rolled back by `writer`.
        (!w.open).then_some(w)
    }

    /// Returns once everything a read that has ended could have seen is durable: a group
    /// commit round is visible as soon as it commits, before its WAL flush (see `WalSync`),
    /// and a client must not act on a write that a power loss could still take back. Call
    /// it after a read whose result reaches a caller, with the read connection returned.
    pub(super) async fn settle(&self) -> Result<(), ProviderError> {
        self.settle_through(self.wal.as_ref().map_or(0, |w| w.last_begun())).await
    }

    /// The last group commit round a write on the writer connection can see, for its
    /// holder to read: every round begun so far has finished (it held the writer), and
    /// none can begin until the holder lets go.
    pub(super) fn seen_by_writer(&self) -> u64 {
        self.wal.as_ref().map_or(0, |w| w.last_begun())
    }

    /// Returns once every group commit round up to `seq` is durable (see `settle`).
    pub(super) async fn settle_through(&self, seq: u64) -> Result<(), ProviderError> {
        match &self.wal {
            Some(wal) => wal.sync_through(seq).await,
            None => Ok(()),
        }
    }

    pub(super) async fn reader(&self) -> Result<ReadConn<'_>, ProviderError> {
        match &self.readers {
            Some(pool) => Ok(ReadConn::Pool(pool.acquire().await.map_err(storage)?)),
            None => Ok(ReadConn::Writer(self.writer().await)),
        }
    }
}

/// Whether `url` names an in-memory database (`sqlite::memory:`, `sqlite://:memory:`, or
/// `mode=memory` among the query parameters), and whether it names no database at all (an
/// empty path that is not in memory: SQLite would give every pooled connection its own
/// private temporary database, so writes through one would be invisible to the others).
pub(super) fn classify_url(url: &str) -> (bool, bool) {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = path == ":memory:" || params.split('&').any(|p| p == "mode=memory");
    (memory, !memory && path.trim().is_empty())
}

/// Checks, without writing, that the database at `url` holds exactly the migrations this
/// version embeds (for [`SqliteOptions::existing_only`]).
async fn check_schema(pool: &SqlitePool, url: &str) -> Result<(), ProviderError> {
    let has_table: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_optional(pool)
            .await
            .map_err(|e| {
                ProviderError::Configuration(format!("'{url}' is not a readable SQLite database: {e}"))
            })?;
    if has_table.is_none() {
        return Err(ProviderError::Configuration(format!(
            "'{url}' is not a duroxide store (it has no duroxide schema): check the path"
        )));
    }
    let applied: Vec<(i64, bool, Vec<u8>)> =
        sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await
            .map_err(storage)?;
    compare_migrations(url, &applied)
}

/// Compares the applied migrations (version, success, checksum) with the embedded ones.
fn compare_migrations(url: &str, applied: &[(i64, bool, Vec<u8>)]) -> Result<(), ProviderError> {
    let this = env!("CARGO_PKG_VERSION");
    for (version, success, checksum) in applied {
        let Some(known) = MIGRATOR.iter().find(|m| m.version == *version) else {
            return Err(ProviderError::Configuration(format!(
                "the store '{url}' was migrated by a newer duroxide (migration {version} is unknown \
                 to duroxide {this}): use a duroxide of the version its runtimes run"
            )));
        };
        if !success {
            return Err(ProviderError::Configuration(format!(
                "the store '{url}' has a half-applied migration {version}: repair it before use"
            )));
        }
        if known.checksum.as_ref() != checksum.as_slice() {
            return Err(ProviderError::Configuration(format!(
                "migration {version} of the store '{url}' differs from duroxide {this}'s"
            )));
        }
    }
    let missing = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .find(|m| !applied.iter().any(|(v, _, _)| *v == m.version));
    if let Some(m) = missing {
        return Err(ProviderError::Configuration(format!(
            "the store '{url}' is older than duroxide {this} (migration {} '{}' is not applied): \
             start a runtime of this version on it once (it migrates on open), then retry",
            m.version, m.description
        )));
    }
    Ok(())
}

/// Appends SQL and binds to a multi-statement query (one round trip to SQLite's thread).
pub(super) struct Batch {
    pub(super) q: sqlx::QueryBuilder<Sqlite>,
    pub(super) empty: bool,
}

impl Batch {
    pub(super) fn new() -> Self {
        Self { q: sqlx::QueryBuilder::new(""), empty: true }
    }

    /// Starts the next statement.
    pub(super) fn stmt(&mut self, sql: &str) -> &mut sqlx::QueryBuilder<Sqlite> {
        if !self.empty {
            self.q.push("; ");
        }
        self.empty = false;
        self.q.push(sql);
        &mut self.q
    }
}

impl SqliteProvider {
    /// Opens `url` (`sqlite:path`, `sqlite://path`, or `sqlite::memory:`), creating the file
    /// if missing and applying migrations (unless [`SqliteOptions::existing_only`], which
    /// opens only an existing database at this version's schema and writes nothing).
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
            .create_if_missing(!options.existing_only)
            .foreign_keys(false)
            .busy_timeout(options.busy_timeout)
            // Batches of writes (several items, several statements) differ in text by how
            // many items they hold; room for all their shapes keeps them prepared.
            .statement_cache_capacity(1024);
        if options.existing_only {
            if memory {
                return Err(ProviderError::Configuration(format!(
                    "'{url}' is an in-memory database, which never exists before it is opened: \
                     open a database file with existing_only"
                )));
            }
            let file = connect.get_filename();
            if !file.is_file() {
                return Err(ProviderError::Configuration(format!(
                    "no SQLite database at '{}' (from '{url}'): check the path; a store is created \
                     by the first runtime that opens it",
                    file.display()
                )));
            }
        }
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
        let database = connect.get_filename().to_path_buf();
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
        if options.existing_only {
            check_schema(&pool, url).await?;
        } else {
            MIGRATOR.run(&pool).await.map_err(|e| ProviderError::Migration(e.to_string()))?;
        }
        let writer = pool.acquire().await.map_err(open_err)?.detach();
        let wal = (!memory && options.durability == SqliteDurability::Full)
            .then(|| Arc::new(WalSync::new(&database)));
        let readers = if memory { None } else { Some(pool) };
        let conns = Arc::new(Conns {
            writer: tokio::sync::Mutex::new(Writer { conn: writer, open: false }),
            readers,
            begin_durable: match options.durability {
                SqliteDurability::Full => "PRAGMA synchronous = FULL; BEGIN IMMEDIATE",
                SqliteDurability::Normal => BEGIN_LIGHT,
            },
            wal,
        });
        // No other process can write to a store in memory; a file may be shared.
        let notifiers =
            Arc::new(if memory { Notifiers::seeing_every_writer() } else { Notifiers::default() });
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
}
