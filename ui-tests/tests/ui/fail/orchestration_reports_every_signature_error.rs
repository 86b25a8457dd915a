use duroxide::prelude::*;

#[orchestration]
fn o(_ctx: ActivityContext, input: &u64, extra: u8) -> u64 {
    *input + extra as u64
}

fn main() {}
