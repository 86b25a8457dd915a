use std::collections::{HashMap, HashSet};

use duroxide::prelude::*;

struct Plan {
    steps: HashMap<String, u32>,
}

#[orchestration]
async fn o(ctx: OrchestrationContext, input: HashMap<String, u32>) -> Result<u32, OrchestrationError> {
    let mut total = 0;
    for (name, n) in &input {
        ctx.schedule_activity("Step", name.clone()).await?;
        total += n;
    }
    let plan = Plan { steps: input.clone() };
    let first: Vec<&String> = plan.steps.keys().collect();
    let tags: HashSet<u32> = input.values().copied().collect();
    let shifted: Vec<u32> = tags.iter().map(|t| t + 1).collect();
    for n in tags {
        total += n;
    }
    Ok(total + first.len() as u32 + shifted.len() as u32)
}

fn main() {}
