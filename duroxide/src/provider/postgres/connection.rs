//! Opening a store: the pool (every connection selects the store's schema), schema
//! creation and migrations under advisory locks, and transactions.

use super::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PostgresProvider {
    /// Connects to `url` (`postgres://user:pass@host:port/db`), creates the schema if missing
    /// and applies migrations (unless [`PostgresOptions::existing_only`], which opens only an
    /// existing schema at this version and writes nothing). Safe to call from many processes
    /// at once.
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
                // Generic plans: every statement is prepared once per connection and then
                // executed without planning. Left to choose, PostgreSQL kept re-planning the
                // fetch on every call (its planning cost as much as its execution). The
                // statements are written so their generic plans are index lookups, which
                // tests/hot_path_plans.rs and tests/management_plans.rs check.
                Box::pin(async move {
                    sqlx::query(
                        "SELECT set_config('search_path', $1, false), \
                         set_config('plan_cache_mode', 'force_generic_plan', false)",
                    )
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
        if options.existing_only {
            check_schema(&pool, url, &schema).await?;
        } else {
            Self::migrate(&pool, &schema).await?;
        }
        let channel = format!("duroxide_{schema}");
        // With the listener, every process's notices reach this one.
        let notifiers =
            Arc::new(if options.listen { Notifiers::seeing_every_writer() } else { Notifiers::default() });
        let origin = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let listener = if options.listen {
            Some(tokio::spawn(listen_loop(pool.clone(), channel.clone(), notifiers.clone(), origin.clone())))
        } else {
            None
        };
        let wakeups = wakeups::Wakeups::new();
        tokio::spawn(wakeups.clone().run(pool.clone(), channel.clone()));
        Ok(Self { pool, schema, notifiers, listener, wakeups, origin })
    }

    /// The schema this store uses.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    pub(super) async fn migrate(pool: &PgPool, schema: &str) -> Result<(), ProviderError> {
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

    pub(super) async fn begin(&self) -> Result<Transaction<'static, Postgres>, ProviderError> {
        self.pool.begin().await.map_err(storage)
    }
}

/// Checks, without writing, that `schema` exists and holds exactly the migrations this
/// version embeds (for [`PostgresOptions::existing_only`]).
async fn check_schema(pool: &PgPool, url: &str, schema: &str) -> Result<(), ProviderError> {
    let (exists, has_table): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), \
                to_regclass(format('%I._sqlx_migrations', $1::text)) IS NOT NULL",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
    .map_err(storage)?;
    if !exists {
        return Err(ProviderError::Configuration(format!(
            "no schema '{schema}' in the database at '{url}': check the schema name; a store is \
             created by the first runtime that opens it"
        )));
    }
    if !has_table {
        return Err(ProviderError::Configuration(format!(
            "schema '{schema}' at '{url}' is not a duroxide store (it has no duroxide tables)"
        )));
    }
    let applied: Vec<(i64, bool, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT version, success, checksum FROM \"{schema}\"._sqlx_migrations ORDER BY version"
    )))
    .fetch_all(pool)
    .await
    .map_err(storage)?;
    let this = env!("CARGO_PKG_VERSION");
    for (version, success, checksum) in &applied {
        let Some(known) = MIGRATOR.iter().find(|m| m.version == *version) else {
            return Err(ProviderError::Configuration(format!(
                "schema '{schema}' was migrated by a newer duroxide (migration {version} is unknown \
                 to duroxide {this}): use a duroxide of the version its runtimes run"
            )));
        };
        if !success {
            return Err(ProviderError::Configuration(format!(
                "schema '{schema}' has a half-applied migration {version}: repair it before use"
            )));
        }
        if known.checksum.as_ref() != checksum.as_slice() {
            return Err(ProviderError::Configuration(format!(
                "migration {version} of schema '{schema}' differs from duroxide {this}'s"
            )));
        }
    }
    let missing = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .find(|m| !applied.iter().any(|(v, _, _)| *v == m.version));
    if let Some(m) = missing {
        return Err(ProviderError::Configuration(format!(
            "schema '{schema}' is older than duroxide {this} (migration {} '{}' is not applied): \
             start a runtime of this version on it once (it migrates on open), then retry",
            m.version, m.description
        )));
    }
    Ok(())
}
