//! The README's main example: one orchestration calling one activity, on the embedded
//! SQLite store (a local file, `hello_world.db`).
//!
//! Run it twice: the second run finds the first run's instance already completed in the
//! database file, and starts a new one next to it.

use duroxide::prelude::*;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let activities = ActivityRegistry::builder()
        .register("Greet", |ctx: ActivityContext, name: String| async move {
            ctx.trace_info(format!("greeting {name}"));
            Ok(format!("Hello, {name}!"))
        })
        .build();

    let orchestrations = OrchestrationRegistry::builder()
        .register("HelloWorld", |ctx: OrchestrationContext, name: String| async move {
            ctx.trace_info("HelloWorld started");
            let greeting = ctx.schedule_activity("Greet", name).await?;
            Ok(greeting)
        })
        .build();

    let store = Arc::new(SqliteProvider::new("sqlite:./hello_world.db", None).await?);
    let rt = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store);

    let instance = format!("hello-{}", std::process::id());
    client.start_orchestration(&instance, "HelloWorld", "World").await?;
    match client.wait_for_orchestration(&instance, Duration::from_secs(10)).await? {
        OrchestrationStatus::Completed { output } => println!("instance {instance} completed: {output}"),
        other => println!("instance {instance} ended as {other:?}"),
    }
    let history = client.read_execution_history(&instance, None).await?;
    println!("history of {instance}:");
    for event in history {
        println!("  {:>2} {}", event.event_id, event.kind.type_name());
    }
    rt.shutdown(None).await;
    Ok(())
}
