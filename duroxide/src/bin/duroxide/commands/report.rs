//! Reports over the whole store: `versions` (which orchestration and duroxide versions
//! still have unfinished instances, which can be retired), `stats` (instances per
//! state, queue depths, work waiting per tag and who serves it) and `workers` (the
//! runtimes using the store). Read only.

use super::Context;
use crate::args::{VersionsArgs, WorkersArgs};
use crate::error::CliError;
use crate::output::{Table, count, print, print_json};
use crate::time::{format_age, format_ms};
use duroxide::provider::{InstanceState, QueueDepth};
use serde::Serialize;
use std::collections::BTreeMap;

/// `versions --json`.
#[derive(Serialize)]
struct VersionsReport {
    /// Instances per (name, version, duroxide version), by state.
    versions: Vec<VersionRow>,
    /// Orchestration versions with no pending or running instance: they can be removed
    /// from the registries.
    retirable: Vec<NameVersion>,
    /// Duroxide versions that wrote unfinished instances, with how many: a node must
    /// still be able to replay them.
    duroxide_versions: Vec<DuroxideVersionRow>,
}

#[derive(Serialize, Default)]
struct VersionRow {
    name: String,
    /// `null`: instances not started yet (no version pinned).
    version: Option<String>,
    duroxide_version: Option<String>,
    pending: u64,
    running: u64,
    completed: u64,
    failed: u64,
}

impl VersionRow {
    fn unfinished(&self) -> u64 {
        self.pending + self.running
    }
}

#[derive(Serialize)]
struct NameVersion {
    name: String,
    version: String,
}

#[derive(Serialize)]
struct DuroxideVersionRow {
    duroxide_version: String,
    unfinished: u64,
}

/// `versions`.
pub async fn versions(ctx: &Context, a: VersionsArgs) -> Result<(), CliError> {
    let client = ctx.client().await?;
    let mut rows: BTreeMap<(String, Option<String>, Option<String>), VersionRow> = BTreeMap::new();
    for c in client.count_instances_by_version().await? {
        if a.name.as_ref().is_some_and(|n| *n != c.name) {
            continue;
        }
        let key = (c.name.clone(), c.version.clone(), c.duroxide_version.clone());
        let row = rows.entry(key).or_insert_with(|| VersionRow {
            name: c.name,
            version: c.version,
            duroxide_version: c.duroxide_version,
            ..Default::default()
        });
        match c.state {
            InstanceState::Pending => row.pending += c.count,
            InstanceState::Running => row.running += c.count,
            InstanceState::Completed => row.completed += c.count,
            InstanceState::Failed => row.failed += c.count,
        }
    }
    let versions: Vec<VersionRow> = rows.into_values().collect();

    // A version is retirable when none of its rows (any duroxide version) is unfinished.
    let mut unfinished_per_version: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut unfinished_per_duroxide: BTreeMap<String, u64> = BTreeMap::new();
    for r in &versions {
        if let Some(v) = &r.version {
            *unfinished_per_version.entry((r.name.clone(), v.clone())).or_default() += r.unfinished();
        }
        if let Some(d) = &r.duroxide_version
            && r.unfinished() > 0
        {
            *unfinished_per_duroxide.entry(d.clone()).or_default() += r.unfinished();
        }
    }
    let report = VersionsReport {
        retirable: unfinished_per_version
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|((name, version), _)| NameVersion { name: name.clone(), version: version.clone() })
            .collect(),
        duroxide_versions: unfinished_per_duroxide
            .into_iter()
            .map(|(duroxide_version, unfinished)| DuroxideVersionRow { duroxide_version, unfinished })
            .collect(),
        versions,
    };
    if ctx.json {
        return print_json(&report);
    }
    if report.versions.is_empty() {
        return print("No instances.\n");
    }
    let mut t = Table::new(&["NAME", "VERSION", "DUROXIDE", "PENDING", "RUNNING", "COMPLETED", "FAILED"]);
    for r in &report.versions {
        t.row(vec![
            r.name.clone(),
            r.version.clone().unwrap_or_else(|| "- (not started)".into()),
            r.duroxide_version.clone().unwrap_or_else(|| "-".into()),
            r.pending.to_string(),
            r.running.to_string(),
            r.completed.to_string(),
            r.failed.to_string(),
        ]);
    }
    let mut text = t.render();
    let in_use: Vec<String> = unfinished_per_version
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|((name, version), n)| format!("{name} {version} ({n} unfinished)"))
        .collect();
    text.push('\n');
    text.push_str(&format!("Still in use (keep registered): {}\n", list_or_none(&in_use)));
    // Instances no node has started yet take whatever version the policy of the node
    // that starts them picks: the orchestration must stay registered somewhere.
    let not_started: Vec<String> = report
        .versions
        .iter()
        .filter(|r| r.version.is_none() && r.unfinished() > 0)
        .map(|r| format!("{} ({} pending)", r.name, r.unfinished()))
        .collect();
    if !not_started.is_empty() {
        text.push_str(&format!("Not started yet (no version pinned): {}\n", not_started.join(", ")));
    }
    let retirable: Vec<String> =
        report.retirable.iter().map(|r| format!("{} {}", r.name, r.version)).collect();
    text.push_str(&format!("Retirable (no pending or running instance): {}\n", list_or_none(&retirable)));
    let duroxide: Vec<String> = report
        .duroxide_versions
        .iter()
        .map(|d| format!("{} ({} unfinished)", d.duroxide_version, d.unfinished))
        .collect();
    text.push_str(&format!("Duroxide versions with unfinished instances: {}\n", list_or_none(&duroxide)));
    print(&text)
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() { "none".into() } else { items.join(", ") }
}

