use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let _config = std::fs::read_to_string("config.toml");
    Ok(input)
}

fn main() {}
