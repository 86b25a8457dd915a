//! Session leases: a worker renews the sessions it holds and releases the idle ones.
//! Claiming a session happens with the fetch that takes its work (`work`).

use super::*;

impl SqliteProvider {
    pub(super) async fn renew_worker_sessions(
        &self,
        worker: &WorkerIdentity,
        idle_timeout: Duration,
    ) -> Result<Vec<String>, ProviderError> {
        let now = crate::now_ms();
        let idle_since = now.saturating_sub(idle_timeout.as_millis() as u64);
        write_tx!(self.conns, _w, tx, BEGIN_LIGHT);
        // Housekeeping: work cancelled by its orchestration whose worker is gone.
        sqlx::query("DELETE FROM worker_queue WHERE cancel_requested = 1 AND locked_until <= ?")
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        let released: Vec<String> = sqlx::query_scalar(
            "DELETE FROM sessions WHERE worker_id = ? AND last_activity_at <= ? AND NOT EXISTS ( \
               SELECT 1 FROM worker_queue w WHERE w.session_id = sessions.session_id \
               AND w.lock_token IS NOT NULL AND w.locked_until > ?) \
             RETURNING session_id",
        )
        .bind(&worker.worker_id)
        .bind(ms(idle_since))
        .bind(ms(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(storage)?;
        sqlx::query("UPDATE sessions SET locked_until = ? WHERE worker_id = ?")
            .bind(ms(now + worker.session_lease.as_millis() as u64))
            .bind(&worker.worker_id)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(released)
    }
}
