//! Sessions: a chat whose turns all run on the worker that holds the conversation, keeping
//! the conversation in memory there; and a flaky activity retried with exponential backoff.

use duroxide::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let attempts = Arc::new(Mutex::new(0u32));
    let counter = attempts.clone();
    let activities = ActivityRegistry::builder()
        .register("Chat", |ctx: ActivityContext, message: String| async move {
            let transcript = ctx.session_state::<Mutex<Vec<String>>>().ok_or("Chat must run on a session")?;
            if ctx.is_new_session() {
                println!("  [worker {}] session {:?} starts here", ctx.worker_id(), ctx.session_id());
            }
            let mut transcript = transcript.lock().map_err(|_| "poisoned")?;
            transcript.push(message);
            Ok(format!("{} messages remembered", transcript.len()))
        })
        .register("SendSummary", move |_ctx: ActivityContext, summary: String| {
            let counter = counter.clone();
            async move {
                let mut n = counter.lock().map_err(|_| "poisoned")?;
                *n += 1;
                if *n < 3 {
                    return Err(ActivityError::new(format!("mail server busy (attempt {n})")));
                }
                Ok(format!("sent: {summary}"))
            }
        })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("Conversation", |ctx: OrchestrationContext, conversation: String| async move {
            let mut last = String::new();
            for message in ["hello", "how are you?", "bye"] {
                last = ctx.schedule_activity_on_session("Chat", message, conversation.as_str()).await?;
            }
            let policy = RetryPolicy {
                max_attempts: 5,
                backoff: Backoff::Exponential {
                    initial: Duration::from_millis(50),
                    max: Duration::from_secs(1),
                },
                timeout: Some(Duration::from_secs(5)),
            };
            Ok(ctx.schedule_activity_with_retry("SendSummary", last, policy).await?)
        })
        .build();

    let store = Arc::new(SqliteProvider::new("sqlite:./sessions.db", None).await?);
    let rt = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store);
    let instance = format!("conversation-{}", std::process::id());
    client.start_orchestration(&instance, "Conversation", instance.as_str()).await?;
    println!("{instance}: {:?}", client.wait_for_orchestration(&instance, Duration::from_secs(20)).await?);
    let history = client.read_execution_history(&instance, None).await?;
    let retries = history.iter().filter(|e| e.kind.type_name() == "ActivityFailed").count();
    println!("history: {} events, {retries} failed attempts before the summary was sent", history.len());
    rt.shutdown(None).await;
    Ok(())
}
