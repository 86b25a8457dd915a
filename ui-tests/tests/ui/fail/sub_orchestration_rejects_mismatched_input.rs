use duroxide::prelude::*;

#[orchestration]
async fn child(_ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    Ok(input)
}

#[orchestration]
async fn parent(ctx: OrchestrationContext, input: String) -> Result<u64, OrchestrationError> {
    Ok(ctx.call_sub_orchestration(child, input).await?)
}

fn main() {}
