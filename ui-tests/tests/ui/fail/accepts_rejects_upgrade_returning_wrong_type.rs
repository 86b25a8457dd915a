use duroxide::prelude::*;

#[derive(Serialize, Deserialize)]
pub struct V1 {
    pub a: u32,
}

#[derive(Serialize, Deserialize)]
pub struct V2 {
    pub a: u32,
    pub b: u32,
}

fn upgrade(old: V1) -> u32 {
    old.a
}

#[orchestration(accepts(V1 => upgrade))]
async fn o(_ctx: OrchestrationContext, input: V2) -> Result<u32, OrchestrationError> {
    Ok(input.a + input.b)
}

fn main() {}
