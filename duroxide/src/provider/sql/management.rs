//! The management calls, written once for both stores against [`SqlTx`]: filtered
//! listings with keyset pagination, counts, describe, history pages, delete (one tree, or
//! a bounded batch), pruning, termination and the store summary. Each store opens the
//! transaction (a consistent read, or its write transaction), runs one of these in it, and
//! sends its wake-ups after the commit.
//!
//! Every filter field has an index on both stores (see the migrations), so no call here
//! scans a table whose size grows with finished work; `tests/management_plans.rs` checks
//! the plans.

use super::rows::{Columns, execution_from_row, record_from_row};
use super::tx::{Dialect, SqlTx, Statement, Value};
use super::{ms, to_json};
use crate::history::{ErrorDetails, Event, EventKind, ParentLink};
use crate::provider::{
    ChildInstance, DeleteBatch, HistoryPage, InstanceCursor, InstanceDescription, InstanceFilter,
    InstancePage, InstanceState, ListOrder, OrchestratorMessage, PageRequest, PendingActivity, PendingTimer,
    ProviderError, PruneOptions, QueueDepth, QueuedMessage, StateCount, StoreSummary, TerminateOutcome,
};
use std::collections::BTreeSet;

/// The columns of an instance record, as `record_from_row` reads them.
const RECORD_COLUMNS: &str = "i.instance_id AS instance_id, i.name AS name, i.version AS version, \
     i.execution_id AS execution_id, i.state AS state, i.output AS output, i.error AS error, \
     i.custom_status AS custom_status, i.parent_instance AS parent_instance, \
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

