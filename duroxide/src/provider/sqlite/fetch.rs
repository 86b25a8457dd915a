//! Taking, renewing and releasing instance locks: which instances are ready under a fetch
//! filter, locking a batch of them with their messages, and loading what the runtime
//! needs of each. Activity locks live in `work`.

use super::*;

/// `FROM … WHERE …` for instances with a visible message that nobody holds (or whose lock
/// expired) and that satisfy `clause` (over alias `i`); binds `now` twice, then the clause's.
/// `CROSS JOIN` keeps the queue as the outer loop: the queue holds only live messages, while
/// `instances` grows with finished work, and SQLite's planner would otherwise walk all of
/// it when its statistics say the queue is large or unknown (`tests/hot_path_plans.rs`).
pub(super) fn ready_instances(clause: &str) -> String {
    format!(
        "FROM orchestrator_queue q CROSS JOIN instances i ON i.instance_id = q.instance_id \
         WHERE q.visible_at <= ? AND (i.lock_token IS NULL OR i.locked_until <= ?) AND {clause}"
    )
}

/// Which instances `lock_instances` locks.
pub(super) enum LockTarget<'a> {
    /// Those with the oldest visible messages.
    Oldest(&'a FetchFilter),
    /// Those of these that have visible messages.
    Instances(&'a [&'a str], &'a FetchFilter),
}

impl LockTarget<'_> {
    pub(super) fn filter(&self) -> &FetchFilter {
        match self {
            LockTarget::Oldest(f) | LockTarget::Instances(_, f) => f,
        }
    }
}

/// Appends a fetch filter's condition (from `filter_sql`) with its values bound.
pub(super) fn push_filter(q: &mut sqlx::QueryBuilder<Sqlite>, clause: &str, binds: Vec<Bind>) {
    // The clause holds one `?` per value, in order.
    let mut parts = clause.split('?');
    q.push(parts.next().unwrap_or_default());
    for (b, rest) in binds.into_iter().zip(parts) {
        match b {
            Bind::Text(t) => q.push_bind(t),
            Bind::Int(i) => q.push_bind(i),
        };
        q.push(rest);
    }
}

/// A value bound into a filter clause.
pub(super) enum Bind {
    Text(String),
    Int(i64),
}

impl Bind {
    pub(super) fn bind_to<'q, O>(
        self,
        q: sqlx::query::QueryScalar<'q, Sqlite, O, sqlx::sqlite::SqliteArguments>,
    ) -> sqlx::query::QueryScalar<'q, Sqlite, O, sqlx::sqlite::SqliteArguments> {
        match self {
            Bind::Text(t) => q.bind(t),
            Bind::Int(i) => q.bind(i),
        }
    }

    pub(super) fn bind_to_query<'q>(
        self,
        q: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments> {
        match self {
            Bind::Text(t) => q.bind(t),
            Bind::Int(i) => q.bind(i),
        }
    }
}

/// The SQL condition (over instance alias `i`) for a fetch filter, with its bound values.
/// Names, pinned versions and the duroxide-version range are all checked in the query, so
/// items a node cannot run never block the ones it can.
pub(super) fn filter_sql(filter: &FetchFilter) -> (String, Vec<Bind>) {
    let mut parts = vec!["1 = 1".to_string()];
    let mut binds = Vec::new();
    if let Some(allowed) = &filter.orchestrations {
        if allowed.is_empty() {
            parts.push("0 = 1".into());
        } else {
            let names = vec!["?"; allowed.len()].join(", ");
            parts.push(format!("i.name IN ({names})"));
            binds.extend(allowed.iter().map(|(n, _)| Bind::Text(n.clone())));
            let pairs: Vec<String> =
                allowed.iter().flat_map(|(n, vs)| vs.iter().map(move |v| format!("{n}\u{0}{v}"))).collect();
            if pairs.is_empty() {
                parts.push("i.version IS NULL".into());
            } else {
                let marks = vec!["?"; pairs.len()].join(", ");
                parts.push(format!("(i.version IS NULL OR (i.name || char(0) || i.version) IN ({marks}))"));
                binds.extend(pairs.into_iter().map(Bind::Text));
            }
        }
    }
    if let Some(range) = &filter.duroxide_versions {
        parts.push("(i.duroxide_version_key IS NULL OR i.duroxide_version_key BETWEEN ? AND ?)".into());
        binds.push(Bind::Int(version_key(&range.min)));
        binds.push(Bind::Int(version_key(&range.max)));
    }
    (parts.join(" AND "), binds)
}

