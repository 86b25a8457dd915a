use duroxide::prelude::*;

// The handle comes from outside the body, where the path scan cannot see it; the read is
// still rejected by the type of its receiver.
struct Console {
    input: std::io::Stdin,
}

#[orchestration]
async fn o(_ctx: OrchestrationContext, _input: ()) -> Result<String, OrchestrationError> {
    let console = Console { input: open() };
    let mut answer = String::new();
    let _ = console.input.read_line(&mut answer);
    Ok(answer)
}

fn open() -> std::io::Stdin {
    unreachable!()
}

fn main() {}
