use duroxide::prelude::*;

#[activity]
async fn a(_ctx: ActivityContext) -> Result<u64, ActivityError> {
    Ok(1)
}

fn main() {}
