use duroxide::prelude::*;

#[activity(retry(max_attempts = 0, backoff = "fixed", initial = "1s"))]
async fn flaky(ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(input)
}

fn main() {}
