use duroxide::prelude::*;

mod uuid {
    pub struct Uuid;
    impl Uuid {
        pub fn new_v4() -> Self {
            Uuid
        }
    }
}

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let _id = uuid::Uuid::new_v4();
    Ok(input)
}

fn main() {}
