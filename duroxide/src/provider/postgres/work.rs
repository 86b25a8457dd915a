//! The activity queue: fetching work (with session claims), renewing and abandoning
//! activity locks, and completing work, optionally locking the instances it reports to.
//! Session leases live in `sessions`.

use super::*;

/// Deletes the work items whose tokens (`$1`) are still held and enqueues their
/// completions (`$2` instances, `$3` messages) in order, at `$4`; touches their sessions (the
/// idle clock of a session starts when its last activity finished). Returns the tokens
/// that were held. Its transaction commits without waiting for the WAL flush (see
/// `async_commit!`).
pub(super) const COMPLETE_SQL: &str = concat!(
    "WITH done AS (DELETE FROM worker_queue WHERE lock_token = ANY($1::text[]) \
       RETURNING lock_token, session_id), \
     touched AS (UPDATE sessions SET last_activity_at = $4 WHERE session_id IN (SELECT session_id FROM done)), \
     sent AS (INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) \
       SELECT c.instance_id, c.message, $4, $4 \
       FROM UNNEST($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS c(lock_token, instance_id, message, n) \
       WHERE c.lock_token IN (SELECT lock_token FROM done) ORDER BY c.n) \
     SELECT ARRAY(SELECT lock_token FROM done) AS done, ",
    async_commit!()
);

/// Locks the oldest visible work items worker `$1` may run at `$2` that need no session
/// claim: the run of session-less items before the oldest session item the worker may run
/// (it holds the session, or may claim it while holding fewer than `$3`), so the order is
/// the one single fetches would give. At most `$4`, each with its own token (`$5`, a dot
/// and its id), locked until `$6`. Work cancelled by its orchestration whose worker is gone
/// is dropped on the way. The first row's `session_first` is that session item, if any;
/// a row without `id` means nothing was locked. `{tags}` stands for the worker's tag
/// condition (see `tag_condition`), whose tag list, when it has one, is `$7`. A lock is
/// committed without waiting for the WAL flush (see `async_commit!`).
pub(super) const FETCH_WORK_SQL: &str = concat!(
    "WITH gone AS (DELETE FROM worker_queue WHERE cancel_requested AND locked_until <= $2), \
     bound AS (SELECT MIN(w.id) AS id FROM worker_queue w LEFT JOIN sessions s ON s.session_id = w.session_id \
       WHERE w.session_id IS NOT NULL AND w.visible_at <= $2 AND (w.lock_token IS NULL OR w.locked_until <= $2) \
         AND NOT w.cancel_requested AND {tags} AND ((s.worker_id = $1 AND s.locked_until > $2) \
           OR ((s.session_id IS NULL OR s.locked_until <= $2) \
               AND (SELECT COUNT(*) FROM sessions h WHERE h.worker_id = $1 AND h.locked_until > $2 \
                    AND EXISTS (SELECT 1 FROM worker_queue b WHERE b.session_id = h.session_id)) < $3))), \
     head AS (SELECT w.id FROM worker_queue w \
       WHERE w.session_id IS NULL AND w.visible_at <= $2 AND (w.lock_token IS NULL OR w.locked_until <= $2) \
         AND NOT w.cancel_requested AND {tags} AND w.id < COALESCE((SELECT id FROM bound), 9223372036854775807) \
       ORDER BY w.id LIMIT $4 FOR UPDATE SKIP LOCKED), \
     taken AS (UPDATE worker_queue w SET lock_token = $5 || '.' || w.id, locked_until = $6, locked_by = $1, \
       attempt_count = w.attempt_count + 1 FROM head WHERE w.id = head.id \
       RETURNING w.id, w.lock_token, w.instance_id, w.execution_id, w.event_id, w.name, w.input, w.attempt_count, \
         w.visible_at, w.tag, w.orchestration_name, w.orchestration_version) \
     SELECT b.id AS session_first, t.*, ",
    async_commit!(),
    " FROM bound b LEFT JOIN taken t ON TRUE"
);

/// The condition over `worker_queue` alias `w` for the work `worker` takes by tag, its tag
/// list (when it has one) bound as `list`.
pub(super) fn tag_condition(worker: &WorkerIdentity, list: &str) -> String {
    worker.tags.sql_condition(|p| format!("= ANY({p}::text[])"), list)
}

