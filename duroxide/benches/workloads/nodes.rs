//! `nodes`: several runtime processes on one PostgreSQL schema. For each count of
//! `--nodes` (default 1, 2, 3) the parent starts that many worker nodes (this binary again,
//! see `node`), drives `overhead`'s load through a client with no runtime of its own (40
//! instances in flight per node), stops the nodes and checks that no instance was run by
//! two nodes at once:
//!
//! - every history is well formed: one start, one completion, five activities scheduled
//!   with distinct inputs, five completions, each of a different scheduled event (a turn
//!   run twice would schedule again, a completion delivered twice would appear twice);
//! - the events that the nodes' committed turns appended, summed over all nodes, equal the
//!   history's length: every stored event was written by exactly one committed turn (two
//!   nodes running the same turn and both committing would count it twice);
//! - the committed turns of an instance are at least 2 and at most 1 + its completions
//!   (the first turn, then at least one completion per later turn);
//! - no turn was discarded (a lost lock) and no node logged a warning.
//!
//! Prints aggregate activities/s per node count and the ratio last/first (round-two
//! target: at least 0.9, flat).

use super::report::{Goal, percentile, report, target_ratio};
use super::turn_ledger::{InstanceTurns, TurnLedger};
use duroxide::history::EventKind;
use duroxide::prelude::*;
use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

const TARGET: f64 = 0.9;

/// A running worker node.
struct Node {
    child: tokio::process::Child,
    ledger: std::path::PathBuf,
}

