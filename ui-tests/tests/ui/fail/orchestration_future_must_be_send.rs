use duroxide::prelude::*;
use std::rc::Rc;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    let shared = Rc::new(input);
    ctx.schedule_timer(std::time::Duration::from_secs(1)).await;
    Ok(*shared)
}

fn main() {}
