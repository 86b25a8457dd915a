//! Taking, renewing and releasing instance locks: the fetch filter, locking a batch of
//! ready instances with their messages, and loading the histories this node does not
//! cache. Activity locks live in `work`.

use super::*;

/// The fetch-filter condition over instance alias `i`, with parameters `$2..$7` (see
/// [`FilterParams`]). Names, pinned versions and the duroxide-version range are all checked
/// in the query, so items a node cannot run never block the ones it can.
pub(super) const FILTER_SQL: &str = "($2::boolean OR i.name = ANY($3::text[])) \
     AND ($2::boolean OR i.version IS NULL \
          OR (i.name, i.version) IN (SELECT p.n, p.v FROM UNNEST($4::text[], $5::text[]) AS p(n, v))) \
     AND ($6::bigint IS NULL OR i.duroxide_version_key IS NULL \
          OR i.duroxide_version_key BETWEEN $6 AND $7)";

/// The bound values of [`FILTER_SQL`].
pub(super) struct FilterParams {
    pub(super) any_orchestration: bool,
    pub(super) names: Vec<String>,
    pub(super) pair_names: Vec<String>,
    pub(super) pair_versions: Vec<String>,
    pub(super) min_key: Option<i64>,
    pub(super) max_key: Option<i64>,
}

impl FilterParams {
    pub(super) fn new(filter: &FetchFilter) -> Self {
        let mut p = FilterParams {
            any_orchestration: filter.orchestrations.is_none(),
            names: Vec::new(),
            pair_names: Vec::new(),
            pair_versions: Vec::new(),
            min_key: filter.duroxide_versions.as_ref().map(|r| version_key(&r.min)),
            max_key: filter.duroxide_versions.as_ref().map(|r| version_key(&r.max)),
        };
        for (name, versions) in filter.orchestrations.iter().flatten() {
            p.names.push(name.clone());
            for v in versions {
                p.pair_names.push(name.clone());
                p.pair_versions.push(v.clone());
            }
        }
        p
    }

    pub(super) fn bind<'q>(
        self,
        q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        q.bind(self.any_orchestration)
            .bind(self.names)
            .bind(self.pair_names)
            .bind(self.pair_versions)
            .bind(self.min_key)
            .bind(self.max_key)
    }
}

/// Most items one batch fetch takes, whatever the caller asks for.
pub(super) const MAX_BATCH: usize = 256;

/// Which instances [`PostgresProvider::lock_instances`] takes.
#[derive(Clone, Copy)]
pub(super) enum LockTarget<'a> {
    /// Those with the oldest visible messages.
    Oldest,
    /// Those of these that have visible messages (where completions just went).
    Instances(&'a [String]),
}

