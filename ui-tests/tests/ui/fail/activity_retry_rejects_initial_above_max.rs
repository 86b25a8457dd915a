use duroxide::prelude::*;

#[activity(retry(max_attempts = 5, backoff = "linear", initial = "2m", max = "30s"))]
async fn flaky(ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(input)
}

fn main() {}
