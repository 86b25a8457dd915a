//! The management calls, written once for both stores against [`SqlTx`]: filtered
//! listings with keyset pagination, counts, describe, history pages, delete (one tree, or
//! a bounded batch), pruning, termination and the store summary. Each store opens the
//! transaction (a consistent read, or its write transaction), runs one of these in it, and
//! sends its wake-ups after the commit.
//!
//! This file holds the statement builder (filters, cursors, order) and the listings and
//! counts; `describe` the per-instance reads, `removal` deletes and pruning, `terminate`
//! termination, `summary` the store summary, `workers` the runtimes' presence records.
//!
//! Every filter field has an index on both stores (see the migrations), so no call here
//! scans a table whose size grows with finished work; `tests/management_plans.rs` checks
//! the plans.

mod describe;
mod removal;
mod summary;
mod terminate;
mod workers;

pub(crate) use describe::{describe, history_page};
pub(crate) use removal::{delete_batch, delete_tree, prune};
pub(crate) use summary::summary;
pub(crate) use terminate::terminate;
pub(crate) use workers::{list_workers, record_worker, remove_worker};

use crate::provider::sql::ms;
use crate::provider::sql::rows::{Columns, record_from_row};
use crate::provider::sql::tx::{Dialect, SqlTx, Statement, Value};
use crate::provider::{
    InstanceCursor, InstanceFilter, InstancePage, InstanceState, ListOrder, PageRequest, ProviderError,
    QueryPlan, StateCount,
};

/// The columns of an instance record, as `record_from_row` reads them.
const RECORD_COLUMNS: &str = "i.instance_id AS instance_id, i.name AS name, i.version AS version, \
     i.execution_id AS execution_id, i.state AS state, i.output AS output, i.error AS error, \
     i.custom_status AS custom_status, i.custom_status_version AS custom_status_version, \
     i.parent_instance AS parent_instance, \
     i.duroxide_version AS duroxide_version, i.status_note AS status_note, i.created_at AS created_at, \
     i.updated_at AS updated_at";

/// A statement being built: SQL text and its parameters, numbered as they are added.
struct Builder {
    d: &'static Dialect,
    sql: String,
    values: Vec<Value>,
}

impl Builder {
    fn new(d: &'static Dialect) -> Self {
        Self { d, sql: String::new(), values: Vec::new() }
    }
    /// Adds a parameter; its placeholder.
    fn bind(&mut self, v: impl Into<Value>) -> String {
        self.values.push(v.into());
        self.d.param(self.values.len())
    }
    fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }
    fn build(self) -> Statement {
        Statement { sql: self.sql, values: self.values }
    }

    /// ` WHERE …` for `filter` on `instances i` (always a WHERE clause, `1 = 1` when the
    /// filter is empty, so callers can append `AND …`).
    fn filter(&mut self, filter: &InstanceFilter) {
        let mut parts = vec!["1 = 1".to_string()];
        // An update-time range is served by the (state, updated_at) index, so a filter
        // without states names all four.
        let all =
            [InstanceState::Pending, InstanceState::Running, InstanceState::Completed, InstanceState::Failed];
        let by_update = filter.updated_after_ms.is_some() || filter.updated_before_ms.is_some();
        let states: &[InstanceState] =
            if filter.states.is_empty() && by_update { &all } else { &filter.states };
        if !states.is_empty() {
            let ps: Vec<String> = states.iter().map(|s| self.bind(s.as_str())).collect();
            parts.push(format!("i.state IN ({})", ps.join(", ")));
        }
        if let Some(n) = &filter.name {
            parts.push(format!("i.name = {}", self.bind(n)));
        }
        if let Some(v) = &filter.version {
            parts.push(format!("i.version = {}", self.bind(v)));
        }
        if let Some(p) = &filter.parent {
            parts.push(format!("i.parent_instance = {}", self.bind(p)));
        }
        if let Some(prefix) = filter.id_prefix.as_deref().filter(|p| !p.is_empty()) {
            let b = self.d.bytewise;
            parts.push(format!("i.instance_id{b} >= {}", self.bind(prefix)));
            if let Some(upper) = prefix_upper_bound(prefix) {
                parts.push(format!("i.instance_id{b} < {}", self.bind(&upper)));
            }
        }
        let times = [
            ("i.created_at >=", filter.created_after_ms),
            ("i.created_at <", filter.created_before_ms),
            ("i.updated_at >=", filter.updated_after_ms),
            ("i.updated_at <", filter.updated_before_ms),
        ];
        for (cmp, t) in times {
            if let Some(t) = t {
                parts.push(format!("{cmp} {}", self.bind(ms(t))));
            }
        }
        self.sql.push_str(" WHERE ");
        self.sql.push_str(&parts.join(" AND "));
    }

    /// ` AND (created_at, instance_id)` past `after` in `order`.
    fn after(&mut self, order: ListOrder, after: Option<&InstanceCursor>) {
        if let Some(c) = after {
            let op = match order {
                ListOrder::NewestFirst => "<",
                ListOrder::OldestFirst => ">",
            };
            let t = self.bind(ms(c.created_at_ms));
            let id = self.bind(&c.instance);
            self.sql.push_str(&format!(" AND (i.created_at, i.instance_id) {op} ({t}, {id})"));
        }
    }
}

