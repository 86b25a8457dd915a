//! The activity queue: fetching work (sessionless runs in one statement, session work
//! with its claim), renewing and abandoning activity locks, and completing work, optionally
//! locking the instances it reports to. Session leases live in `sessions`.

use super::*;

/// An activity from a `worker_queue` row; `uncounted` attempts are added to its
/// `attempt_count` (1 when the row was read before the lock counted this attempt).
fn work_item_from_row(
    r: &SqliteRow,
    lock_token: String,
    session_id: Option<String>,
    session_claimed: bool,
    uncounted: u32,
) -> Result<ActivityWorkItem, ProviderError> {
    let attempt = r.try_get::<i64, _>("attempt_count").map_err(storage)? as u32 + uncounted;
    activity_from_row(r, lock_token, session_id, session_claimed, attempt)
}

/// The condition (over alias `w`) for visible work nobody holds and nobody cancelled, with
/// `now` bound as parameter `now`.
fn unlocked_work(now: &str) -> String {
    format!(
        "w.visible_at <= {now} AND (w.lock_token IS NULL OR w.locked_until <= {now}) AND w.cancel_requested = 0"
    )
}

/// The condition over `w` for the work `worker` takes by tag, its tag list (when it has
/// one) bound as `list`, a JSON array.
fn tag_condition(worker: &WorkerIdentity, list: &str) -> String {
    worker.tags.sql_condition(|p| format!("IN (SELECT value FROM json_each({p}))"), list)
}

/// The worker's tag list as the JSON array `tag_condition` reads (`None`: it reads none).
fn tag_list(worker: &WorkerIdentity) -> Result<Option<String>, ProviderError> {
    if !worker.tags.needs_list() {
        return Ok(None);
    }
    serde_json::to_string(&worker.tags.listed()).map(Some).map_err(|e| ProviderError::Storage(e.to_string()))
}

impl SqliteProvider {
    /// Appends the statements that delete locked work items and enqueue their completions;
    /// each deleted item returns a row tagged 'd' with its token (see `completed`). An item
    /// whose lock is gone writes nothing. Three statements per 100 items (each statement
    /// costs the single writer a step of its own). The tokens must be distinct.
    pub(super) fn push_completions(
        batch: &mut Batch,
        items: &[&(String, OutboundMessage)],
        now: u64,
    ) -> Result<(), ProviderError> {
        for chunk in items.chunks(100) {
            let tokens = |q: &mut sqlx::QueryBuilder<Sqlite>| {
                let mut list = q.separated(", ");
                for (lock_token, _) in chunk {
                    list.push_bind(lock_token.clone());
                }
            };
            // The idle clock of a session starts when its last activity finished. Only for
            // tokens still held, as the statements after it.
            let q = batch.stmt("UPDATE sessions SET last_activity_at = ");
            q.push_bind(ms(now)).push(
                " WHERE session_id IN (SELECT session_id FROM worker_queue \
                 WHERE session_id IS NOT NULL AND lock_token IN (",
            );
            tokens(q);
            q.push("))");
            // In the order given: a worker's completions reach their instances in order.
            let mut rows = Vec::with_capacity(chunk.len());
            for (lock_token, completion) in chunk {
                rows.push((completion.instance.clone(), to_json(&completion.message)?, lock_token.clone()));
            }
            let q = batch.stmt(
                "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) \
                 SELECT v.column1, v.column2, ",
            );
            q.push_bind(ms(now)).push(", ").push_bind(ms(now)).push(" FROM (");
            q.push_values(rows, |mut b, (instance, message, token)| {
                b.push_bind(instance).push_bind(message).push_bind(token);
            });
            q.push(") v WHERE EXISTS (SELECT 1 FROM worker_queue w WHERE w.lock_token = v.column3)");
            let q = batch.stmt("DELETE FROM worker_queue WHERE lock_token IN (");
            tokens(q);
            q.push(") RETURNING 'd' AS tag, lock_token");
        }
        Ok(())
    }

