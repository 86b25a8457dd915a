use duroxide::prelude::*;

#[orchestration]
pub fn o(_ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    Ok(input)
}

fn main() {}