/// The smallest string greater than every string that starts with `prefix`, in code point
/// (UTF-8 byte) order: the prefix with its last character raised by one (`None` when
/// every character is the highest one).
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn order_sql(order: ListOrder) -> &'static str {
    match order {
        ListOrder::NewestFirst => " ORDER BY i.created_at DESC, i.instance_id DESC",
        ListOrder::OldestFirst => " ORDER BY i.created_at, i.instance_id",
    }
}

fn cursor_of(order: ListOrder, r: &crate::provider::InstanceRecord) -> InstanceCursor {
    InstanceCursor { order, created_at_ms: r.created_at_ms, instance: r.instance.clone() }
}

/// The statement of one listing page (one row more than the limit, to tell whether another
/// page follows).
pub(crate) fn list_statement(d: &'static Dialect, filter: &InstanceFilter, page: &PageRequest) -> Statement {
    let mut b = Builder::new(d);
    b.push(&format!("SELECT {RECORD_COLUMNS} FROM instances i"));
    b.filter(filter);
    b.after(page.order, page.after.as_ref());
    b.push(order_sql(page.order));
    let l = b.bind(i64::from(page.limit.max(1)) + 1);
    b.push(&format!(" LIMIT {l}"));
    b.build()
}

/// The statement that counts what `filter` selects.
pub(crate) fn count_statement(d: &'static Dialect, filter: &InstanceFilter) -> Statement {
    let mut b = Builder::new(d);
    b.push("SELECT COUNT(*) AS n FROM instances i");
    b.filter(filter);
    b.build()
}

/// One page of a listing.
pub(crate) async fn list_page<T: SqlTx>(
    tx: &mut T,
    filter: &InstanceFilter,
    page: &PageRequest,
) -> Result<InstancePage, ProviderError> {
    let limit = page.limit.max(1);
    let rows = tx.query(list_statement(tx.dialect(), filter, page)).await?;
    let mut instances = rows.iter().map(record_from_row).collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if instances.len() > limit as usize {
        instances.truncate(limit as usize);
        instances.last().map(|r| cursor_of(page.order, r).encode())
    } else {
        None
    };
    Ok(InstancePage { instances, next_cursor })
}

/// How many instances `filter` selects.
pub(crate) async fn count<T: SqlTx>(tx: &mut T, filter: &InstanceFilter) -> Result<u64, ProviderError> {
    let rows = tx.query(count_statement(tx.dialect(), filter)).await?;
    Ok(rows.first().map(|r| r.int("n")).transpose()?.unwrap_or(0) as u64)
}

/// The plans the database chooses for a listing page and a count with `filter`, each
/// statement prefixed with `explain` (`EXPLAIN QUERY PLAN` or `EXPLAIN`); the text of each
/// plan row, per statement.
pub(crate) async fn plans<T: SqlTx>(
    tx: &mut T,
    explain: &str,
    detail_column: &str,
    filter: &InstanceFilter,
) -> Result<Vec<QueryPlan>, ProviderError> {
    let d = tx.dialect();
    let page = PageRequest { order: ListOrder::NewestFirst, limit: 50, after: None };
    let mut out = Vec::new();
    for (what, mut statement) in
        [("list", list_statement(d, filter, &page)), ("count", count_statement(d, filter))]
    {
        let sql = statement.sql.clone();
        statement.sql = format!("{explain} {sql}");
        let rows = tx.query(statement).await?;
        let plan = rows.iter().map(|r| r.text(detail_column)).collect::<Result<Vec<_>, _>>()?;
        out.push(QueryPlan { query: what.to_string(), sql, plan });
    }
    Ok(out)
}

/// Counts per state, in the order of [`InstanceState`], states with none left out.
pub(crate) async fn count_by_state<T: SqlTx>(
    tx: &mut T,
    filter: &InstanceFilter,
) -> Result<Vec<StateCount>, ProviderError> {
    let mut b = Builder::new(tx.dialect());
    b.push("SELECT i.state AS state, COUNT(*) AS n FROM instances i");
    b.filter(filter);
    b.push(" GROUP BY i.state");
    let mut out = Vec::new();
    for r in tx.query(b.build()).await? {
        let state = r.text("state")?;
        match InstanceState::parse(&state) {
            Some(state) => out.push(StateCount { state, count: r.int("n")? as u64 }),
            None => tracing::warn!("instances with unknown state '{state}' left out of the counts"),
        }
    }
    out.sort_by_key(|c| state_rank(c.state));
    Ok(out)
}

fn state_rank(s: InstanceState) -> u8 {
    match s {
        InstanceState::Pending => 0,
        InstanceState::Running => 1,
        InstanceState::Completed => 2,
        InstanceState::Failed => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds_are_tight() {
        assert_eq!(prefix_upper_bound("order-"), Some("order.".into()));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_upper_bound("\u{D7FF}"), Some("\u{E000}".into()));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        for id in ["order-", "order-1", "order-\u{10FFFF}x"] {
            assert!(("order-".."order.").contains(&id), "{id}");
        }
        assert!(!("order-".."order.").contains(&"order."));
    }
}
