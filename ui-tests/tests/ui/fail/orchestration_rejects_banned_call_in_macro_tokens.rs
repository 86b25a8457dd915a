use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    println!("started at {:?}", std::time::SystemTime::now());
    let _line = format!("{}", vec![std::time::Instant::now()].len());
    Ok(input)
}

fn main() {}
