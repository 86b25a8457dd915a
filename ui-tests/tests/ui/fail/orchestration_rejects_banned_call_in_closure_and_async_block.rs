use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let stamp = || std::time::SystemTime::now();
    let later = async { std::thread::sleep(std::time::Duration::from_secs(1)) };
    let _ = (stamp, later);
    {
        {
            let _deep = std::env::var("DEEP");
        }
    }
    Ok(input)
}

fn main() {}
