//! `--preload N`: fills a store with N finished instances and their histories before a
//! workload runs, so the workload measures a store the size of a long-lived one. Each
//! instance is what a one-activity `Sequential` leaves behind: its instance and execution
//! rows and four history events (started, activity scheduled, activity completed,
//! completed), serialized as the runtime writes them. The load is one bulk SQL
//! transaction (a recursive CTE on SQLite, `generate_series` on PostgreSQL), as the
//! workload under test is what follows, not the load; the workload itself then uses only
//! the normal API.

use super::report::report;
use super::store::Store;
use duroxide::history::{DUROXIDE_VERSION, Event, EventKind};
use std::time::Instant;

/// Milliseconds between the creation times of two preloaded instances.
const SPACING_MS: u64 = 10;

/// The history of one preloaded instance: (event id, event type, JSON with timestamp 0,
/// milliseconds after the instance's creation).
fn history_template() -> Vec<(i64, &'static str, String, i64)> {
    let events = [
        EventKind::OrchestrationStarted {
            name: "Sequential".into(),
            version: "1.0.0".into(),
            input: "1".into(),
            parent: None,
            duroxide_version: DUROXIDE_VERSION.into(),
        },
        EventKind::ActivityScheduled {
            name: "Work".into(),
            input: "0".into(),
            call_site: Some("duroxide/benches/workloads/app.rs:45:41".into()),
            session_id: None,
            tag: None,
        },
        EventKind::ActivityCompleted { source_event_id: 2, result: "0".into() },
        EventKind::OrchestrationCompleted { output: String::new() },
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            let id = i as u64 + 1;
            let event_type = kind.type_name();
            let json = serde_json::to_string(&Event { event_id: id, timestamp_ms: 0, kind })
                .expect("events serialize");
            assert!(json.contains("\"timestamp_ms\":0"), "the template's timestamp is replaced in SQL");
            (id as i64, event_type, json, i as i64 * 2)
        })
        .collect()
}

fn version_key() -> i64 {
    duroxide::provider::version_key(&semver::Version::parse(DUROXIDE_VERSION).expect("crate version"))
}

/// Preloads `n` finished instances unless `n` is 0; returns how many were loaded (0 on
/// the memory store, which another connection cannot reach).
pub async fn preload_if_asked(store: &Store, kind: &str, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    if kind == "memory" {
        eprintln!("preload: skipped on the memory store (the bulk load needs SQL access to the store)");
        return 0;
    }
    let t = Instant::now();
    preload(store, kind, n).await;
    let load_s = t.elapsed().as_secs_f64();
    check_one(store, n - 1).await;
    report("preload", kind, &[("instances", n as f64), ("history_rows", n as f64 * 4.0), ("load_s", load_s)]);
    n
}

/// Reads the last preloaded instance back through the normal API, so a change of the
/// schema or of the event format that the bulk SQL missed fails here, not in a silent
/// measurement.
async fn check_one(store: &Store, x: u64) {
    let client = duroxide::Client::new(store.provider.clone());
    let id = format!("pre-{x:08}");
    let status = client.get_orchestration_status(&id).await.expect("read a preloaded instance");
    assert!(
        matches!(status, duroxide::OrchestrationStatus::Completed { .. }),
        "preloaded {id} reads back as {status:?}"
    );
    let history = client.read_execution_history(&id, None).await.expect("read a preloaded history");
    assert_eq!(history.len(), 4, "preloaded {id} has its four events");
}

async fn preload(store: &Store, kind: &str, n: u64) {
    let t0 = duroxide_now_ms().saturating_sub(n * SPACING_MS + 60_000) as i64;
    #[cfg(feature = "postgres")]
    if kind == "postgres" {
        return preload_postgres(store, n, t0).await;
    }
    let _ = kind;
    preload_sqlite(store, n, t0).await
}

