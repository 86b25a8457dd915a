//! Durable values in SQLite: the statements a turn's commit adds for its value events
//! (guarded by the turn's lock token like the rest of the turn) and the reads clients use.

use super::*;
use std::collections::BTreeMap;

/// The turn's value writes (see `value_writes`), in order, each guarded by the lock.
pub(super) fn push_values(batch: &mut Batch, tok: &str, commit: &TurnCommit, now: u64) {
    let holder = "(SELECT instance_id FROM instances WHERE lock_token = ";
    for write in value_writes(&commit.new_events) {
        match write {
            ValueWrite::Set { key, value } => {
                let q = batch.stmt(
                    "INSERT INTO instance_values (instance_id, key, value, updated_at) SELECT instance_id, ",
                );
                q.push_bind(key).push(", ").push_bind(value).push(", ").push_bind(ms(now));
                q.push(" FROM instances WHERE lock_token = ").push_bind(tok.to_string());
                q.push(
                    " ON CONFLICT (instance_id, key) DO UPDATE SET value = excluded.value, \
                     updated_at = excluded.updated_at",
                );
            }
            ValueWrite::Clear { key } => {
                let q = batch.stmt("DELETE FROM instance_values WHERE instance_id = ");
                q.push(holder).push_bind(tok.to_string()).push(") AND key = ").push_bind(key);
            }
            ValueWrite::ClearAll => {
                let q = batch.stmt("DELETE FROM instance_values WHERE instance_id = ");
                q.push(holder).push_bind(tok.to_string()).push(")");
            }
        }
    }
}

impl SqliteProvider {
    pub(super) async fn read_value(
        &self,
        instance: &str,
        key: &str,
    ) -> Result<Option<String>, ProviderError> {
        let value =
            sqlx::query_scalar("SELECT value FROM instance_values WHERE instance_id = ?1 AND key = ?2")
                .bind(instance)
                .bind(key)
                .fetch_optional(&mut *self.conns.reader().await?)
                .await
                .map_err(storage)?;
        self.conns.settle().await?;
        Ok(value)
    }

    pub(super) async fn read_values(
        &self,
        instance: &str,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT key, value FROM instance_values WHERE instance_id = ?1")
                .bind(instance)
                .fetch_all(&mut *self.conns.reader().await?)
                .await
                .map_err(storage)?;
        self.conns.settle().await?;
        Ok(rows.into_iter().collect())
    }
}
