//! The instance page (`/instances/{id}`): status, versions, custom status, output or
//! error, the actions, the history timeline of one execution, pending activities and
//! timers, queued messages, children, executions and the history as a table; and the
//! history export (`/instances/{id}/history.json`).

use super::Shared;
use super::actions;
use super::error::ConsoleError;
use super::html::{self, Base, Nav, esc, instance_link, instance_url, state_badge, truncate};
use super::params::Params;
use super::timeline;
use crate::history::{Event, EventKind};
use crate::provider::{InstanceDescription, InstanceRecord};
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use std::fmt::Write as _;

/// The most events read for one page; longer histories are cut (the JSON export has all).
const MAX_EVENTS: usize = 5_000;

/// `GET /instances/{id}`.
pub(crate) async fn page(
    State(shared): State<Shared>,
    base: Base,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, ConsoleError> {
    let params = Params::parse(raw.unwrap_or_default().as_bytes());
    params.only(&["execution", "done"])?;
    let wanted = params.number("execution", 1..=u64::MAX)?;
    let done = match params.one("done")? {
        None => None,
        Some(d) => Some(actions::Action::parse(d).ok_or_else(|| {
            ConsoleError::bad("done", format!("'{d}' is not an action; expected raise, cancel or terminate"))
        })?),
    };
    let client = &shared.client;
    let d = client.describe_instance(&id).await?;
    let r = &d.record;
    let execution = wanted.unwrap_or(r.execution_id);
    if execution > 0 && !d.executions.iter().any(|e| e.execution_id == execution) {
        return Err(ConsoleError::NotFound(format!("execution {execution} of instance '{id}'")));
    }
    let (events, cut) =
        if execution == 0 { (Vec::new(), false) } else { read_history(&shared, &id, execution).await? };

    let mut body = String::new();
    let _ = write!(body, "<h1>Instance <span class=\"id\">{}</span> {}</h1>", esc(&id), state_badge(r.state));
    if let Some(a) = done {
        let _ = write!(body, "<p class=\"notice\" id=\"notice\">{}</p>", a.done_message());
    }
    summary(&mut body, &base, &d);
    if !shared.read_only {
        actions::forms(&mut body, &base, &shared.csrf, r);
    }

    let open = execution == r.execution_id && !r.state.is_terminal();
    let _ = write!(body, "<section id=\"history\"><h2>History of execution {execution}</h2>");
    if d.executions.len() > 1 {
        body.push_str("<p class=\"executions\">Executions:");
        for e in &d.executions {
            let class = if e.execution_id == execution { " class=\"current\"" } else { "" };
            let _ = write!(
                body,
                " <a{class} href=\"{}?execution={}\">{}</a>",
                instance_url(&base, &id),
                e.execution_id,
                e.execution_id
            );
        }
        body.push_str("</p>");
    }
    if events.is_empty() {
        body.push_str("<p class=\"empty\">No history yet: no node has started this instance.</p>");
    } else {
        body.push_str(&timeline::render(&timeline::build(&events, crate::now_ms(), open)));
        if cut {
            let _ = write!(
                body,
                "<p class=\"note\">The first {MAX_EVENTS} events are shown; the JSON export has them all.</p>"
            );
        }
    }
    if execution > 0 {
        let _ = write!(
            body,
            "<p><a href=\"{}/history.json?execution={execution}\" download>Download this history (JSON)</a></p>",
            instance_url(&base, &id)
        );
    }
    body.push_str("</section>");

    let values = client.values(&id).await?;
    values_table(&mut body, &values);
    pending_work(&mut body, &d);
    children(&mut body, &base, &d);
    executions(&mut body, &base, &d);
    if !events.is_empty() {
        event_table(&mut body, &events);
    }
    Ok(Html(html::page(&shared, &base, &format!("Instance {id}"), Nav::Instances, &body)))
}

/// Every event of `execution`, up to [`MAX_EVENTS`]; `true` when there were more.
async fn read_history(shared: &Shared, id: &str, execution: u64) -> Result<(Vec<Event>, bool), ConsoleError> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = shared.client.read_history_page(id, Some(execution), after, 1_000).await?;
        events.extend(page.events);
        if events.len() >= MAX_EVENTS {
            let cut = events.len() > MAX_EVENTS || page.next_after_event_id.is_some();
            events.truncate(MAX_EVENTS);
            return Ok((events, cut));
        }
        match page.next_after_event_id {
            Some(next) => after = next,
            None => return Ok((events, false)),
        }
    }
}