/// One page of a listing.
pub(crate) async fn list_page<T: SqlTx>(
    tx: &mut T,
    filter: &InstanceFilter,
    page: &PageRequest,
) -> Result<InstancePage, ProviderError> {
    let limit = page.limit.max(1);
    let mut b = Builder::new(tx.dialect());
    b.push(&format!("SELECT {RECORD_COLUMNS} FROM instances i"));
    b.filter(filter);
    b.after(page.order, page.after.as_ref());
    b.push(order_sql(page.order));
    let l = b.bind(i64::from(limit) + 1);
    b.push(&format!(" LIMIT {l}"));
    let rows = tx.query(b.build()).await?;
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
    let mut b = Builder::new(tx.dialect());
    b.push("SELECT COUNT(*) AS n FROM instances i");
    b.filter(filter);
    let rows = tx.query(b.build()).await?;
    Ok(rows.first().map(|r| r.int("n")).transpose()?.unwrap_or(0) as u64)
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

/// Everything about one instance; run it in a transaction with one snapshot.
pub(crate) async fn describe<T: SqlTx>(
    tx: &mut T,
    instance: &str,
    now: u64,
) -> Result<Option<InstanceDescription>, ProviderError> {
    let Some(record) = tx.record(instance).await? else { return Ok(None) };
    let d = tx.dialect();
    let p1 = d.param(1);
    let lock =
        tx.rows(format!("SELECT locked_until FROM instances WHERE instance_id = {p1}"), instance).await?;
    let locked_until = lock.first().map(|r| r.int("locked_until")).transpose()?.unwrap_or(0) as u64;
    let sql = format!(
        "SELECT e.execution_id AS execution_id, e.version AS version, e.state AS state, \
         e.started_at AS started_at, e.updated_at AS updated_at, \
         (SELECT COUNT(*) FROM history h WHERE h.instance_id = e.instance_id AND h.execution_id = e.execution_id) AS n \
         FROM executions e WHERE e.instance_id = {p1} ORDER BY e.execution_id"
    );
    let mut executions = Vec::new();
    for r in tx.rows(sql, instance).await? {
        executions.push(execution_from_row(&r, r.int("n")? as u64)?);
    }
    let sql = format!(
        "SELECT execution_id, event_id, name, session_id, CAST(attempt_count AS BIGINT) AS attempts, visible_at, \
         lock_token, locked_until, locked_by, CASE WHEN {} THEN 0 ELSE 1 END AS cancelled \
         FROM worker_queue WHERE instance_id = {p1} ORDER BY id",
        d.not_cancelled
    );
    let mut pending_activities = Vec::new();
    for r in tx.rows(sql, instance).await? {
        let until = r.int("locked_until")? as u64;
        let held = r.opt_text("lock_token")?.is_some() && until > now;
        pending_activities.push(PendingActivity {
            execution_id: r.int("execution_id")? as u64,
            event_id: r.int("event_id")? as u64,
            name: r.text("name")?,
            session_id: r.opt_text("session_id")?,
            attempts: r.int("attempts")? as u32,
            visible_at_ms: r.int("visible_at")? as u64,
            locked_by: if held { r.opt_text("locked_by")? } else { None },
            locked_until_ms: held.then_some(until),
            cancel_requested: r.int("cancelled")? != 0,
        });
    }
    let sql = format!(
        "SELECT id, message, enqueued_at, visible_at, CAST(attempt_count AS BIGINT) AS attempts, lock_token \
         FROM orchestrator_queue WHERE instance_id = {p1} ORDER BY id"
    );
    let instance_locked = locked_until > now;
    let mut queued_messages = Vec::new();
    let mut pending_timers = Vec::new();
    for r in tx.rows(sql, instance).await? {
        let data = r.text("message")?;
        let message: OrchestratorMessage = serde_json::from_str(&data).map_err(|e| {
            ProviderError::Corrupt(format!("queued message {}: {e}", r.int("id").unwrap_or(0)))
        })?;
        if let OrchestratorMessage::TimerFired { execution_id, event_id, fire_at_ms } = &message {
            pending_timers.push(PendingTimer {
                execution_id: *execution_id,
                event_id: *event_id,
                fire_at_ms: *fire_at_ms,
            });
        }
        queued_messages.push(QueuedMessage {
            id: r.int("id")? as u64,
            message,
            enqueued_at_ms: r.int("enqueued_at")? as u64,
            visible_at_ms: r.int("visible_at")? as u64,
            attempts: r.int("attempts")? as u32,
            locked: instance_locked && r.opt_text("lock_token")?.is_some(),
        });
    }
    pending_timers.sort_by_key(|t| (t.fire_at_ms, t.event_id));
    let sql = format!(
        "SELECT instance_id, name, version, state FROM instances WHERE parent_instance = {p1} \
         ORDER BY created_at, instance_id"
    );
    let mut children = Vec::new();
    for r in tx.rows(sql, instance).await? {
        let state = r.text("state")?;
        children.push(ChildInstance {
            instance: r.text("instance_id")?,
            name: r.text("name")?,
            version: r.opt_text("version")?,
            state: InstanceState::parse(&state)
                .ok_or_else(|| ProviderError::Corrupt(format!("unknown instance state '{state}'")))?,
        });
    }
    Ok(Some(InstanceDescription {
        record,
        locked_until_ms: instance_locked.then_some(locked_until),
        executions,
        pending_activities,
        pending_timers,
        queued_messages,
        children,
    }))
}

/// A page of one execution's history (`None`: the current one).
pub(crate) async fn history_page<T: SqlTx>(
    tx: &mut T,
    instance: &str,
    execution_id: Option<u64>,
    after_event_id: u64,
    limit: u32,
) -> Result<HistoryPage, ProviderError> {
    let record =
        tx.record(instance).await?.ok_or_else(|| ProviderError::InstanceNotFound(instance.to_string()))?;
    let execution_id = execution_id.unwrap_or(record.execution_id);
    let limit = limit.max(1);
    let mut b = Builder::new(tx.dialect());
    let (i, e, a) = (b.bind(instance), b.bind(ms(execution_id)), b.bind(ms(after_event_id)));
    let l = b.bind(i64::from(limit) + 1);
    b.push(&format!(
        "SELECT event_id, data FROM history WHERE instance_id = {i} AND execution_id = {e} AND event_id > {a} \
         ORDER BY event_id LIMIT {l}"
    ));
    let rows = tx.query(b.build()).await?;
    let more = rows.len() > limit as usize;
    let mut events = Vec::with_capacity(rows.len().min(limit as usize));
    for r in rows.iter().take(limit as usize) {
        let id = r.int("event_id")?;
        let event: Event = serde_json::from_str(&r.text("data")?).map_err(|err| {
            ProviderError::Corrupt(format!("event {id} of execution {execution_id}: {err}"))
        })?;
        events.push(event);
    }
    let next_after_event_id = if more { events.last().map(|e| e.event_id) } else { None };
    Ok(HistoryPage { execution_id, events, next_after_event_id })
}

/// A member of an instance tree: its id and state.
struct Member {
    instance: String,
    state: InstanceState,
}

/// `root` and its sub-orchestrations, recursively, root first (empty when `root` does not
/// exist). Where the dialect says so, the rows are locked until the transaction ends.
async fn tree<T: SqlTx>(tx: &mut T, root: &str) -> Result<Vec<Member>, ProviderError> {
    let d = tx.dialect();
    let p1 = d.param(1);
    let sql = format!(
        "WITH RECURSIVE tree(instance_id, depth) AS (\
           SELECT instance_id, 0 FROM instances WHERE instance_id = {p1} \
           UNION SELECT c.instance_id, t.depth + 1 FROM instances c JOIN tree t ON c.parent_instance = t.instance_id \
           WHERE t.depth < 1000) \
         SELECT i.instance_id AS instance_id, i.state AS state FROM instances i JOIN tree t ON i.instance_id = t.instance_id \
         ORDER BY t.depth, i.instance_id{}",
        lock_suffix(d)
    );
    let rows = tx.rows(sql, root).await?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let instance = r.text("instance_id")?;
        if !seen.insert(instance.clone()) {
            continue;
        }
        let state = r.text("state")?;
        // An unreadable state counts as unfinished: it is never removed unforced.
        let state = InstanceState::parse(&state).unwrap_or(InstanceState::Running);
        out.push(Member { instance, state });
    }
    Ok(out)
}

