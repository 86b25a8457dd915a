//! What must hold after a chaos run, checked from the store's histories, the activity
//! execution log and the nodes' warnings.
//!
//! - Every instance completed, with the output its input determines.
//! - Every history is well-formed: event ids 1..n, one start, at most one terminal event,
//!   each scheduled activity, timer and sub-orchestration completed exactly once.
//! - Every recorded activity result was produced by a logged execution, and every logged
//!   execution belongs to a scheduled activity.
//! - Every execution beyond the first of a scheduled activity is explained: the node that
//!   ran it was SIGKILLed before its result was committed, or its lock was lost (the
//!   activity saw the renewal fail, or the node warned that it dropped or could not
//!   commit the result).

use super::nodes::Kill;
use super::workload;
use duroxide::{Event, EventKind, OrchestrationStatus};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// A node killed this long after an execution finished may still have been committing
/// its result (a completion waits for the store's write lock, up to its busy timeout).
const LATE_COMMIT_MS: u64 = 10_000;

/// Everything the audit reads.
pub struct Inputs<'a> {
    pub store_name: &'static str,
    pub seed: u64,
    pub chaos: Duration,
    pub drain: Duration,
    /// Instances the test started: id, kind, final status (`None`: not finished in time).
    pub instances: &'a [(String, &'static str, Option<OrchestrationStatus>)],
    /// Every instance in the store (sub-orchestrations too): id, history, status.
    pub histories: &'a [(String, Vec<Event>, OrchestrationStatus)],
    /// The activity execution log.
    pub log: &'a str,
    /// Chaos kills.
    pub kills: &'a [Kill],
    /// Nodes stopped after the drain.
    pub stopped: &'a [Kill],
    /// Each node's pid and stderr.
    pub node_logs: Vec<(u32, String)>,
}

/// The outcome: what went wrong, and the figures.
#[derive(Debug)]
pub struct Report {
    pub problems: Vec<String>,
    pub summary: String,
}

