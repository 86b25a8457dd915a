//! PostgreSQL test plumbing: the server URL from `DUROXIDE_TEST_PG_URL`, one fresh schema
//! per test (dropped afterwards), and the skip rules.
//!
//! - Variable unset, `CI=true`: the test fails (CI must run the Postgres tests).
//! - Variable unset otherwise: the test prints why it is skipped and passes.
//! - Variable set but the server unreachable: the test fails, naming the URL.
#![allow(dead_code)]

use duroxide::provider::validation::ProviderFactory;
use duroxide::{PostgresOptions, PostgresProvider, Provider};
use sqlx::{Connection, PgConnection};
use std::sync::{Arc, Mutex};

pub const PG_ENV: &str = "DUROXIDE_TEST_PG_URL";

/// The server URL, or `None` (after printing why) when Postgres tests are skipped.
pub fn pg_url() -> Option<String> {
    match std::env::var(PG_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{PG_ENV} is not set but CI=true: the PostgreSQL tests must run in CI");
            }
            None
        }
    }
}

pub fn skip_message() -> String {
    format!(
        "{PG_ENV} is not set, so PostgreSQL tests are skipped (set it, e.g. \
         {PG_ENV}=postgres://postgres@127.0.0.1:5432/test, to run them)"
    )
}

/// A random schema name for one test.
pub fn random_schema() -> String {
    format!("dxt_{}", uuid::Uuid::new_v4().simple())
}

/// Opens a store on `schema`; its connections carry the schema as `application_name`.
pub async fn open(url: &str, schema: &str) -> PostgresProvider {
    let options = PostgresOptions {
        schema: Some(schema.to_string()),
        max_connections: 5,
        application_name: schema.to_string(),
        ..Default::default()
    };
    PostgresProvider::new(url, Some(options))
        .await
        .unwrap_or_else(|e| panic!("cannot open PostgreSQL store at {url} (from {PG_ENV}): {e}"))
}

pub async fn drop_schema(url: &str, schema: &str) {
    match PgConnection::connect(url).await {
        Ok(mut conn) => {
            let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await {
                eprintln!("could not drop test schema {schema}: {e}");
            }
            let _ = conn.close().await;
        }
        Err(e) => eprintln!("could not connect to drop test schema {schema}: {e}"),
    }
}

/// Fresh schemas on the test server; every schema it made is dropped in `teardown`.
#[derive(Default)]
pub struct PgFactory {
    url: Option<String>,
    schemas: Mutex<Vec<String>>,
}

impl PgFactory {
    pub fn new() -> Self {
        Self { url: pg_url(), schemas: Mutex::new(Vec::new()) }
    }

    fn url(&self) -> &str {
        self.url.as_deref().expect("skipped factories are never asked for stores")
    }

    fn last_schema(&self) -> String {
        self.schemas.lock().unwrap().last().cloned().expect("a store was created")
    }
}

#[async_trait::async_trait]
impl ProviderFactory for PgFactory {
    async fn create_provider(&self) -> Arc<dyn Provider> {
        let schema = random_schema();
        self.schemas.lock().unwrap().push(schema.clone());
        Arc::new(open(self.url(), &schema).await)
    }

    async fn insert_raw_history_event(
        &self,
        instance: &str,
        execution_id: u64,
        event_id: u64,
        raw: &str,
    ) -> bool {
        let schema = self.last_schema();
        let mut conn = PgConnection::connect(self.url()).await.expect("connect");
        let sql = format!(
            "INSERT INTO \"{schema}\".history (instance_id, execution_id, event_id, event_type, data) \
             VALUES ($1, $2, $3, 'Raw', $4)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(instance)
            .bind(execution_id as i64)
            .bind(event_id as i64)
            .bind(raw)
            .execute(&mut conn)
            .await
            .expect("insert raw history row");
        true
    }

    async fn set_raw_instance_state(&self, instance: &str, state: &str) -> bool {
        let schema = self.last_schema();
        let mut conn = PgConnection::connect(self.url()).await.expect("connect");
        let sql = format!("UPDATE \"{schema}\".instances SET state = $1 WHERE instance_id = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state)
            .bind(instance)
            .execute(&mut conn)
            .await
            .expect("overwrite instance state");
        true
    }

    async fn teardown(&self) {
        let schemas = std::mem::take(&mut *self.schemas.lock().unwrap());
        for s in schemas {
            drop_schema(self.url(), &s).await;
        }
    }

    fn skip_reason(&self) -> Option<String> {
        if self.url.is_none() { Some(skip_message()) } else { None }
    }
}
