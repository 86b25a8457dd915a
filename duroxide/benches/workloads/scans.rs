//! Which tables a measured run read in full: PostgreSQL's per-table counters of sequential
//! scans and the rows they read, taken before and after, for the run's schema. On a store
//! preloaded with many finished instances, rows read by sequential scans point at a
//! hot-path query without an index. (Backends publish their counters about once a second,
//! so the last second of a run may be missing.)

use super::store::Store;

/// Per table: (sequential scans, rows they read, index scans).
pub type Counters = Vec<(String, i64, i64, i64)>;

#[cfg(feature = "postgres")]
pub async fn snapshot(store: &Store) -> Counters {
    use sqlx::Connection;
    let Some(schema) = store.schema.as_deref() else { return Vec::new() };
    let mut conn = sqlx::PgConnection::connect(&store.url).await.expect("connect to read table counters");
    sqlx::query_as(
        "SELECT relname::text, COALESCE(seq_scan, 0), COALESCE(seq_tup_read, 0), COALESCE(idx_scan, 0) \
         FROM pg_stat_user_tables WHERE schemaname = $1 ORDER BY relname",
    )
    .bind(schema)
    .fetch_all(&mut conn)
    .await
    .expect("read table counters")
}

#[cfg(not(feature = "postgres"))]
pub async fn snapshot(_store: &Store) -> Counters {
    Vec::new()
}

/// Prints the tables whose counters moved between `before` and `after`.
pub fn print_delta(label: &str, before: &Counters, after: &Counters) {
    for (table, seq, rows, idx) in after {
        let (s0, r0, i0) =
            before.iter().find(|(t, ..)| t == table).map_or((0, 0, 0), |(_, s, r, i)| (*s, *r, *i));
        if (seq - s0, rows - r0, idx - i0) != (0, 0, 0) {
            println!(
                "scans {label} table={table} seq_scans={} seq_rows_read={} index_scans={}",
                seq - s0,
                rows - r0,
                idx - i0
            );
        }
    }
}
