//! Read commands about instances: `list`, `show`, `history`. None of them writes.

use super::Context;
use crate::args::{HistoryArgs, ListArgs, ShowArgs};
use crate::error::CliError;
use crate::output::{Fields, Table, clip, print, print_json};
use crate::time::format_ms;
use duroxide::provider::{InstanceDescription, InstanceRecord, InstanceState, StateCount};
use serde::Serialize;

/// `list`: one page of instances, or (`--count`) how many match per state.
pub async fn list(ctx: &Context, a: ListArgs) -> Result<(), CliError> {
    let client = ctx.client().await?;
    let filter = a.filter.to_filter();
    if a.count {
        let by_state = client.count_instances_by_state(&filter).await?;
        let total = by_state.iter().map(|c| c.count).sum();
        if ctx.json {
            return print_json(&CountOutput { total, by_state });
        }
        let mut t = Table::new(&["STATE", "INSTANCES"]);
        for c in &by_state {
            t.row(vec![c.state.as_str().to_string(), c.count.to_string()]);
        }
        t.row(vec!["total".into(), total.to_string()]);
        return print(&t.render());
    }
    let page = client.list_instances_page(&filter, a.order.order(), a.limit, a.cursor.as_deref()).await?;
    if ctx.json {
        return print_json(&page);
    }
    if page.instances.is_empty() {
        return print("No instances match.\n");
    }
    let mut text = instance_table(&page.instances).render();
    if let Some(next) = &page.next_cursor {
        text.push_str(&format!("\nMore instances match: repeat the command with --cursor {next}\n"));
    }
    print(&text)
}

/// `list --count --json`.
#[derive(Serialize)]
struct CountOutput {
    total: u64,
    by_state: Vec<StateCount>,
}

/// The table `list` and `delete --dry-run` print.
pub fn instance_table(records: &[InstanceRecord]) -> Table {
    let mut t = Table::new(&["INSTANCE", "NAME", "VERSION", "STATE", "EXECUTION", "CREATED", "UPDATED"]);
    for r in records {
        t.row(vec![
            r.instance.clone(),
            r.name.clone(),
            r.version.clone().unwrap_or_else(|| "-".into()),
            state_text(r),
            r.execution_id.to_string(),
            format_ms(r.created_at_ms),
            format_ms(r.updated_at_ms),
        ]);
    }
    t
}

/// The state, with the kind of failure for failed instances (`Failed (cancelled)`).
pub fn state_text(r: &InstanceRecord) -> String {
    match (&r.state, &r.error) {
        (InstanceState::Failed, Some(e)) => format!("Failed ({})", e.category),
        (s, _) => s.as_str().to_string(),
    }
}

/// `show`: everything stored about one instance.
pub async fn show(ctx: &Context, a: ShowArgs) -> Result<(), CliError> {
    let client = ctx.client().await?;
    let d = client.describe_instance(&a.id).await?;
    // The durable values, from the store's values table (never the history).
    let values = client.values(&a.id).await?;
    if ctx.json {
        let mut json = serde_json::to_value(&d)
            .map_err(|e| CliError::refused(format!("cannot encode the output as JSON: {e}"), ""))?;
        if let Some(obj) = json.as_object_mut() {
            obj.insert("values".into(), serde_json::to_value(&values).unwrap_or_default());
        }
        return print_json(&json);
    }
    let mut out = describe_text(&d);
    let mut t = Table::new(&["KEY", "VALUE"]);
    for (k, v) in &values {
        t.row(vec![k.clone(), clip(v, 120)]);
    }
    section(&mut out, "Values", &t);
    print(&out)
}