async fn start_node(schema: &str, ledger: std::path::PathBuf) -> Node {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let mut child = tokio::process::Command::new(exe)
        .env(super::node::NODE_ENV, schema)
        .env(super::node::LEDGER_ENV, &ledger)
        .env(super::node::POOL_ENV, super::store::pg_pool().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // If the parent fails before stopping it, the node is killed with it.
        .kill_on_drop(true)
        .spawn()
        .expect("start a worker node");
    let stdout = child.stdout.take().expect("the node's stdout is piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
    match ready {
        Ok(Ok(Some(line))) if line == "ready" => {}
        other => panic!("worker node did not start: {other:?}"),
    }
    Node { child, ledger }
}

/// Stops a node the way it expects (its stdin closes) and waits for it to write its
/// ledger; kills it only if it has not exited within 30 s.
async fn stop_node(mut node: Node) -> String {
    drop(node.child.stdin.take());
    match tokio::time::timeout(Duration::from_secs(30), node.child.wait()).await {
        Ok(status) => {
            let status = status.expect("wait for the node");
            assert!(status.success(), "worker node exited with {status}");
        }
        Err(_) => {
            eprintln!("nodes: a worker node did not stop within 30 s; killing it");
            node.child.kill().await.expect("kill the node");
            panic!("a worker node had to be killed");
        }
    }
    std::fs::read_to_string(&node.ledger).expect("the node's ledger")
}

/// What the check of one run found; every count but `multi_node_instances` must be 0.
#[derive(Default, Debug)]
struct Check {
    instances: u64,
    /// Instances whose turns ran on more than one node (one after another: normal).
    multi_node_instances: u64,
    bad_histories: u64,
    event_count_mismatches: u64,
    turn_count_out_of_range: u64,
    discarded_turns: u64,
    node_warnings: u64,
}

impl Check {
    fn violations(&self) -> u64 {
        self.bad_histories
            + self.event_count_mismatches
            + self.turn_count_out_of_range
            + self.discarded_turns
            + self.node_warnings
    }
}

/// Whether a FanOut(5) history is well formed; returns its completions.
fn history_completions(history: &[duroxide::Event]) -> Option<u64> {
    let mut started = 0;
    let mut completed = 0;
    let mut scheduled = HashMap::new();
    let mut inputs = HashSet::new();
    let mut sources = HashSet::new();
    for e in history {
        match &e.kind {
            EventKind::OrchestrationStarted { .. } => started += 1,
            EventKind::OrchestrationCompleted { .. } => completed += 1,
            EventKind::ActivityScheduled { input, .. } => {
                scheduled.insert(e.event_id, input.clone());
                if !inputs.insert(input.clone()) {
                    return None;
                }
            }
            EventKind::ActivityCompleted { source_event_id, .. } => {
                if !scheduled.contains_key(source_event_id) || !sources.insert(*source_event_id) {
                    return None;
                }
            }
            _ => return None,
        }
    }
    let ok = started == 1 && completed == 1 && scheduled.len() == 5 && sources.len() == 5;
    ok.then_some(sources.len() as u64)
}

async fn check(client: &Client, instances: &[String], ledgers: &[String]) -> Check {
    let mut c = Check { instances: instances.len() as u64, ..Default::default() };
    let mut merged: HashMap<String, InstanceTurns> = HashMap::new();
    let mut nodes_of: HashMap<String, u64> = HashMap::new();
    for text in ledgers {
        let mut one = HashMap::new();
        TurnLedger::add_text(text, &mut one);
        for (instance, t) in &one {
            if t.committed > 0 {
                *nodes_of.entry(instance.clone()).or_default() += 1;
            }
        }
        TurnLedger::add_text(text, &mut merged);
        for line in text.lines().filter_map(|l| l.strip_prefix("#warnings\t")) {
            c.node_warnings += line.parse::<u64>().expect("a warning count");
        }
    }
    c.multi_node_instances = nodes_of.values().filter(|&&n| n > 1).count() as u64;
    c.discarded_turns = merged.values().map(|t| t.discarded).sum();
    for id in instances {
        let history = client.read_execution_history(id, None).await.expect("read a history");
        let Some(completions) = history_completions(&history) else {
            c.bad_histories += 1;
            continue;
        };
        let t = merged.get(id).copied().unwrap_or_default();
        if t.events != history.len() as u64 {
            c.event_count_mismatches += 1;
        }
        if t.committed < 2 || t.committed > 1 + completions {
            c.turn_count_out_of_range += 1;
        }
    }
    c
}

pub async fn nodes(store_kind: &str, seconds: u64, counts: &[usize]) {
    if store_kind != "postgres" {
        eprintln!("nodes: only on postgres (several processes share one store); skipped on {store_kind}");
        return;
    }
    let mut throughput = Vec::new();
    for &k in counts {
        let store = super::store::open(store_kind).await;
        let schema = store.schema.clone().expect("postgres stores have a schema");
        let dir = tempfile::tempdir().expect("a folder for the ledgers");
        let mut nodes = Vec::new();
        for i in 0..k {
            nodes.push(start_node(&schema, dir.path().join(format!("node-{i}.ledger"))).await);
        }
        let client = Client::new(store.provider.clone());
        let in_flight = super::throughput::OVERHEAD_IN_FLIGHT * k;
        let d = super::throughput::drive(&client, &format!("n{k}"), seconds, in_flight).await;
        let mut ledgers = Vec::new();
        for node in nodes {
            ledgers.push(stop_node(node).await);
        }
        let c = check(&client, &d.instances, &ledgers).await;
        report(
            "nodes",
            store_kind,
            &[
                ("nodes", k as f64),
                ("activities_per_s", d.activities_per_s),
                ("activities_per_s_per_node", d.activities_per_s / k as f64),
                ("latency_p50_ms", percentile(&d.latencies_ms, 0.5)),
                ("instances_checked", c.instances as f64),
                ("instances_run_by_several_nodes", c.multi_node_instances as f64),
                ("violations", c.violations() as f64),
            ],
        );
        if c.violations() > 0 {
            println!("nodes {k}: CHECK FAILED: {c:?}");
        }
        store.close().await;
        throughput.push((k, d.activities_per_s));
    }
    if let [(k1, first), .., (kn, last)] = throughput[..] {
        let name = format!("ratio_activities_{kn}_nodes_{k1}_node");
        report("nodes", store_kind, &[(name.as_str(), last / first)]);
        target_ratio("nodes", store_kind, &name, last / first, Goal::AtLeast, TARGET);
    }
}
