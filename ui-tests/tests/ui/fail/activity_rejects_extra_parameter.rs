use duroxide::prelude::*;

#[activity]
async fn a(_ctx: ActivityContext, input: u64, extra: u64) -> Result<u64, ActivityError> {
    Ok(input + extra)
}

fn main() {}
