use duroxide::prelude::*;

// Every problem with a tag is reported in one compile, each at its literal.
#[activity(tag = "")]
async fn empty(ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(input)
}

#[activity(tag = " gpu")]
async fn padded(ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(input)
}

#[activity(tag = gpu)]
async fn not_a_literal(ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(input)
}

#[orchestration(tag = "gpu")]
async fn flow(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    let _ = ctx;
    Ok(input)
}

fn main() {}
