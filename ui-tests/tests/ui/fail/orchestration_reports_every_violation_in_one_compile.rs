use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let _a = std::time::SystemTime::now();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let _b = std::env::var("X");
    Ok(input)
}

fn main() {}
