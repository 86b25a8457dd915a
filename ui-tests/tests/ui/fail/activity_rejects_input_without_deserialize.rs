use duroxide::prelude::*;

pub struct Plain {
    pub n: u64,
}

#[activity]
async fn a(_ctx: ActivityContext, input: Plain) -> Result<u64, ActivityError> {
    Ok(input.n)
}

fn main() {}
