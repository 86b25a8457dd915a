//! Durable writes of the dispatch path: an instance start (one statement), and a turn
//! commit guarded by its lock token (history, state, activities, messages to itself and to
//! other instances, sub-orchestration starts). Most turns commit in one statement (see
//! `turn`); the others (sub-orchestration starts, value writes, cancellations) in one
//! transaction of a few statements here.

use super::*;

/// Appends events to execution `$2` of instance `$1`: `$3` event ids, `$4` event types, `$5`
/// the events as JSON. A duplicate event id fails the statement (primary key).
const APPEND_HISTORY_SQL: &str = "INSERT INTO history (instance_id, execution_id, event_id, event_type, data) \
     SELECT $1, $2, e.event_id, e.event_type, e.data \
     FROM UNNEST($3::bigint[], $4::text[], $5::text[]) AS e(event_id, event_type, data)";

/// Records the outcome of a turn of instance `$19` (row-locked by the caller) in one
/// statement: its execution and instance rows and its consumed messages
/// ([`turn_state_ctes`], [`turn_instance_update`]; `$1`..`$18` as there). The parts touch
/// different tables, so running them as one statement (one snapshot) changes nothing.
const TURN_STATE_SQL: &str = concat!(
    "WITH held AS (SELECT $19::text AS instance_id), ",
    turn_state_ctes!(),
    " ",
    turn_instance_update!(),
    " RETURNING ",
    instance_record_columns!()
);

/// Enqueues activities of instance `$1`, visible at `$2`, in order: `$3` execution ids, `$4`
/// event ids, `$5` names, `$6` inputs, `$7` sessions, `$8` lock tokens (NULL: not locked),
/// `$9` lock expiries, `$10` attempts, `$11` tags, `$12` orchestration names, `$13`
/// orchestration versions. An activity queued already is left as it is (the
/// first of two in one batch wins).
const ENQUEUE_ACTIVITIES_SQL: &str = "INSERT INTO worker_queue (instance_id, execution_id, event_id, name, input, \
       visible_at, session_id, lock_token, locked_until, attempt_count, tag, orchestration_name, \
       orchestration_version) \
     SELECT $1, a.execution_id, a.event_id, a.name, a.input, $2, a.session_id, a.lock_token, a.locked_until, \
       a.attempt_count, a.tag, a.orchestration_name, a.orchestration_version \
     FROM UNNEST($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], \
       $10::integer[], $11::text[], $12::text[], $13::text[]) WITH ORDINALITY \
       AS a(execution_id, event_id, name, input, session_id, lock_token, locked_until, attempt_count, tag, \
       orchestration_name, orchestration_version, n) \
     ORDER BY a.n \
     ON CONFLICT (instance_id, execution_id, event_id) DO NOTHING";

/// Enqueues orchestrator messages in order: `$1` instances, `$2` messages, `$3` visible-at
/// times, all enqueued at `$4`.
const ENQUEUE_MESSAGES_SQL: &str = "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) \
     SELECT m.instance_id, m.message, m.visible_at, $4 \
     FROM UNNEST($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS m(instance_id, message, visible_at, n) \
     ORDER BY m.n";

/// Creates instance `$1` (name `$2`, version `$3`, at `$4`) unless the id is taken, and
/// then queues its start message `$5`; returns a row only when it created the instance.
const START_INSTANCE_SQL: &str = "WITH created AS (\
       INSERT INTO instances (instance_id, name, version, state, created_at, updated_at) \
       VALUES ($1, $2, $3, 'Pending', $4, $4) ON CONFLICT (instance_id) DO NOTHING RETURNING instance_id), \
     queued AS (\
       INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) \
       SELECT instance_id, $5, $4, $4 FROM created) \
     SELECT instance_id FROM created";

