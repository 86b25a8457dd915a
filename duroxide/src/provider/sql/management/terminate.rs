//! Termination: the unfinished members of an instance tree failed with category
//! `Terminated`, their queues dropped, and a waiting parent told.

use super::Builder;
use super::removal::tree;
use crate::history::{ErrorDetails, Event, EventKind, ParentLink};
use crate::provider::sql::rows::Columns;
use crate::provider::sql::tx::{SqlTx, Statement, Value};
use crate::provider::sql::{ms, to_json};
use crate::provider::{OrchestratorMessage, ProviderError, TerminateOutcome};

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
