use duroxide::prelude::*;

#[activity(retry(max_attempts = 5, initial = "1.5s", max = "30 seconds"))]
async fn flaky(ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(input)
}

fn main() {}