fn duroxide_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// One transaction on a second connection to the file; rows are generated in instance id
/// order (the CROSS JOIN keeps the counter as the outer loop), so every index is appended
/// to rather than split at random.
async fn preload_sqlite(store: &Store, n: u64, t0: i64) {
    use sqlx::Connection;
    let last = n - 1;
    let dv = DUROXIDE_VERSION;
    let key = version_key();
    let mut conn = sqlx::SqliteConnection::connect(&store.url).await.expect("connect to preload");
    // A page cache large enough for the right edges of every index being appended to.
    sqlx::query("PRAGMA cache_size = -262144").execute(&mut conn).await.expect("size the page cache");
    let mut tx = conn.begin().await.expect("begin the preload");
    let ids = format!("WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {last})");
    let instances = format!(
        "{ids} INSERT INTO instances (instance_id, name, version, execution_id, state, output, \
           duroxide_version, duroxide_version_key, created_at, updated_at) \
         SELECT printf('pre-%08d', x), 'Sequential', '1.0.0', 1, 'Completed', '', '{dv}', {key}, \
           {t0} + x * {SPACING_MS}, {t0} + x * {SPACING_MS} + 6 FROM n"
    );
    let executions = format!(
        "{ids} INSERT INTO executions (instance_id, execution_id, version, state, duroxide_version, \
           started_at, updated_at) \
         SELECT printf('pre-%08d', x), 1, '1.0.0', 'Completed', '{dv}', {t0} + x * {SPACING_MS}, \
           {t0} + x * {SPACING_MS} + 6 FROM n"
    );
    let history = format!(
        "{ids}, e(id, ty, data, off) AS (VALUES (?1, ?2, ?3, ?4), (?5, ?6, ?7, ?8), (?9, ?10, ?11, ?12), \
           (?13, ?14, ?15, ?16)) \
         INSERT INTO history (instance_id, execution_id, event_id, event_type, data) \
         SELECT printf('pre-%08d', x), 1, e.id, e.ty, \
           replace(e.data, '\"timestamp_ms\":0', '\"timestamp_ms\":' || ({t0} + x * {SPACING_MS} + e.off)) \
         FROM n CROSS JOIN e"
    );
    for sql in [instances, executions] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await.expect("preload rows");
    }
    let mut q = sqlx::query(sqlx::AssertSqlSafe(history));
    for (id, ty, data, off) in history_template() {
        q = q.bind(id).bind(ty).bind(data).bind(off);
    }
    q.execute(&mut *tx).await.expect("preload histories");
    tx.commit().await.expect("commit the preload");
    // A store that grew to this size has its WAL checkpointed long ago; left alone, the
    // next write would copy the whole load into the database in the measured run.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await.expect("checkpoint the WAL");
}

/// One transaction, then `VACUUM ANALYZE` of the loaded tables and a `CHECKPOINT`: what
/// autovacuum and the checkpointer would have done to a store that grew to this size (and
/// would otherwise do in the middle of the measured run).
#[cfg(feature = "postgres")]
async fn preload_postgres(store: &Store, n: u64, t0: i64) {
    use sqlx::Connection;
    let schema = store.schema.as_deref().expect("postgres stores have a schema");
    let last = n - 1;
    let dv = DUROXIDE_VERSION;
    let key = version_key();
    let id = "'pre-' || lpad(x::text, 8, '0')";
    let mut conn = sqlx::PgConnection::connect(&store.url).await.expect("connect to preload");
    let mut tx = conn.begin().await.expect("begin the preload");
    let instances = format!(
        "INSERT INTO \"{schema}\".instances (instance_id, name, version, execution_id, state, output, \
           duroxide_version, duroxide_version_key, created_at, updated_at) \
         SELECT {id}, 'Sequential', '1.0.0', 1, 'Completed', '', '{dv}', {key}, \
           {t0} + x * {SPACING_MS}, {t0} + x * {SPACING_MS} + 6 FROM generate_series(0, {last}) AS x"
    );
    let executions = format!(
        "INSERT INTO \"{schema}\".executions (instance_id, execution_id, version, state, duroxide_version, \
           started_at, updated_at) \
         SELECT {id}, 1, '1.0.0', 'Completed', '{dv}', {t0} + x * {SPACING_MS}, {t0} + x * {SPACING_MS} + 6 \
         FROM generate_series(0, {last}) AS x"
    );
    let history = format!(
        "INSERT INTO \"{schema}\".history (instance_id, execution_id, event_id, event_type, data) \
         SELECT {id}, 1, e.id, e.ty, \
           replace(e.data, '\"timestamp_ms\":0', '\"timestamp_ms\":' || ({t0} + x * {SPACING_MS} + e.off)) \
         FROM generate_series(0, {last}) AS x CROSS JOIN LATERAL (VALUES \
           ($1::bigint, $2::text, $3::text, $4::bigint), ($5, $6, $7, $8), ($9, $10, $11, $12), \
           ($13, $14, $15, $16)) AS e(id, ty, data, off)"
    );
    for sql in [instances, executions] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await.expect("preload rows");
    }
    let mut q = sqlx::query(sqlx::AssertSqlSafe(history));
    for (id, ty, data, off) in history_template() {
        q = q.bind(id).bind(ty).bind(data).bind(off);
    }
    q.execute(&mut *tx).await.expect("preload histories");
    tx.commit().await.expect("commit the preload");
    for table in ["instances", "executions", "history"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE \"{schema}\".{table}")))
            .execute(&mut conn)
            .await
            .expect("vacuum the preloaded table");
    }
    sqlx::query("CHECKPOINT").execute(&mut conn).await.expect("checkpoint");
}
