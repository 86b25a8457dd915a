//! Reports over the whole store: `/versions` (instances per orchestration version and
//! duroxide version; which versions still have unfinished instances and which can be
//! retired) and `/summary` (instances per state, queue depths, work waiting per tag and
//! how many live workers serve it, the runtimes using the store, sessions).

use super::Shared;
use super::error::ConsoleError;
use super::html::{self, Base, Nav, esc, state_badge, state_name};
use super::params::Params;
use crate::WorkerPresence;
use crate::provider::{InstanceState, QueueDepth, StoreSummary, VersionCount};
use axum::extract::{RawQuery, State};
use axum::response::Html;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Instances of one (name, version, duroxide version), by state.
#[derive(Debug, Default, PartialEq, Eq)]
struct VersionRow {
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

type Key = (String, Option<String>, Option<String>);

/// The rows of the versions table, and the unfinished count per (name, version).
fn tally(counts: Vec<VersionCount>) -> (BTreeMap<Key, VersionRow>, BTreeMap<(String, String), u64>) {
    let mut rows: BTreeMap<Key, VersionRow> = BTreeMap::new();
    for c in counts {
        let row = rows.entry((c.name, c.version, c.duroxide_version)).or_default();
        match c.state {
            InstanceState::Pending => row.pending += c.count,
            InstanceState::Running => row.running += c.count,
            InstanceState::Completed => row.completed += c.count,
            InstanceState::Failed => row.failed += c.count,
        }
    }
    let mut per_version: BTreeMap<(String, String), u64> = BTreeMap::new();
    for ((name, version, _), row) in &rows {
        if let Some(v) = version {
            *per_version.entry((name.clone(), v.clone())).or_default() += row.unfinished();
        }
    }
    (rows, per_version)
}

/// `GET /versions`.
pub(crate) async fn versions(
    State(shared): State<Shared>,
    base: Base,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, ConsoleError> {
    let params = Params::parse(raw.unwrap_or_default().as_bytes());
    params.only(&["name"])?;
    let only = params.one("name")?;
    let counts: Vec<VersionCount> = shared
        .client
        .count_instances_by_version()
        .await?
        .into_iter()
        .filter(|c| only.is_none_or(|n| n == c.name))
        .collect();
    let (rows, per_version) = tally(counts);

    let mut body = String::from("<h1>Versions</h1>");
    if let Some(n) = only {
        let _ = write!(
            body,
            "<p>Orchestration <code>{}</code> only. <a href=\"{base}/versions\">All</a></p>",
            esc(n)
        );
    }
    if rows.is_empty() {
        body.push_str("<p class=\"empty\">No instances.</p>");
        return Ok(Html(html::page(&shared, &base, "Versions", Nav::Versions, &body)));
    }
    body.push_str(
        "<table id=\"versions\"><thead><tr><th>Orchestration</th><th>Version</th><th>Duroxide</th><th>Pending</th>\
         <th>Running</th><th>Completed</th><th>Failed</th></tr></thead><tbody>",
    );
    for ((name, version, duroxide), row) in &rows {
        let mut pairs = vec![("name", name.as_str())];
        if let Some(v) = version {
            pairs.push(("version", v.as_str()));
        }
        let link = |state: InstanceState, n: u64| {
            if n == 0 {
                "0".to_string()
            } else {
                let mut p = pairs.clone();
                p.push(("state", state_name(state)));
                format!("<a href=\"{}?{}\">{n}</a>", base.root(), esc(&html::query(p)))
            }
        };
        let _ = write!(
            body,
            "<tr><td><a href=\"{base}/versions?{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&html::query([("name", name.as_str())])),
            esc(name),
            esc(version.as_deref().unwrap_or("- (not started)")),
            esc(duroxide.as_deref().unwrap_or("-")),
            link(InstanceState::Pending, row.pending),
            link(InstanceState::Running, row.running),
            link(InstanceState::Completed, row.completed),
            link(InstanceState::Failed, row.failed),
        );
    }
    body.push_str("</tbody></table>");

    body.push_str("<section id=\"retirement\"><h2>Retirement</h2>");
    let in_use: Vec<String> = per_version
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|((name, v), n)| format!("<li><code>{} {}</code>: {n} unfinished</li>", esc(name), esc(v)))
        .collect();
    let retirable: Vec<String> = per_version
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|((name, v), _)| format!("<li><code>{} {}</code></li>", esc(name), esc(v)))
        .collect();
    let not_started: Vec<String> = rows
        .iter()
        .filter(|((_, v, _), r)| v.is_none() && r.unfinished() > 0)
        .map(|((name, _, _), r)| format!("<li><code>{}</code>: {} pending</li>", esc(name), r.unfinished()))
        .collect();
    let mut duroxide: BTreeMap<&str, u64> = BTreeMap::new();
    for ((_, _, d), r) in &rows {
        if let Some(d) = d
            && r.unfinished() > 0
        {
            *duroxide.entry(d.as_str()).or_default() += r.unfinished();
        }
    }
    let list = |items: &[String]| {
        if items.is_empty() {
            "<p class=\"empty\">None.</p>".to_string()
        } else {
            format!("<ul>{}</ul>", items.concat())
        }
    };
    let _ = write!(
        body,
        "<h3>Still in use: keep registered</h3><div id=\"in-use\">{}</div>\
         <h3>Retirable: no pending or running instance</h3><div id=\"retirable\">{}</div>",
        list(&in_use),
        list(&retirable)
    );
    if !not_started.is_empty() {
        let _ = write!(
            body,
            "<h3>Not started yet (no version pinned)</h3><p>They take the version the policy of the node that starts \
             them picks: keep the orchestration registered.</p>{}",
            list(&not_started)
        );
    }
    let duroxide: Vec<String> = duroxide
        .into_iter()
        .map(|(d, n)| format!("<li><code>{}</code>: {n} unfinished</li>", esc(d)))
        .collect();
    let _ = write!(
        body,
        "<h3>Duroxide versions with unfinished instances</h3><p>Nodes must still be able to replay these.</p>{}</section>",
        list(&duroxide)
    );
    Ok(Html(html::page(&shared, &base, "Versions", Nav::Versions, &body)))
}

