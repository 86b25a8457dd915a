//! Instance export and import, written once for both stores. The SQL differs only in
//! placeholders, the "insert unless present" form and boolean spelling, which a
//! [`Dialect`] supplies; each store runs the statements in its own transaction.

use super::rows::{Columns, execution_from_row};
use super::tx::{Dialect, SqlTx, Statement, Value};
use super::{ms, to_json};
use crate::provider::{
    ActivityWorkItem, ExecutionSnapshot, InstanceRecord, InstanceSnapshot, PendingMessage, ProviderError,
    version_key,
};

/// Everything stored about `instance`: its record, every execution with its history, its
/// pending messages and its activities nobody cancelled (unlocked: a lock does not travel).
pub(crate) async fn export<R: SqlTx>(
    reader: &mut R,
    instance: &str,
) -> Result<InstanceSnapshot, ProviderError> {
    let d = reader.dialect();
    let p1 = d.param(1);
    let record = reader
        .record(instance)
        .await?
        .ok_or_else(|| ProviderError::InstanceNotFound(instance.to_string()))?;
    let sql = format!(
        "SELECT execution_id, version, state, duroxide_version, started_at, updated_at FROM executions \
         WHERE instance_id = {p1} ORDER BY execution_id"
    );
    let execs = reader.rows(sql, instance).await?;
    let mut executions = Vec::with_capacity(execs.len());
    for r in execs {
        let execution_id = r.int("execution_id")? as u64;
        let (history, err, len) = reader.history(instance, execution_id).await?;
        if let Some(e) = err {
            return Err(ProviderError::Corrupt(e));
        }
        executions.push(ExecutionSnapshot {
            record: execution_from_row(&r, len)?,
            duroxide_version: r.text("duroxide_version")?,
            history,
        });
    }
    let sql =
        format!("SELECT message, visible_at FROM orchestrator_queue WHERE instance_id = {p1} ORDER BY id");
    let mut messages = Vec::new();
    for r in reader.rows(sql, instance).await? {
        let data = r.text("message")?;
        messages.push(PendingMessage {
            message: serde_json::from_str(&data)
                .map_err(|e| ProviderError::Corrupt(format!("queued message: {e}")))?,
            visible_at_ms: r.int("visible_at")? as u64,
        });
    }
    let sql = format!(
        "SELECT execution_id, event_id, name, input, attempt_count, session_id, tag, orchestration_name, \
         orchestration_version FROM worker_queue \
         WHERE instance_id = {p1} AND {} ORDER BY id",
        d.not_cancelled
    );
    let mut activities = Vec::new();
    for r in reader.rows(sql, instance).await? {
        activities.push(ActivityWorkItem {
            instance: instance.to_string(),
            execution_id: r.int("execution_id")? as u64,
            event_id: r.int("event_id")? as u64,
            name: r.text("name")?,
            input: r.text("input")?,
            session_id: r.opt_text("session_id")?,
            lock_token: String::new(),
            attempt: R::attempt(&r)?,
            session_claimed: false,
            visible_at_ms: 0,
            tag: r.opt_text("tag")?,
            orchestration_name: r.opt_text("orchestration_name")?.unwrap_or_default(),
            orchestration_version: r.opt_text("orchestration_version")?.unwrap_or_default(),
        });
    }
    let sql = format!("SELECT key, value FROM instance_values WHERE instance_id = {p1}");
    let mut values = std::collections::BTreeMap::new();
    for r in reader.rows(sql, instance).await? {
        values.insert(r.text("key")?, r.text("value")?);
    }
    Ok(InstanceSnapshot { record, executions, messages, activities, values })
}

