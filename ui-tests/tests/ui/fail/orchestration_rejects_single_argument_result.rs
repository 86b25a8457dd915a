use duroxide::prelude::*;

type Outcome<T> = Result<T, OrchestrationError>;

#[orchestration]
async fn o(_ctx: OrchestrationContext, input: u64) -> Outcome<u64> {
    Ok(input)
}

fn main() {}
