use duroxide::prelude::*;

pub struct MyError;

#[activity]
async fn a(_ctx: ActivityContext, input: u64) -> Result<u64, MyError> {
    Ok(input)
}

fn main() {}
