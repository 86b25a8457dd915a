//! Group commit: durable writes (instance starts and turns) that arrive together share
//! one transaction and one fsync. A failed batch is retried write by write, each in its
//! own savepoint, so a failure stays with its write. The statements themselves come from
//! `commit`.

use super::*;

/// The columns of an [`InstanceRecord`], for `SELECT` and `RETURNING`.
/// A durable write that joins the group commit.
pub(super) enum DurableWrite {
    Turn { lock_token: String, commit: TurnCommit },
    Create { instance: String, name: String, version: Option<String>, input: String },
}

/// What to tell this process's dispatchers and waiters once a write is on disk.
#[derive(Default)]
pub(super) struct Effects {
    pub(super) wake_at: Vec<Option<u64>>,
    pub(super) unlocked_work: bool,
    pub(super) finished: Option<InstanceRecord>,
    /// The instance whose custom status the write changed, if it did.
    pub(super) status_changed: Option<String>,
}

pub(super) struct Job {
    pub(super) write: DurableWrite,
    pub(super) reply: tokio::sync::oneshot::Sender<Result<(), ProviderError>>,
}

#[derive(Default)]
pub(super) struct GroupState {
    pub(super) queue: Vec<Job>,
    pub(super) leading: bool,
}

/// Group commit for durable writes (turns and new instances). The first writer to arrive
/// leads: it takes every write queued so far, applies each as one guarded statement batch
/// (a turn whose lock was lost, or a start whose id is taken, writes nothing and fails
/// alone) and commits them in one transaction, so they share one fsync. Writers arriving
/// meanwhile queue for the next round, which the leader runs too. Every writer returns only
/// after the commit holding its write is durable. Under no contention a write commits
/// alone, in one round trip.
pub(super) struct GroupCommit {
    pub(super) conns: Arc<Conns>,
    pub(super) notifiers: Arc<Notifiers>,
    pub(super) state: std::sync::Mutex<GroupState>,
}

/// Most writes one group commit takes.
pub(super) const GROUP_MAX: usize = 64;

