//! Session leases: a worker renews the sessions it holds and releases the idle ones.
//! Claiming a session happens with the fetch that takes its work (`work`).

use super::*;

impl PostgresProvider {
    pub(super) async fn renew_worker_sessions(
        &self,
        worker: &WorkerIdentity,
        idle_timeout: Duration,
    ) -> Result<Vec<String>, ProviderError> {
        let now = crate::now_ms();
        let idle_since = now.saturating_sub(idle_timeout.as_millis() as u64);
        let mut tx = self.begin().await?;
        let released: Vec<String> = sqlx::query_scalar(
            "DELETE FROM sessions WHERE worker_id = $1 AND last_activity_at <= $2 AND NOT EXISTS ( \
               SELECT 1 FROM worker_queue w WHERE w.session_id = sessions.session_id \
               AND w.lock_token IS NOT NULL AND w.locked_until > $3) \
             RETURNING session_id",
        )
        .bind(&worker.worker_id)
        .bind(ms(idle_since))
        .bind(ms(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(storage)?;
        sqlx::query("UPDATE sessions SET locked_until = $1 WHERE worker_id = $2")
            .bind(ms(now + worker.session_lease.as_millis() as u64))
            .bind(&worker.worker_id)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        if !released.is_empty() {
            // Work of released sessions may now go to other workers.
            self.post_wakeups(["w".to_string()]);
        }
        Ok(released)
    }
}
