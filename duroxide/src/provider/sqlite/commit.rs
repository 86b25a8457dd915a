//! The statements of a durable write: an instance start, or a turn guarded by its lock
//! token (history, state, activities, messages to itself and to other instances). How
//! writes are grouped and committed lives in `group`.

use super::*;

/// Appends a write's statements to a batch. Every statement is guarded by
/// the write's condition, so a write that cannot happen changes nothing: a turn's by its
/// lock (held until its last statement, the instance update, releases it), a start's by its
/// instance id being free. The write's instance row comes back tagged 'r' (see
/// `batched_result`).
pub(super) fn push_write(batch: &mut Batch, write: &DurableWrite, now: u64) -> Result<(), ProviderError> {
    match write {
        DurableWrite::Create { instance, name, version, input } => {
            let msg = to_json(&OrchestratorMessage::StartOrchestration {
                name: name.to_string(),
                version: version.clone(),
                input: input.to_string(),
                parent: None,
            })?;
            let q = batch.stmt(
                "INSERT INTO instances (instance_id, name, version, state, parent_instance, created_at, updated_at) VALUES (",
            );
            q.separated(", ")
                .push_bind(instance.clone())
                .push_bind(name.clone())
                .push_bind(version.clone())
                .push_bind("Pending")
                .push_bind(None::<String>)
                .push_bind(ms(now))
                .push_bind(ms(now));
            q.push(format!(
                ") ON CONFLICT (instance_id) DO NOTHING RETURNING 'r' AS tag, {INSTANCE_COLUMNS}"
            ));
            // Only if the instance was inserted (by the statement just before).
            let q = batch.stmt(
                "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) SELECT ",
            );
            q.separated(", ")
                .push_bind(instance.clone())
                .push_bind(msg)
                .push_bind(ms(now))
                .push_bind(ms(now));
            q.push(" WHERE changes() = 1");
        }
        DurableWrite::Turn { lock_token, commit } => push_guarded_turn(batch, lock_token, commit, now)?,
    }
    Ok(())
}

/// A turn (see `Provider::commit_turn`) as guarded statements (see `push_write`).
pub(super) fn push_guarded_turn(
    batch: &mut Batch,
    lock_token: &str,
    commit: &TurnCommit,
    now: u64,
) -> Result<(), ProviderError> {
    let tok = lock_token.to_string();
    let started = turn_started(commit);
    push_history(batch, &tok, commit)?;
    super::values::push_values(batch, &tok, commit, now);
    push_execution(batch, &tok, commit, started.as_ref(), now);
    push_activities(batch, &tok, commit, now);
    push_cancellations(batch, &tok, commit, now);
    let q = batch.stmt("DELETE FROM orchestrator_queue WHERE lock_token = ");
    q.push_bind(tok.clone())
        .push(" AND EXISTS (SELECT 1 FROM instances WHERE lock_token = ")
        .push_bind(tok.clone());
    q.push(")");
    // After the delete above, so none of them is taken for a consumed message.
    push_guarded_messages(batch, &tok, commit, now)?;
    // Last: the instance row, which releases the lock.
    push_instance_update(batch, tok, commit, started.as_ref(), now)
}

/// The turn's events, 100 rows a statement.
fn push_history(batch: &mut Batch, tok: &str, commit: &TurnCommit) -> Result<(), ProviderError> {
    let exec = ms(commit.execution_id);
    for chunk in commit.new_events.chunks(100) {
        let q = batch.stmt(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, data) \
             SELECT i.instance_id, v.column1, v.column2, v.column3, v.column4 FROM instances i, (",
        );
        let mut rows = Vec::with_capacity(chunk.len());
        for e in chunk {
            rows.push((ms(e.event_id), e.kind.type_name(), to_json(e)?));
        }
        q.push_values(rows, |mut b, (id, ty, json)| {
            b.push_bind(exec).push_bind(id).push_bind(ty).push_bind(json);
        });
        q.push(") v WHERE i.lock_token = ").push_bind(tok.to_string());
    }
    Ok(())
}