impl PostgresProvider {
    /// Inserts an instance row; false when it exists already.
    pub(super) async fn insert_instance(
        conn: &mut PgConnection,
        instance: &str,
        name: &str,
        version: Option<&str>,
        parent: Option<&str>,
        now: u64,
    ) -> Result<bool, ProviderError> {
        let done = sqlx::query(
            "INSERT INTO instances (instance_id, name, version, state, parent_instance, created_at, updated_at) \
             VALUES ($1, $2, $3, 'Pending', $4, $5, $5) ON CONFLICT (instance_id) DO NOTHING",
        )
        .bind(instance)
        .bind(name)
        .bind(version)
        .bind(parent)
        .bind(ms(now))
        .execute(&mut *conn)
        .await
        .map_err(storage)?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn instance_exists(
        conn: &mut PgConnection,
        instance: &str,
    ) -> Result<bool, ProviderError> {
        let row = sqlx::query("SELECT 1 FROM instances WHERE instance_id = $1")
            .bind(instance)
            .fetch_optional(&mut *conn)
            .await
            .map_err(storage)?;
        Ok(row.is_some())
    }

    /// Creates an instance with its start message in one statement (nothing is written when
    /// the id is taken), then wakes the dispatchers.
    pub(super) async fn start_instance(
        &self,
        instance: &str,
        name: &str,
        version: Option<&str>,
        input: &str,
    ) -> Result<(), ProviderError> {
        let now = crate::now_ms();
        let msg = OrchestratorMessage::StartOrchestration {
            name: name.to_string(),
            version: version.map(str::to_string),
            input: input.to_string(),
            parent: None,
        };
        let created = sqlx::query(START_INSTANCE_SQL)
            .bind(instance)
            .bind(name)
            .bind(version)
            .bind(ms(now))
            .bind(to_json(&msg)?)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?;
        if created.is_none() {
            return Err(ProviderError::InstanceExists(instance.to_string()));
        }
        self.notifiers.wake_orchestrator_at(None);
        self.send_wakeups([orchestrator_wake(&self.origin, None)]).await;
        Ok(())
    }

    pub(super) async fn commit(&self, lock_token: &str, commit: TurnCommit) -> Result<(), ProviderError> {
        if super::turn::fits_one_statement(&commit) {
            return self.commit_in_one_statement(lock_token, commit).await;
        }
        // A constant number of statements whatever the size of the turn: events, activities,
        // cancellations and messages each go in one statement (arrays bound as parameters);
        // only a sub-orchestration start costs one more, to create its instance.
        let now = crate::now_ms();
        let mut tx = self.begin().await?;
        let instance = Self::lock_holder(&mut tx, lock_token).await?;
        let exec = ms(commit.execution_id);
        Self::append_history(&mut tx, &instance, exec, &commit.new_events).await?;
        Self::write_values(&mut tx, &instance, &commit.new_events, now).await?;
        let record = Self::write_turn_state(&mut tx, &instance, lock_token, &commit, now).await?;
        if !commit.activities.is_empty() {
            Self::enqueue_activities(&mut tx, &instance, &commit, now).await?;
        }
        if !commit.cancelled_activities.is_empty() {
            Self::cancel_activities(&mut tx, &instance, exec, &commit.cancelled_activities, now).await?;
        }
        let wake_at = Self::send_messages(&mut tx, &instance, &commit.messages, now).await?;
        let effects = TurnEffects::of(&commit, wake_at);
        tx.commit().await.map_err(storage)?;
        self.announce_turn(instance, record, effects, now);
        Ok(())
    }

    /// Tells this process what a committed turn of `instance` did (at `now`), and queues
    /// the same for other processes: messages visible at `wake_at`, work for any worker, a
    /// status change, the end of the instance. The local finished notice carries `record`
    /// (the instance as the turn left it) when there is one, so a waiting client need not
    /// read it back.
    pub(super) fn announce_turn(
        &self,
        instance: String,
        record: Option<InstanceRecord>,
        effects: TurnEffects,
        now: u64,
    ) {
        self.post_wakeups(effects.wake_ups(&self.origin, &instance, now));
        let TurnEffects { wake_at, unlocked_work, status_changed, terminal } = effects;
        for w in wake_at {
            self.notifiers.wake_orchestrator_at(w);
        }
        if unlocked_work {
            self.notifiers.worker.notify_waiters();
        }
        if status_changed {
            let _ = self.notifiers.status_changed.send(instance.clone());
        }
        if terminal {
            let _ = self.notifiers.finished.send(Finished { instance, record: record.map(Arc::new) });
        }
    }

    /// The instance `lock_token` still locks, row-locked until the commit so the lock cannot
    /// expire and pass to another process mid-turn.
    async fn lock_holder(tx: &mut PgConnection, lock_token: &str) -> Result<String, ProviderError> {
        let instance: Option<String> = sqlx::query_scalar(concat!(
            "SELECT instance_id FROM instances WHERE instance_id = ",
            token_instance!("$1"),
            " AND lock_token = $1 FOR UPDATE"
        ))
        .bind(lock_token)
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage)?;
        instance.ok_or_else(|| lock_lost("instance", lock_token))
    }