/// `FOR UPDATE OF i` where rows are locked (PostgreSQL cannot lock the rows of a recursive
/// CTE, only those of the joined table).
fn lock_suffix(d: &Dialect) -> String {
    if d.for_update.is_empty() { String::new() } else { format!("{} OF i", d.for_update) }
}

/// Removes everything stored about `ids`, instance rows first (so no history trigger
/// touches a row that is about to go).
async fn remove<T: SqlTx>(tx: &mut T, ids: &[String]) -> Result<(), ProviderError> {
    for table in ["instances", "history", "executions", "orchestrator_queue", "worker_queue"] {
        for chunk in ids.chunks(500) {
            let mut b = Builder::new(tx.dialect());
            let ps: Vec<String> = chunk.iter().map(|id| b.bind(id)).collect();
            b.push(&format!("DELETE FROM {table} WHERE instance_id IN ({})", ps.join(", ")));
            tx.execute(b.build()).await?;
        }
    }
    Ok(())
}

/// Deletes `instance` and its sub-orchestrations; the ids removed, root first.
pub(crate) async fn delete_tree<T: SqlTx>(
    tx: &mut T,
    instance: &str,
    force: bool,
) -> Result<Vec<String>, ProviderError> {
    let members = tree(tx, instance).await?;
    if members.is_empty() {
        return Err(ProviderError::InstanceNotFound(instance.to_string()));
    }
    if !force && let Some(m) = members.iter().find(|m| !m.state.is_terminal()) {
        return Err(ProviderError::InstanceRunning(m.instance.clone()));
    }
    let ids: Vec<String> = members.into_iter().map(|m| m.instance).collect();
    remove(tx, &ids).await?;
    Ok(ids)
}

