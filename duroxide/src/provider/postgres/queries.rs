//! What clients call outside the dispatch path: instance and history reads, listings,
//! per-version counts, messages sent to an instance and status notes. Export and import
//! live in `transfer`.

use super::*;

impl PostgresProvider {
    pub(super) async fn instance_row(
        conn: &mut PgConnection,
        instance: &str,
    ) -> Result<Option<InstanceRecord>, ProviderError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            instance_record_columns!(),
            " FROM instances WHERE instance_id = $1"
        ))
        .bind(instance)
        .fetch_optional(&mut *conn)
        .await
        .map_err(storage)?;
        row.as_ref().map(record_from_row).transpose()
    }

    pub(super) async fn insert_message(
        conn: &mut PgConnection,
        instance: &str,
        message: &OrchestratorMessage,
        visible_at_ms: Option<u64>,
        now: u64,
    ) -> Result<(), ProviderError> {
        sqlx::query(
            "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(instance)
        .bind(to_json(message)?)
        .bind(ms(visible_at_ms.unwrap_or(now)))
        .bind(ms(now))
        .execute(&mut *conn)
        .await
        .map_err(storage)?;
        Ok(())
    }

    pub(super) async fn load_history(
        conn: &mut PgConnection,
        instance: &str,
        execution_id: u64,
    ) -> Result<(Vec<Event>, Option<String>, u64), ProviderError> {
        let rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT event_id, data FROM history WHERE instance_id = $1 AND execution_id = $2 ORDER BY event_id",
        )
        .bind(instance)
        .bind(ms(execution_id))
        .fetch_all(&mut *conn)
        .await
        .map_err(storage)?;
        Ok(parse_history(rows, execution_id))
    }

    pub(super) async fn enqueue(&self, message: OutboundMessage) -> Result<(), ProviderError> {
        let now = crate::now_ms();
        let mut tx = self.begin().await?;
        if !Self::instance_exists(&mut tx, &message.instance).await? {
            return Err(ProviderError::InstanceNotFound(message.instance));
        }
        Self::insert_message(&mut tx, &message.instance, &message.message, message.visible_at_ms, now)
            .await?;
        tx.commit().await.map_err(storage)?;
        self.notifiers.wake_orchestrator_at(message.visible_at_ms);
        self.send_wakeups([orchestrator_wake(&self.origin, message.visible_at_ms)]).await;
        Ok(())
    }

    pub(super) async fn history_of(
        &self,
        instance: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<Event>, ProviderError> {
        let mut conn = self.pool.acquire().await.map_err(storage)?;
        let exec = match execution_id {
            Some(e) => e,
            None => sql::current_execution(Self::instance_row(&mut conn, instance).await?, instance)?,
        };
        sql::events_or_corrupt(Self::load_history(&mut conn, instance, exec).await?)
    }

    pub(super) async fn executions_of(&self, instance: &str) -> Result<Vec<ExecutionRecord>, ProviderError> {
        let rows = sqlx::query(
            "SELECT e.execution_id AS execution_id, e.version AS version, e.state AS state, \
             e.started_at AS started_at, e.updated_at AS updated_at, \
             (SELECT COUNT(*) FROM history h WHERE h.instance_id = e.instance_id \
              AND h.execution_id = e.execution_id) AS n \
             FROM executions e WHERE e.instance_id = $1 ORDER BY e.execution_id",
        )
        .bind(instance)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        rows.iter()
            .map(|r| sql::execution_from_row(r, r.try_get::<i64, _>("n").map_err(storage)? as u64))
            .collect()
    }

    pub(super) async fn blocked_instances(
        &self,
        filter: &FetchFilter,
        limit: u32,
    ) -> Result<Vec<BlockedInstance>, ProviderError> {
        let now = crate::now_ms();
        let sql = format!(
            "SELECT DISTINCT i.instance_id FROM orchestrator_queue q \
             CROSS JOIN LATERAL (SELECT i.instance_id FROM instances i WHERE i.instance_id = q.instance_id \
               AND (i.lock_token IS NULL OR i.locked_until <= $1) AND NOT ({FILTER_SQL}) LIMIT 1) i \
             WHERE q.visible_at <= $1 LIMIT $8"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(now));
        let ids = FilterParams::new(filter)
            .bind(query)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(storage)?
            .iter()
            .map(|r| r.try_get::<String, _>("instance_id"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(storage)?;
        let mut conn = self.pool.acquire().await.map_err(storage)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = Self::instance_row(&mut conn, &id).await? {
                out.push(sql::blocked_instance(r));
            }
        }
        Ok(out)
    }

    /// Counts per (name, version, duroxide version, state); `live_only`: pending and running
    /// instances only, read through the state index.
    pub(super) async fn version_counts(&self, live_only: bool) -> Result<Vec<VersionCount>, ProviderError> {
        let live = if live_only { "WHERE state IN ('Pending', 'Running') " } else { "" };
        // Byte order and NULLs first, like SQLite, so both stores list the same way.
        let sql = format!(
            "SELECT name, version, duroxide_version, state, COUNT(*) AS n FROM instances {live}\
             GROUP BY name, version, duroxide_version, state \
             ORDER BY name COLLATE \"C\", version COLLATE \"C\" NULLS FIRST, state COLLATE \"C\""
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await.map_err(storage)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.extend(sql::version_count_from_row(&r)?);
        }
        Ok(out)
    }

    pub(super) async fn write_status_note(&self, instance: &str, note: &str) -> Result<(), ProviderError> {
        sqlx::query("UPDATE instances SET status_note = $1 WHERE instance_id = $2 AND status_note IS DISTINCT FROM $1")
            .bind(note)
            .bind(instance)
            .execute(&self.pool)
            .await
            .map_err(storage)?;
        Ok(())
    }

    pub(super) async fn instance_record(
        &self,
        instance: &str,
    ) -> Result<Option<InstanceRecord>, ProviderError> {
        let mut conn = self.pool.acquire().await.map_err(storage)?;
        Self::instance_row(&mut conn, instance).await
    }

    pub(super) async fn instance_ids(&self) -> Result<Vec<String>, ProviderError> {
        sqlx::query_scalar("SELECT instance_id FROM instances ORDER BY created_at, instance_id COLLATE \"C\"")
            .fetch_all(&self.pool)
            .await
            .map_err(storage)
    }
}
