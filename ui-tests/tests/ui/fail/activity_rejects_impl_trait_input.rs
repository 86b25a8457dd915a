use duroxide::prelude::*;

#[activity]
async fn a(_ctx: ActivityContext, input: impl Into<String>) -> Result<String, ActivityError> {
    Ok(input.into())
}

fn main() {}