/// Recreates `snapshot` in `tx`; [`ProviderError::InstanceExists`] when the instance exists.
pub(crate) async fn import<T: SqlTx>(
    tx: &mut T,
    snapshot: &InstanceSnapshot,
    now: u64,
) -> Result<(), ProviderError> {
    for (i, statement) in import_statements(tx.dialect(), snapshot, now)?.into_iter().enumerate() {
        if tx.execute(statement).await? == 0 && i == 0 {
            return Err(ProviderError::InstanceExists(snapshot.record.instance.clone()));
        }
    }
    Ok(())
}

/// `t`, or `now` for a time an older export did not carry (0).
fn known_or(t: u64, now: u64) -> u64 {
    if t == 0 { now } else { t }
}

/// The statements that recreate `snapshot`, in order: the instance row first (an insert
/// that skips an existing instance, so the caller reports `InstanceExists` when it
/// affected no row), then executions with their histories, messages and activities.
fn import_statements(
    d: &Dialect,
    snapshot: &InstanceSnapshot,
    now: u64,
) -> Result<Vec<Statement>, ProviderError> {
    let id = &snapshot.record.instance;
    let mut out = vec![instance_statement(d, &snapshot.record, now)?];
    for e in &snapshot.executions {
        out.push(Statement {
            sql: format!(
                "INSERT INTO executions (instance_id, execution_id, version, state, duroxide_version, \
                 started_at, updated_at) VALUES ({})",
                d.params(7)
            ),
            values: vec![
                id.into(),
                ms(e.record.execution_id).into(),
                (&e.record.version).into(),
                e.record.state.as_str().into(),
                (&e.duroxide_version).into(),
                ms(known_or(e.record.started_at_ms, now)).into(),
                ms(known_or(e.record.updated_at_ms, now)).into(),
            ],
        });
        for ev in &e.history {
            out.push(Statement {
                sql: format!(
                    "INSERT INTO history (instance_id, execution_id, event_id, event_type, data) VALUES ({})",
                    d.params(5)
                ),
                values: vec![
                    id.into(),
                    ms(e.record.execution_id).into(),
                    ms(ev.event_id).into(),
                    ev.kind.type_name().into(),
                    Value::Text(Some(to_json(ev)?)),
                ],
            });
        }
    }
    for m in &snapshot.messages {
        out.push(Statement {
            sql: format!(
                "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) VALUES ({})",
                d.params(4)
            ),
            values: vec![
                id.into(),
                Value::Text(Some(to_json(&m.message)?)),
                ms(m.visible_at_ms).into(),
                ms(now).into(),
            ],
        });
    }
    out.extend(snapshot.activities.iter().map(|a| activity_statement(d, id, a, now)));
    out.extend(snapshot.values.iter().map(|(key, value)| Statement {
        sql: format!(
            "INSERT INTO instance_values (instance_id, key, value, updated_at) VALUES ({})",
            d.params(4)
        ),
        values: vec![id.into(), key.into(), value.into(), ms(now).into()],
    }));
    Ok(out)
}

/// The instance row, unless one with its id exists.
fn instance_statement(d: &Dialect, r: &InstanceRecord, now: u64) -> Result<Statement, ProviderError> {
    let error = r.error.as_ref().map(to_json).transpose()?;
    let dv_key =
        r.duroxide_version.as_deref().and_then(|v| semver::Version::parse(v).ok()).map(|v| version_key(&v));
    Ok(Statement {
        sql: format!(
            "{} instances (instance_id, name, version, execution_id, state, output, error, \
             custom_status, parent_instance, duroxide_version, duroxide_version_key, status_note, \
             created_at, updated_at, custom_status_version) VALUES ({}){}",
            d.insert_ignore,
            d.params(15),
            d.ignore_suffix
        ),
        values: vec![
            (&r.instance).into(),
            (&r.name).into(),
            (&r.version).into(),
            ms(r.execution_id).into(),
            r.state.as_str().into(),
            (&r.output).into(),
            Value::Text(error),
            (&r.custom_status).into(),
            (&r.parent_instance).into(),
            (&r.duroxide_version).into(),
            Value::Int(dv_key),
            (&r.status_note).into(),
            ms(r.created_at_ms).into(),
            ms(now).into(),
            ms(r.custom_status_version).into(),
        ],
    })
}