/// The execution row: created by the turn that started the execution, otherwise updated
/// when the turn ended it.
fn push_execution(
    batch: &mut Batch,
    tok: &str,
    commit: &TurnCommit,
    started: Option<&(String, String)>,
    now: u64,
) {
    let exec = ms(commit.execution_id);
    let exec_state = execution_state(commit);
    if let Some((version, dv)) = started {
        let q = batch.stmt(
            "INSERT INTO executions (instance_id, execution_id, version, state, duroxide_version, started_at, updated_at) \
             SELECT i.instance_id, ",
        );
        q.separated(", ")
            .push_bind(exec)
            .push_bind(version.clone())
            .push_bind(exec_state.as_str())
            .push_bind(dv.clone())
            .push_bind(ms(now))
            .push_bind(ms(now));
        q.push(" FROM instances i WHERE i.lock_token = ").push_bind(tok.to_string());
    } else if !commit.new_events.is_empty() && exec_state != InstanceState::Running {
        let q = batch.stmt("UPDATE executions SET state = ");
        q.push_bind(exec_state.as_str()).push(", updated_at = ").push_bind(ms(now));
        q.push(" WHERE execution_id = ").push_bind(exec);
        q.push(" AND instance_id = (SELECT instance_id FROM instances WHERE lock_token = ")
            .push_bind(tok.to_string());
        q.push(")");
    }
}

/// The activities the turn scheduled, 100 rows a statement; an activity with a lock token
/// is handed straight to a worker of this node: stored locked, its first attempt counted.
fn push_activities(batch: &mut Batch, tok: &str, commit: &TurnCommit, now: u64) {
    let locked_until = ms(now + commit.activity_lock_timeout.as_millis() as u64);
    for chunk in commit.activities.chunks(100) {
        let q = batch.stmt(
            "INSERT OR IGNORE INTO worker_queue (instance_id, execution_id, event_id, name, input, visible_at, \
             session_id, lock_token, locked_until, attempt_count, tag, orchestration_name, orchestration_version) \
             SELECT i.instance_id, v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, \
             v.column8, v.column9, v.column10, v.column11, v.column12 FROM instances i, (",
        );
        q.push_values(chunk, |mut b, a| {
            let eager = !a.lock_token.is_empty();
            b.push_bind(ms(a.execution_id))
                .push_bind(ms(a.event_id))
                .push_bind(a.name.clone())
                .push_bind(a.input.clone())
                .push_bind(ms(now))
                .push_bind(a.session_id.clone())
                .push_bind(eager.then(|| a.lock_token.clone()))
                .push_bind(if eager { locked_until } else { 0 })
                .push_bind(i64::from(eager))
                .push_bind(a.tag.clone())
                .push_bind(a.orchestration_name.clone())
                .push_bind(a.orchestration_version.clone());
        });
        q.push(") v WHERE i.lock_token = ").push_bind(tok.to_string());
    }
}

/// Cancelled activities: queued work is dropped; running work is flagged so its lock
/// renewal fails.
fn push_cancellations(batch: &mut Batch, tok: &str, commit: &TurnCommit, now: u64) {
    let exec = ms(commit.execution_id);
    for id in &commit.cancelled_activities {
        let q = batch.stmt("DELETE FROM worker_queue WHERE instance_id = (SELECT instance_id FROM instances WHERE lock_token = ");
        q.push_bind(tok.to_string()).push(") AND execution_id = ").push_bind(exec);
        q.push(" AND event_id = ").push_bind(ms(*id));
        q.push(" AND (lock_token IS NULL OR locked_until <= ").push_bind(ms(now)).push(")");
        let q = batch.stmt(
            "UPDATE worker_queue SET cancel_requested = 1 WHERE instance_id = (SELECT instance_id FROM instances WHERE lock_token = ",
        );
        q.push_bind(tok.to_string()).push(") AND execution_id = ").push_bind(exec);
        q.push(" AND event_id = ").push_bind(ms(*id));
    }
}

/// The instance row after the turn, which releases the lock; returns the row tagged 'r'.
fn push_instance_update(
    batch: &mut Batch,
    tok: String,
    commit: &TurnCommit,
    started: Option<&(String, String)>,
    now: u64,
) -> Result<(), ProviderError> {
    let exec = ms(commit.execution_id);
    let u = &commit.update;
    let (set_cs, cs) = match &u.custom_status {
        Some(v) => (1, v.clone()),
        None => (0, None),
    };
    let q = batch.stmt("UPDATE instances SET name = ");
    q.push_bind(u.name.clone()).push(", version = ").push_bind(u.version.clone());
    q.push(", execution_id = ").push_bind(commit.next_execution_id.map(ms).unwrap_or(exec));
    q.push(", state = ").push_bind(u.state.as_str()).push(", output = ").push_bind(u.output.clone());
    q.push(", error = ").push_bind(u.error.as_ref().map(to_json).transpose()?);
    q.push(", custom_status = CASE WHEN ").push_bind(set_cs).push(" = 1 THEN ").push_bind(cs);
    q.push(" ELSE custom_status END, custom_status_version = custom_status_version + ");
    q.push_bind(ms(commit.status_changes()));
    q.push(", duroxide_version = COALESCE(");
    q.push_bind(started.map(|(_, dv)| dv.clone()));
    q.push(", duroxide_version), duroxide_version_key = COALESCE(");
    q.push_bind(started.and_then(|(_, dv)| semver::Version::parse(dv).ok()).map(|v| version_key(&v)));
    q.push(", duroxide_version_key), status_note = NULL, updated_at = ").push_bind(ms(now));
    q.push(", lock_token = NULL, locked_until = 0 WHERE lock_token = ").push_bind(tok);
    q.push(format!(" RETURNING 'r' AS tag, {INSTANCE_COLUMNS}"));
    Ok(())
}

