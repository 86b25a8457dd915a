use duroxide::prelude::*;

#[activity]
async fn a(_ctx: ActivityContext, input: u64) -> u64 {
    input
}

fn main() {}
