use duroxide::prelude::*;

#[activity(retry(backoff = "fixed", initial = "500ms"))]
async fn flaky(ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(input)
}

fn main() {}
