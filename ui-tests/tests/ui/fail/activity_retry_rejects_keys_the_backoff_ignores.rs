use duroxide::prelude::*;

#[activity(retry(max_attempts = 3, backoff = "fixed", initial = "1s", max = "10s"))]
async fn fixed(ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(input)
}

#[activity(retry(max_attempts = 3, backoff = "none", initial = "1s", timeout = "0ms"))]
async fn immediate(ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(input)
}

fn main() {}
