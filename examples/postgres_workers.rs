//! The same workflow served by several worker processes on one PostgreSQL database.
//!
//! ```sh
//! DUROXIDE_PG_URL=postgres://postgres@127.0.0.1:5432/test cargo run --example postgres_workers
//! ```
//!
//! The program starts 3 worker processes (itself, with `--worker`), each running a
//! `Runtime` on the same schema, then acts as a client: it starts 30 orders and prints
//! which process ran each step. Workers wake each other through LISTEN/NOTIFY.

use duroxide::prelude::*;
use duroxide::provider::postgres::PostgresOptions;
use std::sync::Arc;
use std::time::Duration;

const SCHEMA: &str = "duroxide_example_workers";

#[activity]
async fn pack(_ctx: ActivityContext, order: u32) -> Result<String, ActivityError> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(format!("order {order} packed by pid {}", std::process::id()))
}

#[orchestration(name = "Fulfil")]
async fn fulfil(ctx: OrchestrationContext, order: u32) -> Result<String, OrchestrationError> {
    let packed = ctx.call(pack, order).await?;
    ctx.schedule_timer(Duration::from_millis(100)).await;
    Ok(packed)
}

async fn store(url: &str) -> Result<Arc<PostgresProvider>, duroxide::ProviderError> {
    let options = PostgresOptions { schema: Some(SCHEMA.into()), ..Default::default() };
    Ok(Arc::new(PostgresProvider::new(url, Some(options)).await?))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url =
        std::env::var("DUROXIDE_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if std::env::args().any(|a| a == "--worker") {
        let activities = ActivityRegistry::builder().register_typed(pack).build();
        let orchestrations = OrchestrationRegistry::builder().register_typed(fulfil).build();
        let _rt = Runtime::start_with_store(store(&url).await?, activities, orchestrations).await;
        tokio::time::sleep(Duration::from_secs(600)).await; // until the client stops us
        return Ok(());
    }

    let client = Client::new(store(&url).await?);
    let exe = std::env::current_exe()?;
    let mut workers: Vec<_> = (0..3)
        .map(|_| std::process::Command::new(&exe).arg("--worker").env("DUROXIDE_PG_URL", &url).spawn())
        .collect::<Result<_, _>>()?;
    println!("started worker processes {:?}", workers.iter().map(|w| w.id()).collect::<Vec<_>>());

    let run = std::process::id();
    for order in 0..30u32 {
        client.start_typed(fulfil, &format!("fulfil-{run}-{order}"), &order).await?;
    }
    for order in 0..30u32 {
        let result =
            client.wait_for_typed(fulfil, &format!("fulfil-{run}-{order}"), Duration::from_secs(60)).await?;
        println!("{result}");
    }
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    Ok(())
}