impl LockTarget<'_> {
    /// The query that selects and row-locks the instances: `$1` now, the filter `$2..$7`,
    /// at most `$8` rows (`$11`: the instance ids of `Instances`). Locked rows are skipped,
    /// so concurrent fetches never wait for each other.
    pub(super) fn candidates(&self) -> String {
        match self {
            // One row per message: at most `$8` instances, fewer when one has several. The
            // queue drives the loop whatever the statistics say: the instance is looked up
            // per message (a `LATERAL` subquery with `LIMIT 1`, which the planner cannot
            // turn into a join over all of `instances`; a generic plan of the plain join
            // walked every instance per fetch).
            LockTarget::Oldest => format!(
                "SELECT i.instance_id, i.tid FROM orchestrator_queue q \
                 CROSS JOIN LATERAL (SELECT i.instance_id, i.ctid AS tid FROM instances i WHERE i.instance_id = q.instance_id \
                   AND (i.lock_token IS NULL OR i.locked_until <= $1) AND {FILTER_SQL} LIMIT 1) i \
                 WHERE q.visible_at <= $1 \
                 ORDER BY q.id LIMIT $8 FOR UPDATE OF i SKIP LOCKED"
            ),
            LockTarget::Instances(_) => format!(
                "SELECT i.instance_id, i.tid FROM UNNEST($11::text[]) AS want(id) \
                 CROSS JOIN LATERAL (SELECT i.instance_id, i.ctid AS tid FROM instances i WHERE i.instance_id = want.id \
                   AND (i.lock_token IS NULL OR i.locked_until <= $1) AND {FILTER_SQL} \
                   AND EXISTS (SELECT 1 FROM orchestrator_queue q WHERE q.instance_id = i.instance_id AND q.visible_at <= $1) \
                   LIMIT 1) i \
                 LIMIT $8 FOR UPDATE OF i SKIP LOCKED"
            ),
        }
    }

    /// One statement that locks the instances [`candidates`](Self::candidates) selects:
    /// each gets its own token (`$9`'s uuid, a dot, the instance id: see `token_instance!`)
    /// and the lock until `$10`, and its visible messages count an attempt. One row per
    /// instance: the record, the token, the stored history length (the last event id: an
    /// index seek, where a count would read the history) and the messages in enqueue order. A lock-only write: committed without waiting for the
    /// WAL flush (see `async_commit!`).
    ///
    /// Instances and messages are updated by row address (`ctid`): the candidates lock
    /// their rows in this statement, so the addresses cannot change under it. A row another
    /// writer updated in between fails the address check and is not taken now. The
    /// instances' addresses are joined through `rows_by_address` (migration 9), which the
    /// planner takes for one row, so each instance is looked up on its own whatever the
    /// statistics say: a plain join with the candidates, planned while the tables were
    /// young, stays a hash join over a sequential scan of `instances` for the connection's
    /// life (`tests/hot_path_plans.rs` checks the plans made on an empty store).
    pub(super) fn lock_sql(&self) -> String {
        format!(
            "WITH c AS ({}), \
             t AS (SELECT d.instance_id, d.tid, row_number() OVER () AS n \
                   FROM (SELECT DISTINCT instance_id, tid FROM c) d), \
             l AS (UPDATE instances i SET lock_token = ($9::text[])[t.n::int] || '.' || i.instance_id, locked_until = $10 \
                   FROM rows_by_address(ARRAY(SELECT tid FROM t)) AS a(tid) JOIN t ON t.tid = a.tid \
                   WHERE i.ctid = a.tid AND i.instance_id = t.instance_id RETURNING i.*), \
             qm AS (SELECT l.lock_token, x.tid FROM l CROSS JOIN LATERAL \
                   (SELECT q.ctid AS tid FROM orchestrator_queue q \
                    WHERE q.instance_id = l.instance_id AND q.visible_at <= $1 ORDER BY q.id) x), \
             m AS (UPDATE orchestrator_queue q SET lock_token = qm.lock_token, attempt_count = q.attempt_count + 1 \
                   FROM qm WHERE q.ctid = qm.tid \
                   RETURNING q.instance_id, q.id, q.message, q.attempt_count) \
             SELECT l.*, \
               COALESCE((SELECT MAX(h.event_id) FROM history h \
                 WHERE h.instance_id = l.instance_id AND h.execution_id = l.execution_id), 0) AS stored_len, \
               ARRAY(SELECT m.id FROM m WHERE m.instance_id = l.instance_id ORDER BY m.id) AS message_ids, \
               ARRAY(SELECT m.message FROM m WHERE m.instance_id = l.instance_id ORDER BY m.id) AS messages, \
               COALESCE((SELECT MAX(m.attempt_count) FROM m WHERE m.instance_id = l.instance_id), 0) AS attempt, \
               {} \
             FROM l",
            self.candidates(),
            async_commit!()
        )
    }
}

/// An instance a lock statement took, its history not read yet.
pub(super) struct Locked {
    /// The item, with an empty history.
    pub(super) item: OrchestrationItem,
    /// Its oldest message, to hand items out oldest first.
    pub(super) oldest: i64,
    /// The last stored event id of the current execution.
    pub(super) stored_len: u64,
}