fn summary(body: &mut String, base: &Base, d: &InstanceDescription) {
    let r: &InstanceRecord = &d.record;
    body.push_str("<dl class=\"summary\" id=\"summary\">");
    let mut row = |term: &str, value: String| {
        let _ = write!(body, "<dt>{term}</dt><dd>{value}</dd>");
    };
    row("Orchestration", esc(&r.name).to_string());
    row("Version", esc(r.version.as_deref().unwrap_or("- (not started)")).to_string());
    row("Written by duroxide", esc(r.duroxide_version.as_deref().unwrap_or("-")).to_string());
    row("Execution", r.execution_id.to_string());
    row("Created", html::time(r.created_at_ms));
    row("Updated", html::time(r.updated_at_ms));
    if let Some(p) = &r.parent_instance {
        row("Parent", instance_link(base, p));
    }
    if let Some(s) = &r.custom_status {
        row("Custom status", format!("<code id=\"custom-status\">{}</code>", esc(&truncate(s, 2_000))));
    }
    if let Some(o) = &r.output {
        row("Output", format!("<code id=\"output\">{}</code>", esc(&truncate(o, 2_000))));
    }
    if let Some(e) = &r.error {
        row(
            "Error",
            format!("<code id=\"error\">{}: {}</code>", e.category, esc(&truncate(&e.message, 2_000))),
        );
    }
    if let Some(n) = &r.status_note {
        row("Note", esc(n).to_string());
    }
    if let Some(until) = d.locked_until_ms {
        row("Lock", format!("a node holds it for a turn until {}", html::time(until)));
    }
    body.push_str("</dl>");
}

