use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    let a = ctx.schedule_activity("A", "");
    let b = ctx.schedule_timer(std::time::Duration::from_secs(1));
    tokio::select! {
        _ = a => {}
        _ = b => {}
    }
    Ok(input)
}

fn main() {}