/// An activity from a `worker_queue` row read after its lock counted the attempt.
pub(super) fn work_item_from_row(
    r: &PgRow,
    lock_token: String,
    session_id: Option<String>,
    session_claimed: bool,
) -> Result<ActivityWorkItem, ProviderError> {
    activity_from_row(r, lock_token, session_id, session_claimed, attempt_of(r)?)
}

/// The `attempt_count` column (an `INTEGER`) as an attempt number.
pub(super) fn attempt_of(r: &PgRow) -> Result<u32, ProviderError> {
    Ok(r.try_get::<i32, _>("attempt_count").map_err(storage)?.max(0) as u32)
}

impl PostgresProvider {
    /// One attempt of `fetch_work_item`: `Ok(None)` when a session claim lost a race (try
    /// again), `Ok(Some(None))` when there is no work.
    pub(super) async fn try_fetch_work_item(
        &self,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
    ) -> Result<Option<Option<ActivityWorkItem>>, ProviderError> {
        let now = crate::now_ms();
        let mut tx = self.begin().await?;
        // Cancelled work whose worker died is dropped here.
        sqlx::query("DELETE FROM worker_queue WHERE cancel_requested AND locked_until <= $1")
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        let held: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions h WHERE h.worker_id = $1 AND h.locked_until > $2 \
                 AND EXISTS (SELECT 1 FROM worker_queue b WHERE b.session_id = h.session_id)",
        )
        .bind(&worker.worker_id)
        .bind(ms(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(storage)?;
        let can_claim = held < i64::from(worker.max_sessions);
        // Runnable: no session; or a session this worker holds; or (if it may claim more) a
        // session nobody holds or whose lease expired.
        let sql = format!(
            "SELECT w.id AS id, w.session_id AS session_id, \
             COALESCE(s.worker_id = $1 AND s.locked_until > $2, FALSE) AS mine \
             FROM worker_queue w LEFT JOIN sessions s ON s.session_id = w.session_id \
             WHERE w.visible_at <= $2 AND (w.lock_token IS NULL OR w.locked_until <= $2) AND {} AND ( \
               w.session_id IS NULL \
               OR (s.worker_id = $1 AND s.locked_until > $2) \
               OR ($3 AND (s.session_id IS NULL OR s.locked_until <= $2))) \
             ORDER BY w.id LIMIT 1 FOR UPDATE OF w SKIP LOCKED",
            tag_condition(worker, "$4")
        );
        let mut query =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&worker.worker_id).bind(ms(now)).bind(can_claim);
        if worker.tags.needs_list() {
            query = query.bind(worker.tags.listed());
        }
        let row = query.fetch_optional(&mut *tx).await.map_err(storage)?;
        let Some(r) = row else { return Ok(Some(None)) };
        let id: i64 = r.try_get("id").map_err(storage)?;
        let session_id: Option<String> = r.try_get("session_id").map_err(storage)?;
        let mine: bool = r.try_get("mine").map_err(storage)?;
        let mut session_claimed = false;
        if let Some(sid) = &session_id {
            session_claimed = !mine;
            // Claim or extend, unless another worker got a valid lease meanwhile.
            let claimed = sqlx::query(
                "INSERT INTO sessions (session_id, worker_id, locked_until, last_activity_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO UPDATE SET \
                 worker_id = EXCLUDED.worker_id, locked_until = EXCLUDED.locked_until, \
                 last_activity_at = EXCLUDED.last_activity_at \
                 WHERE sessions.worker_id = EXCLUDED.worker_id OR sessions.locked_until <= $4",
            )
            .bind(sid)
            .bind(&worker.worker_id)
            .bind(ms(now + worker.session_lease.as_millis() as u64))
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
            if claimed.rows_affected() == 0 {
                return Ok(None);
            }
        }
        let lock_token = token();
        let r = sqlx::query(
            "UPDATE worker_queue SET lock_token = $1, locked_until = $2, locked_by = $4, \
             attempt_count = attempt_count + 1 \
             WHERE id = $3 RETURNING instance_id, execution_id, event_id, name, input, attempt_count, visible_at, \
             tag, orchestration_name, orchestration_version",
        )
        .bind(&lock_token)
        .bind(ms(now + lock_timeout.as_millis() as u64))
        .bind(id)
        .bind(&worker.worker_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(storage)?;
        let item = work_item_from_row(&r, lock_token, session_id, session_claimed)?;
        tx.commit().await.map_err(storage)?;
        Ok(Some(Some(item)))
    }

    /// Completes work items and, with `lock`, locks in the same transaction the instances
    /// they report to (see `Provider::complete_work_items_and_lock`).
    pub(super) async fn complete_and_lock(
        &self,
        items: Vec<(String, OutboundMessage)>,
        lock: Option<LockAfterComplete<'_>>,
    ) -> (Vec<Result<(), ProviderError>>, Vec<OrchestrationItem>) {
        let n = items.len();
        let all_failed = |e: ProviderError| ((0..n).map(|_| Err(e.clone())).collect::<Vec<_>>(), Vec::new());
        if items.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let (first, batch) = match CompletionBatch::new(&items) {
            Ok(b) => b,
            Err(e) => return all_failed(e),
        };
        let lock = lock.filter(|l| l.max_instances > 0);
        let now = crate::now_ms();
        let mut conn = match self.pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => return all_failed(storage(e)),
        };
        let (done, locked, notified) =
            match self.write_completions(&mut conn, &batch, lock.as_ref(), now).await {
                Ok(c) => c,
                Err(e) => return all_failed(e),
            };
        if notified {
            self.notifiers.wake_orchestrator_at(None);
            self.post_wakeups([orchestrator_wake(&self.origin, None)]);
        }
        let results = items
            .iter()
            .zip(first)
            .map(|((token, _), first)| match first && done.contains(token) {
                true => Ok(()),
                false => Err(lock_lost("activity", token)),
            })
            .collect();
        // Committed: if the histories cannot be read, the instances are released again.
        let items = match (&lock, locked.is_empty()) {
            (Some(lock), false) => match self.with_histories(&mut conn, locked, lock.cached).await {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(error = %e, "reading instances locked by completions failed");
                    Vec::new()
                }
            },
            _ => Vec::new(),
        };
        (results, items)
    }

    /// Deletes the completed work and enqueues the completions (`COMPLETE_SQL`), then, with
    /// `lock`, locks the instances they report to in the same transaction. The tokens whose
    /// work was still held, the instances locked, and whether dispatchers need waking.
    async fn write_completions(
        &self,
        conn: &mut PgConnection,
        batch: &CompletionBatch,
        lock: Option<&LockAfterComplete<'_>>,
        now: u64,
    ) -> Result<(HashSet<String>, Vec<Locked>, bool), ProviderError> {
        let complete = || {
            sqlx::query(COMPLETE_SQL)
                .bind(&batch.tokens)
                .bind(&batch.instances)
                .bind(&batch.messages)
                .bind(ms(now))
        };
        let done_tokens = |row: &PgRow| -> Result<HashSet<String>, ProviderError> {
            Ok(row.try_get::<Vec<String>, _>("done").map_err(storage)?.into_iter().collect())
        };
        let Some(lock) = lock else {
            // One statement, so no transaction to open.
            let done = done_tokens(&complete().fetch_one(&mut *conn).await.map_err(storage)?)?;
            let notified = !done.is_empty();
            return Ok((done, Vec::new(), notified));
        };
        let mut tx = conn.begin().await.map_err(storage)?;
        let done = done_tokens(&complete().fetch_one(&mut *tx).await.map_err(storage)?)?;
        let mut targets: Vec<String> = Vec::new();
        for (token, instance) in batch.tokens.iter().zip(&batch.instances) {
            if done.contains(token) && !targets.contains(instance) {
                targets.push(instance.clone());
            }
        }
        let locked = match targets.is_empty() {
            true => Vec::new(),
            false => {
                let target = LockTarget::Instances(&targets);
                Self::lock_instances(&mut tx, target, lock.filter, lock.max_instances, now, lock.lock_timeout)
                    .await?
            }
        };
        // Dispatchers (here and elsewhere) need waking only for completions whose
        // instance was not locked here.
        let notified = targets.len() > locked.len();
        tx.commit().await.map_err(storage)?;
        Ok((done, locked, notified))
    }

    pub(super) async fn lock_work(
        &self,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
        max: usize,
    ) -> Result<Vec<ActivityWorkItem>, ProviderError> {
        let now = crate::now_ms();
        // The common case in one statement, without a transaction: items without a session.
        let sql = FETCH_WORK_SQL.replace("{tags}", &tag_condition(worker, "$7"));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&worker.worker_id)
            .bind(ms(now))
            .bind(i64::from(worker.max_sessions))
            .bind(max.clamp(1, MAX_BATCH) as i64)
            .bind(token())
            .bind(ms(now + lock_timeout.as_millis() as u64));
        if worker.tags.needs_list() {
            query = query.bind(worker.tags.listed());
        }
        let rows = query.fetch_all(&self.pool).await.map_err(storage)?;
        let mut session_first = false;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            session_first |= r.try_get::<Option<i64>, _>("session_first").map_err(storage)?.is_some();
            let Some(id) = r.try_get::<Option<i64>, _>("id").map_err(storage)? else { continue };
            let token = r.try_get("lock_token").map_err(storage)?;
            let item = work_item_from_row(r, token, None, false)?;
            items.push((id, item));
        }
        if !items.is_empty() || !session_first {
            // RETURNING has no order.
            items.sort_by_key(|(id, _)| *id);
            return Ok(items.into_iter().map(|(_, item)| item).collect());
        }
        // The oldest item this worker may run is on a session: it comes alone, as a single
        // fetch gives it. A session claim can lose a race with another worker's; then look
        // again.
        for _ in 0..3 {
            if let Some(found) = self.try_fetch_work_item(lock_timeout, worker).await? {
                return Ok(found.into_iter().collect());
            }
        }
        Ok(Vec::new())
    }

    pub(super) async fn renew_work_lock(
        &self,
        lock_token: &str,
        lock_timeout: Duration,
    ) -> Result<(), ProviderError> {
        let until = crate::now_ms() + lock_timeout.as_millis() as u64;
        let cancel: Option<bool> = sqlx::query_scalar(
            "UPDATE worker_queue SET locked_until = $1 WHERE lock_token = $2 RETURNING cancel_requested",
        )
        .bind(ms(until))
        .bind(lock_token)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?;
        match cancel {
            None => Err(lock_lost("activity", lock_token)),
            Some(true) => Err(ProviderError::Cancelled),
            Some(false) => Ok(()),
        }
    }

    pub(super) async fn abandon_work(
        &self,
        lock_token: &str,
        delay: Option<Duration>,
    ) -> Result<(), ProviderError> {
        let visible = crate::now_ms() + delay.map(|d| d.as_millis() as u64).unwrap_or(0);
        let done = sqlx::query(
            "UPDATE worker_queue SET lock_token = NULL, locked_until = 0, visible_at = $1 WHERE lock_token = $2",
        )
        .bind(ms(visible))
        .bind(lock_token)
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        if done.rows_affected() > 0 {
            self.post_wakeups(["w".to_string()]);
        }
        Ok(())
    }
}

/// Completions as `COMPLETE_SQL` binds them: one entry per distinct token.
struct CompletionBatch {
    tokens: Vec<String>,
    instances: Vec<String>,
    messages: Vec<String>,
}

impl CompletionBatch {
    /// The batch, and for each item whether it is its token's first (a token listed twice
    /// completes once, as two calls would).
    fn new(items: &[(String, OutboundMessage)]) -> Result<(Vec<bool>, Self), ProviderError> {
        let mut seen = HashSet::new();
        let first: Vec<bool> = items.iter().map(|(token, _)| seen.insert(token.as_str())).collect();
        let mut batch = CompletionBatch { tokens: Vec::new(), instances: Vec::new(), messages: Vec::new() };
        for ((token, completion), _) in items.iter().zip(&first).filter(|(_, first)| **first) {
            batch.messages.push(to_json(&completion.message)?);
            batch.tokens.push(token.clone());
            batch.instances.push(completion.instance.clone());
        }
        Ok((first, batch))
    }
}