impl Locked {
    pub(super) fn from_row(r: &PgRow) -> Result<Self, ProviderError> {
        let (record, bad_state) = locked_record_from_row(r)?;
        let ids: Vec<i64> = r.try_get("message_ids").map_err(storage)?;
        let data: Vec<String> = r.try_get("messages").map_err(storage)?;
        let mut messages = Vec::with_capacity(data.len());
        let mut unreadable = None;
        for (id, data) in ids.iter().zip(data) {
            match serde_json::from_str::<OrchestratorMessage>(&data) {
                Ok(m) => messages.push(m),
                Err(e) => unreadable = Some(format!("queued message {id}: {e}")),
            }
        }
        Ok(Locked {
            item: OrchestrationItem {
                instance: record.instance.clone(),
                lock_token: r.try_get("lock_token").map_err(storage)?,
                record,
                history: Vec::new(),
                history_error: unreadable.or(bad_state),
                history_len: 0,
                history_rev: r.try_get::<i64, _>("history_rev").map_err(storage)?.max(0) as u64,
                messages,
                attempt: r.try_get::<i32, _>("attempt").map_err(storage)?.max(0) as u32,
            },
            oldest: ids.first().copied().unwrap_or(i64::MAX),
            stored_len: r.try_get::<i64, _>("stored_len").map_err(storage)?.max(0) as u64,
        })
    }
}

