//! The per-instance management reads: describe (record, executions, pending work,
//! timers, messages, children) and history pages.

use super::Builder;
use crate::history::Event;
use crate::provider::sql::ms;
use crate::provider::sql::rows::{Columns, execution_from_row};
use crate::provider::sql::tx::SqlTx;
use crate::provider::{
    ChildInstance, HistoryPage, InstanceDescription, InstanceState, OrchestratorMessage, PendingActivity,
    PendingTimer, ProviderError, QueuedMessage,
};

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
        "SELECT execution_id, event_id, name, session_id, tag, CAST(attempt_count AS BIGINT) AS attempts, visible_at, \
         lock_token, locked_until, locked_by, CAST(CASE WHEN {} THEN 0 ELSE 1 END AS BIGINT) AS cancelled \
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
            tag: r.opt_text("tag")?,
            served: None,
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
