//! Fan-out/fan-in: one orchestration starts 10 activities at once and joins their results.
//! `ctx.join` returns results in the order the futures were given, whatever order the
//! activities finished in, so replay always sees the same values.

use duroxide::prelude::*;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let activities = ActivityRegistry::builder()
        .register("WordCount", |_ctx: ActivityContext, text: String| async move {
            // Pretend this is slow work on another machine.
            tokio::time::sleep(Duration::from_millis(20 * (text.len() as u64 % 5))).await;
            Ok(text.split_whitespace().count().to_string())
        })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("CountWords", |ctx: OrchestrationContext, input: String| async move {
            let documents: Vec<String> = serde_json::from_str(&input)?;
            ctx.trace_info(format!("fanning out over {} documents", documents.len()));
            let tasks = documents.iter().map(|d| ctx.schedule_activity("WordCount", d.as_str())).collect();
            let mut total = 0usize;
            for count in ctx.join(tasks).await {
                total += count?.parse::<usize>().map_err(|e| e.to_string())?;
            }
            Ok(total.to_string())
        })
        .build();

    let store = Arc::new(SqliteProvider::new("sqlite:./fan_out_fan_in.db", None).await?);
    let rt = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store);
    let documents: Vec<String> = (1..=10).map(|i| "lorem ipsum dolor ".repeat(i)).collect();
    let instance = format!("count-{}", std::process::id());
    client.start_orchestration(&instance, "CountWords", serde_json::to_string(&documents)?).await?;
    let status = client.wait_for_orchestration(&instance, Duration::from_secs(30)).await?;
    println!("{instance}: {status:?}");
    let history = client.read_execution_history(&instance, None).await?;
    println!("history has {} events for 10 activities", history.len());
    rt.shutdown(None).await;
    Ok(())
}
