use std::io::Write;

use duroxide::prelude::*;

#[orchestration]
async fn o(_ctx: OrchestrationContext, input: String) -> Result<String, OrchestrationError> {
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    let _ = writeln!(std::io::stdout().lock(), "{input}");
    Ok(answer)
}

fn main() {}
