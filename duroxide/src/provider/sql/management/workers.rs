//! The runtimes' presence records (`workers` table): write one (and delete a bounded
//! batch of long-gone ones), remove one, list them all.

use super::Builder;
use crate::provider::sql::rows::Columns;
use crate::provider::sql::tx::SqlTx;
use crate::provider::sql::{ms, to_json};
use crate::provider::{
    GONE_WORKER_RETENTION_MS, GONE_WORKERS_DELETED_PER_WRITE, ProviderError, TagFilter, WorkerRecord,
};

const COLUMNS: &str = "worker_id, tag_filter, activity_slots, orchestration_slots, duroxide_version, \
     started_at, last_seen, heartbeat_ms, gone_at";

/// Inserts or replaces `record`, then deletes at most [`GONE_WORKERS_DELETED_PER_WRITE`]
/// records gone for longer than [`GONE_WORKER_RETENTION_MS`] at `record.last_seen_ms`
/// (along the `gone_at` index).
pub(crate) async fn record_worker<T: SqlTx>(tx: &mut T, record: &WorkerRecord) -> Result<(), ProviderError> {
    let mut b = Builder::new(tx.dialect());
    let values = [
        b.bind(record.worker_id.as_str()),
        b.bind(&to_json(&record.tags)?),
        b.bind(i64::from(record.activity_slots)),
        b.bind(i64::from(record.orchestration_slots)),
        b.bind(record.duroxide_version.as_str()),
        b.bind(ms(record.started_at_ms)),
        b.bind(ms(record.last_seen_ms)),
        b.bind(ms(record.heartbeat_ms)),
        b.bind(ms(record.gone_at_ms())),
    ];
    let updates =
        COLUMNS.split(", ").skip(1).map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>().join(", ");
    b.push(&format!(
        "INSERT INTO workers ({COLUMNS}) VALUES ({}) ON CONFLICT (worker_id) DO UPDATE SET {updates}",
        values.join(", ")
    ));
    tx.execute(b.build()).await?;

    let mut b = Builder::new(tx.dialect());
    let before = b.bind(ms(record.last_seen_ms.saturating_sub(GONE_WORKER_RETENTION_MS)));
    let limit = b.bind(i64::from(GONE_WORKERS_DELETED_PER_WRITE));
    b.push(&format!(
        "DELETE FROM workers WHERE worker_id IN \
         (SELECT worker_id FROM workers WHERE gone_at < {before} ORDER BY gone_at LIMIT {limit})"
    ));
    tx.execute(b.build()).await?;
    Ok(())
}

/// Removes the record of `worker_id`; whether there was one.
pub(crate) async fn remove_worker<T: SqlTx>(tx: &mut T, worker_id: &str) -> Result<bool, ProviderError> {
    let mut b = Builder::new(tx.dialect());
    let id = b.bind(worker_id);
    b.push(&format!("DELETE FROM workers WHERE worker_id = {id}"));
    Ok(tx.execute(b.build()).await? > 0)
}

/// Every record, by worker id. A record whose filter cannot be read (written by hand, or
/// by a newer duroxide) is [`ProviderError::Corrupt`], naming the worker.
pub(crate) async fn list_workers<T: SqlTx>(tx: &mut T) -> Result<Vec<WorkerRecord>, ProviderError> {
    let mut b = Builder::new(tx.dialect());
    b.push(&format!("SELECT {COLUMNS} FROM workers"));
    let mut out = Vec::new();
    for r in tx.query(b.build()).await? {
        let worker_id = r.text("worker_id")?;
        let tags: TagFilter = serde_json::from_str(&r.text("tag_filter")?).map_err(|e| {
            ProviderError::Corrupt(format!("the tag filter of worker '{worker_id}' is unreadable: {e}"))
        })?;
        out.push(WorkerRecord {
            tags,
            activity_slots: u32::try_from(r.int("activity_slots")?).unwrap_or(0),
            orchestration_slots: u32::try_from(r.int("orchestration_slots")?).unwrap_or(0),
            duroxide_version: r.text("duroxide_version")?,
            started_at_ms: r.int("started_at")?.max(0) as u64,
            last_seen_ms: r.int("last_seen")?.max(0) as u64,
            heartbeat_ms: r.int("heartbeat_ms")?.max(0) as u64,
            worker_id,
        });
    }
    // Byte order whatever the database's collation.
    out.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
    Ok(out)
}