fn pending_work(body: &mut String, d: &InstanceDescription) {
    let _ = write!(
        body,
        "<section id=\"pending-activities\"><h2>Pending activities ({})</h2>",
        d.pending_activities.len()
    );
    if d.pending_activities.is_empty() {
        body.push_str("<p class=\"empty\">None.</p>");
    } else {
        body.push_str(
            "<table><thead><tr><th>Event</th><th>Activity</th><th>Tag</th><th>Session</th><th>Attempts</th>\
             <th>Visible at</th><th>Held by</th><th>Until</th><th>Cancel requested</th></tr></thead><tbody>",
        );
        for a in &d.pending_activities {
            // The tag, and a warning when no live runtime serves it (the work waits until
            // one that does starts).
            let mut tag = a
                .tag
                .as_deref()
                .map_or_else(|| "untagged".to_string(), |t| format!("<code>{}</code>", esc(t)));
            if a.served == Some(false) {
                tag.push_str(" <span class=\"unserved\">no live worker serves this tag</span>");
            }
            let _ = write!(
                body,
                "<tr><td>{}.{}</td><td>{}</td><td>{tag}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                a.execution_id,
                a.event_id,
                esc(&a.name),
                esc(a.session_id.as_deref().unwrap_or("-")),
                a.attempts,
                html::time(a.visible_at_ms),
                esc(a.locked_by.as_deref().unwrap_or(if a.locked_until_ms.is_some() {
                    "a worker"
                } else {
                    "-"
                })),
                a.locked_until_ms.map_or("-".into(), html::time),
                if a.cancel_requested { "yes" } else { "no" },
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</section>");

    let _ =
        write!(body, "<section id=\"pending-timers\"><h2>Pending timers ({})</h2>", d.pending_timers.len());
    if d.pending_timers.is_empty() {
        body.push_str("<p class=\"empty\">None.</p>");
    } else {
        body.push_str("<table><thead><tr><th>Event</th><th>Fires at</th></tr></thead><tbody>");
        for t in &d.pending_timers {
            let _ = write!(
                body,
                "<tr><td>{}.{}</td><td>{}</td></tr>",
                t.execution_id,
                t.event_id,
                html::time(t.fire_at_ms)
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</section>");

    if !d.queued_messages.is_empty() {
        let _ = write!(
            body,
            "<section id=\"queued-messages\"><h2>Queued messages ({})</h2>",
            d.queued_messages.len()
        );
        body.push_str(
            "<table><thead><tr><th>Position</th><th>Message</th><th>Enqueued</th><th>Visible at</th><th>Attempts</th>\
             <th>Locked</th></tr></thead><tbody>",
        );
        for m in &d.queued_messages {
            let json = serde_json::to_value(&m.message).unwrap_or_default();
            let kind = json.get("type").and_then(|t| t.as_str()).unwrap_or("message").to_string();
            let _ = write!(
                body,
                "<tr><td>{}</td><td title=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                m.id,
                esc(&truncate(&json.to_string(), 500)),
                esc(&kind),
                html::time(m.enqueued_at_ms),
                html::time(m.visible_at_ms),
                m.attempts,
                if m.locked { "yes" } else { "no" },
            );
        }
        body.push_str("</tbody></table></section>");
    }
}

fn children(body: &mut String, base: &Base, d: &InstanceDescription) {
    if d.children.is_empty() {
        return;
    }
    let _ = write!(body, "<section id=\"children\"><h2>Sub-orchestrations ({})</h2>", d.children.len());
    body.push_str("<table><thead><tr><th>Instance</th><th>Orchestration</th><th>Version</th><th>State</th></tr></thead><tbody>");
    for c in &d.children {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            instance_link(base, &c.instance),
            esc(&c.name),
            esc(c.version.as_deref().unwrap_or("-")),
            state_badge(c.state)
        );
    }
    body.push_str("</tbody></table></section>");
}

fn executions(body: &mut String, base: &Base, d: &InstanceDescription) {
    if d.executions.is_empty() {
        return;
    }
    body.push_str(
        "<section id=\"executions\"><h2>Executions</h2><table><thead><tr><th>Execution</th><th>Version</th>\
         <th>State</th><th>Events</th><th>Started</th><th>Updated</th></tr></thead><tbody>",
    );
    for e in &d.executions {
        let _ = write!(
            body,
            "<tr><td><a href=\"{}?execution={}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            instance_url(base, &d.record.instance),
            e.execution_id,
            e.execution_id,
            esc(&e.version),
            state_badge(e.state),
            e.event_count,
            html::time(e.started_at_ms),
            html::time(e.updated_at_ms),
        );
    }
    body.push_str("</tbody></table></section>");
}

fn event_table(body: &mut String, events: &[Event]) {
    let start = events.first().map_or(0, |e| e.timestamp_ms);
    body.push_str(
        "<section id=\"events\"><h2>Events</h2><table class=\"events\"><thead><tr><th>#</th><th>At</th><th>Event</th>\
         <th>Details</th></tr></thead><tbody>",
    );
    for e in events {
        let _ = write!(
            body,
            "<tr><td>{}</td><td title=\"{}\">+{}</td><td>{}</td><td class=\"detail\">{}</td></tr>",
            e.event_id,
            html::time(e.timestamp_ms),
            html::duration(e.timestamp_ms.saturating_sub(start)),
            e.kind.type_name(),
            esc(&truncate(&event_detail(&e.kind), 160)),
        );
    }
    body.push_str("</tbody></table></section>");
}

/// The instance's durable values, sorted by key (read from the store's values table, not
/// the history).
fn values_table(body: &mut String, values: &std::collections::BTreeMap<String, String>) {
    if values.is_empty() {
        return;
    }
    body.push_str("<section id=\"values\"><h2>Values</h2><table><thead><tr><th>Key</th><th>Value</th></tr></thead><tbody>");
    for (key, value) in values {
        let _ = write!(
            body,
            "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
            esc(key),
            esc(&truncate(value, 2_000))
        );
    }
    body.push_str("</tbody></table></section>");
}

/// The fields of an event worth a glance, as text.
fn event_detail(kind: &EventKind) -> String {
    match kind {
        EventKind::OrchestrationStarted { name, version, input, .. } => {
            format!("{name} {version}, input {input}")
        }
        EventKind::OrchestrationCompleted { output } => format!("output {output}"),
        EventKind::OrchestrationFailed { details } => format!("{}: {}", details.category, details.message),
        EventKind::OrchestrationContinuedAsNew { input, version } => format!("as {version}, input {input}"),
        EventKind::OrchestrationCancelRequested { reason } => reason.clone(),
        EventKind::ActivityScheduled { name, input, .. } => format!("{name}, input {input}"),
        EventKind::ActivityCompleted { source_event_id, result }
        | EventKind::SubOrchestrationCompleted { source_event_id, result } => {
            format!("of #{source_event_id}: {result}")
        }
        EventKind::ActivityFailed { source_event_id, details }
        | EventKind::SubOrchestrationFailed { source_event_id, details } => {
            format!("of #{source_event_id}: {}: {}", details.category, details.message)
        }
        EventKind::ActivityCancelRequested { source_event_id }
        | EventKind::SubOrchestrationCancelRequested { source_event_id }
        | EventKind::ExternalUnsubscribed { source_event_id } => format!("of #{source_event_id}"),
        EventKind::TimerCreated { delay_ms, fire_at_ms, .. } => {
            format!("{}, fires at {}", html::duration(*delay_ms), html::time(*fire_at_ms))
        }
        EventKind::TimerFired { source_event_id, .. } => format!("of #{source_event_id}"),
        EventKind::ExternalSubscribed { name, .. } => name.clone(),
        EventKind::ExternalRaised { name, data } => format!("{name}: {data}"),
        EventKind::SubOrchestrationScheduled { name, instance, input, .. }
        | EventKind::OrchestrationChained { name, instance, input, .. } => {
            format!("{name} as {instance}, input {input}")
        }
        EventKind::SystemCall { op, value, .. } => format!("{op} = {value}"),
        EventKind::CustomStatusSet { status } => status.clone().unwrap_or_else(|| "(cleared)".into()),
        EventKind::ValueSet { key, value, .. } => format!("{key} = {value}"),
        EventKind::ValueCleared { key, .. } => format!("{key} cleared"),
        EventKind::ValuesCleared { .. } => "all values cleared".into(),
        EventKind::ValueReadScheduled { instance, key, .. } => format!("{key} of {instance}"),
        EventKind::ValuesCarried { values } => format!("{} values carried over", values.len()),
        EventKind::ValueReadCompleted { source_event_id, value } => {
            format!("of #{source_event_id}: {}", value.as_deref().unwrap_or("(not set)"))
        }
        EventKind::QueueSubscribed { queue, .. } => queue.clone(),
        EventKind::QueueMessageReceived { queue, data } => format!("{queue}: {data}"),
    }
}

/// `GET /instances/{id}/history.json`: the history export, replayable as it is.
pub(crate) async fn history_json(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    let params = Params::parse(raw.unwrap_or_default().as_bytes());
    params.only(&["execution"])?;
    let execution = params.number("execution", 1..=u64::MAX)?;
    let json = shared.client.export_history_json(&id, execution).await?;
    let file = format!("attachment; filename=\"history-{}.json\"", html::segment(&id));
    Ok(([(header::CONTENT_TYPE, "application/json".to_string()), (header::CONTENT_DISPOSITION, file)], json)
        .into_response())
}
