//! Fan-out/fan-in: one orchestration starts an activity per document at once and joins
//! the results. `ctx.join` returns results in the order the futures were given, whatever
//! order the activities finished in, so replay always sees the same values.

use duroxide::prelude::*;
use std::sync::Arc;
use std::time::Duration;

#[activity]
async fn word_count(_ctx: ActivityContext, text: String) -> Result<usize, ActivityError> {
    // Pretend this is slow work on another machine.
    tokio::time::sleep(Duration::from_millis(20 * (text.len() as u64 % 5))).await;
    Ok(text.split_whitespace().count())
}

#[orchestration(name = "CountWords")]
async fn count_words(ctx: OrchestrationContext, documents: Vec<String>) -> Result<usize, OrchestrationError> {
    ctx.trace_info(format!("fanning out over {} documents", documents.len()));
    let tasks = documents.into_iter().map(|d| ctx.call(word_count, d)).collect();
    let mut total = 0;
    for count in ctx.join(tasks).await {
        total += count?;
    }
    Ok(total)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let activities = ActivityRegistry::builder().register_typed(word_count).build();
    let orchestrations = OrchestrationRegistry::builder().register_typed(count_words).build();
    let store = Arc::new(SqliteProvider::new("sqlite:./fan_out_fan_in.db", None).await?);
    let rt = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store);

    let documents: Vec<String> = (1..=10).map(|i| "lorem ipsum dolor ".repeat(i)).collect();
    let instance = format!("count-{}", std::process::id());
    client.start_typed(count_words, &instance, &documents).await?;
    let total = client.wait_for_typed(count_words, &instance, Duration::from_secs(30)).await?;
    println!("{instance}: {total} words in 10 documents");
    let history = client.read_execution_history(&instance, None).await?;
    println!("history has {} events for 10 activities", history.len());
    rt.shutdown(None).await;
    Ok(())
}
