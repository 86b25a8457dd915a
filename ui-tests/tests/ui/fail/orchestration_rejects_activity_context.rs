use duroxide::prelude::*;

#[orchestration]
async fn o(_ctx: ActivityContext, input: u64) -> Result<u64, OrchestrationError> {
    Ok(input)
}

fn main() {}