/// One batch of a bulk delete: the finished instances `filter` selects after `after`
/// (oldest first, at most `max`), each with its sub-orchestrations; one whose tree has an
/// unfinished member is skipped.
pub(crate) async fn delete_batch<T: SqlTx>(
    tx: &mut T,
    filter: &InstanceFilter,
    after: Option<&InstanceCursor>,
    max: u32,
) -> Result<DeleteBatch, ProviderError> {
    let max = max.max(1);
    let mut b = Builder::new(tx.dialect());
    b.push("SELECT i.instance_id AS instance_id, i.created_at AS created_at FROM instances i");
    b.filter(&crate::client::finished_only(filter));
    b.push(" AND i.state IN ('Completed', 'Failed')");
    b.after(ListOrder::OldestFirst, after);
    b.push(order_sql(ListOrder::OldestFirst));
    let l = b.bind(i64::from(max));
    b.push(&format!(" LIMIT {l}"));
    let candidates = tx.query(b.build()).await?;
    let mut removed: BTreeSet<String> = BTreeSet::new();
    let mut skipped = 0;
    let mut last = None;
    for r in &candidates {
        let id = r.text("instance_id")?;
        last = Some(InstanceCursor {
            order: ListOrder::OldestFirst,
            created_at_ms: r.int("created_at")? as u64,
            instance: id.clone(),
        });
        if removed.contains(&id) {
            continue;
        }
        let members = tree(tx, &id).await?;
        if members.is_empty() {
            continue;
        }
        if members.iter().any(|m| !m.state.is_terminal()) {
            skipped += 1;
            continue;
        }
        let ids: Vec<String> = members.into_iter().map(|m| m.instance).collect();
        remove(tx, &ids).await?;
        removed.extend(ids);
    }
    let next = if candidates.len() == max as usize { last } else { None };
    Ok(DeleteBatch { deleted: removed.len() as u64, skipped, next })
}

/// Removes old executions of `instance` as `options` says; how many.
pub(crate) async fn prune<T: SqlTx>(
    tx: &mut T,
    instance: &str,
    options: &PruneOptions,
) -> Result<u64, ProviderError> {
    let record =
        tx.record(instance).await?.ok_or_else(|| ProviderError::InstanceNotFound(instance.to_string()))?;
    let d = tx.dialect();
    let sql = format!(
        "SELECT execution_id, updated_at FROM executions WHERE instance_id = {} ORDER BY execution_id DESC",
        d.param(1)
    );
    let mut older = Vec::new();
    for r in tx.rows(sql, instance).await? {
        let e = r.int("execution_id")? as u64;
        if e != record.execution_id {
            older.push((e, r.int("updated_at")? as u64));
        }
    }
    // `older` is newest first; keep_last counts the current execution.
    let keep = options.keep_last.map_or(0, |k| k.saturating_sub(1) as usize);
    let doomed: Vec<u64> = older
        .iter()
        .enumerate()
        .filter(|(i, _)| options.keep_last.is_none() || *i >= keep)
        .filter(|(_, (_, updated))| options.finished_before_ms.is_none_or(|t| *updated < t))
        .map(|(_, (e, _))| *e)
        .collect();
    for chunk in doomed.chunks(500) {
        for table in ["history", "executions"] {
            let mut b = Builder::new(d);
            let i = b.bind(instance);
            let ps: Vec<String> = chunk.iter().map(|e| b.bind(ms(*e))).collect();
            b.push(&format!(
                "DELETE FROM {table} WHERE instance_id = {i} AND execution_id IN ({})",
                ps.join(", ")
            ));
            tx.execute(b.build()).await?;
        }
    }
    Ok(doomed.len() as u64)
}

/// What a termination changed, for the store's wake-ups after the commit.
pub(crate) struct Terminated {
    pub outcome: TerminateOutcome,
    /// The parent that was sent the failure, if any.
    pub parent_notified: Option<String>,
}

/// Terminates `instance` and its unfinished sub-orchestrations (see
/// `Provider::terminate_instance`).
pub(crate) async fn terminate<T: SqlTx>(
    tx: &mut T,
    instance: &str,
    reason: &str,
    now: u64,
) -> Result<Terminated, ProviderError> {
    let members = tree(tx, instance).await?;
    let Some(root) = members.first() else {
        return Err(ProviderError::InstanceNotFound(instance.to_string()));
    };
    if root.state.is_terminal() {
        return Ok(Terminated {
            outcome: TerminateOutcome::AlreadyFinished(root.state),
            parent_notified: None,
        });
    }
    let details = ErrorDetails::terminated(reason);
    let mut terminated = Vec::new();
    let mut parent_link = None;
    for (i, m) in members.iter().enumerate() {
        if m.state.is_terminal() {
            continue;
        }
        let link = end_execution(tx, &m.instance, &details, now).await?;
        if i == 0 {
            parent_link = link;
        }
        terminated.push(m.instance.clone());
    }
    let parent_notified = match parent_link {
        Some(link) => notify_parent(tx, link, &details, now).await?,
        None => None,
    };
    Ok(Terminated { outcome: TerminateOutcome::Terminated(terminated), parent_notified })
}