    async fn append_history(
        tx: &mut PgConnection,
        instance: &str,
        exec: i64,
        events: &[Event],
    ) -> Result<(), ProviderError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else { return Ok(()) };
        let ids: Vec<i64> = events.iter().map(|e| ms(e.event_id)).collect();
        let types: Vec<&str> = events.iter().map(|e| e.kind.type_name()).collect();
        let data = events.iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
        sqlx::query(APPEND_HISTORY_SQL)
            .bind(instance)
            .bind(exec)
            .bind(ids)
            .bind(types)
            .bind(data)
            .execute(&mut *tx)
            .await
            .map_err(|err| {
                ProviderError::Storage(format!(
                    "appending events {}..={} failed: {err}",
                    first.event_id, last.event_id
                ))
            })?;
        Ok(())
    }

    /// The execution and instance rows after the turn, and the consumed messages gone
    /// (`TURN_STATE_SQL`).
    async fn write_turn_state(
        tx: &mut PgConnection,
        instance: &str,
        lock_token: &str,
        commit: &TurnCommit,
        now: u64,
    ) -> Result<Option<InstanceRecord>, ProviderError> {
        let v = TurnState::of(commit)?;
        let query = sqlx::query(TURN_STATE_SQL).bind(lock_token).bind(v.exec).bind(ms(now));
        let row = v.bind_state(query).bind(instance).fetch_optional(&mut *tx).await.map_err(storage)?;
        // A record that does not read back only costs waiters a read.
        Ok(row.and_then(|r| record_from_row(&r).ok()))
    }

    async fn enqueue_activities(
        tx: &mut PgConnection,
        instance: &str,
        commit: &TurnCommit,
        now: u64,
    ) -> Result<(), ProviderError> {
        let locked_until = ms(now + commit.activity_lock_timeout.as_millis() as u64);
        let acts = &commit.activities;
        let query = sqlx::query(ENQUEUE_ACTIVITIES_SQL).bind(instance).bind(ms(now));
        bind_activities(query, acts, locked_until).execute(&mut *tx).await.map_err(storage)?;
        Ok(())
    }

    /// Queued work is dropped; running work is flagged so its lock renewal fails. Two
    /// statements, so the flagging sees a worker that took the work meanwhile.
    async fn cancel_activities(
        tx: &mut PgConnection,
        instance: &str,
        exec: i64,
        event_ids: &[u64],
        now: u64,
    ) -> Result<(), ProviderError> {
        let ids: Vec<i64> = event_ids.iter().map(|id| ms(*id)).collect();
        sqlx::query(
            "DELETE FROM worker_queue WHERE instance_id = $1 AND execution_id = $2 \
             AND event_id = ANY($3::bigint[]) AND (lock_token IS NULL OR locked_until <= $4)",
        )
        .bind(instance)
        .bind(exec)
        .bind(&ids)
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        sqlx::query(
            "UPDATE worker_queue SET cancel_requested = TRUE \
             WHERE instance_id = $1 AND execution_id = $2 AND event_id = ANY($3::bigint[])",
        )
        .bind(instance)
        .bind(exec)
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        Ok(())
    }

    /// Creates the instances the turn starts and enqueues its messages, in order; the
    /// visibility times of what was enqueued, for the wake-ups. Messages are checked
    /// against the instances that exist (looked up at once; this instance exists, it is
    /// locked) or that an earlier start of this turn created, then enqueued in one statement.
    async fn send_messages(
        tx: &mut PgConnection,
        instance: &str,
        outbound: &[OutboundMessage],
        now: u64,
    ) -> Result<Vec<Option<u64>>, ProviderError> {
        let mut known = Self::existing_targets(tx, instance, outbound).await?;
        let (mut targets, mut messages, mut visible_at) = (Vec::new(), Vec::new(), Vec::new());
        let mut wake_at: Vec<Option<u64>> = Vec::new();
        let mut enqueue = |target: &str, message: &OrchestratorMessage, at: Option<u64>| {
            targets.push(target.to_string());
            messages.push(to_json(message)?);
            visible_at.push(ms(at.unwrap_or(now)));
            wake_at.push(at);
            Ok::<_, ProviderError>(())
        };
        for m in outbound {
            if let OrchestratorMessage::StartOrchestration { name, version, parent, .. } = &m.message {
                let created = Self::insert_instance(
                    &mut *tx,
                    &m.instance,
                    name,
                    version.as_deref(),
                    parent.as_ref().map(|p| p.instance.as_str()),
                    now,
                )
                .await?;
                known.insert(m.instance.clone());
                if !created {
                    if let Some(reply) = start_conflict_reply(m) {
                        enqueue(&reply.instance, &reply.message, None)?;
                    }
                    continue;
                }
            } else if !known.contains(&m.instance) {
                tracing::warn!(instance = %m.instance, message = m.message.type_name(), "message to unknown instance dropped");
                continue;
            }
            enqueue(&m.instance, &m.message, m.visible_at_ms)?;
        }
        if !targets.is_empty() {
            sqlx::query(ENQUEUE_MESSAGES_SQL)
                .bind(&targets)
                .bind(&messages)
                .bind(&visible_at)
                .bind(ms(now))
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        }
        Ok(wake_at)
    }

    /// Which of the instances `outbound` sends to (other than starts) exist, plus `instance`.
    async fn existing_targets(
        tx: &mut PgConnection,
        instance: &str,
        outbound: &[OutboundMessage],
    ) -> Result<HashSet<String>, ProviderError> {
        let is_start =
            |m: &OutboundMessage| matches!(m.message, OrchestratorMessage::StartOrchestration { .. });
        let others: Vec<&str> = outbound
            .iter()
            .filter(|m| m.instance != instance && !is_start(m))
            .map(|m| m.instance.as_str())
            .collect();
        let mut known: HashSet<String> = match others.is_empty() {
            true => HashSet::new(),
            false => {
                sqlx::query_scalar("SELECT instance_id FROM instances WHERE instance_id = ANY($1::text[])")
                    .bind(&others)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(storage)?
                    .into_iter()
                    .collect()
            }
        };
        known.insert(instance.to_string());
        Ok(known)
    }
}

