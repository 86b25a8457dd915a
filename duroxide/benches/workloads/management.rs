//! The `management` workload: how long operator queries take on a large store. It loads
//! `--management-instances` finished instances (default 100,000; one bulk statement, as
//! the queries are under test, not the load), then times a listing page (50 rows) and a
//! count for each filter an operator typically uses, and a bulk delete of 10% of the store
//! in the client's bounded batches. Stores: file and postgres (the load needs SQL access).

use super::report::{percentile, report};
use super::store::Store;
use duroxide::BulkDelete;
use duroxide::prelude::*;
use duroxide::provider::{InstanceFilter, InstanceState, ListOrder};
use sqlx::Connection;
use std::time::Instant;

/// Creation time of instance 0; instance `x` is created `x` seconds later.
const T0: u64 = 1_700_000_000_000;

/// Loads `n` instances: 1% failed, 1% running, 0.1% pending, the rest completed; 10% named
/// "Refund"; every 50th a child of the instance 7 before it.
async fn load(store: &Store, kind: &str, n: u64) {
    let last = n - 1;
    let states = "CASE WHEN x % 100 = 1 THEN 'Failed' WHEN x % 100 = 2 THEN 'Running' \
                  WHEN x % 1000 = 3 THEN 'Pending' ELSE 'Completed' END";
    #[cfg(not(feature = "postgres"))]
    let _ = kind;
    #[cfg(feature = "postgres")]
    if kind == "postgres" {
        let schema = store.schema.as_deref().expect("postgres stores have a schema");
        let mut conn = sqlx::PgConnection::connect(&store.url).await.unwrap();
        let sql = format!(
            "INSERT INTO \"{schema}\".instances (instance_id, name, version, execution_id, state, \
               parent_instance, duroxide_version, created_at, updated_at) \
             SELECT 'inst-' || lpad(x::text, 7, '0'), CASE x % 10 WHEN 0 THEN 'Refund' ELSE 'Order' END, \
               '1.0.0', 1, {states}, CASE WHEN x % 50 = 7 THEN 'inst-' || lpad((x - 7)::text, 7, '0') END, \
               '0.1.0', {T0} + x * 1000, {T0} + x * 1000 + 500 FROM generate_series(0, {last}) AS x"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE \"{schema}\".instances")))
            .execute(&mut conn)
            .await
            .unwrap();
        return;
    }
    {
        let mut conn = sqlx::SqliteConnection::connect(&store.url).await.unwrap();
        let sql = format!(
            "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {last}) \
             INSERT INTO instances (instance_id, name, version, execution_id, state, parent_instance, \
               duroxide_version, created_at, updated_at) \
             SELECT printf('inst-%07d', x), CASE x % 10 WHEN 0 THEN 'Refund' ELSE 'Order' END, '1.0.0', 1, \
               {states}, CASE WHEN x % 50 = 7 THEN printf('inst-%07d', x - 7) END, '0.1.0', \
               {T0} + x * 1000, {T0} + x * 1000 + 500 FROM n"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    }
}

/// Median milliseconds of `runs` calls of `f`.
async fn median_ms<F: AsyncFnMut()>(runs: usize, mut f: F) -> f64 {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    percentile(&times, 0.5)
}

pub async fn management(kind: &str, instances: u64) {
    if kind == "memory" {
        eprintln!("management: skipped on the memory store (the bulk load needs SQL access to the file)");
        return;
    }
    let store = super::store::open(kind).await;
    let t = Instant::now();
    load(&store, kind, instances).await;
    let load_s = t.elapsed().as_secs_f64();
    let client = Client::new(store.provider.clone());
    let hour = 3_600_000;
    let filters = [
        ("none", InstanceFilter::default()),
        ("failed", InstanceFilter::default().state(InstanceState::Failed)),
        ("name", InstanceFilter::default().name("Refund")),
        ("parent", InstanceFilter::default().parent("inst-0050000")),
        ("prefix", InstanceFilter::default().id_prefix("inst-00500")),
        (
            "failed_finished_before",
            InstanceFilter::default().state(InstanceState::Failed).updated_before_ms(T0 + 10 * hour),
        ),
    ];
    let mut figures = vec![("instances", instances as f64), ("load_s", load_s)];
    let mut names = Vec::new();
    for (name, filter) in &filters {
        let list = median_ms(20, async || {
            client.list_instances_page(filter, ListOrder::NewestFirst, 50, None).await.unwrap();
        })
        .await;
        let count = median_ms(20, async || {
            client.count_instances(filter).await.unwrap();
        })
        .await;
        names.push((format!("list_{name}_ms"), list));
        names.push((format!("count_{name}_ms"), count));
    }
    let target = instances / 10;
    let t = Instant::now();
    let gone = client
        .delete_instances(
            &BulkDelete::matching(InstanceFilter::default().state(InstanceState::Completed)).limit(target),
        )
        .await
        .unwrap();
    let delete_s = t.elapsed().as_secs_f64();
    assert_eq!(gone, target);
    let leaked: Vec<(&str, f64)> = names.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    figures.extend(leaked);
    figures.push(("bulk_delete_per_s", gone as f64 / delete_s));
    report("management", kind, &figures);
    store.close().await;
}
