//! Runs an end-to-end scenario on every store (in-memory SQLite, file SQLite, PostgreSQL),
//! each with the instance cache on and off. PostgreSQL runs in a fresh schema, dropped
//! afterwards, and is skipped (with a message) when `DUROXIDE_TEST_PG_URL` is unset.
#![allow(dead_code)]

#[path = "../common/mod.rs"]
pub mod common;
#[path = "../pg_support/mod.rs"]
pub mod pg;

pub use common::TestStore;
use std::future::Future;
use std::sync::Arc;

pub async fn postgres_store() -> Option<(TestStore, String, String)> {
    let Some(url) = pg::pg_url() else {
        eprintln!("SKIPPED: {}", pg::skip_message());
        return None;
    };
    let schema = pg::random_schema();
    let store = Arc::new(pg::open(&url, &schema).await);
    let options = common::fast_options();
    Some((TestStore { store, dir: None, url: url.clone(), options }, url, schema))
}

/// Runs `body` on a PostgreSQL store (cache on or off), dropping its schema afterwards.
pub async fn on_postgres<F, Fut>(cached: bool, body: F)
where
    F: FnOnce(TestStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some((mut ts, url, schema)) = postgres_store().await else { return };
    if !cached {
        ts = common::uncached(ts);
    }
    let result = tokio::spawn(body(ts)).await;
    pg::drop_schema(&url, &schema).await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// One scenario on memory, file and PostgreSQL stores, cached and uncached.
#[macro_export]
macro_rules! on_all_stores {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            use $crate::support::common;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                ($body)(common::memory_store().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory_uncached() {
                ($body)(common::uncached(common::memory_store().await)).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn file() {
                let mut ts = common::file_store().await;
                let _dir = ts.dir.take();
                ($body)(ts).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn file_uncached() {
                let mut ts = common::uncached(common::file_store().await);
                let _dir = ts.dir.take();
                ($body)(ts).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::support::on_postgres(true, $body).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_uncached() {
                $crate::support::on_postgres(false, $body).await;
            }
        }
    };
}