/// Fails one instance's current execution with `details`, drops its queues and unlocks
/// it; its parent link, if it has one.
async fn end_execution<T: SqlTx>(
    tx: &mut T,
    instance: &str,
    details: &ErrorDetails,
    now: u64,
) -> Result<Option<ParentLink>, ProviderError> {
    let d = tx.dialect();
    let record =
        tx.record(instance).await?.ok_or_else(|| ProviderError::InstanceNotFound(instance.to_string()))?;
    let mut link = None;
    if record.execution_id > 0 {
        let exec = ms(record.execution_id);
        let mut b = Builder::new(d);
        let (i, e) = (b.bind(instance), b.bind(exec));
        b.push(&format!(
            "SELECT COALESCE(MAX(event_id), 0) AS last, \
             (SELECT data FROM history WHERE instance_id = {i} AND execution_id = {e} AND event_id = 1) AS first \
             FROM history WHERE instance_id = {i} AND execution_id = {e}"
        ));
        let rows = tx.query(b.build()).await?;
        let (last_id, first) = match rows.first() {
            Some(r) => (r.int("last")? as u64, r.opt_text("first")?),
            None => (0, None),
        };
        if let Some(Ok(Event { kind: EventKind::OrchestrationStarted { parent, .. }, .. })) =
            first.map(|f| serde_json::from_str::<Event>(&f))
        {
            link = parent;
        }
        let event = Event {
            event_id: last_id + 1,
            timestamp_ms: now,
            kind: EventKind::OrchestrationFailed { details: details.clone() },
        };
        let mut b = Builder::new(d);
        let (i, e, id) = (b.bind(instance), b.bind(ms(record.execution_id)), b.bind(ms(event.event_id)));
        let (t, data) = (b.bind(event.kind.type_name()), b.bind(&to_json(&event)?));
        b.push(&format!(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, data) VALUES ({i}, {e}, {id}, {t}, {data})"
        ));
        tx.execute(b.build()).await?;
        let mut b = Builder::new(d);
        let (n, i, e) = (b.bind(ms(now)), b.bind(instance), b.bind(ms(record.execution_id)));
        b.push(&format!(
            "UPDATE executions SET state = 'Failed', updated_at = {n} WHERE instance_id = {i} AND execution_id = {e}"
        ));
        tx.execute(b.build()).await?;
    } else {
        // Never started: the parent link travels in the queued start message.
        let sql =
            format!("SELECT message FROM orchestrator_queue WHERE instance_id = {} ORDER BY id", d.param(1));
        for r in tx.rows(sql, instance).await? {
            if let Ok(OrchestratorMessage::StartOrchestration { parent: Some(p), .. }) =
                serde_json::from_str(&r.text("message")?)
            {
                link = Some(p);
            }
        }
    }
    let mut b = Builder::new(d);
    let (err, n, i) = (b.bind(&to_json(details)?), b.bind(ms(now)), b.bind(instance));
    b.push(&format!(
        "UPDATE instances SET state = 'Failed', output = NULL, error = {err}, status_note = NULL, \
         updated_at = {n}, lock_token = NULL, locked_until = 0 WHERE instance_id = {i}"
    ));
    tx.execute(b.build()).await?;
    for table in ["orchestrator_queue", "worker_queue"] {
        let p1 = d.param(1);
        tx.execute(Statement {
            sql: format!("DELETE FROM {table} WHERE instance_id = {p1}"),
            values: vec![Value::from(instance)],
        })
        .await?;
    }
    Ok(link)
}

