use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let _config = tokio::fs::read("config.toml").await;
    Ok(input)
}

fn main() {}