/// Binds a turn's activities as the eleven arrays both turn statements take: execution
/// ids, event ids, names, inputs, sessions, lock tokens (NULL: not locked), lock expiries
/// (`locked_until` for those handed to this node), attempts, tags, orchestration names and
/// versions.
pub(super) fn bind_activities<'q>(
    q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    acts: &'q [ActivityWorkItem],
    locked_until: i64,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    q.bind(acts.iter().map(|a| ms(a.execution_id)).collect::<Vec<_>>())
        .bind(acts.iter().map(|a| ms(a.event_id)).collect::<Vec<_>>())
        .bind(acts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>())
        .bind(acts.iter().map(|a| a.input.as_str()).collect::<Vec<_>>())
        .bind(acts.iter().map(|a| a.session_id.as_deref()).collect::<Vec<_>>())
        .bind(acts.iter().map(|a| eager(a).then_some(a.lock_token.as_str())).collect::<Vec<_>>())
        .bind(acts.iter().map(|a| if eager(a) { locked_until } else { 0 }).collect::<Vec<_>>())
        .bind(acts.iter().map(|a| i32::from(eager(a))).collect::<Vec<_>>())
        .bind(acts.iter().map(|a| a.tag.as_deref()).collect::<Vec<_>>())
        .bind(acts.iter().map(|a| a.orchestration_name.as_str()).collect::<Vec<_>>())
        .bind(acts.iter().map(|a| a.orchestration_version.as_str()).collect::<Vec<_>>())
}

/// What a committed turn did that others may wait for (see `announce_turn`).
pub(super) struct TurnEffects {
    /// When each message the turn sent becomes visible (`None`: now).
    wake_at: Vec<Option<u64>>,
    /// It queued work no worker of this node took.
    unlocked_work: bool,
    status_changed: bool,
    /// The instance finished.
    terminal: bool,
}

impl TurnEffects {
    /// The effects of `commit`, whose messages become visible at `wake_at`.
    pub(super) fn of(commit: &TurnCommit, wake_at: Vec<Option<u64>>) -> Self {
        Self {
            wake_at,
            unlocked_work: commit.activities.iter().any(|a| !eager(a)),
            status_changed: commit.status_changes() > 0,
            terminal: commit.update.state.is_terminal(),
        }
    }

