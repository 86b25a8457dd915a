use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    let call = ctx.schedule_activity("A", "");
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), call).await;
    Ok(input)
}

fn main() {}
