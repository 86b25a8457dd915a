use duroxide::prelude::*;

#[activity]
async fn reserve(_ctx: ActivityContext, qty: u32) -> Result<u32, ActivityError> {
    Ok(qty)
}

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u32) -> Result<String, OrchestrationError> {
    let out: String = ctx.call(reserve, input).await?;
    Ok(out)
}

fn main() {}
