use duroxide::prelude::*;

#[activity(version = "2.0.0")]
async fn a(ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(input)
}

fn main() {}
