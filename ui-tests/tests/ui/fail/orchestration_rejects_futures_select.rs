use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let mut a = futures::future::ready(1u64);
    let mut b = futures::future::ready(2u64);
    let first = futures::select! {
        x = a => x,
        y = b => y,
    };
    Ok(input + first)
}

fn main() {}