/// Sends a waiting parent the child's failure (unless the parent has finished or is gone);
/// the parent's id when sent.
async fn notify_parent<T: SqlTx>(
    tx: &mut T,
    link: ParentLink,
    details: &ErrorDetails,
    now: u64,
) -> Result<Option<String>, ProviderError> {
    let Some(parent) = tx.record(&link.instance).await? else { return Ok(None) };
    if parent.state.is_terminal() {
        return Ok(None);
    }
    let message = OrchestratorMessage::SubOrchestrationFailed {
        execution_id: link.execution_id,
        event_id: link.event_id,
        details: details.clone(),
    };
    let mut b = Builder::new(tx.dialect());
    let (i, m, v) = (b.bind(&link.instance), b.bind(&to_json(&message)?), b.bind(ms(now)));
    b.push(&format!("INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) VALUES ({i}, {m}, {v}, {v})"));
    tx.execute(b.build()).await?;
    Ok(Some(link.instance))
}

/// Instances per state and queue depths at `now`.
pub(crate) async fn summary<T: SqlTx>(tx: &mut T, now: u64) -> Result<StoreSummary, ProviderError> {
    let by_state = count_by_state(tx, &InstanceFilter::default()).await?;
    let instances =
        [InstanceState::Pending, InstanceState::Running, InstanceState::Completed, InstanceState::Failed]
            .into_iter()
            .map(|state| StateCount {
                state,
                count: by_state.iter().find(|c| c.state == state).map_or(0, |c| c.count),
            })
            .collect();
    let d = tx.dialect();
    let mut b = Builder::new(d);
    let n = b.bind(ms(now));
    b.push(&format!(
        "SELECT \
           COALESCE(SUM(CASE WHEN visible_at <= {n} AND lock_token IS NULL THEN 1 ELSE 0 END), 0) AS ready, \
           COALESCE(SUM(CASE WHEN lock_token IS NOT NULL THEN 1 ELSE 0 END), 0) AS locked, \
           COALESCE(SUM(CASE WHEN visible_at > {n} AND lock_token IS NULL THEN 1 ELSE 0 END), 0) AS delayed, \
           MIN(CASE WHEN visible_at <= {n} AND lock_token IS NULL THEN visible_at END) AS oldest \
         FROM orchestrator_queue"
    ));
    let orchestrator_queue = depth(tx.query(b.build()).await?, now)?;
    let mut b = Builder::new(d);
    let n = b.bind(ms(now));
    let nc = d.not_cancelled;
    b.push(&format!(
        "SELECT \
           COALESCE(SUM(CASE WHEN visible_at <= {n} AND (lock_token IS NULL OR locked_until <= {n}) THEN 1 ELSE 0 END), 0) AS ready, \
           COALESCE(SUM(CASE WHEN lock_token IS NOT NULL AND locked_until > {n} THEN 1 ELSE 0 END), 0) AS locked, \
           COALESCE(SUM(CASE WHEN visible_at > {n} AND (lock_token IS NULL OR locked_until <= {n}) THEN 1 ELSE 0 END), 0) AS delayed, \
           MIN(CASE WHEN visible_at <= {n} AND (lock_token IS NULL OR locked_until <= {n}) THEN visible_at END) AS oldest \
         FROM worker_queue WHERE {nc}"
    ));
    let activity_queue = depth(tx.query(b.build()).await?, now)?;
    let mut b = Builder::new(d);
    let n = b.bind(ms(now));
    b.push(&format!("SELECT COUNT(*) AS n FROM sessions WHERE locked_until > {n}"));
    let sessions = tx.query(b.build()).await?.first().map(|r| r.int("n")).transpose()?.unwrap_or(0) as u64;
    Ok(StoreSummary { taken_at_ms: now, instances, orchestrator_queue, activity_queue, sessions })
}

fn depth(rows: Vec<impl Columns>, now: u64) -> Result<QueueDepth, ProviderError> {
    let Some(r) = rows.first() else { return Ok(QueueDepth::default()) };
    let oldest = r.opt_int("oldest")?;
    Ok(QueueDepth {
        ready: r.int("ready")? as u64,
        locked: r.int("locked")? as u64,
        delayed: r.int("delayed")? as u64,
        oldest_ready_age_ms: oldest.map(|t| now.saturating_sub(t as u64)),
    })
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
        assert!("order." >= "order.");
    }
}
