use duroxide::prelude::*;

struct Local;
impl Local {
    fn now() -> u64 {
        0
    }
}

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    Ok(input + Local::now())
}

fn main() {}