    /// Which of `items` the rows of `push_completions` say were done.
    pub(super) fn completed(
        items: &[(String, OutboundMessage)],
        rows: &[SqliteRow],
    ) -> Result<Vec<bool>, ProviderError> {
        let mut deleted = std::collections::HashSet::new();
        for r in rows {
            if r.try_get::<String, _>("tag").map_err(storage)? == "d" {
                deleted.insert(r.try_get::<String, _>("lock_token").map_err(storage)?);
            }
        }
        Ok(items.iter().map(|(token, _)| deleted.contains(token)).collect())
    }

    /// Completes work items and optionally locks the instances they report to (see
    /// `Provider::complete_work_items_and_lock`). The commit does not wait for an fsync of
    /// its own (`synchronous = NORMAL`): an activity result is made durable by the next
    /// durable commit, normally the turn that consumes it a moment later. A power loss in
    /// between loses the result and the activity runs again, which at-least-once execution
    /// allows; nothing acknowledged to a caller depends on it.
    pub(super) async fn complete_and_lock(
        &self,
        items: Vec<(String, OutboundMessage)>,
        lock: Option<LockAfterComplete<'_>>,
    ) -> (Vec<Result<(), ProviderError>>, Vec<OrchestrationItem>) {
        let now = crate::now_ms();
        let all_failed =
            |e: ProviderError, n: usize| ((0..n).map(|_| Err(e.clone())).collect::<Vec<_>>(), Vec::new());
        // One round trip: the completions, then the locks of the instances they went to
        // (those with visible messages: a completion whose lock was lost added none).
        // A token given twice completes once, with its first result; its repeats fail, as a
        // second single call would.
        let mut seen = std::collections::HashSet::new();
        let first: Vec<bool> = items.iter().map(|(token, _)| seen.insert(token.as_str())).collect();
        let distinct: Vec<_> =
            items.iter().zip(&first).filter(|(_, first)| **first).map(|(item, _)| item).collect();
        let mut batch = Batch::new();
        batch.stmt(BEGIN_LIGHT);
        if let Err(e) = Self::push_completions(&mut batch, &distinct, now) {
            return all_failed(e, items.len());
        }
        let mut targets: Vec<&str> = Vec::new();
        for (_, completion) in &items {
            if !targets.contains(&completion.instance.as_str()) {
                targets.push(&completion.instance);
            }
        }
        let lock = lock.filter(|l| l.max_instances > 0);
        if let Some(lock) = &lock {
            let target = LockTarget::Instances(&targets, lock.filter);
            Self::push_lock(&mut batch, target, lock.max_instances, now, lock.lock_timeout);
        }
        batch.stmt("COMMIT");
        let rows = match self.conns.writer().await.one_trip(batch).await {
            Ok(rows) => rows,
            Err(e) => return all_failed(storage(e), items.len()),
        };
        let completed = match Self::completed(&items, &rows) {
            Ok(done) => done,
            Err(e) => return all_failed(e, items.len()),
        };
        let mut results = Vec::with_capacity(items.len());
        let mut instances: Vec<&str> = Vec::new();
        for (((lock_token, completion), done), first) in items.iter().zip(completed).zip(first) {
            if done && first {
                results.push(Ok(()));
                if !instances.contains(&completion.instance.as_str()) {
                    instances.push(&completion.instance);
                }
            } else {
                results.push(Err(ProviderError::LockLost(format!(
                    "activity lock {lock_token} is no longer held"
                ))));
            }
        }
        // Committed: an error from here on leaves the completions done and the instances
        // locked (their locks expire if this node cannot run them).
        let locked = match &lock {
            Some(lock) => match self.locked_items(&rows, lock.cached).await {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(error = %e, "reading instances locked by completions failed; their locks will expire");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        // Dispatchers need waking only for completions whose instance was not locked here.
        if instances.len() > locked.len() {
            self.notifiers.wake_orchestrator_at(None);
        }
        (results, locked)
    }

    pub(super) async fn lock_work(
        &self,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
        max: usize,
    ) -> Result<Vec<ActivityWorkItem>, ProviderError> {
        let now = crate::now_ms();
        if !self.work_visible(now, worker).await? {
            return Ok(Vec::new());
        }
        let (mut items, mut seen) = self.lock_sessionless_run(now, lock_timeout, max, worker).await?;
        if items.is_empty() {
            (items, seen) = self.lock_next_work(now, lock_timeout, worker).await?;
        }
        if !items.is_empty() {
            // An activity runs only once the turn that scheduled it is durable.
            self.conns.settle_through(seen).await?;
        }
        Ok(items)
    }

    /// Whether any work is runnable, read without the write lock.
    async fn work_visible(&self, now: u64, worker: &WorkerIdentity) -> Result<bool, ProviderError> {
        // Look before taking the write lock (see `lock_ready_instances`).
        let mut peek = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM worker_queue w WHERE {} AND {} LIMIT 1",
            tag_condition(worker, "?2"),
            unlocked_work("?1")
        )))
        .bind(ms(now));
        if let Some(list) = tag_list(worker)? {
            peek = peek.bind(list);
        }
        let peek = peek.fetch_optional(&mut *self.conns.reader().await?).await.map_err(storage)?;
        Ok(peek.is_some())
    }

    /// Up to `max` of the oldest runnable items, when they have no session; empty when the
    /// oldest has one. With them, the last group commit round they could have seen (see
    /// `Conns::seen_by_writer`).
    async fn lock_sessionless_run(
        &self,
        now: u64,
        lock_timeout: Duration,
        max: usize,
        worker: &WorkerIdentity,
    ) -> Result<(Vec<ActivityWorkItem>, u64), ProviderError> {
        // The common case in one statement (and one round trip, with its transaction): the
        // oldest runnable items have no session. Only the run of them before the first
        // session item is taken, so the order is the one single fetches would give; each
        // gets its own token (a shared prefix and its id).
        let batch_token = token();
        let locked_until = ms(now + lock_timeout.as_millis() as u64);
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{BEGIN_LIGHT}; WITH head AS (SELECT w.id, w.session_id FROM worker_queue w WHERE {} AND {} \
             ORDER BY w.id LIMIT ?4) \
             UPDATE worker_queue SET lock_token = ?1 || '.' || id, locked_until = ?2, locked_by = ?5, \
             attempt_count = attempt_count + 1 \
             WHERE id IN (SELECT id FROM head WHERE session_id IS NULL AND id < \
               COALESCE((SELECT MIN(id) FROM head WHERE session_id IS NOT NULL), 9223372036854775807)) \
             RETURNING id, lock_token, instance_id, execution_id, event_id, name, input, attempt_count, visible_at, \
             tag, orchestration_name, orchestration_version; \
             COMMIT",
            tag_condition(worker, "?6"),
            unlocked_work("?3")
        )))
        .bind(&batch_token)
        .bind(locked_until)
        .bind(ms(now))
        .bind(max.max(1) as i64)
        .bind(&worker.worker_id);
        let query = match tag_list(worker)? {
            Some(list) => query.bind(list),
            None => query,
        };
        let mut writer = self.conns.writer().await;
        let seen = self.conns.seen_by_writer();
        let rows = writer.one_trip_query(query).await.map_err(storage)?;
        drop(writer);
        let mut items = rows
            .iter()
            .map(|r| {
                let token = r.try_get("lock_token").map_err(storage)?;
                let item = work_item_from_row(r, token, None, false, 0)?;
                Ok((r.try_get::<i64, _>("id").map_err(storage)?, item))
            })
            .collect::<Result<Vec<_>, ProviderError>>()?;
        // RETURNING has no order.
        items.sort_by_key(|(id, _)| *id);
        Ok((items.into_iter().map(|(_, item)| item).collect(), seen))
    }

    /// The oldest runnable item, session work included, claiming its session for `worker`,
    /// and the last group commit round it could have seen.
    async fn lock_next_work(
        &self,
        now: u64,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
    ) -> Result<(Vec<ActivityWorkItem>, u64), ProviderError> {
        write_tx!(self.conns, _w, tx, BEGIN_LIGHT);
        let seen = self.conns.seen_by_writer();
        // Runnable: no session; or a session this worker holds; or, if it holds fewer than
        // `max_sessions` sessions with work, a session nobody holds or whose lease expired. Work cancelled by its
        // orchestration is never handed out (renew_sessions deletes it once unlocked). One
        // statement: fetching is on every activity's path.
        let sql = format!(
            "SELECT w.id AS id, w.instance_id AS instance_id, w.execution_id AS execution_id, \
             w.event_id AS event_id, w.name AS name, w.input AS input, w.attempt_count AS attempt_count, \
             w.visible_at AS visible_at, w.tag AS tag, w.orchestration_name AS orchestration_name, \
             w.orchestration_version AS orchestration_version, \
             w.session_id AS session_id, (s.worker_id = ?1 AND s.locked_until > ?2) AS mine \
             FROM worker_queue w LEFT JOIN sessions s ON s.session_id = w.session_id \
             WHERE w.visible_at <= ?2 AND (w.lock_token IS NULL OR w.locked_until <= ?2) \
               AND w.cancel_requested = 0 AND {} AND ( \
               w.session_id IS NULL \
               OR (s.worker_id = ?1 AND s.locked_until > ?2) \
               OR ((s.session_id IS NULL OR s.locked_until <= ?2) AND \
                   (SELECT COUNT(*) FROM sessions h WHERE h.worker_id = ?1 AND h.locked_until > ?2 \
                    AND EXISTS (SELECT 1 FROM worker_queue b WHERE b.session_id = h.session_id)) < ?3)) \
             ORDER BY w.id LIMIT 1",
            tag_condition(worker, "?4")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&worker.worker_id)
            .bind(ms(now))
            .bind(i64::from(worker.max_sessions));
        if let Some(list) = tag_list(worker)? {
            query = query.bind(list);
        }
        let row = query.fetch_optional(&mut *tx).await.map_err(storage)?;
        let Some(r) = row else { return Ok((Vec::new(), seen)) };
        let id: i64 = r.try_get("id").map_err(storage)?;
        let session_id: Option<String> = r.try_get("session_id").map_err(storage)?;
        let mine: Option<bool> = r.try_get("mine").map_err(storage)?;
        let mut session_claimed = false;
        if let Some(sid) = &session_id {
            session_claimed = mine != Some(true);
            sqlx::query(
                "INSERT INTO sessions (session_id, worker_id, locked_until, last_activity_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (session_id) DO UPDATE SET worker_id = excluded.worker_id, \
                 locked_until = excluded.locked_until, last_activity_at = excluded.last_activity_at",
            )
            .bind(sid)
            .bind(&worker.worker_id)
            .bind(ms(now + worker.session_lease.as_millis() as u64))
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        let lock_token = token();
        sqlx::query(
            "UPDATE worker_queue SET lock_token = ?, locked_until = ?, locked_by = ?, \
             attempt_count = attempt_count + 1 WHERE id = ?",
        )
        .bind(&lock_token)
        .bind(ms(now + lock_timeout.as_millis() as u64))
        .bind(&worker.worker_id)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        // The row was read before the lock counted this attempt.
        let item = work_item_from_row(&r, lock_token, session_id, session_claimed, 1)?;
        tx.commit().await.map_err(storage)?;
        Ok((vec![item], seen))
    }

    pub(super) async fn renew_work_lock(
        &self,
        lock_token: &str,
        lock_timeout: Duration,
    ) -> Result<(), ProviderError> {
        let until = crate::now_ms() + lock_timeout.as_millis() as u64;
        write_tx!(self.conns, _w, tx, BEGIN_LIGHT);
        let cancel: Option<i64> = sqlx::query_scalar(
            "UPDATE worker_queue SET locked_until = ? WHERE lock_token = ? RETURNING cancel_requested",
        )
        .bind(ms(until))
        .bind(lock_token)
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        match cancel {
            None => Err(ProviderError::LockLost(format!("activity lock {lock_token} is no longer held"))),
            Some(1) => Err(ProviderError::Cancelled),
            Some(_) => Ok(()),
        }
    }

    pub(super) async fn abandon_work(
        &self,
        lock_token: &str,
        delay: Option<Duration>,
    ) -> Result<(), ProviderError> {
        let visible = crate::now_ms() + delay.map(|d| d.as_millis() as u64).unwrap_or(0);
        write_tx!(self.conns, _w, tx, BEGIN_LIGHT);
        sqlx::query("UPDATE worker_queue SET lock_token = NULL, locked_until = 0, visible_at = ? WHERE lock_token = ?")
            .bind(ms(visible))
            .bind(lock_token)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(())
    }
}
