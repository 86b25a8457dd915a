use duroxide::prelude::*;
use duroxide::ActivityDefinition;

/// Routed to the runtimes serving `gpu` unless a call says otherwise.
#[activity(name = "Render", tag = "gpu")]
async fn render(ctx: ActivityContext, frame: u32) -> Result<u32, ActivityError> {
    let _ = ctx.tag();
    Ok(frame)
}

#[activity]
async fn plain(ctx: ActivityContext, n: u32) -> Result<u32, ActivityError> {
    let _ = ctx;
    Ok(n)
}

#[orchestration]
async fn film(ctx: OrchestrationContext, frame: u32) -> Result<u32, OrchestrationError> {
    let a = ctx.call(render, frame).await?;
    let b = ctx.call(render, frame).with_tag("gpu-large").await?;
    let c = ctx.call(plain, a + b).with_tag("cpu").await?;
    Ok(c)
}

fn main() {
    assert_eq!(<render as ActivityDefinition>::TAG, Some("gpu"));
    assert_eq!(<plain as ActivityDefinition>::TAG, None);
    let _ = film;
}
