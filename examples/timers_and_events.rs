//! Durable timers and external events: an approval that waits for a human, with a deadline.
//! `select2` resolves by the order events were recorded in history, so a replay makes the
//! same choice even though the race happened in real time.

use duroxide::Either2;
use duroxide::prelude::*;
use std::sync::Arc;
use std::time::Duration;

#[activity]
async fn notify(_ctx: ActivityContext, msg: String) -> Result<(), ActivityError> {
    println!("  [activity] notify: {msg}");
    Ok(())
}

#[orchestration(name = "Approval")]
async fn approval(ctx: OrchestrationContext, deadline_ms: u64) -> Result<String, OrchestrationError> {
    ctx.set_custom_status("waiting for approval");
    let decision = ctx.schedule_wait("Decision");
    let timeout = ctx.schedule_timer(Duration::from_millis(deadline_ms));
    let outcome = match ctx.select2(decision, timeout).await {
        Either2::First(decision) => format!("decided: {decision}"),
        Either2::Second(()) => "expired".to_string(),
    };
    ctx.call(notify, outcome.clone()).await?;
    Ok(outcome)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let activities = ActivityRegistry::builder().register_typed(notify).build();
    let orchestrations = OrchestrationRegistry::builder().register_typed(approval).build();
    let store = Arc::new(SqliteProvider::new("sqlite:./timers_and_events.db", None).await?);
    let rt = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store);
    let pid = std::process::id();

    let approved = format!("approval-approved-{pid}");
    client.start_typed(approval, &approved, &60_000).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("{approved}: {:?}", client.get_orchestration_status(&approved).await?);
    client.raise_event(&approved, "Decision", "approved by alice").await?;
    println!("{approved}: {}", client.wait_for_typed(approval, &approved, Duration::from_secs(10)).await?);

    let expired = format!("approval-expired-{pid}");
    client.start_typed(approval, &expired, &500).await?;
    println!("{expired}: {}", client.wait_for_typed(approval, &expired, Duration::from_secs(10)).await?);
    rt.shutdown(None).await;
    Ok(())
}