    /// The notifications a turn of `instance` committed at `now` by the store named
    /// `origin` sends: one per future visibility time of its messages and one for "now" at
    /// most (see `orchestrator_wake`), `w` when it queued work for any worker,
    /// `f:<instance>` when the instance finished, and `s:<origin>:<instance>` when its
    /// custom status changed (so `Client::wait_for_status_change` in other processes wakes
    /// at once).
    fn wake_ups(&self, origin: &str, instance: &str, now: u64) -> Vec<String> {
        let mut wake_ups = Vec::new();
        let mut notified_now = false;
        for w in &self.wake_at {
            match w {
                Some(t) if *t > now => wake_ups.push(orchestrator_wake(origin, Some(*t))),
                _ if !notified_now => {
                    notified_now = true;
                    wake_ups.push(orchestrator_wake(origin, None));
                }
                _ => {}
            }
        }
        if self.unlocked_work {
            wake_ups.push("w".to_string());
        }
        if self.terminal {
            wake_ups.push(finished_wake(instance));
        }
        if self.status_changed {
            wake_ups.push(status_wake(origin, instance));
        }
        wake_ups
    }
}

/// What a turn writes to its execution and instance rows, ready to bind.
pub(super) struct TurnState<'a> {
    pub(super) exec: i64,
    /// The turn started the execution (its row is created), with this version and
    /// duroxide version.
    pub(super) started: bool,
    pub(super) started_version: Option<&'a str>,
    pub(super) started_dv: Option<&'a str>,
    pub(super) dv_key: Option<i64>,
    /// The turn appended events (the execution row is updated).
    pub(super) appended: bool,
    pub(super) exec_state: InstanceState,
    pub(super) name: &'a str,
    pub(super) version: &'a str,
    pub(super) next_exec: i64,
    pub(super) state: InstanceState,
    pub(super) output: &'a Option<String>,
    pub(super) error: Option<String>,
    pub(super) set_custom_status: bool,
    pub(super) custom_status: Option<String>,
    pub(super) status_changes: i64,
}

impl<'a> TurnState<'a> {
    /// Binds the state as `$4`..`$18` of both turn statements (see `turn_state_ctes!`):
    /// started, its version and duroxide version, appended, execution state, name, version,
    /// next execution, state, output, error, whether and what custom status, duroxide
    /// version key, status changes.
    pub(super) fn bind_state<'q>(
        self,
        q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>
    where
        'a: 'q,
    {
        q.bind(self.started)
            .bind(self.started_version)
            .bind(self.started_dv)
            .bind(self.appended)
            .bind(self.exec_state.as_str())
            .bind(self.name)
            .bind(self.version)
            .bind(self.next_exec)
            .bind(self.state.as_str())
            .bind(self.output)
            .bind(self.error)
            .bind(self.set_custom_status)
            .bind(self.custom_status)
            .bind(self.dv_key)
            .bind(self.status_changes)
    }

    pub(super) fn of(commit: &'a TurnCommit) -> Result<Self, ProviderError> {
        let exec = ms(commit.execution_id);
        let started = commit.new_events.iter().find_map(|e| match &e.kind {
            EventKind::OrchestrationStarted { version, duroxide_version, .. } => {
                Some((version.as_str(), duroxide_version.as_str()))
            }
            _ => None,
        });
        let exec_state = match commit.update.state {
            InstanceState::Completed | InstanceState::Failed => commit.update.state,
            _ if commit.next_execution_id.is_some() => InstanceState::Completed,
            _ => InstanceState::Running,
        };
        let u = &commit.update;
        let (set_custom_status, custom_status) = match &u.custom_status {
            Some(v) => (true, v.clone()),
            None => (false, None),
        };
        let started_dv = started.map(|s| s.1);
        Ok(TurnState {
            exec,
            started: started.is_some(),
            started_version: started.map(|s| s.0),
            started_dv,
            dv_key: started_dv.and_then(|dv| semver::Version::parse(dv).ok()).map(|v| version_key(&v)),
            appended: !commit.new_events.is_empty(),
            exec_state,
            name: &u.name,
            version: &u.version,
            next_exec: commit.next_execution_id.map(ms).unwrap_or(exec),
            state: u.state,
            output: &u.output,
            error: u.error.as_ref().map(to_json).transpose()?,
            set_custom_status,
            custom_status,
            status_changes: ms(commit.status_changes()),
        })
    }
}

/// An activity with a lock token is handed straight to a worker of this node: it is stored
/// locked, its first attempt counted.
pub(super) fn eager(a: &ActivityWorkItem) -> bool {
    !a.lock_token.is_empty()
}