/// A turn's messages as guarded statements: each only if the lock is held and its target
/// exists (a delivered one returns a row tagged 'm' with its index `k`). A sub-orchestration
/// start creates the child instance and its start message, or, when the id is taken,
/// sends the parent the start-conflict reply (`start_conflict_reply`); a detached start to
/// a taken id is skipped.
pub(super) fn push_guarded_messages(
    batch: &mut Batch,
    tok: &str,
    commit: &TurnCommit,
    now: u64,
) -> Result<(), ProviderError> {
    let held = |q: &mut sqlx::QueryBuilder<Sqlite>| {
        q.push(" AND EXISTS (SELECT 1 FROM instances WHERE lock_token = ").push_bind(tok.to_string());
        q.push(")");
    };
    for (k, m) in commit.messages.iter().enumerate() {
        let visible = ms(m.visible_at_ms.unwrap_or(now));
        if let OrchestratorMessage::StartOrchestration { name, version, parent, .. } = &m.message {
            let q = batch.stmt(
                "INSERT OR IGNORE INTO instances (instance_id, name, version, state, parent_instance, created_at, updated_at) SELECT ",
            );
            q.separated(", ")
                .push_bind(m.instance.clone())
                .push_bind(name.clone())
                .push_bind(version.clone())
                .push_bind("Pending")
                .push_bind(parent.as_ref().map(|p| p.instance.clone()))
                .push_bind(ms(now))
                .push_bind(ms(now));
            q.push(" WHERE 1 = 1");
            held(q);
            // The start message only if the child was just inserted (the statement before);
            let q = batch.stmt(
                "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) SELECT ",
            );
            q.separated(", ")
                .push_bind(m.instance.clone())
                .push_bind(to_json(&m.message)?)
                .push_bind(visible)
                .push_bind(ms(now));
            q.push(" WHERE changes() = 1 RETURNING 'm' AS tag, ").push_bind(k as i64).push(" AS k");
            // the reply only if the start message was not (the child existed) and the lock
            // is held (otherwise nothing at all happened). A detached start has no one to
            // reply to (`batched_result` logs it).
            if parent.is_some()
                && let Some(reply) = start_conflict_reply(m)
            {
                let q = batch.stmt(
                    "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) SELECT ",
                );
                q.separated(", ")
                    .push_bind(reply.instance.clone())
                    .push_bind(to_json(&reply.message)?)
                    .push_bind(ms(now))
                    .push_bind(ms(now));
                q.push(" WHERE changes() = 0");
                held(q);
            }
            continue;
        }
        let q = batch
            .stmt("INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) SELECT ");
        q.separated(", ")
            .push_bind(m.instance.clone())
            .push_bind(to_json(&m.message)?)
            .push_bind(visible)
            .push_bind(ms(now));
        q.push(" WHERE EXISTS (SELECT 1 FROM instances WHERE instance_id = ").push_bind(m.instance.clone());
        q.push(")");
        held(q);
        q.push(" RETURNING 'm' AS tag, ").push_bind(k as i64).push(" AS k");
    }
    Ok(())
}

/// The version and duroxide version a turn starts its execution with, if it does.
pub(super) fn turn_started(commit: &TurnCommit) -> Option<(String, String)> {
    commit.new_events.iter().find_map(|e| match &e.kind {
        EventKind::OrchestrationStarted { version, duroxide_version, .. } => {
            Some((version.clone(), duroxide_version.clone()))
        }
        _ => None,
    })
}

/// The state of the execution a turn wrote to.
pub(super) fn execution_state(commit: &TurnCommit) -> InstanceState {
    match commit.update.state {
        InstanceState::Completed | InstanceState::Failed => commit.update.state,
        _ if commit.next_execution_id.is_some() => InstanceState::Completed,
        _ => InstanceState::Running,
    }
}
