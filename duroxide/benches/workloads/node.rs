//! A worker node of the `nodes` workload: the bench binary started again by the parent
//! with [`NODE_ENV`] set to a PostgreSQL schema. It runs a runtime on that schema with the
//! node settings (`throughput::node_options`), says `ready` on stdout, runs until its stdin
//! closes (the parent's stop signal; also what happens if the parent dies), shuts down, and
//! writes its turn ledger (see `turn_ledger`) to the file named by [`LEDGER_ENV`].

use super::app::{activities, orchestrations};
use super::turn_ledger::TurnLedger;
use duroxide::prelude::*;
use std::io::{Read, Write};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Set by the parent: the schema a worker node runs on.
pub const NODE_ENV: &str = "DUROXIDE_BENCH_NODE_SCHEMA";
/// Set by the parent: where the node writes its ledger at exit.
pub const LEDGER_ENV: &str = "DUROXIDE_BENCH_NODE_LEDGER";
/// Set by the parent: the node's PostgreSQL pool size.
pub const POOL_ENV: &str = "DUROXIDE_BENCH_NODE_POOL";

/// The schema to serve when this process was started as a worker node.
pub fn requested() -> Option<String> {
    std::env::var(NODE_ENV).ok()
}

pub async fn run(schema: &str) {
    let ledger_path = std::env::var(LEDGER_ENV).expect("the parent names the ledger file");
    let pool: u32 = std::env::var(POOL_ENV).ok().and_then(|p| p.parse().ok()).unwrap_or(10);
    let ledger = TurnLedger::default();
    tracing_subscriber::registry().with(ledger.clone()).init();
    let provider = open_schema(schema, pool).await;
    let options = super::throughput::node_options();
    let rt = Runtime::start_with_options(provider, activities(0), orchestrations(), options).await;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready").expect("tell the parent");
        out.flush().expect("tell the parent");
    }
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await
    .expect("wait for the stop signal");
    rt.shutdown(Some(Duration::from_secs(10))).await;
    let text = format!("#warnings\t{}\n{}", ledger.warnings(), ledger.to_text());
    std::fs::write(&ledger_path, text).expect("write the ledger");
}

#[cfg(feature = "postgres")]
async fn open_schema(schema: &str, pool: u32) -> std::sync::Arc<dyn duroxide::Provider> {
    super::store::open_postgres_schema(&super::store::pg_url(), schema, pool, true).await
}

#[cfg(not(feature = "postgres"))]
async fn open_schema(_schema: &str, _pool: u32) -> std::sync::Arc<dyn duroxide::Provider> {
    panic!("worker nodes need the postgres feature");
}
