use duroxide::prelude::*;

#[orchestration]
async fn o(_ctx: OrchestrationContext, _input: u64) {}

fn main() {}
