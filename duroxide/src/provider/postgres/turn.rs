//! The turn commit in one statement: the common turn (events, state, activities, messages
//! to instances that exist; no sub-orchestration start, value write or cancellation) is
//! written by a single SQL statement, so it costs one round trip and one commit instead of
//! a transaction of eight. Other turns take the transaction in `commit`.
//!
//! Every part of the statement hangs on `held`, the instance the lock token still locks
//! (row-locked for the statement): when the lock was lost, nothing is written and the
//! caller gets `LockLost`. A failing part (a duplicate event id) fails the whole statement,
//! which is its own transaction.

use super::commit::{TurnEffects, TurnState, bind_activities};
use super::*;

/// `$1` lock token; `$2` execution; `$3` now; `$4`..`$18` the turn state (see
/// `turn_state_ctes!` and `turn_instance_update!`, shared with the transaction path);
/// `$19`..`$21` events (ids, types, JSON); `$22`..`$32` activities (as in
/// `ENQUEUE_ACTIVITIES_SQL`, visible at `$3`); `$33`..`$35` messages (targets, JSON,
/// visible-at; sent only to instances that exist, each looked up by its id: a scalar
/// subquery with `LIMIT 1`, which no plan turns into a hash of all of `instances`). The
/// wake-ups for other processes are sent after the commit (see `wakeups`).
const ONE_STATEMENT_TURN_SQL: &str = concat!(
    "WITH held AS (SELECT instance_id FROM instances WHERE instance_id = ",
    token_instance!("$1"),
    " AND lock_token = $1 FOR UPDATE), ",
    turn_state_ctes!(),
    ", hist AS (\
       INSERT INTO history (instance_id, execution_id, event_id, event_type, data) \
       SELECT h.instance_id, $2, e.event_id, e.event_type, e.data \
       FROM held h, UNNEST($19::bigint[], $20::text[], $21::text[]) AS e(event_id, event_type, data)), \
     acts AS (\
       INSERT INTO worker_queue (instance_id, execution_id, event_id, name, input, visible_at, session_id, \
         lock_token, locked_until, attempt_count, tag, orchestration_name, orchestration_version) \
       SELECT h.instance_id, a.execution_id, a.event_id, a.name, a.input, $3, a.session_id, a.lock_token, \
         a.locked_until, a.attempt_count, a.tag, a.orchestration_name, a.orchestration_version \
       FROM held h, UNNEST($22::bigint[], $23::bigint[], $24::text[], $25::text[], $26::text[], $27::text[], \
         $28::bigint[], $29::integer[], $30::text[], $31::text[], $32::text[]) WITH ORDINALITY \
         AS a(execution_id, event_id, name, input, session_id, lock_token, locked_until, attempt_count, tag, \
         orchestration_name, orchestration_version, n) \
       ORDER BY a.n \
       ON CONFLICT (instance_id, execution_id, event_id) DO NOTHING), \
     msgs AS (\
       INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) \
       SELECT m.instance_id, m.message, m.visible_at, $3 \
       FROM held h, UNNEST($33::text[], $34::text[], $35::bigint[]) WITH ORDINALITY \
         AS m(instance_id, message, visible_at, n) \
       WHERE m.instance_id = h.instance_id \
         OR (SELECT 1 FROM instances t WHERE t.instance_id = m.instance_id LIMIT 1) IS NOT NULL \
       ORDER BY m.n \
       RETURNING instance_id) \
    ",
    turn_instance_update!(),
    " RETURNING ",
    instance_record_columns!(),
    ", (SELECT COALESCE(array_agg(instance_id), '{}') FROM msgs) AS sent"
);

/// Whether `commit` can be written by [`ONE_STATEMENT_TURN_SQL`]: it starts no instance
/// (a start may need a conflict reply), writes no value and cancels no activity.
pub(super) fn fits_one_statement(commit: &TurnCommit) -> bool {
    commit.cancelled_activities.is_empty()
        && !commit
            .messages
            .iter()
            .any(|m| matches!(m.message, OrchestratorMessage::StartOrchestration { .. }))
        && crate::provider::value_writes(&commit.new_events).is_empty()
}

impl PostgresProvider {
    /// Commits a turn that [`fits_one_statement`] in one round trip.
    pub(super) async fn commit_in_one_statement(
        &self,
        lock_token: &str,
        commit: TurnCommit,
    ) -> Result<(), ProviderError> {
        let now = crate::now_ms();
        let v = TurnState::of(&commit)?;
        let events = &commit.new_events;
        let event_ids: Vec<i64> = events.iter().map(|e| ms(e.event_id)).collect();
        let event_types: Vec<&str> = events.iter().map(|e| e.kind.type_name()).collect();
        let event_data = events.iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
        let acts = &commit.activities;
        let locked_until = ms(now + commit.activity_lock_timeout.as_millis() as u64);
        let mut targets = Vec::with_capacity(commit.messages.len());
        let mut messages = Vec::with_capacity(commit.messages.len());
        let mut visible_at = Vec::with_capacity(commit.messages.len());
        let mut wake_at = Vec::with_capacity(commit.messages.len());
        for m in &commit.messages {
            targets.push(m.instance.as_str());
            messages.push(to_json(&m.message)?);
            visible_at.push(ms(m.visible_at_ms.unwrap_or(now)));
            wake_at.push(m.visible_at_ms);
        }
        let query = sqlx::query(ONE_STATEMENT_TURN_SQL).bind(lock_token).bind(v.exec).bind(ms(now));
        let query = v.bind_state(query).bind(event_ids).bind(event_types).bind(event_data);
        let row = bind_activities(query, acts, locked_until)
            .bind(&targets)
            .bind(&messages)
            .bind(&visible_at)
            .fetch_optional(&self.pool)
            .await
            .map_err(|err| match (storage(err), events.first().zip(events.last())) {
                // Invalid input (a NUL byte, an oversized value) keeps its kind: the runtime
                // fails the instance instead of retrying a write that cannot succeed.
                (ProviderError::Storage(m), Some((first, last))) => ProviderError::Storage(format!(
                    "committing the turn (events {}..={}) failed: {m}",
                    first.event_id, last.event_id
                )),
                (other, _) => other,
            })?;
        let Some(row) = row else {
            return Err(lock_lost("instance", lock_token));
        };
        let instance: String = row.try_get("instance_id").map_err(storage)?;
        // The turn is committed: a record that does not read back only costs waiters a read.
        let record = record_from_row(&row).ok();
        let sent: Vec<String> = row.try_get("sent").map_err(storage)?;
        // Messages to instances that do not exist were left out by the statement.
        let mut delivered: HashMap<&str, usize> = HashMap::new();
        for t in &sent {
            *delivered.entry(t.as_str()).or_default() += 1;
        }
        for m in &commit.messages {
            match delivered.get_mut(m.instance.as_str()) {
                Some(n) if *n > 0 => *n -= 1,
                _ => {
                    tracing::warn!(instance = %m.instance, message = m.message.type_name(), "message to unknown instance dropped")
                }
            }
        }
        self.announce_turn(instance, record, TurnEffects::of(&commit, wake_at), now);
        Ok(())
    }
}
