use std::collections::HashMap;

use duroxide::prelude::*;

#[deterministic]
fn pick(regions: &HashMap<String, u32>) -> Option<String> {
    regions.iter().max_by_key(|(_, n)| **n).map(|(name, _)| name.clone())
}

#[deterministic]
async fn stamp(octx: &OrchestrationContext, label: &str) -> String {
    octx.trace_info(label);
    format!("{label} {:?}", std::time::SystemTime::now())
}

struct Backoff;

#[deterministic]
impl Backoff {
    fn wait(&self) {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

fn main() {}
