use duroxide::prelude::*;

#[activity]
async fn reserve(_ctx: ActivityContext, qty: u32) -> Result<u32, ActivityError> {
    Ok(qty)
}

#[orchestration]
async fn o(ctx: OrchestrationContext, input: String) -> Result<u32, OrchestrationError> {
    Ok(ctx.call(reserve, input).await?)
}

fn main() {}
