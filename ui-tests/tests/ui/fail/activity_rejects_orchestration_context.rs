use duroxide::prelude::*;

#[activity]
async fn a(_ctx: OrchestrationContext, input: u64) -> Result<u64, ActivityError> {
    Ok(input)
}

fn main() {}
