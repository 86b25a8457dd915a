use duroxide::prelude::*;

mod reqwest {
    pub fn get(_url: &str) {}
}

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let _page = reqwest::get("http://example.invalid");
    Ok(input)
}

fn main() {}
