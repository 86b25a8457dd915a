use duroxide::prelude::*;

struct Uuid;
impl Uuid {
    fn now_v7() -> Self {
        Uuid
    }
}

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let _id = Uuid::now_v7();
    Ok(input)
}

fn main() {}
