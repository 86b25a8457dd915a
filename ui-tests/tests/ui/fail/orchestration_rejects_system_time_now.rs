use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let _started = std::time::SystemTime::now();
    Ok(input)
}

fn main() {}
