use duroxide::prelude::*;

#[orchestration]
async fn o() -> Result<u64, OrchestrationError> {
    Ok(1)
}

fn main() {}