impl PostgresProvider {
    /// Locks up to `max` instances (see [`LockTarget`]) in one statement, each with its own
    /// token.
    pub(super) async fn lock_instances(
        conn: &mut PgConnection,
        target: LockTarget<'_>,
        filter: &FetchFilter,
        max: usize,
        now: u64,
        lock_timeout: Duration,
    ) -> Result<Vec<Locked>, ProviderError> {
        let max = max.clamp(1, MAX_BATCH);
        let tokens: Vec<String> = (0..max).map(|_| token()).collect();
        let sql = target.lock_sql();
        let mut query = FilterParams::new(filter)
            .bind(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(now)))
            .bind(max as i64)
            .bind(tokens)
            .bind(ms(now + lock_timeout.as_millis() as u64));
        if let LockTarget::Instances(ids) = target {
            query = query.bind(ids);
        }
        let rows = query.fetch_all(&mut *conn).await.map_err(storage)?;
        rows.iter().map(Locked::from_row).collect()
    }

    /// The locked instances as items, oldest message first, with their history where this
    /// node does not hold the execution in memory (`cached`). If the history cannot be read,
    /// the locks are released.
    pub(super) async fn with_histories(
        &self,
        conn: &mut PgConnection,
        mut locked: Vec<Locked>,
        cached: &CachedLookup<'_>,
    ) -> Result<Vec<OrchestrationItem>, ProviderError> {
        let (mut ids, mut execs) = (Vec::new(), Vec::new());
        for l in &mut locked {
            let exec = l.item.record.execution_id;
            match cached(&l.item.instance).filter(|c| c.execution_id == exec).map(|c| c.last_event_id) {
                // A node that holds this execution needs only the stored length to know its
                // copy is current.
                Some(len) if len > 0 && len == l.stored_len => l.item.history_len = len,
                // Never started: no history to read.
                _ if exec == 0 => {}
                _ => {
                    ids.push(l.item.instance.clone());
                    execs.push(ms(exec));
                }
            }
        }
        if !ids.is_empty() {
            // The instances are locked: their histories cannot change meanwhile. Each is
            // read on its own through the key (a `LATERAL` subquery that `OFFSET 0` keeps
            // from being merged into a join): a plain join, planned while `history` was
            // young, stays a hash join over all of it.
            let rows = sqlx::query_as::<_, (String, i64, String)>(
                "SELECT t.instance_id, h.event_id, h.data \
                 FROM UNNEST($1::text[], $2::bigint[]) AS t(instance_id, execution_id) \
                 CROSS JOIN LATERAL (SELECT h.event_id, h.data FROM history h \
                   WHERE h.instance_id = t.instance_id AND h.execution_id = t.execution_id \
                   ORDER BY h.event_id OFFSET 0) h \
                 ORDER BY t.instance_id, h.event_id",
            )
            .bind(&ids)
            .bind(&execs)
            .fetch_all(&mut *conn)
            .await;
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => {
                    self.release_locks(locked.iter().map(|l| l.item.lock_token.clone()).collect()).await;
                    return Err(storage(e));
                }
            };
            let mut histories: HashMap<String, Vec<(i64, String)>> = HashMap::new();
            for (instance, id, data) in rows {
                histories.entry(instance).or_default().push((id, data));
            }
            for l in &mut locked {
                if ids.contains(&l.item.instance) {
                    let rows = histories.remove(&l.item.instance).unwrap_or_default();
                    let (history, error, len) = parse_history(rows, l.item.record.execution_id);
                    l.item.history = history;
                    l.item.history_len = len;
                    l.item.history_error = error.or(l.item.history_error.take());
                }
            }
        }
        locked.sort_by_key(|l| l.oldest);
        Ok(locked.into_iter().map(|l| l.item).collect())
    }

    /// Unlocks instances this node locked but cannot hand over, without counting the
    /// attempt. Best effort: otherwise their locks expire. Only a failed history read
    /// gets here, so each token is released by a statement of its own, whose plan is a
    /// lookup by key whatever the statistics (a join with a set of tokens, planned on a
    /// young store, would walk both tables).
    pub(super) async fn release_locks(&self, tokens: Vec<String>) {
        for token in tokens {
            let released = sqlx::query(concat!(
                "WITH i AS (UPDATE instances SET lock_token = NULL, locked_until = 0 WHERE instance_id = ",
                token_instance!("$1"),
                " AND lock_token = $1) \
                 UPDATE orchestrator_queue SET lock_token = NULL, attempt_count = attempt_count - 1 \
                 WHERE instance_id = ",
                token_instance!("$1"),
                " AND lock_token = $1"
            ))
            .bind(&token)
            .execute(&self.pool)
            .await;
            if let Err(e) = released {
                tracing::warn!(error = %e, "releasing a locked instance failed; its lock will expire");
            }
        }
        self.notifiers.wake_orchestrator_at(None);
    }

    pub(super) async fn lock_ready_instances(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
        cached: &CachedLookup<'_>,
        max: usize,
    ) -> Result<Vec<OrchestrationItem>, ProviderError> {
        let now = crate::now_ms();
        let mut conn = self.pool.acquire().await.map_err(storage)?;
        // One statement, no transaction: when nothing is ready it is a read that locks and
        // writes nothing, so idle dispatchers cost little.
        let locked =
            Self::lock_instances(&mut conn, LockTarget::Oldest, filter, max, now, lock_timeout).await?;
        if locked.is_empty() {
            return Ok(Vec::new());
        }
        self.with_histories(&mut conn, locked, cached).await
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
        let mut tx = self.begin().await?;
        let done = sqlx::query(concat!(
            "UPDATE instances SET lock_token = NULL, locked_until = 0, \
                 status_note = COALESCE($1, status_note), updated_at = $2 WHERE instance_id = ",
            token_instance!("$3"),
            " AND lock_token = $3"
        ))
        .bind(note)
        .bind(ms(now))
        .bind(lock_token)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if done.rows_affected() == 0 {
            return Err(lock_lost("instance", lock_token));
        }
        sqlx::query(concat!(
            "UPDATE orchestrator_queue SET lock_token = NULL, visible_at = GREATEST(visible_at, $1), \
                 attempt_count = attempt_count - $2 WHERE instance_id = ",
            token_instance!("$3"),
            " AND lock_token = $3"
        ))
        .bind(ms(visible))
        .bind(if attempt == Attempt::Counted { 0i32 } else { 1i32 })
        .bind(lock_token)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        self.notifiers.wake_orchestrator_at(Some(visible));
        self.post_wakeups([orchestrator_wake(&self.origin, Some(visible))]);
        Ok(())
    }

    pub(super) async fn renew_instance_lock(
        &self,
        lock_token: &str,
        lock_timeout: Duration,
    ) -> Result<(), ProviderError> {
        let until = crate::now_ms() + lock_timeout.as_millis() as u64;
        let done = sqlx::query(concat!(
            "UPDATE instances SET locked_until = $1 WHERE instance_id = ",
            token_instance!("$2"),
            " AND lock_token = $2"
        ))
        .bind(ms(until))
        .bind(lock_token)
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        if done.rows_affected() == 0 {
            return Err(lock_lost("instance", lock_token));
        }
        Ok(())
    }
}