/// `GET /summary`.
pub(crate) async fn summary(
    State(shared): State<Shared>,
    base: Base,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, ConsoleError> {
    Params::parse(raw.unwrap_or_default().as_bytes()).only(&[])?;
    let s = shared.client.store_summary().await?;
    let mut body = String::from(
        "<h1>Store</h1><section id=\"states\"><h2>Instances</h2><table><thead><tr><th>State</th><th>Instances</th></tr></thead><tbody>",
    );
    for c in &s.instances {
        let _ = write!(
            body,
            "<tr><td>{}</td><td><a href=\"{}?state={}\">{}</a></td></tr>",
            state_badge(c.state),
            base.root(),
            state_name(c.state),
            c.count
        );
    }
    let total: u64 = s.instances.iter().map(|c| c.count).sum();
    let _ = write!(body, "<tr class=\"total\"><td>all</td><td>{total}</td></tr></tbody></table></section>");
    body.push_str(
        "<section id=\"queues\"><h2>Queues</h2><table><thead><tr><th>Queue</th><th>Ready</th><th>Locked</th>\
         <th>Delayed</th><th>Oldest ready</th></tr></thead><tbody>",
    );
    for (name, d) in [("orchestrator", &s.orchestrator_queue), ("activity", &s.activity_queue)] {
        queue_row(&mut body, name, d);
    }
    let _ = write!(
        body,
        "</tbody></table><p>Ready: visible and not held; locked: held by a node; delayed: visible later (timers, \
         retries).</p></section><p>Sessions held by workers: <strong>{}</strong>. Taken at {}.</p>",
        s.sessions,
        html::time(s.taken_at_ms)
    );
    tag_section(&mut body, &s);
    let workers = shared.client.workers(true).await?;
    workers_section(&mut body, &workers);
    Ok(Html(html::page(&shared, &base, "Store", Nav::Summary, &body)))
}

/// Activities waiting per tag, and how many live workers serve each tag.
fn tag_section(body: &mut String, s: &StoreSummary) {
    body.push_str("<section id=\"tags\"><h2>Activities waiting per tag</h2>");
    if s.activity_tags.is_empty() {
        body.push_str("<p class=\"empty\">No activity waits for a worker.</p></section>");
        return;
    }
    body.push_str(
        "<table><thead><tr><th>Tag</th><th>Waiting</th><th>Oldest queued</th><th>Served by</th></tr></thead><tbody>",
    );
    for t in &s.activity_tags {
        let served = match t.served_by {
            0 => "<span class=\"unserved\">no live worker serves this tag</span>".to_string(),
            n => format!("{n} live worker{}", if n == 1 { "" } else { "s" }),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{} ago</td><td>{served}</td></tr>",
            t.tag.as_deref().map_or_else(|| "untagged".to_string(), |t| format!("<code>{}</code>", esc(t))),
            t.waiting,
            html::duration(t.oldest_age_ms(s.taken_at_ms)),
        );
    }
    body.push_str("</tbody></table></section>");
}

/// The runtimes using the store, live and gone (those that stopped heartbeating).
fn workers_section(body: &mut String, workers: &[WorkerPresence]) {
    let live = workers.iter().filter(|w| w.live).count();
    let _ = write!(body, "<section id=\"workers\"><h2>Workers ({live} live)</h2>");
    if workers.is_empty() {
        body.push_str("<p class=\"empty\">No runtime has recorded itself.</p></section>");
        return;
    }
    body.push_str(
        "<table><thead><tr><th>Worker</th><th>Tags</th><th>Activity slots</th><th>Turn slots</th><th>Version</th>\
         <th>Last seen</th><th>State</th></tr></thead><tbody>",
    );
    for w in workers {
        let r = &w.record;
        let _ = write!(
            body,
            "<tr class=\"{state}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ago</td><td>{state}</td></tr>",
            esc(&r.worker_id),
            esc(&r.tags.describe()),
            r.activity_slots,
            r.orchestration_slots,
            esc(&r.duroxide_version),
            html::duration(w.last_seen_ago_ms),
            state = if w.live { "live" } else { "gone" },
        );
    }
    body.push_str(
        "</tbody></table><p>A worker is gone when it has not refreshed its record for three heartbeats: it crashed, \
         hangs, or cannot reach the store.</p></section>",
    );
}

fn queue_row(body: &mut String, name: &str, d: &QueueDepth) {
    let _ = write!(
        body,
        "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        d.ready,
        d.locked,
        d.delayed,
        d.oldest_ready_age_ms.map_or("-".into(), html::duration)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(name: &str, version: Option<&str>, state: InstanceState, n: u64) -> VersionCount {
        VersionCount {
            name: name.into(),
            version: version.map(str::to_string),
            duroxide_version: version.map(|_| "0.1.0".to_string()),
            state,
            count: n,
        }
    }

    #[test]
    fn a_version_is_retirable_when_nothing_of_it_is_unfinished() {
        let (rows, per_version) = tally(vec![
            count("Order", Some("1.0.0"), InstanceState::Completed, 5),
            count("Order", Some("2.0.0"), InstanceState::Running, 2),
            count("Order", Some("2.0.0"), InstanceState::Failed, 1),
            count("Order", None, InstanceState::Pending, 3),
        ]);
        assert_eq!(per_version[&("Order".to_string(), "1.0.0".to_string())], 0);
        assert_eq!(per_version[&("Order".to_string(), "2.0.0".to_string())], 2);
        assert_eq!(per_version.len(), 2, "instances not started pin no version");
        let v2 = &rows[&("Order".to_string(), Some("2.0.0".to_string()), Some("0.1.0".to_string()))];
        assert_eq!(*v2, VersionRow { pending: 0, running: 2, completed: 0, failed: 1 });
        assert_eq!(rows[&("Order".to_string(), None, None)].unfinished(), 3);
    }
}
