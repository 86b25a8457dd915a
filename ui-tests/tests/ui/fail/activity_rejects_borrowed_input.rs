use duroxide::prelude::*;

#[activity]
async fn a(_ctx: ActivityContext, input: &str) -> Result<usize, ActivityError> {
    Ok(input.len())
}

fn main() {}