impl GroupCommit {
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) async fn submit(self: &Arc<Self>, write: DurableWrite) -> Result<(), ProviderError> {
        let (reply, done) = tokio::sync::oneshot::channel();
        let lead = {
            let mut st = self.state();
            st.queue.push(Job { write, reply });
            !std::mem::replace(&mut st.leading, true)
        };
        if lead {
            // If this caller is cancelled while leading, a new task takes over the rest.
            let mut handoff = Handoff(Some(self.clone()));
            self.lead().await;
            handoff.0 = None;
        }
        done.await.unwrap_or_else(|_| {
            Err(ProviderError::Storage("the commit this write joined was cancelled; retry".into()))
        })
    }

    /// Commits rounds of queued writes until the queue is empty. A round's writers hear
    /// of it once it is durable: at once when its commit flushed the WAL itself, otherwise
    /// after a flush outside the writer (see `WalSync`), which runs while the next round
    /// commits.
    pub(super) async fn lead(self: &Arc<Self>) {
        loop {
            let jobs = {
                let mut st = self.state();
                if st.queue.is_empty() {
                    st.leading = false;
                    return;
                }
                let n = st.queue.len().min(GROUP_MAX);
                st.queue.drain(..n).collect::<Vec<_>>()
            };
            let (results, round) = self.commit_round(&jobs).await;
            match (&self.conns.wal, round) {
                (Some(wal), Some(seq)) if results.iter().any(Result::is_ok) => {
                    let (group, wal) = (self.clone(), wal.clone());
                    tokio::spawn(async move {
                        let synced = wal.sync_through(seq).await;
                        group.reply(jobs, results, synced);
                    });
                }
                _ => self.reply(jobs, results, Ok(())),
            }
        }
    }

    /// Answers a round's writers: each its own result unless the round could not be made
    /// durable.
    fn reply(
        &self,
        jobs: Vec<Job>,
        results: Vec<Result<Effects, ProviderError>>,
        synced: Result<(), ProviderError>,
    ) {
        for (job, result) in jobs.into_iter().zip(results) {
            let result = match &synced {
                Ok(()) => result.map(|effects| self.announce(effects)),
                Err(e) => Err(e.clone()),
            };
            let _ = job.reply.send(result);
        }
    }

    /// Commits one round. With a `WalSync` and a busy writer, the round commits without
    /// flushing the WAL and its number comes back: the caller flushes before it answers.
    /// When nothing else waits (a round of one write, none queued, the writer free), the
    /// round commits with its own flush, as without a `WalSync`: at low load a flush off the
    /// writer would only add hand-offs to the round's latency.
    pub(super) async fn commit_round(
        &self,
        jobs: &[Job],
    ) -> (Vec<Result<Effects, ProviderError>>, Option<u64>) {
        if let Some(Err(e)) = self.conns.wal.as_ref().map(|w| w.check()) {
            return (jobs.iter().map(|_| Err(e.clone())).collect(), None);
        }
        let quiet = self.conns.wal.is_some() && jobs.len() == 1 && self.state().queue.is_empty();
        let (mut writer, begin, batches) = match quiet.then(|| self.conns.try_writer()).flatten() {
            Some(writer) => {
                let begin = self.conns.begin_durable;
                (writer, begin, round_batches(jobs, crate::now_ms(), begin))
            }
            None => {
                let begin = if self.conns.wal.is_some() { BEGIN_LIGHT } else { self.conns.begin_durable };
                // Built before waiting for the writer, the store's bottleneck under load.
                let batches = round_batches(jobs, crate::now_ms(), begin);
                (self.conns.writer().await, begin, batches)
            }
        };
        let Some(wal) = &self.conns.wal else {
            return (self.apply_round(&mut writer, jobs, batches, begin).await, None);
        };
        let round = wal.begin_round();
        let seq = round.seq;
        let results = self.apply_round(&mut writer, jobs, batches, begin).await;
        drop(round);
        if begin == BEGIN_LIGHT {
            return (results, Some(seq));
        }
        if results.iter().any(Result::is_ok) {
            // Its commit flushed the WAL, and with it every round before.
            wal.flushed_through(seq);
        }
        (results, None)
    }

    async fn apply_round(
        &self,
        writer: &mut Writer,
        jobs: &[Job],
        batches: Option<Vec<Batch>>,
        begin: &'static str,
    ) -> Vec<Result<Effects, ProviderError>> {
        let all_failed = |e: ProviderError| jobs.iter().map(|_| Err(e.clone())).collect();
        if let Some(batches) = batches
            && let Some(results) = fast_round(writer, jobs, batches).await
        {
            return results;
        }
        // A batch failed (an SQL error, not a lost lock or a taken id): the round again, each
        // write in its own savepoint, so the failure stays with the write that caused it.
        let mut tx = match sqlx::Connection::begin_with(&mut writer.conn, begin).await {
            Ok(tx) => tx,
            Err(e) => return all_failed(storage(e)),
        };
        let now = crate::now_ms();
        let alone = jobs.len() == 1;
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            let (result, open) = apply_batched(&mut tx, &job.write, now, !alone).await;
            if alone && result.is_err() {
                // Rolled back when the transaction is dropped.
                return vec![result];
            }
            if open && let Err(e) = sqlx::raw_sql("ROLLBACK TO w; RELEASE w").execute(&mut *tx).await {
                return all_failed(storage(e));
            }
            results.push(result);
        }
        match tx.commit().await {
            Ok(()) => results,
            Err(e) => all_failed(storage(e)),
        }
    }

    pub(super) fn announce(&self, effects: Effects) {
        for w in effects.wake_at {
            self.notifiers.wake_orchestrator_at(w);
        }
        if effects.unlocked_work {
            self.notifiers.worker.notify_waiters();
        }
        if let Some(instance) = effects.status_changed {
            let _ = self.notifiers.status_changed.send(instance);
        }
        if let Some(record) = effects.finished {
            let instance = record.instance.clone();
            let _ = self.notifiers.finished.send(Finished { instance, record: Some(Arc::new(record)) });
        }
    }
}

/// Hands the writes still queued to a new leader task if the leading caller is cancelled.
pub(super) struct Handoff(Option<Arc<GroupCommit>>);

impl Drop for Handoff {
    fn drop(&mut self) {
        let Some(group) = self.0.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move { group.lead().await });
            }
            Err(_) => {
                // No runtime to continue on: fail the queued writes (their callers see an
                // error) rather than leave them waiting.
                let mut st = group.state();
                st.queue.clear();
                st.leading = false;
            }
        }
    }
}

/// The batches of a round of starts and turns, one per write: the first write's begins the
/// transaction (`begin`) and the last one's commits it. `None` if a write cannot be
/// expressed (the caller then applies the writes one by one, so the error stays with its
/// write). Built before the writer connection is taken, which is the store's bottleneck
/// under load.
pub(super) fn round_batches(jobs: &[Job], now: u64, begin: &str) -> Option<Vec<Batch>> {
    let last = jobs.len().checked_sub(1)?;
    let mut batches = Vec::with_capacity(jobs.len());
    for (k, job) in jobs.iter().enumerate() {
        let mut batch = Batch::new();
        if k == 0 {
            batch.stmt(begin);
        }
        push_write(&mut batch, &job.write, now).ok()?;
        if k == last {
            batch.stmt("COMMIT");
        }
        batches.push(batch);
    }
    Some(batches)
}

