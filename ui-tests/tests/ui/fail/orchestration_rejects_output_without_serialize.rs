use duroxide::prelude::*;

pub struct Plain {
    pub n: u64,
}

#[orchestration]
async fn o(_ctx: OrchestrationContext, n: u64) -> Result<Plain, OrchestrationError> {
    Ok(Plain { n })
}

fn main() {}
