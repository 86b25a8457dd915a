// Look-alikes the wider guard must accept: the user's own modules named `time`, `thread`,
// `env`, `fs` and `io`; user types with `now`, `elapsed`, `iter`, `keys` and `read_line`
// methods; ordered maps and sets; `HashMap` lookups that do not iterate; iteration of
// vectors, ranges and slices; and `#[deterministic]` helpers doing the same.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use duroxide::prelude::*;

mod time {
    pub fn sleep(_: std::time::Duration) {}
}
mod thread {
    pub fn sleep(_: u64) {}
    pub fn spawn(x: u64) -> u64 {
        x
    }
}
mod env {
    pub fn var(key: &str) -> usize {
        key.len()
    }
}
mod fs {
    pub fn read(path: &str) -> usize {
        path.len()
    }
}
mod io {
    pub fn stdin() -> u8 {
        0
    }
}

struct Stopwatch {
    ticks: u64,
}

impl Stopwatch {
    fn now(&self) -> u64 {
        self.ticks
    }
    fn elapsed(&self) -> u64 {
        self.ticks * 2
    }
}

struct Inbox {
    lines: Vec<String>,
}

impl Inbox {
    fn read_line(&mut self, into: &mut String) -> usize {
        let line = self.lines.pop().unwrap_or_default();
        into.push_str(&line);
        line.len()
    }
    fn keys(&self) -> std::ops::Range<usize> {
        0..self.lines.len()
    }
    fn iter(&self) -> std::slice::Iter<'_, String> {
        self.lines.iter()
    }
}

#[deterministic]
fn busiest(load: &BTreeMap<String, u64>) -> Option<String> {
    load.iter().max_by_key(|(_, n)| **n).map(|(name, _)| name.clone())
}

#[deterministic]
async fn schedule_each(ctx: &OrchestrationContext, skus: &[String]) -> Result<usize, OrchestrationError> {
    for sku in skus {
        ctx.schedule_activity("Reserve", sku.clone()).await?;
    }
    Ok(skus.len())
}

struct Planner {
    regions: BTreeSet<String>,
}

#[deterministic]
impl Planner {
    fn first(&self) -> Option<&String> {
        self.regions.iter().next()
    }
}

#[orchestration]
async fn look_alikes(ctx: OrchestrationContext, input: Vec<String>) -> Result<u64, OrchestrationError> {
    time::sleep(Duration::from_millis(0));
    thread::sleep(1);
    let spawned = thread::spawn(2);
    let configured = env::var("key") + fs::read("path") + usize::from(io::stdin());
    let watch = Stopwatch { ticks: 3 };
    let mut inbox = Inbox { lines: input.clone() };
    let mut line = String::new();
    let read = inbox.read_line(&mut line);
    let keys = inbox.keys().count() + inbox.iter().count();

    let mut ordered: BTreeMap<String, u64> = BTreeMap::new();
    for (i, sku) in input.iter().enumerate() {
        ordered.insert(sku.clone(), i as u64);
    }
    let mut total = 0;
    for (_, n) in &ordered {
        total += n;
    }
    let ordered_sum: u64 = ordered.values().sum();

    let mut lookups: HashMap<String, u64> = HashMap::new();
    lookups.insert("a".into(), 1);
    let found = lookups.get("a").copied().unwrap_or(0) + u64::from(lookups.contains_key("b"));
    let members: HashSet<u64> = [1, 2].into();
    let is_member = u64::from(members.contains(&1)) + members.len() as u64;
    // The way out the error names: convert without iterating in hash order yourself.
    let sorted: BTreeMap<&String, &u64> = BTreeMap::from_iter(&lookups);
    let mut listed = Vec::from_iter(members.clone());
    listed.sort();

    let busiest = busiest(&ordered).map_or(0, |s| s.len() as u64);
    let scheduled = schedule_each(&ctx, &input).await? as u64;
    let first = Planner { regions: ["eu".to_string()].into() }.first().map_or(0, |r| r.len() as u64);

    Ok(watch.now() + watch.elapsed() + spawned + (configured + read + keys) as u64 + total + ordered_sum
        + found + is_member + busiest + scheduled + first + sorted.len() as u64 + listed.len() as u64
        + (0..3).map(|x: u64| x).sum::<u64>())
}

fn main() {
    let _ = look_alikes;
}
