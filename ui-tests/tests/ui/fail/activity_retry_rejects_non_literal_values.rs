use duroxide::prelude::*;

const ATTEMPTS: u32 = 5;

#[activity(retry(max_attempts = ATTEMPTS, initial = 100, timeout = "10s"))]
async fn flaky(ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(input)
}

fn main() {
    let _ = ATTEMPTS;
}
