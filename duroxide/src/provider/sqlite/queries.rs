//! What clients call outside the dispatch path: instance and history reads, listings,
//! per-version counts, messages sent to an instance and status notes. Export and import
//! live in `transfer`.

use super::*;

pub(super) const INSTANCE_COLUMNS: &str = "instance_id, name, version, execution_id, state, output, error, custom_status, \
     custom_status_version, parent_instance, duroxide_version, status_note, created_at, updated_at";

impl SqliteProvider {
    pub(super) async fn instance_row(
        conn: &mut sqlx::SqliteConnection,
        instance: &str,
    ) -> Result<Option<InstanceRecord>, ProviderError> {
        let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(instance)
            .fetch_optional(&mut *conn)
            .await
            .map_err(storage)?;
        row.as_ref().map(record_from_row).transpose()
    }

    pub(super) async fn insert_message(
        tx: &mut sqlx::SqliteConnection,
        instance: &str,
        message: &OrchestratorMessage,
        visible_at_ms: Option<u64>,
        now: u64,
    ) -> Result<(), ProviderError> {
        sqlx::query(
            "INSERT INTO orchestrator_queue (instance_id, message, visible_at, enqueued_at) VALUES (?, ?, ?, ?)",
        )
        .bind(instance)
        .bind(to_json(message)?)
        .bind(ms(visible_at_ms.unwrap_or(now)))
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        Ok(())
    }

    pub(super) async fn load_history(
        conn: &mut sqlx::SqliteConnection,
        instance: &str,
        execution_id: u64,
    ) -> Result<(Vec<Event>, Option<String>, u64), ProviderError> {
        let rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT event_id, data FROM history WHERE instance_id = ? AND execution_id = ? ORDER BY event_id",
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
        write_tx!(self.conns, _w, tx, self.conns.begin_durable);
        let exists = sqlx::query("SELECT 1 FROM instances WHERE instance_id = ?")
            .bind(&message.instance)
            .fetch_optional(&mut *tx)
            .await
            .map_err(storage)?;
        if exists.is_none() {
            return Err(ProviderError::InstanceNotFound(message.instance));
        }
        Self::insert_message(&mut tx, &message.instance, &message.message, message.visible_at_ms, now)
            .await?;
        tx.commit().await.map_err(storage)?;
        self.notifiers.wake_orchestrator_at(message.visible_at_ms);
        Ok(())
    }

    pub(super) async fn history_of(
        &self,
        instance: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<Event>, ProviderError> {
        let mut conn = self.conns.reader().await?;
        let exec = match execution_id {
            Some(e) => e,
            None => sql::current_execution(Self::instance_row(&mut conn, instance).await?, instance)?,
        };
        let events = Self::load_history(&mut conn, instance, exec).await?;
        drop(conn);
        self.conns.settle().await?;
        sql::events_or_corrupt(events)
    }

    pub(super) async fn executions_of(&self, instance: &str) -> Result<Vec<ExecutionRecord>, ProviderError> {
        let mut conn = self.conns.reader().await?;
        let rows = sqlx::query(
            "SELECT e.execution_id AS execution_id, e.version AS version, e.state AS state, \
             e.started_at AS started_at, e.updated_at AS updated_at, \
             (SELECT COUNT(*) FROM history h WHERE h.instance_id = e.instance_id AND h.execution_id = e.execution_id) AS n \
             FROM executions e WHERE e.instance_id = ? ORDER BY e.execution_id",
        )
        .bind(instance)
        .fetch_all(&mut *conn)
        .await
        .map_err(storage)?;
        drop(conn);
        self.conns.settle().await?;
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
        let (clause, binds) = filter_sql(filter);
        let sql =
            format!("SELECT DISTINCT i.instance_id {} LIMIT ?", ready_instances(&format!("NOT ({clause})")));
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(ms(now)).bind(ms(now));
        for b in binds {
            query = b.bind_to(query);
        }
        let ids = query
            .bind(i64::from(limit))
            .fetch_all(&mut *self.conns.reader().await?)
            .await
            .map_err(storage)?;
        let mut conn = self.conns.reader().await?;
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
        let sql = format!(
            "SELECT name, version, duroxide_version, state, COUNT(*) AS n FROM instances {live}\
             GROUP BY name, version, duroxide_version, state \
             ORDER BY name, version, duroxide_version, state"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *self.conns.reader().await?)
            .await
            .map_err(storage)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.extend(sql::version_count_from_row(&r)?);
        }
        Ok(out)
    }

    pub(super) async fn write_status_note(&self, instance: &str, note: &str) -> Result<(), ProviderError> {
        write_tx!(self.conns, _w, tx, BEGIN_LIGHT);
        sqlx::query("UPDATE instances SET status_note = ?1 WHERE instance_id = ?2 AND status_note IS NOT ?1")
            .bind(note)
            .bind(instance)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(())
    }

    pub(super) async fn instance_record(
        &self,
        instance: &str,
    ) -> Result<Option<InstanceRecord>, ProviderError> {
        let record = Self::instance_row(&mut *self.conns.reader().await?, instance).await?;
        self.conns.settle().await?;
        Ok(record)
    }

    pub(super) async fn instance_ids(&self) -> Result<Vec<String>, ProviderError> {
        sqlx::query_scalar("SELECT instance_id FROM instances ORDER BY created_at, instance_id")
            .fetch_all(&mut *self.conns.reader().await?)
            .await
            .map_err(storage)
    }
}
