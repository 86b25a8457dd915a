//! The README's main example: a typed orchestration calling a typed activity, on the
//! embedded SQLite store (a local file, `hello_world.db`).
//!
//! Run it twice: the second run finds the first run's instance in the database file and
//! starts a new one next to it.

use duroxide::prelude::*;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize)]
struct Greeting {
    name: String,
    language: String,
}

/// An activity: may do anything (I/O, clocks, randomness). Runs at least once.
#[activity]
async fn greet(ctx: ActivityContext, who: Greeting) -> Result<String, ActivityError> {
    ctx.trace_info(format!("greeting {}", who.name));
    match who.language.as_str() {
        "en" => Ok(format!("Hello, {}!", who.name)),
        "fr" => Ok(format!("Bonjour, {} !", who.name)),
        other => Err(ActivityError::non_retryable(format!("no greeting in '{other}'"))),
    }
}

/// An orchestration: deterministic control flow, replayed from history after a restart.
#[orchestration(name = "HelloWorld", version = "1.0.0")]
async fn hello_world(ctx: OrchestrationContext, name: String) -> Result<Vec<String>, OrchestrationError> {
    ctx.trace_info("HelloWorld started");
    let english = ctx.call(greet, Greeting { name: name.clone(), language: "en".into() }).await?;
    let french = ctx.call(greet, Greeting { name, language: "fr".into() }).await?;
    Ok(vec![english, french])
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let activities = ActivityRegistry::builder().register_typed(greet).build();
    let orchestrations = OrchestrationRegistry::builder().register_typed(hello_world).build();

    let store = Arc::new(SqliteProvider::new("sqlite:./hello_world.db", None).await?);
    let rt = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store);

    let instance = format!("hello-{}", std::process::id());
    client.start_typed(hello_world, &instance, &"World".to_string()).await?;
    let greetings = client.wait_for_typed(hello_world, &instance, Duration::from_secs(10)).await?;
    println!("instance {instance} completed: {greetings:?}");

    println!("history of {instance}:");
    for event in client.read_execution_history(&instance, None).await? {
        println!("  {:>2} {}", event.event_id, event.kind.type_name());
    }
    rt.shutdown(None).await;
    Ok(())
}