/// `stats`: the store summary.
pub async fn stats(ctx: &Context) -> Result<(), CliError> {
    let client = ctx.client().await?;
    let s = client.store_summary().await?;
    if ctx.json {
        return print_json(&s);
    }
    let mut t = Table::new(&["STATE", "INSTANCES"]);
    for c in &s.instances {
        t.row(vec![c.state.as_str().into(), c.count.to_string()]);
    }
    let mut text = t.render();
    let mut q = Table::new(&["QUEUE", "READY", "LOCKED", "DELAYED", "OLDEST READY"]);
    let queue = |name: &str, d: &QueueDepth| {
        vec![
            name.to_string(),
            d.ready.to_string(),
            d.locked.to_string(),
            d.delayed.to_string(),
            d.oldest_ready_age_ms.map(format_age).unwrap_or_else(|| "-".into()),
        ]
    };
    q.row(queue("orchestrator", &s.orchestrator_queue));
    q.row(queue("activity", &s.activity_queue));
    text.push('\n');
    text.push_str(&q.render());
    // Work waits for a worker that serves its tag; a tag no live runtime serves is flagged.
    for t in &s.activity_tags {
        let tag = t.tag.as_deref().map_or_else(|| "untagged work".to_string(), |tag| format!("tag {tag}"));
        let served = match t.served_by {
            0 => "no live worker serves this tag".to_string(),
            n => format!("served by {}", count(n, "live worker")),
        };
        text.push_str(&format!(
            "\n{} activities waiting for {tag} (oldest queued {} ago); {served}",
            t.waiting,
            format_age(t.oldest_age_ms(s.taken_at_ms))
        ));
    }
    if !s.activity_tags.is_empty() {
        text.push('\n');
    }
    text.push_str(&format!("\nSessions held: {}\nTaken at: {}\n", s.sessions, format_ms(s.taken_at_ms)));
    print(&text)
}

/// `workers`: the runtimes using the store, by id (`--all`: gone ones too).
pub async fn workers(ctx: &Context, a: WorkersArgs) -> Result<(), CliError> {
    let client = ctx.client().await?;
    let workers = client.workers(a.all).await?;
    if ctx.json {
        return print_json(&workers);
    }
    if workers.is_empty() {
        return print(if a.all {
            "No workers have written a presence record in the last hour.\n"
        } else {
            "No live workers. (--all also lists those that stopped heartbeating.)\n"
        });
    }
    let mut t =
        Table::new(&["WORKER", "TAGS", "ACTIVITY SLOTS", "TURN SLOTS", "VERSION", "LAST SEEN", "STATE"]);
    for w in &workers {
        let r = &w.record;
        t.row(vec![
            r.worker_id.clone(),
            r.tags.describe(),
            r.activity_slots.to_string(),
            r.orchestration_slots.to_string(),
            r.duroxide_version.clone(),
            format!("{} ago", format_age(w.last_seen_ago_ms)),
            if w.live { "live".into() } else { "gone".into() },
        ]);
    }
    print(&t.render())
}