/// A queued activity, unlocked (a lock does not travel), its attempts kept.
fn activity_statement(d: &Dialect, instance: &str, a: &ActivityWorkItem, now: u64) -> Statement {
    Statement {
        sql: format!(
            "INSERT INTO worker_queue (instance_id, execution_id, event_id, name, input, visible_at, \
             attempt_count, session_id, tag, orchestration_name, orchestration_version) VALUES ({})",
            d.params(11)
        ),
        values: vec![
            instance.into(),
            ms(a.execution_id).into(),
            ms(a.event_id).into(),
            (&a.name).into(),
            (&a.input).into(),
            ms(now).into(),
            (d.attempt)(a.attempt),
            (&a.session_id).into(),
            (&a.tag).into(),
            (&a.orchestration_name).into(),
            (&a.orchestration_version).into(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::InstanceState;

    const NUMBERED: Dialect = Dialect {
        numbered: true,
        insert_ignore: "INSERT INTO",
        ignore_suffix: " ON CONFLICT (instance_id) DO NOTHING",
        not_cancelled: "NOT cancel_requested",
        attempt: |a| Value::Int32(a as i32),
        bytewise: "",
        for_update: "",
    };
    const POSITIONAL: Dialect = Dialect {
        numbered: false,
        insert_ignore: "INSERT OR IGNORE INTO",
        ignore_suffix: "",
        not_cancelled: "cancel_requested = 0",
        attempt: |a| Value::Int(Some(i64::from(a))),
        bytewise: "",
        for_update: "",
    };

    fn snapshot() -> InstanceSnapshot {
        let record = InstanceRecord {
            instance: "i-1".into(),
            name: "Flow".into(),
            version: Some("1.0.0".into()),
            execution_id: 1,
            state: InstanceState::Running,
            output: None,
            error: None,
            custom_status: None,
            custom_status_version: 0,
            parent_instance: None,
            duroxide_version: Some("0.1.0".into()),
            status_note: None,
            created_at_ms: 5,
            updated_at_ms: 6,
        };
        let activity = ActivityWorkItem {
            instance: "i-1".into(),
            execution_id: 1,
            event_id: 2,
            name: "Act".into(),
            input: "in".into(),
            session_id: None,
            lock_token: String::new(),
            attempt: 3,
            session_claimed: false,
            visible_at_ms: 0,
            tag: Some("gpu".into()),
            orchestration_name: "Flow".into(),
            orchestration_version: "1.0.0".into(),
        };
        InstanceSnapshot {
            record,
            executions: Vec::new(),
            messages: Vec::new(),
            activities: vec![activity],
            values: Default::default(),
        }
    }

    #[test]
    fn placeholders_follow_the_dialect() {
        assert_eq!(NUMBERED.params(3), "$1, $2, $3");
        assert_eq!(POSITIONAL.params(3), "?1, ?2, ?3");
    }

    #[test]
    fn import_starts_with_the_instance_and_binds_every_placeholder() {
        for d in [&NUMBERED, &POSITIONAL] {
            let statements = import_statements(d, &snapshot(), 9).unwrap();
            assert_eq!(statements.len(), 2);
            assert!(statements[0].sql.starts_with(d.insert_ignore), "{}", statements[0].sql);
            assert!(statements[0].sql.ends_with(&format!("){}", d.ignore_suffix)), "{}", statements[0].sql);
            for st in &statements {
                let placeholders =
                    if d.numbered { st.sql.matches('$').count() } else { st.sql.matches('?').count() };
                assert_eq!(placeholders, st.values.len(), "{}", st.sql);
            }
        }
        let statements = import_statements(&NUMBERED, &snapshot(), 9).unwrap();
        assert!(matches!(statements[1].values[6], Value::Int32(3)));
    }
}
