use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let _out = std::process::Command::new("ls").output();
    Ok(input)
}

fn main() {}
