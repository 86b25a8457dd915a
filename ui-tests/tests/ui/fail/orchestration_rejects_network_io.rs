use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let _a = std::net::TcpStream::connect("127.0.0.1:80");
    let _b = tokio::net::TcpStream::connect("127.0.0.1:80").await;
    Ok(input)
}

fn main() {}