impl Report {
    /// Prints the summary and fails with every problem found.
    pub fn assert_clean(&self) {
        println!("{}", self.summary);
        if self.problems.is_empty() {
            return;
        }
        let shown: Vec<&str> = self.problems.iter().take(30).map(String::as_str).collect();
        panic!(
            "chaos run found {} problem(s) ({}):\n  {}",
            self.problems.len(),
            self.summary,
            shown.join("\n  ")
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Done(u64),
    Lost(u64),
}

/// One execution of an activity, from the log.
#[derive(Debug, Default)]
struct Execution {
    start_ms: Option<u64>,
    end: Option<End>,
}

/// (instance, scheduling event id)
type Task = (String, u64);
/// (pid, attempt)
type Run = (u32, u32);

fn parse_log(log: &str, problems: &mut Vec<String>) -> BTreeMap<Task, BTreeMap<Run, Execution>> {
    let mut tasks: BTreeMap<Task, BTreeMap<Run, Execution>> = BTreeMap::new();
    for line in log.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let parsed = (|| {
            let [phase, instance, event, pid, attempt, ms] = parts.as_slice() else { return None };
            Some((
                *phase,
                instance.to_string(),
                event.parse().ok()?,
                pid.parse().ok()?,
                attempt.parse().ok()?,
                ms.parse().ok()?,
            ))
        })();
        let Some((phase, instance, event, pid, attempt, ms)) = parsed else {
            problems.push(format!("malformed activity log line: {line:?}"));
            continue;
        };
        let exec = tasks.entry((instance, event)).or_default().entry((pid, attempt)).or_default();
        let twice = match phase {
            "start" => exec.start_ms.replace(ms).is_some(),
            "done" => exec.end.replace(End::Done(ms)).is_some(),
            "lost" => exec.end.replace(End::Lost(ms)).is_some(),
            _ => {
                problems.push(format!("malformed activity log line: {line:?}"));
                false
            }
        };
        if twice {
            problems.push(format!("execution logged twice: {line:?}"));
        }
    }
    tasks
}

/// Executions started on nodes not in `killed` that have not ended yet.
pub fn in_flight(log: &str, killed: &[u32]) -> usize {
    let mut ignored = Vec::new();
    parse_log(log, &mut ignored)
        .values()
        .flat_map(|runs| runs.iter())
        .filter(|((pid, _), e)| e.end.is_none() && !killed.contains(pid))
        .count()
}

/// The `(pid, attempt)` tag of a logged activity result (`value@pid.attempt`).
fn result_tag(result: &str) -> Option<Run> {
    let (_, tag) = result.rsplit_once('@')?;
    let (pid, attempt) = tag.split_once('.')?;
    Some((pid.parse().ok()?, attempt.parse().ok()?))
}

/// Per (pid, instance): the node's warnings that it dropped or could not commit an activity
/// result because its lock was gone.
fn lock_loss_warnings(
    node_logs: &[(u32, String)],
    problems: &mut Vec<String>,
) -> (HashMap<(u32, String), usize>, usize) {
    let mut by_instance = HashMap::new();
    let mut total = 0;
    for (pid, text) in node_logs {
        for line in text.lines() {
            if line.contains("panicked") {
                problems.push(format!("node {pid} panicked: {line}"));
            }
            let lock_loss =
                line.contains("activity lock lost") || line.contains("could not complete activity");
            if !lock_loss {
                continue;
            }
            total += 1;
            if let Some(rest) = line.split(" instance=").nth(1) {
                let instance = rest.split_whitespace().next().unwrap_or_default().to_string();
                *by_instance.entry((*pid, instance)).or_insert(0) += 1;
            }
        }
    }
    (by_instance, total)
}

/// Checks one history's shape; returns its scheduled activities (event id) and the
/// recorded result tags (scheduling event id -> execution whose result was recorded).
fn check_history(
    id: &str,
    history: &[Event],
    problems: &mut Vec<String>,
) -> (Vec<u64>, HashMap<u64, String>) {
    let mut scheduled = Vec::new();
    let mut pending: HashSet<u64> = HashSet::new();
    let mut tasks: HashSet<u64> = HashSet::new();
    let mut completed: HashSet<u64> = HashSet::new();
    let mut results = HashMap::new();
    let mut terminals = 0;
    for (i, e) in history.iter().enumerate() {
        if e.event_id != i as u64 + 1 {
            problems.push(format!("{id}: event #{} has id {} (ids must run 1..n)", i + 1, e.event_id));
        }
        if e.kind.is_terminal() {
            terminals += 1;
        }
        let started = matches!(e.kind, EventKind::OrchestrationStarted { .. });
        if started != (i == 0) {
            problems.push(format!(
                "{id}: OrchestrationStarted must be event 1 and only event 1 (event {})",
                e.event_id
            ));
        }
        match &e.kind {
            EventKind::ActivityScheduled { .. } => {
                scheduled.push(e.event_id);
                pending.insert(e.event_id);
                tasks.insert(e.event_id);
            }
            EventKind::TimerCreated { .. } | EventKind::SubOrchestrationScheduled { .. } => {
                pending.insert(e.event_id);
                tasks.insert(e.event_id);
            }
            _ => {}
        }
        let source = match &e.kind {
            EventKind::ActivityCompleted { source_event_id, result } => {
                results.insert(*source_event_id, result.clone());
                Some(*source_event_id)
            }
            EventKind::ActivityFailed { source_event_id, details } => {
                problems.push(format!("{id}: activity {source_event_id} failed: {details:?}"));
                Some(*source_event_id)
            }
            EventKind::SubOrchestrationFailed { source_event_id, details } => {
                problems.push(format!("{id}: sub-orchestration {source_event_id} failed: {details:?}"));
                Some(*source_event_id)
            }
            EventKind::TimerFired { source_event_id, .. }
            | EventKind::SubOrchestrationCompleted { source_event_id, .. } => Some(*source_event_id),
            _ => None,
        };
        if let Some(s) = source {
            if !completed.insert(s) {
                problems.push(format!("{id}: task {s} completed twice (event {})", e.event_id));
            }
            pending.remove(&s);
            if !tasks.contains(&s) {
                problems
                    .push(format!("{id}: event {} completes task {s}, which was not scheduled", e.event_id));
            }
        }
    }
    if terminals != 1 {
        problems.push(format!("{id}: {terminals} terminal events"));
    }
    if !pending.is_empty() {
        let mut left: Vec<_> = pending.into_iter().collect();
        left.sort_unstable();
        problems.push(format!("{id}: tasks {left:?} never completed"));
    }
    (scheduled, results)
}

/// Runs every check; the figures go into the summary line.
pub fn audit(input: Inputs<'_>) -> Report {
    let mut problems = Vec::new();

    for (id, kind, status) in input.instances {
        let expected = workload::expected_output(kind, id);
        match status {
            None => problems.push(format!("{id} ({kind}) did not finish within the drain deadline")),
            Some(OrchestrationStatus::Completed { output }) if *output == expected => {}
            Some(other) => {
                problems.push(format!("{id} ({kind}): expected Completed({expected:?}), got {other:?}"))
            }
        }
    }

    let mut tasks = parse_log(input.log, &mut problems);
    let kill_at: HashMap<u32, u64> = input.kills.iter().map(|k| (k.pid, k.at_ms)).collect();
    let stopped: HashSet<u32> = input.stopped.iter().map(|k| k.pid).collect();
    let (mut warnings, warning_total) = lock_loss_warnings(&input.node_logs, &mut problems);

    let mut scheduled_total = 0usize;
    let mut executions_total = 0usize;
    let (mut killed_running, mut killed_before_commit, mut lost_seen, mut lost_warned, mut stopped_running) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut max_runs = 0usize;
    for (id, history, status) in input.histories {
        if !matches!(status, OrchestrationStatus::Completed { .. }) {
            problems.push(format!("{id}: not completed: {status:?}"));
        }
        let (scheduled, results) = check_history(id, history, &mut problems);
        for event in scheduled {
            scheduled_total += 1;
            let runs = tasks.remove(&(id.clone(), event)).unwrap_or_default();
            executions_total += runs.len();
            max_runs = max_runs.max(runs.len());
            let Some(result) = results.get(&event) else { continue };
            let Some(winner) = result_tag(result) else {
                problems.push(format!("{id}: activity {event} result {result:?} carries no execution tag"));
                continue;
            };
            match runs.get(&winner) {
                Some(Execution { start_ms: Some(_), end: Some(End::Done(_)) }) => {}
                other => problems.push(format!(
                    "{id}: activity {event} recorded the result of execution {winner:?}, logged as {other:?}"
                )),
            }
            for (run, exec) in &runs {
                if *run == winner {
                    continue;
                }
                let (pid, _) = *run;
                if exec.start_ms.is_none() {
                    problems.push(format!("{id}: activity {event} execution {run:?} ended without a start"));
                    continue;
                }
                match (exec.end, kill_at.get(&pid)) {
                    (Some(End::Lost(_)), _) => lost_seen += 1,
                    (None, Some(_)) => killed_running += 1,
                    (Some(End::Done(done)), Some(&killed))
                        if killed.saturating_sub(done) <= LATE_COMMIT_MS =>
                    {
                        killed_before_commit += 1
                    }
                    (None, None) if stopped.contains(&pid) => stopped_running += 1,
                    (end, _) => match warnings.get_mut(&(pid, id.clone())) {
                        Some(n) if *n > 0 => {
                            *n -= 1;
                            lost_warned += 1;
                        }
                        _ => problems.push(format!(
                            "{id}: activity {event} ran again without a kill or lock loss to explain it: \
                             execution {run:?} ended {end:?}, node killed at {:?}; all executions: {runs:?}; \
                             recorded result from {winner:?}",
                            kill_at.get(&pid)
                        )),
                    },
                }
            }
        }
    }
    for ((id, event), runs) in &tasks {
        problems.push(format!(
            "{id}: {} execution(s) of activity {event}, which no history scheduled",
            runs.len()
        ));
    }

    let started = input.instances.len();
    let extra = executions_total.saturating_sub(scheduled_total);
    let summary = format!(
        "chaos summary [{}]: seed {}, {} s chaos, {started} instances (+{} sub-orchestrations), {} kills, \
         {scheduled_total} activities scheduled, {executions_total} executions, {extra} extra \
         (killed while running {killed_running}, killed before commit {killed_before_commit}, lock lost \
         {lost_seen} seen by the activity + {lost_warned} warned by the node, still running at the end \
         {stopped_running}), most runs of one activity {max_runs}, {warning_total} lock-loss warnings, \
         drain {:.1} s, {} problems",
        input.store_name,
        input.seed,
        input.chaos.as_secs(),
        input.histories.len().saturating_sub(started),
        input.kills.len(),
        input.drain.as_secs_f64(),
        problems.len()
    );
    Report { problems, summary }
}