impl SqliteProvider {
    /// Appends the statements that lock up to `max` instances (see `LockTarget`) and their
    /// visible messages, and read the stored history length of each: rows tagged 'i'
    /// (instance), 'q' (message) and 'h' (length), read by `locked_items`. However many
    /// instances, three statements; each instance gets its own lock token (a token shared
    /// by the batch, a dot and the instance's row id).
    pub(super) fn push_lock(
        batch: &mut Batch,
        target: LockTarget<'_>,
        max: usize,
        now: u64,
        lock_timeout: Duration,
    ) {
        let batch_token = token();
        let (from, to) = (format!("{batch_token}."), format!("{batch_token}/"));
        let locked_until = now + lock_timeout.as_millis() as u64;
        // Only instances nobody holds (or whose lock expired) that the filter allows.
        let (clause, binds) = filter_sql(target.filter());
        let q = batch.stmt("UPDATE instances SET lock_token = ");
        q.push_bind(batch_token).push(" || '.' || rowid, locked_until = ").push_bind(ms(locked_until));
        q.push(" WHERE instance_id IN (");
        match target {
            LockTarget::Oldest(_) => {
                q.push("SELECT q.instance_id FROM orchestrator_queue q CROSS JOIN instances i ON i.instance_id = q.instance_id WHERE q.visible_at <= ");
                q.push_bind(ms(now))
                    .push(" AND (i.lock_token IS NULL OR i.locked_until <= ")
                    .push_bind(ms(now));
                q.push(") AND ");
                push_filter(q, &clause, binds);
                q.push(" GROUP BY q.instance_id ORDER BY MIN(q.id)");
            }
            LockTarget::Instances(ids, _) => {
                q.push("SELECT i.instance_id FROM instances i WHERE i.instance_id IN (");
                let mut list = q.separated(", ");
                for id in ids {
                    list.push_bind(id.to_string());
                }
                q.push(") AND (i.lock_token IS NULL OR i.locked_until <= ").push_bind(ms(now));
                q.push(") AND EXISTS (SELECT 1 FROM orchestrator_queue q WHERE q.instance_id = i.instance_id AND q.visible_at <= ");
                q.push_bind(ms(now)).push(") AND ");
                push_filter(q, &clause, binds);
            }
        }
        q.push(" LIMIT ").push_bind(max.max(1) as i64);
        q.push(format!(") RETURNING 'i' AS tag, lock_token, history_rev, {INSTANCE_COLUMNS}"));
        // The instances just locked are those whose token starts with the batch's.
        let q = batch.stmt(
            "UPDATE orchestrator_queue SET attempt_count = attempt_count + 1, lock_token = \
             (SELECT i.lock_token FROM instances i WHERE i.instance_id = orchestrator_queue.instance_id) \
             WHERE visible_at <= ",
        );
        q.push_bind(ms(now));
        q.push(" AND instance_id IN (SELECT instance_id FROM instances WHERE lock_token > ")
            .push_bind(from.clone());
        q.push(" AND lock_token < ").push_bind(to.clone());
        q.push(") RETURNING 'q' AS tag, instance_id, id, message, attempt_count");
        // Event ids run 1..=n, so the last id is the stored length: an index seek, where a
        // count would read the whole history.
        let q = batch.stmt(
            "SELECT 'h' AS tag, i.instance_id AS instance_id, COALESCE((SELECT MAX(h.event_id) FROM history h \
             WHERE h.instance_id = i.instance_id AND h.execution_id = i.execution_id), 0) AS stored \
             FROM instances i WHERE i.lock_token > ",
        );
        q.push_bind(from).push(" AND i.lock_token < ").push_bind(to);
    }

