use duroxide::prelude::*;

#[orchestration]
async fn o(_ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    Ok(input)
}

async fn start(client: Client) {
    let _ = client.start_typed(o, "i-1", &"not a number".to_string()).await;
}

fn main() {
    let _ = start;
}
