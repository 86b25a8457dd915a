use duroxide::prelude::*;

mod rand {
    pub fn random<T: Default>() -> T {
        T::default()
    }
}

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    Ok(input + rand::random::<u64>())
}

fn main() {}