    /// The items `push_lock`'s statements locked, oldest message first, completed with
    /// their history where this node does not hold the instance in memory (`cached`).
    pub(super) async fn locked_items(
        &self,
        rows: &[SqliteRow],
        cached: &CachedLookup<'_>,
    ) -> Result<Vec<OrchestrationItem>, ProviderError> {
        let mut locked = Vec::new();
        let mut messages: HashMap<String, Vec<(i64, String, i64)>> = HashMap::new();
        let mut stored_len: HashMap<String, u64> = HashMap::new();
        for r in rows {
            let tag: String = r.try_get("tag").map_err(storage)?;
            match tag.as_str() {
                "i" => {
                    let (record, bad_state) = locked_record_from_row(r)?;
                    locked.push((
                        r.try_get::<String, _>("lock_token").map_err(storage)?,
                        r.try_get::<i64, _>("history_rev").map_err(storage)? as u64,
                        record,
                        bad_state,
                    ))
                }
                "q" => {
                    let instance: String = r.try_get("instance_id").map_err(storage)?;
                    let id: i64 = r.try_get("id").map_err(storage)?;
                    let data: String = r.try_get("message").map_err(storage)?;
                    let attempts: i64 = r.try_get("attempt_count").map_err(storage)?;
                    messages.entry(instance).or_default().push((id, data, attempts));
                }
                "h" => {
                    let instance: String = r.try_get("instance_id").map_err(storage)?;
                    stored_len.insert(instance, r.try_get::<i64, _>("stored").map_err(storage)? as u64);
                }
                _ => {}
            }
        }
        let mut items = Vec::with_capacity(locked.len());
        for (lock_token, history_rev, record, bad_state) in locked {
            let instance = record.instance.clone();
            // RETURNING has no order: by id, the enqueue order.
            let mut rows = messages.remove(&instance).unwrap_or_default();
            rows.sort_by_key(|(id, _, _)| *id);
            let oldest = rows.first().map(|(id, _, _)| *id).unwrap_or(i64::MAX);
            let mut queued = Vec::with_capacity(rows.len());
            let mut attempt = 0u32;
            let mut unreadable = None;
            for (id, data, attempts) in rows {
                attempt = attempt.max(attempts as u32);
                match serde_json::from_str::<OrchestratorMessage>(&data) {
                    Ok(m) => queued.push(m),
                    Err(e) => unreadable = Some(format!("queued message {id}: {e}")),
                }
            }
            let known =
                cached(&instance).filter(|c| c.execution_id == record.execution_id).map(|c| c.last_event_id);
            let (history, history_error, history_len) = match known {
                Some(len) if len > 0 && stored_len.get(&instance) == Some(&len) => (Vec::new(), None, len),
                // Never started: no history to read.
                None if record.execution_id == 0 => (Vec::new(), None, 0),
                // The instance is locked: its history cannot change meanwhile.
                _ => {
                    Self::load_history(&mut *self.conns.reader().await?, &instance, record.execution_id)
                        .await?
                }
            };
            items.push((
                oldest,
                OrchestrationItem {
                    instance,
                    lock_token,
                    record,
                    history,
                    history_error: history_error.or(unreadable).or(bad_state),
                    history_len,
                    history_rev,
                    messages: queued,
                    attempt,
                },
            ));
        }
        items.sort_by_key(|(oldest, _)| *oldest);
        Ok(items.into_iter().map(|(_, item)| item).collect())
    }

    pub(super) async fn lock_ready_instances(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
        cached: &CachedLookup<'_>,
        max: usize,
    ) -> Result<Vec<OrchestrationItem>, ProviderError> {
        let now = crate::now_ms();
        let (clause, binds) = filter_sql(filter);
        // Look before taking the write lock: an idle dispatcher's fetch then costs a read,
        // which does not hold up writers (WAL).
        let sql = format!("SELECT 1 {} LIMIT 1", ready_instances(&clause));
        let mut peek = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(now)).bind(ms(now));
        for b in binds {
            peek = b.bind_to_query(peek);
        }
        if peek.fetch_optional(&mut *self.conns.reader().await?).await.map_err(storage)?.is_none() {
            return Ok(Vec::new());
        }
        let mut batch = Batch::new();
        batch.stmt(BEGIN_LIGHT);
        Self::push_lock(&mut batch, LockTarget::Oldest(filter), max, now, lock_timeout);
        batch.stmt("COMMIT");
        let rows = self.conns.writer().await.one_trip(batch).await.map_err(storage)?;
        self.locked_items(&rows, cached).await
    }

    pub(super) async fn abandon_instance(
        &self,
        lock_token: &str,
        delay: Option<Duration>,
        note: Option<String>,
        attempt: Attempt,
    ) -> Result<(), ProviderError> {
        let now = crate::now_ms();
        let visible = now + delay.map(|d| d.as_millis() as u64).unwrap_or(0);
        write_tx!(self.conns, _w, tx, BEGIN_LIGHT);
        let done = sqlx::query(
            "UPDATE instances SET lock_token = NULL, locked_until = 0, status_note = COALESCE(?, status_note), \
             updated_at = ? WHERE lock_token = ?",
        )
        .bind(note)
        .bind(ms(now))
        .bind(lock_token)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if done.rows_affected() == 0 {
            return Err(ProviderError::LockLost(format!("instance lock {lock_token} is no longer held")));
        }
        sqlx::query(
            "UPDATE orchestrator_queue SET lock_token = NULL, visible_at = MAX(visible_at, ?), \
             attempt_count = attempt_count - ? WHERE lock_token = ?",
        )
        .bind(ms(visible))
        .bind(if attempt == Attempt::Counted { 0 } else { 1 })
        .bind(lock_token)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        self.notifiers.wake_orchestrator_at(Some(visible));
        Ok(())
    }

    pub(super) async fn renew_instance_lock(
        &self,
        lock_token: &str,
        lock_timeout: Duration,
    ) -> Result<(), ProviderError> {
        let until = crate::now_ms() + lock_timeout.as_millis() as u64;
        write_tx!(self.conns, _w, tx, BEGIN_LIGHT);
        let done = sqlx::query("UPDATE instances SET locked_until = ? WHERE lock_token = ?")
            .bind(ms(until))
            .bind(lock_token)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        if done.rows_affected() == 0 {
            return Err(ProviderError::LockLost(format!("instance lock {lock_token} is no longer held")));
        }
        Ok(())
    }
}
