use duroxide::prelude::*;

#[activity]
fn a(_ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    Ok(input)
}

fn main() {}
