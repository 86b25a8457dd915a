use duroxide::prelude::*;

#[orchestration]
async fn o(octx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    octx.trace_info("checking stock");
    let _a = std::time::Instant::now();
    Ok(input)
}

fn main() {}
