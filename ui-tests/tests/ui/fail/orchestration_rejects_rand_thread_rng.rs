use duroxide::prelude::*;

mod rand {
    pub fn thread_rng() {}
    pub fn rng() {}
}

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let _rng = rand::thread_rng();
    let _rng = rand::rng();
    Ok(input)
}

fn main() {}
