//! Chaos runs: several runtime processes on one store, SIGKILLed at random while a mixed
//! workload runs; then a drain with the nodes left running; then an audit of the outcome.
//!
//! - `workload`: the orchestrations and logged activities every node registers.
//! - `nodes`: the node processes (the test binary re-executed) and their lifecycle.
//! - `audit`: what must hold afterwards, checked from histories, the activity execution
//!   log and the nodes' warnings.
#![allow(dead_code)] // the PostgreSQL half is compiled only with the `postgres` feature

pub mod audit;
pub mod nodes;
pub mod workload;

use duroxide::prelude::*;
use duroxide::{ClientError, Provider};
use nodes::{NodeSpec, Nodes};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::{GO_EVENT, KINDS};

/// Seconds of chaos per store (default 30).
pub const SECS_ENV: &str = "DUROXIDE_CHAOS_SECS";
/// Seed of the kill schedule (default: from the clock; printed either way).
pub const SEED_ENV: &str = "DUROXIDE_CHAOS_SEED";

/// Runtime nodes sharing the store.
const NODES: usize = 3;
/// A wave of instances (one of each kind) starts this often during the chaos phase.
const WAVE_EVERY: Duration = Duration::from_millis(1000);
/// The chaos kills a random node after a pause drawn from this range (ms).
const KILL_PAUSE_MS: (u64, u64) = (250, 1000);
/// Longest the drain may take.
const DRAIN_DEADLINE: Duration = Duration::from_secs(240);

/// How one chaos run is set up.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// Which store, for the summary line.
    pub store_name: &'static str,
    /// Length of the chaos phase.
    pub chaos: Duration,
    /// Seed of the kill schedule.
    pub seed: u64,
}

impl ChaosConfig {
    /// Reads the length and seed from the environment.
    pub fn from_env(store_name: &'static str) -> ChaosConfig {
        let secs = match std::env::var(SECS_ENV) {
            Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("{SECS_ENV}={s} is not a number of seconds")),
            Err(_) => 30,
        };
        let seed = match std::env::var(SEED_ENV) {
            Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("{SEED_ENV}={s} is not a number")),
            Err(_) => workload::now_ms() ^ u64::from(std::process::id()).rotate_left(32),
        };
        ChaosConfig { store_name, chaos: Duration::from_secs(secs), seed }
    }
}

/// A small seeded PRNG (splitmix64): the kill schedule is reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// Starts a wave of instances every `WAVE_EVERY` until `until`, raising the events of each
/// wave's `Waiter` with the next wave (so some arrive before the wait, some after). Returns
/// the instances started, with their kinds.
async fn start_waves(client: Client, until: Instant) -> Vec<(String, &'static str)> {
    let mut started = Vec::new();
    let mut waiting: Vec<String> = Vec::new();
    let mut wave = 0u32;
    let raise = |client: Client, ids: Vec<String>| async move {
        for id in ids {
            client
                .raise_event(&id, GO_EVENT, workload::event_data(&id))
                .await
                .unwrap_or_else(|e| panic!("raise {GO_EVENT} for {id}: {e}"));
        }
    };
    while Instant::now() < until {
        raise(client.clone(), std::mem::take(&mut waiting)).await;
        for kind in KINDS {
            let id = format!("{}-{wave:05}", kind.to_lowercase());
            client
                .start_orchestration(&id, kind, workload::input_of(&id))
                .await
                .unwrap_or_else(|e| panic!("start {id}: {e}"));
            if kind == "Waiter" {
                waiting.push(id.clone());
            }
            started.push((id, kind));
        }
        wave += 1;
        tokio::time::sleep(WAVE_EVERY).await;
    }
    raise(client, waiting).await;
    started
}

/// Runs the chaos on a store the caller created: `parent_store` is the test's own handle
/// on it, `spec` tells the nodes where it is. Returns the audit (the caller asserts).
pub async fn run(config: &ChaosConfig, parent_store: Arc<dyn Provider>, spec: NodeSpec) -> audit::Report {
    println!(
        "chaos {}: seed {} ({SEED_ENV}={} reproduces the kill schedule), {} s of chaos, {NODES} nodes",
        config.store_name,
        config.seed,
        config.seed,
        config.chaos.as_secs()
    );
    let client = Client::new(parent_store);
    let mut rng = Rng(config.seed);
    let mut nodes = Nodes::start(spec.clone(), NODES);
    let chaos_end = Instant::now() + config.chaos;
    let starter = tokio::spawn(start_waves(client.clone(), chaos_end));

    // Chaos: SIGKILL a random node every few hundred ms and start a fresh one in its place.
    let mut problems = Vec::new();
    while Instant::now() < chaos_end {
        let pause = rng.range(KILL_PAUSE_MS.0, KILL_PAUSE_MS.1);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if let Err(e) = nodes.check_alive() {
            problems.push(e);
        }
        let slot = rng.range(0, nodes.len() as u64) as usize;
        nodes.kill_and_restart(slot);
    }
    let instances = match starter.await {
        Ok(started) => started,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };

    // Drain: no more kills; every instance must finish before the deadline.
    let drain_start = Instant::now();
    let deadline = drain_start + DRAIN_DEADLINE;
    let mut statuses = Vec::new();
    for (id, kind) in &instances {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        match client.wait_for_orchestration(id, left).await {
            Ok(status) => statuses.push((id.clone(), *kind, Some(status))),
            Err(ClientError::Timeout { .. }) => statuses.push((id.clone(), *kind, None)),
            Err(e) => panic!("waiting for {id}: {e}"),
        }
    }
    let drain = drain_start.elapsed();
    if let Err(e) = nodes.check_alive() {
        problems.push(e);
    }

    // Executions still running on live nodes (duplicates of finished work) may finish
    // before the nodes are stopped, so the log tells how each ended.
    let settle_until = Instant::now() + Duration::from_secs(10);
    let killed: Vec<u32> = nodes.kills.iter().map(|k| k.pid).collect();
    while Instant::now() < settle_until {
        let log = std::fs::read_to_string(&spec.log).unwrap_or_default();
        if audit::in_flight(&log, &killed) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    nodes.stop_all();

    let mut histories = Vec::new();
    let all = client.list_instances().await.expect("list instances");
    for id in &all {
        let history = client.read_execution_history(id, None).await.expect("read history");
        let status = client.get_orchestration_status(id).await.expect("read status");
        histories.push((id.clone(), history, status));
    }
    let log = std::fs::read_to_string(&spec.log).unwrap_or_default();
    let node_logs = nodes
        .started
        .iter()
        .map(|(pid, path)| (*pid, std::fs::read_to_string(path).unwrap_or_default()))
        .collect();
    let mut report = audit::audit(audit::Inputs {
        store_name: config.store_name,
        seed: config.seed,
        chaos: config.chaos,
        drain,
        instances: &statuses,
        histories: &histories,
        log: &log,
        kills: &nodes.kills,
        stopped: &nodes.stopped,
        node_logs,
    });
    report.problems.splice(0..0, problems);
    report
}
