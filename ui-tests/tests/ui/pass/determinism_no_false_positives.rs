// Legitimate code the determinism guard must accept: the context's replacements, user
// functions and locals whose names look like banned APIs, method calls, biased select, and
// activities (which may do anything).
use std::time::{Duration, Instant, SystemTime};

use duroxide::prelude::*;

mod clock {
    pub fn now() -> u64 {
        7
    }
}

fn now() -> u64 {
    1
}

struct Timer {
    started: u64,
}

impl Timer {
    fn now(&self) -> u64 {
        self.started
    }
}

#[orchestration]
async fn legit(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    let _at: SystemTime = ctx.utc_now().await;
    let _id: String = ctx.system_new_guid().await;
    ctx.schedule_timer(Duration::from_secs(1)).await;
    let rand = input + now() + clock::now();
    let spawn = Timer { started: rand }.now();
    ctx.trace_info(format!("rand = {rand}, spawn = {spawn}"));
    println!("{}", rand + spawn);
    let choice = futures::select_biased! {
        a = futures::future::ready(1u64) => a,
    };
    let _joined = futures::join!(async { 1 }, async { 2 });
    Ok(rand + choice)
}

#[activity]
async fn anything_goes(_ctx: ActivityContext, _input: ()) -> Result<u128, ActivityError> {
    let started = Instant::now();
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|e| ActivityError::new(e.to_string()))?;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let _ = std::env::var("HOME");
    let _ = std::thread::spawn(|| 1).join();
    Ok(wall.as_millis() + started.elapsed().as_millis())
}

fn main() {
    let _ = (legit, anything_goes);
}