fn describe_text(d: &InstanceDescription) -> String {
    let r = &d.record;
    let mut f = Fields::new();
    f.add("instance", r.instance.clone());
    f.add("name", r.name.clone());
    f.add("state", state_text(r));
    f.add("version", r.version.clone().unwrap_or_else(|| "- (not started)".into()));
    f.add_opt("duroxide version", r.duroxide_version.clone());
    f.add("execution", r.execution_id.to_string());
    f.add_opt("parent", r.parent_instance.clone());
    f.add("created", format_ms(r.created_at_ms));
    f.add("updated", format_ms(r.updated_at_ms));
    f.add_opt("custom status", r.custom_status.clone());
    f.add_opt("note", r.status_note.clone());
    f.add_opt("output", r.output.as_deref().map(|o| clip(o, 200)));
    f.add_opt("error", r.error.as_ref().map(|e| format!("{}: {}", e.category, clip(&e.message, 200))));
    f.add_opt("locked until", d.locked_until_ms.map(format_ms));
    let mut out = f.render();

    let mut t = Table::new(&["EXECUTION", "VERSION", "STATE", "EVENTS"]);
    for e in &d.executions {
        t.row(vec![
            e.execution_id.to_string(),
            e.version.clone(),
            e.state.as_str().into(),
            e.event_count.to_string(),
        ]);
    }
    section(&mut out, "Executions", &t);

    let mut t = Table::new(&[
        "EXECUTION",
        "EVENT",
        "ACTIVITY",
        "TAG",
        "SESSION",
        "ATTEMPTS",
        "VISIBLE",
        "LOCKED BY",
        "LOCKED UNTIL",
    ]);
    let mut unserved = std::collections::BTreeSet::new();
    for p in &d.pending_activities {
        let name = if p.cancel_requested { format!("{} (cancel requested)", p.name) } else { p.name.clone() };
        let mut tag = p.tag.clone().unwrap_or_else(|| "-".into());
        if p.served == Some(false) {
            tag.push_str(" (no live worker)");
            unserved
                .insert(p.tag.as_deref().map_or_else(|| "untagged work".to_string(), |t| format!("tag {t}")));
        }
        t.row(vec![
            p.execution_id.to_string(),
            p.event_id.to_string(),
            name,
            tag,
            p.session_id.clone().unwrap_or_else(|| "-".into()),
            p.attempts.to_string(),
            format_ms(p.visible_at_ms),
            p.locked_by.clone().unwrap_or_else(|| "-".into()),
            p.locked_until_ms.map(format_ms).unwrap_or_else(|| "-".into()),
        ]);
    }
    section(&mut out, "Pending activities", &t);
    for what in &unserved {
        out.push_str(&format!(
            "No live worker serves {what}: its activities wait until a node serving it starts \
             (see `duroxide workers`).\n"
        ));
    }

    let mut t = Table::new(&["EXECUTION", "EVENT", "FIRES"]);
    for p in &d.pending_timers {
        t.row(vec![p.execution_id.to_string(), p.event_id.to_string(), format_ms(p.fire_at_ms)]);
    }
    section(&mut out, "Pending timers", &t);

    let mut t = Table::new(&["ID", "MESSAGE", "ENQUEUED", "VISIBLE", "ATTEMPTS", "LOCKED"]);
    for m in &d.queued_messages {
        t.row(vec![
            m.id.to_string(),
            clip(&tagged_summary(&m.message), 70),
            format_ms(m.enqueued_at_ms),
            format_ms(m.visible_at_ms),
            m.attempts.to_string(),
            if m.locked { "yes".into() } else { "no".into() },
        ]);
    }
    section(&mut out, "Queued messages", &t);

    let mut t = Table::new(&["INSTANCE", "NAME", "VERSION", "STATE"]);
    for c in &d.children {
        t.row(vec![
            c.instance.clone(),
            c.name.clone(),
            c.version.clone().unwrap_or_else(|| "-".into()),
            c.state.as_str().into(),
        ]);
    }
    section(&mut out, "Sub-orchestrations", &t);
    out
}

/// Appends a titled table, or "title: none".
fn section(out: &mut String, title: &str, t: &Table) {
    if t.is_empty() {
        out.push_str(&format!("\n{title}: none\n"));
    } else {
        out.push_str(&format!("\n{title}\n{}", t.render()));
    }
}

/// A value serialized with a `type` tag (history events, queued messages) as
/// `Type key=value ...`.
fn tagged_summary<T: Serialize>(value: &T) -> String {
    let v = serde_json::to_value(value).unwrap_or_default();
    let kind = v.get("type").and_then(|t| t.as_str()).unwrap_or("?").to_string();
    let details = field_summary(&v);
    if details.is_empty() { kind } else { format!("{kind} {details}") }
}

/// The fields of a JSON object except `type` (and empty ones) as `key=value`, values cut
/// short.
fn field_summary(v: &serde_json::Value) -> String {
    let Some(obj) = v.as_object() else { return String::new() };
    obj.iter()
        .filter(|(k, v)| k.as_str() != "type" && !v.is_null())
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => format!("{s:?}"),
                other => other.to_string(),
            };
            format!("{k}={}", clip(&text, 60))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `history`: one execution's events; `--json` prints exactly the replayable export.
pub async fn history(ctx: &Context, a: HistoryArgs) -> Result<(), CliError> {
    let client = ctx.client().await?;
    if ctx.json {
        let json = client.export_history_json(&a.id, a.execution).await?;
        return print(&format!("{json}\n"));
    }
    let mut t = Table::new(&["EVENT", "TIME", "TYPE", "DETAILS"]);
    let mut after = 0;
    let mut execution = a.execution;
    loop {
        let page = client.read_history_page(&a.id, execution, after, 1_000).await?;
        execution = Some(page.execution_id);
        for e in &page.events {
            let details = field_summary(&serde_json::to_value(&e.kind).unwrap_or_default());
            t.row(vec![
                e.event_id.to_string(),
                format_ms(e.timestamp_ms),
                e.kind.type_name().into(),
                clip(&details, 120),
            ]);
        }
        match page.next_after_event_id {
            Some(next) => after = next,
            None => break,
        }
    }
    let header = format!("Instance {}, execution {}\n", a.id, execution.unwrap_or_default());
    if t.is_empty() {
        return print(&format!("{header}No events (the instance has not started).\n"));
    }
    print(&format!("{header}{}", t.render()))
}
