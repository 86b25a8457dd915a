use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let _home = std::env::var("HOME");
    let _all = std::env::vars();
    Ok(input)
}

fn main() {}
