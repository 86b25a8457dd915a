//! Every management filter is served by an index: with 100,000 instances in the store,
//! the plans of a listing page and a count never scan the `instances` table, on SQLite and
//! on PostgreSQL. The instances are loaded with one bulk statement (the plans, not the
//! load, are under test), and each plan is printed so a failure shows what the planner chose.

mod pg_support;

use duroxide::provider::{InstanceFilter, InstanceState, QueryPlan};
use duroxide::{SqliteProvider, provider::Provider};
use sqlx::Connection;

const INSTANCES: i64 = 100_000;
/// Creation time of instance 0; instance `x` is created `x` seconds later.
const T0: u64 = 1_700_000_000_000;

/// The filters operators use, each selecting a small part of the store (instance states:
/// 1% failed, 1% running, 0.1% pending, the rest completed; names: 10% "Refund").
fn filters() -> Vec<(&'static str, InstanceFilter)> {
    let hour = 3_600_000;
    vec![
        ("failed", InstanceFilter::default().state(InstanceState::Failed)),
        (
            "running or pending",
            InstanceFilter::default().state(InstanceState::Running).state(InstanceState::Pending),
        ),
        ("name", InstanceFilter::default().name("Refund")),
        ("name and version", InstanceFilter::default().name("Refund").version("1.0.0")),
        ("version", InstanceFilter::default().version("3.0.0")),
        ("parent", InstanceFilter::default().parent("inst-050007")),
        ("id prefix", InstanceFilter::default().id_prefix("inst-0500")),
        (
            "created range",
            InstanceFilter::default()
                .created_after_ms(T0 + 50_000_000)
                .created_before_ms(T0 + 50_000_000 + hour),
        ),
        ("updated before", InstanceFilter::default().updated_before_ms(T0 + hour)),
        (
            "failed, finished before",
            InstanceFilter::default().state(InstanceState::Failed).updated_before_ms(T0 + 10 * hour),
        ),
        (
            "failed, updated after",
            InstanceFilter::default().state(InstanceState::Failed).updated_after_ms(T0 + 99_000_000),
        ),
    ]
}

fn show(store: &str, filter: &str, plans: &[QueryPlan]) {
    for p in plans {
        println!("{store} | {filter} | {}: {}", p.query, p.plan.join(" / "));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_management_queries_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("plans.db").display());
    let store = SqliteProvider::new(&url, None).await.expect("open store");
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {last}) \
         INSERT INTO instances (instance_id, name, version, execution_id, state, parent_instance, \
           duroxide_version, created_at, updated_at) \
         SELECT printf('inst-%06d', x), CASE x % 10 WHEN 0 THEN 'Refund' ELSE 'Order' END, \
           CASE x % 3 WHEN 0 THEN '1.0.0' ELSE '2.0.0' END, 1, \
           CASE WHEN x % 100 = 1 THEN 'Failed' WHEN x % 100 = 2 THEN 'Running' \
                WHEN x % 1000 = 3 THEN 'Pending' ELSE 'Completed' END, \
           CASE WHEN x % 50 = 7 THEN printf('inst-%06d', x - 7) END, '0.1.0', \
           {T0} + x * 1000, {T0} + x * 1000 + 500 FROM n",
        last = INSTANCES - 1
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(store.count_instances(&InstanceFilter::default()).await.unwrap(), INSTANCES as u64);
    for (name, filter) in filters() {
        let plans = store.management_query_plans(&filter).await.unwrap();
        show("sqlite", name, &plans);
        for p in &plans {
            for line in &p.plan {
                assert!(
                    !line.starts_with("SCAN i") && !line.starts_with("SCAN instances"),
                    "{name} ({}): scans the instances table: {line}\n{}",
                    p.query,
                    p.sql
                );
            }
            assert!(p.plan.iter().any(|l| l.starts_with("SEARCH i USING")), "{name}: {:?}", p.plan);
        }
    }
    // The filters really select what they say.
    let failed = InstanceFilter::default().state(InstanceState::Failed);
    assert_eq!(store.count_instances(&failed).await.unwrap(), 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_management_queries_use_indexes() {
    let Some(url) = pg_support::pg_url() else {
        eprintln!("{}", pg_support::skip_message());
        return;
    };
    let schema = pg_support::random_schema();
    let store = pg_support::open(&url, &schema).await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{schema}\".instances (instance_id, name, version, execution_id, state, parent_instance, \
           duroxide_version, created_at, updated_at) \
         SELECT 'inst-' || lpad(x::text, 6, '0'), CASE x % 10 WHEN 0 THEN 'Refund' ELSE 'Order' END, \
           CASE x % 3 WHEN 0 THEN '1.0.0' ELSE '2.0.0' END, 1, \
           CASE WHEN x % 100 = 1 THEN 'Failed' WHEN x % 100 = 2 THEN 'Running' \
                WHEN x % 1000 = 3 THEN 'Pending' ELSE 'Completed' END, \
           CASE WHEN x % 50 = 7 THEN 'inst-' || lpad((x - 7)::text, 6, '0') END, '0.1.0', \
           {T0} + x * 1000, {T0} + x * 1000 + 500 FROM generate_series(0, {last}) AS x",
        last = INSTANCES - 1
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    // What autovacuum does on a live store: statistics for the planner.
    sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE \"{schema}\".instances")))
        .execute(&mut conn)
        .await
        .unwrap();
    let result = async move {
        assert_eq!(store.count_instances(&InstanceFilter::default()).await.unwrap(), INSTANCES as u64);
        for (name, filter) in filters() {
            let plans = store.management_query_plans(&filter).await.unwrap();
            show("postgres", name, &plans);
            for p in &plans {
                for line in &p.plan {
                    assert!(
                        !line.contains("Seq Scan on instances"),
                        "{name} ({}): scans the instances table: {line}\n{}",
                        p.query,
                        p.sql
                    );
                }
                assert!(p.plan.iter().any(|l| l.contains("Index")), "{name}: {:?}", p.plan);
            }
        }
    };
    let outcome = tokio::spawn(result).await;
    pg_support::drop_schema(&url, &schema).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
