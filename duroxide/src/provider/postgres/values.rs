//! Durable values in PostgreSQL: what a turn's commit writes for its value events (inside
//! the commit's transaction, after its lock was checked) and the reads clients use.

use super::*;
use std::collections::BTreeMap;

impl PostgresProvider {
    /// Applies the turn's value writes (see `value_writes`), in order.
    pub(super) async fn write_values(
        conn: &mut PgConnection,
        instance: &str,
        events: &[crate::history::Event],
        now: u64,
    ) -> Result<(), ProviderError> {
        for write in value_writes(events) {
            let q = match write {
                ValueWrite::Set { key, value } => sqlx::query(
                    "INSERT INTO instance_values (instance_id, key, value, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (instance_id, key) DO UPDATE SET value = EXCLUDED.value, \
                     updated_at = EXCLUDED.updated_at",
                )
                .bind(instance)
                .bind(key)
                .bind(value)
                .bind(ms(now)),
                ValueWrite::Clear { key } => {
                    sqlx::query("DELETE FROM instance_values WHERE instance_id = $1 AND key = $2")
                        .bind(instance)
                        .bind(key)
                }
                ValueWrite::ClearAll => {
                    sqlx::query("DELETE FROM instance_values WHERE instance_id = $1").bind(instance)
                }
            };
            q.execute(&mut *conn).await.map_err(storage)?;
        }
        Ok(())
    }

    pub(super) async fn read_value(
        &self,
        instance: &str,
        key: &str,
    ) -> Result<Option<String>, ProviderError> {
        sqlx::query_scalar("SELECT value FROM instance_values WHERE instance_id = $1 AND key = $2")
            .bind(instance)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)
    }

    pub(super) async fn read_values(
        &self,
        instance: &str,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT key, value FROM instance_values WHERE instance_id = $1")
                .bind(instance)
                .fetch_all(&self.pool)
                .await
                .map_err(storage)?;
        Ok(rows.into_iter().collect())
    }
}