/// Runs a round's `batches` (see `round_batches`), one round trip per write. `None` if a
/// batch failed: the transaction was rolled back, and the caller applies the writes again
/// one by one.
pub(super) async fn fast_round(
    w: &mut Writer,
    jobs: &[Job],
    batches: Vec<Batch>,
) -> Option<Vec<Result<Effects, ProviderError>>> {
    let mut records = Vec::with_capacity(jobs.len());
    w.open = true;
    for mut batch in batches {
        let Ok(rows) = batch.q.build().fetch_all(&mut w.conn).await else {
            // Fails harmlessly if the first batch failed before its BEGIN.
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut w.conn).await;
            w.open = false;
            return None;
        };
        records.push(rows);
    }
    w.open = false;
    Some(jobs.iter().zip(records).map(|(job, rows)| batched_result(&job.write, &rows)).collect())
}

/// Applies a start or a turn inside the caller's transaction in one round trip (see
/// `push_write`). With `savepoint`, the write runs inside savepoint `w`; the returned flag
/// says whether it is still open (the caller then rolls it back), which happens exactly
/// when the write failed after opening it.
pub(super) async fn apply_batched(
    tx: &mut sqlx::SqliteConnection,
    write: &DurableWrite,
    now: u64,
    savepoint: bool,
) -> (Result<Effects, ProviderError>, bool) {
    let mut batch = Batch::new();
    if savepoint {
        batch.stmt("SAVEPOINT w");
    }
    if let Err(e) = push_write(&mut batch, write, now) {
        return (Err(e), savepoint);
    }
    if savepoint {
        batch.stmt("RELEASE w");
    }
    match batch.q.build().fetch_all(&mut *tx).await {
        Ok(rows) => (batched_result(write, &rows), false),
        Err(e) => (Err(storage(e)), savepoint),
    }
}

/// What a batched write did, from the rows its batch returned: the instance row (tag
/// 'r'; none when a turn's lock was gone or a start's id was taken: nothing was written)
/// and the messages delivered (tag 'm', by index).
pub(super) fn batched_result(write: &DurableWrite, rows: &[SqliteRow]) -> Result<Effects, ProviderError> {
    let mut record = None;
    let mut delivered = std::collections::HashSet::new();
    for r in rows {
        match r.try_get::<String, _>("tag").map_err(storage)?.as_str() {
            "r" => record = Some(record_from_row(r)?),
            "m" => {
                delivered.insert(r.try_get::<i64, _>("k").map_err(storage)?);
            }
            _ => {}
        }
    }
    match (write, record) {
        (DurableWrite::Create { .. }, Some(_)) => Ok(Effects { wake_at: vec![None], ..Effects::default() }),
        (DurableWrite::Create { instance, .. }, None) => Err(ProviderError::InstanceExists(instance.clone())),
        (DurableWrite::Turn { commit, .. }, Some(record)) => {
            for (k, m) in commit.messages.iter().enumerate() {
                if delivered.contains(&(k as i64)) {
                    continue;
                }
                match &m.message {
                    // Answered by the conflict reply (see `push_guarded_messages`).
                    OrchestratorMessage::StartOrchestration { parent: Some(_), .. } => {}
                    OrchestratorMessage::StartOrchestration { parent: None, .. } => {
                        tracing::warn!(instance = %m.instance, "detached start skipped: instance already exists")
                    }
                    _ => {
                        tracing::warn!(instance = %m.instance, message = m.message.type_name(), "message to unknown instance dropped")
                    }
                }
            }
            Ok(Effects {
                wake_at: commit.messages.iter().map(|m| m.visible_at_ms).collect(),
                unlocked_work: commit.activities.iter().any(|a| a.lock_token.is_empty()),
                status_changed: (commit.status_changes() > 0).then(|| record.instance.clone()),
                finished: commit.update.state.is_terminal().then_some(record),
            })
        }
        (DurableWrite::Turn { lock_token, .. }, None) => {
            Err(ProviderError::LockLost(format!("instance lock {lock_token} is no longer held")))
        }
    }
}

impl SqliteProvider {
    /// Starts an instance through the group commit.
    pub(super) async fn start_instance(
        &self,
        instance: &str,
        name: &str,
        version: Option<&str>,
        input: &str,
    ) -> Result<(), ProviderError> {
        let write = DurableWrite::Create {
            instance: instance.to_string(),
            name: name.to_string(),
            version: version.map(str::to_string),
            input: input.to_string(),
        };
        self.group.submit(write).await
    }

    /// Commits a turn through the group commit.
    pub(super) async fn commit(&self, lock_token: &str, commit: TurnCommit) -> Result<(), ProviderError> {
        self.group.submit(DurableWrite::Turn { lock_token: lock_token.to_string(), commit }).await
    }
}
