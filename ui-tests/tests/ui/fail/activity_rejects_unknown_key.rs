use duroxide::prelude::*;

#[activity(nam = "Greet")]
async fn a(ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(input)
}

fn main() {}
