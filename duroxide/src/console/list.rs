//! The instance list (`/`): the management API's filters as a form, counts per state for
//! the filter, one page of instances, and a link to the next page (the listing's cursor).

use super::Shared;
use super::error::ConsoleError;
use super::html::{self, Base, Nav, esc, instance_link, state_badge, state_name, truncate};
use super::params::{Params, format_time};
use crate::provider::{InstanceFilter, InstanceRecord, InstanceState, ListOrder};
use axum::extract::{RawQuery, State};
use axum::response::Html;
use std::fmt::Write as _;
use std::time::SystemTime;

/// The parameters this page takes.
const PARAMETERS: &[&str] = &[
    "state",
    "name",
    "version",
    "parent",
    "prefix",
    "created_after",
    "created_before",
    "updated_after",
    "updated_before",
    "order",
    "limit",
    "cursor",
    "deleted",
];

/// The time filters: parameter, label.
const TIMES: [(&str, &str); 4] = [
    ("created_after", "Created after"),
    ("created_before", "Created before"),
    ("updated_after", "Updated after"),
    ("updated_before", "Updated before"),
];

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

/// A listing request, read from the query string.
struct ListQuery {
    filter: InstanceFilter,
    order: ListOrder,
    limit: u32,
    cursor: Option<String>,
    /// Ids an action just deleted, to say so.
    deleted: Option<String>,
    /// The filter parameters as given, to fill the form in again.
    given: Vec<(&'static str, String)>,
}

impl ListQuery {
    fn parse(params: &Params) -> Result<Self, ConsoleError> {
        params.only(PARAMETERS)?;
        let mut filter = InstanceFilter::default();
        for s in params.all("state") {
            let state = match s.to_ascii_lowercase().as_str() {
                "pending" => InstanceState::Pending,
                "running" => InstanceState::Running,
                "completed" => InstanceState::Completed,
                "failed" => InstanceState::Failed,
                _ => {
                    return Err(ConsoleError::bad(
                        "state",
                        format!("'{s}' is not a state; expected pending, running, completed or failed"),
                    ));
                }
            };
            filter = filter.state(state);
        }
        filter.name = params.one("name")?.map(str::to_string);
        filter.version = params.one("version")?.map(str::to_string);
        filter.parent = params.one("parent")?.map(str::to_string);
        filter.id_prefix = params.one("prefix")?.map(str::to_string);
        let now = SystemTime::now();
        filter.created_after_ms = params.time("created_after", now)?;
        filter.created_before_ms = params.time("created_before", now)?;
        filter.updated_after_ms = params.time("updated_after", now)?;
        filter.updated_before_ms = params.time("updated_before", now)?;
        let order = match params.one("order")? {
            None | Some("newest") => ListOrder::NewestFirst,
            Some("oldest") => ListOrder::OldestFirst,
            Some(other) => {
                return Err(ConsoleError::bad(
                    "order",
                    format!("'{other}' is not an order; expected newest or oldest"),
                ));
            }
        };
        let limit = params.number("limit", 1..=MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
        let mut given = Vec::new();
        for key in ["name", "version", "parent", "prefix"].into_iter().chain(TIMES.map(|(k, _)| k)) {
            if let Some(v) = params.one(key)? {
                given.push((key, v.to_string()));
            }
        }
        Ok(Self {
            filter,
            order,
            limit,
            cursor: params.one("cursor")?.map(str::to_string),
            deleted: params.one("deleted")?.map(str::to_string),
            given,
        })
    }

    fn given(&self, key: &str) -> &str {
        self.given.iter().find(|(k, _)| *k == key).map_or("", |(_, v)| v.as_str())
    }

    /// The query string of this listing with `states` instead of its own (times resolved,
    /// so the next page of "updated in the last 7d" is the same window), and `cursor`.
    fn query_string(&self, states: &[InstanceState], cursor: Option<&str>) -> String {
        let f = &self.filter;
        let mut pairs: Vec<(&str, String)> =
            states.iter().map(|s| ("state", state_name(*s).to_string())).collect();
        for (key, value) in
            [("name", &f.name), ("version", &f.version), ("parent", &f.parent), ("prefix", &f.id_prefix)]
        {
            if let Some(v) = value {
                pairs.push((key, v.clone()));
            }
        }
        for (key, value) in [
            ("created_after", f.created_after_ms),
            ("created_before", f.created_before_ms),
            ("updated_after", f.updated_after_ms),
            ("updated_before", f.updated_before_ms),
        ] {
            if let Some(ms) = value {
                pairs.push((key, format_time(ms)));
            }
        }
        if self.order == ListOrder::OldestFirst {
            pairs.push(("order", "oldest".into()));
        }
        if self.limit != DEFAULT_LIMIT {
            pairs.push(("limit", self.limit.to_string()));
        }
        if let Some(c) = cursor {
            pairs.push(("cursor", c.to_string()));
        }
        html::query(pairs.iter().map(|(k, v)| (*k, v.as_str())))
    }
}

/// `GET /`.
pub(crate) async fn page(
    State(shared): State<Shared>,
    base: Base,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, ConsoleError> {
    let q = ListQuery::parse(&Params::parse(raw.unwrap_or_default().as_bytes()))?;
    let client = &shared.client;
    let page = client.list_instances_page(&q.filter, q.order, q.limit, q.cursor.as_deref()).await?;
    let counts = client.count_instances_by_state(&q.filter).await?;

    let mut body = String::from("<h1>Instances</h1>");
    if let Some(deleted) = &q.deleted {
        let _ = write!(body, "<p class=\"notice\" id=\"notice\">Deleted {}.</p>", esc(deleted));
    }
    filter_form(&mut body, &base, &q);

    let total: u64 = counts.iter().map(|c| c.count).sum();
    let _ = write!(
        body,
        "<p class=\"counts\" id=\"counts\"><strong>{total}</strong> instance{} match{}",
        if total == 1 { "" } else { "s" },
        if total == 1 { "es" } else { "" }
    );
    for c in &counts {
        let _ = write!(
            body,
            " <a class=\"chip\" href=\"{}?{}\">{} {}</a>",
            base.root(),
            esc(&q.query_string(&[c.state], None)),
            state_badge(c.state),
            c.count
        );
    }
    body.push_str("</p>");

    if page.instances.is_empty() {
        body.push_str("<p class=\"empty\">No instance matches.</p>");
    } else {
        instance_table(&mut body, &base, &page.instances);
    }
    body.push_str("<nav class=\"pages\">");
    if q.cursor.is_some() {
        let _ = write!(
            body,
            "<a href=\"{}?{}\">First page</a>",
            base.root(),
            esc(&q.query_string(&q.filter.states, None))
        );
    }
    if let Some(next) = &page.next_cursor {
        let _ = write!(
            body,
            "<a id=\"next-page\" href=\"{}?{}\">Next page</a>",
            base.root(),
            esc(&q.query_string(&q.filter.states, Some(next)))
        );
    }
    body.push_str("</nav>");
    Ok(Html(html::page(&shared, &base, "Instances", Nav::Instances, &body)))
}

fn filter_form(body: &mut String, base: &Base, q: &ListQuery) {
    let _ = write!(
        body,
        "<form class=\"filters\" id=\"filters\" method=\"get\" action=\"{}\"><fieldset class=\"states\"><legend>State</legend>",
        base.root()
    );
    for state in
        [InstanceState::Pending, InstanceState::Running, InstanceState::Completed, InstanceState::Failed]
    {
        let name = state_name(state);
        let checked = if q.filter.states.contains(&state) { " checked" } else { "" };
        let _ = write!(
            body,
            "<label><input type=\"checkbox\" name=\"state\" value=\"{name}\"{checked}> {name}</label>"
        );
    }
    body.push_str("</fieldset><div class=\"fields\">");
    for (key, label, placeholder) in [
        ("name", "Orchestration", "name"),
        ("version", "Version", "1.0.0"),
        ("prefix", "Id starts with", "order-"),
        ("parent", "Parent instance", "id"),
    ] {
        let _ = write!(
            body,
            "<label>{label}<input type=\"text\" name=\"{key}\" value=\"{}\" placeholder=\"{placeholder}\"></label>",
            esc(q.given(key))
        );
    }
    for (key, label) in TIMES {
        let _ = write!(
            body,
            "<label>{label}<input type=\"text\" name=\"{key}\" value=\"{}\" placeholder=\"2026-12-01 or 7d\"></label>",
            esc(q.given(key))
        );
    }
    let oldest = if q.order == ListOrder::OldestFirst { " selected" } else { "" };
    let _ = write!(
        body,
        "<label>Order<select name=\"order\"><option value=\"newest\">newest first</option>\
         <option value=\"oldest\"{oldest}>oldest first</option></select></label>\
         <label>Per page<input type=\"number\" name=\"limit\" min=\"1\" max=\"{MAX_LIMIT}\" value=\"{}\"></label>\
         </div><div class=\"buttons\"><button type=\"submit\" id=\"apply-filters\">Filter</button> \
         <a href=\"{}\">Clear</a></div></form>",
        q.limit,
        base.root()
    );
}

/// The instances of a page as a table.
fn instance_table(body: &mut String, base: &Base, instances: &[InstanceRecord]) {
    body.push_str(
        "<table class=\"instances\" id=\"instances\"><thead><tr><th>Instance</th><th>Orchestration</th>\
         <th>Version</th><th>State</th><th>Created</th><th>Updated</th><th>Status or result</th></tr></thead><tbody>",
    );
    for r in instances {
        let detail = match r.state {
            InstanceState::Failed => r.error.as_ref().map(|e| e.message.clone()),
            InstanceState::Completed => r.output.clone(),
            _ => r.custom_status.clone().or_else(|| r.status_note.clone()),
        }
        .unwrap_or_default();
        let _ = write!(
            body,
            "<tr data-instance=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"detail\">{}</td></tr>",
            esc(&r.instance),
            instance_link(base, &r.instance),
            esc(&r.name),
            esc(r.version.as_deref().unwrap_or("-")),
            state_badge(r.state),
            html::time(r.created_at_ms),
            html::time(r.updated_at_ms),
            esc(&truncate(&detail, 80)),
        );
    }
    body.push_str("</tbody></table>");
}
