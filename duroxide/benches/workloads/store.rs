//! The stores a workload runs on: SQLite in memory, a SQLite file in a temporary folder, or
//! a fresh PostgreSQL schema that [`Store::close`] drops again, so runs do not fill the
//! database.

use duroxide::{Provider, SqliteProvider};
use std::sync::{Arc, OnceLock};

/// The PostgreSQL pool size every store of this run opens with (`--pg-pool`).
static PG_POOL: OnceLock<u32> = OnceLock::new();

/// The store's own default pool size.
pub fn default_pg_pool() -> u32 {
    #[cfg(feature = "postgres")]
    return duroxide::PostgresOptions::default().max_connections;
    #[cfg(not(feature = "postgres"))]
    10
}

/// Sets the pool size of the PostgreSQL stores opened from now on.
pub fn set_pg_pool(n: u32) {
    let _ = PG_POOL.set(n);
}

/// The pool size PostgreSQL stores open with.
pub fn pg_pool() -> u32 {
    *PG_POOL.get_or_init(default_pg_pool)
}

/// The server PostgreSQL stores live on.
#[cfg(feature = "postgres")]
pub fn pg_url() -> String {
    std::env::var("DUROXIDE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub struct Store {
    pub provider: Arc<dyn Provider>,
    pub url: String,
    /// The PostgreSQL schema of the run (read only by PostgreSQL-specific loads).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

pub async fn open(kind: &str) -> Store {
    match kind {
        "memory" => {
            let url = "sqlite::memory:".to_string();
            Store {
                provider: Arc::new(SqliteProvider::new(&url, None).await.expect("open the memory store")),
                url,
                schema: None,
                _dir: None,
            }
        }
        "file" => {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let url = format!("sqlite:{}", dir.path().join("bench.db").display());
            Store {
                provider: Arc::new(SqliteProvider::new(&url, None).await.expect("open the file store")),
                url,
                schema: None,
                _dir: Some(dir),
            }
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            let url = pg_url();
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let provider = open_postgres_schema(&url, &schema, pg_pool(), false).await;
            Store { provider, url, schema: Some(schema), _dir: None }
        }
        other => panic!("unknown store '{other}' (memory, file, postgres with --features postgres)"),
    }
}

/// A PostgreSQL store on `schema` with `pool` connections; `existing` opens a schema
/// another process created (worker nodes).
#[cfg(feature = "postgres")]
pub async fn open_postgres_schema(url: &str, schema: &str, pool: u32, existing: bool) -> Arc<dyn Provider> {
    use duroxide::{PostgresOptions, PostgresProvider};
    let options = PostgresOptions {
        schema: Some(schema.to_string()),
        max_connections: pool,
        existing_only: existing,
        ..Default::default()
    };
    Arc::new(PostgresProvider::new(url, Some(options)).await.expect("open the PostgreSQL store"))
}

impl Store {
    /// Ends the run on this store: a PostgreSQL schema is dropped (a SQLite file goes with
    /// its temporary folder). Call it once the runtimes on the store have shut down.
    pub async fn close(self) {
        #[cfg(feature = "postgres")]
        if let Some(schema) = &self.schema {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&self.url).await.expect("connect to drop the schema");
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")))
                .execute(&mut conn)
                .await
                .expect("drop the run's schema");
        }
    }
}
