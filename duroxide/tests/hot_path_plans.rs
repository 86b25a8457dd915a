//! No statement on a hot path scans a table that grows with finished work.
//!
//! A store is preloaded with 50,000 finished instances (their executions, histories and
//! values), then a real runtime runs instances that use every hot path: starts, turns,
//! activities (fanned out, on a session), timers, events, queues, sub-orchestrations,
//! continue-as-new, values and custom status, and the client's reads of status, history and
//! values. Halfway, a second runtime that holds no instance in memory takes over, so the
//! histories are read from the store too. Every statement the store sent to the database on
//! the way is captured (sqlx reports each one to `tracing`) and the database is asked for
//! its plan; a plan that walks all of `instances`, `executions`, `history` or
//! `instance_values` fails the test. PostgreSQL is asked three times: with statistics,
//! without, and for the generic plan made on an empty store (the one a young store's
//! connections keep until the tables are analyzed).
//! A walk through a partial index (one that holds only live rows, such as the index of
//! locked instances) is not a scan of finished work. A fourth PostgreSQL planning, with a
//! backlog of messages in the queue, checks that finding one instance's messages never
//! reads every visible message of the queue.
//!
//! The same PostgreSQL statements show where wake-ups are sent: never inside a durable
//! write, whose commit would then hold the database-wide notification lock through its WAL
//! flush and keep other notifying writes from sharing the flush.
//!
//! Management queries (listing, counting, bulk removal) are not hot paths; their plans are
//! checked by `management_plans.rs`.

#[path = "pg_support/mod.rs"]
mod pg;

use duroxide::prelude::*;
use duroxide::{Provider, SqliteProvider};
use sqlx::{Connection, Executor, Row};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

/// Finished instances in the store before the runtime starts.
const FINISHED: i64 = 50_000;
/// Tables whose size grows with finished work.
const GROWING: &[&str] = &["instances", "executions", "history", "instance_values"];

/// Every statement that sends wake-ups (`pg_notify`) commits without waiting for the WAL
/// flush: it is the wake-up sender's own, not part of a start, turn or completion.
fn assert_wake_ups_skip_durable_writes(statements: &[String]) {
    let notifying: Vec<&String> = statements.iter().filter(|s| s.contains("pg_notify")).collect();
    assert!(!notifying.is_empty(), "the workload sent no wake-up: {statements:#?}");
    for sql in notifying {
        assert!(
            sql.contains("'synchronous_commit', 'off'")
                && !["INSERT", "UPDATE", "DELETE"].iter().any(|write| sql.contains(write)),
            "a statement sends wake-ups inside a durable write:\n{sql}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Capturing the statements

static CAPTURING: AtomicBool = AtomicBool::new(false);
static STATEMENTS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Records the SQL of every `sqlx::query` event while [`CAPTURING`] is set.
struct Statements;

#[derive(Default)]
struct SqlFields {
    summary: String,
    statement: String,
}

impl tracing::field::Visit for SqlFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_string(),
            "db.statement" => self.statement = value.to_string(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "summary" => self.summary = format!("{value:?}"),
            "db.statement" => self.statement = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" || !CAPTURING.load(Ordering::SeqCst) {
            return;
        }
        let mut fields = SqlFields::default();
        event.record(&mut fields);
        // sqlx puts the whole statement in `db.statement` when its summary is shortened.
        let sql = if fields.statement.trim().is_empty() { fields.summary } else { fields.statement };
        STATEMENTS.lock().unwrap().insert(sql.trim().to_string());
    }
}

fn install_capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let filter =
            tracing_subscriber::filter::Targets::new().with_target("sqlx::query", tracing::Level::DEBUG);
        let subscriber = tracing_subscriber::registry().with(Statements.with_filter(filter));
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber in this test binary");
    });
}

/// The statements of one capture, one entry per statement (a multi-statement string is
/// split), data-manipulating ones only (schema changes run once, at open).
fn take_statements() -> Vec<String> {
    let all = std::mem::take(&mut *STATEMENTS.lock().unwrap());
    let mut out = BTreeSet::new();
    for sql in all {
        for part in split_statements(&sql) {
            let head = part.trim_start().to_ascii_uppercase();
            if ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"].iter().any(|k| head.starts_with(k)) {
                out.insert(part.trim().to_string());
            }
        }
    }
    out.into_iter().collect()
}

/// Splits at semicolons outside quotes.
fn split_statements(sql: &str) -> Vec<String> {
    let (mut parts, mut current, mut quoted) = (Vec::new(), String::new(), false);
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                current.push(c);
            }
            ';' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

// ---------------------------------------------------------------------------------------
// The workload

fn activities() -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Echo", |_ctx: ActivityContext, input: String| async move { Ok(input) })
        .build()
}

fn orchestrations() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Everything", |ctx: OrchestrationContext, input: String| async move {
            if input == "second" {
                // The execution after continue-as-new: carried values, one more activity.
                ctx.set_value("round", "2")?;
                return Ok(ctx.schedule_activity("Echo", "last").await?);
            }
            ctx.set_custom_status("working");
            ctx.set_value("round", "1")?;
            let fan: Vec<_> = (0..3).map(|i| ctx.schedule_activity("Echo", i.to_string())).collect();
            for r in ctx.join(fan).await {
                r?;
            }
            ctx.schedule_activity_on_session("Echo", "s", "session-1").await?;
            ctx.schedule_timer(Duration::from_millis(20)).await;
            ctx.set_value("stage", "waiting")?;
            ctx.schedule_wait("go").await;
            ctx.dequeue_event("inbox").await;
            ctx.schedule_sub_orchestration("Child", "c").await?;
            ctx.clear_value("round")?;
            ctx.continue_as_new("second");
            Ok(String::new())
        })
        .register("Child", |ctx: OrchestrationContext, input: String| async move {
            Ok(ctx.schedule_activity("Echo", input).await?)
        })
        .build()
}

async fn run_workload(store: Arc<dyn Provider>) {
    let options =
        RuntimeOptions { dispatcher_poll_interval: Duration::from_millis(20), ..Default::default() };
    let rt =
        Runtime::start_with_options(store.clone(), activities(), orchestrations(), options.clone()).await;
    let client = Client::new(store.clone());
    for i in 0..4 {
        let id = format!("live-{i}");
        client.start_orchestration(&id, "Everything", "first").await.unwrap();
        client.enqueue_event(&id, "inbox", "hello").await.unwrap();
    }
    // Every instance waits for "go" with no work outstanding; a second runtime, which holds
    // none of them in memory, takes over and must read their histories from the store.
    for i in 0..4 {
        client.wait_for_value(&format!("live-{i}"), "stage", Duration::from_secs(30)).await.unwrap();
    }
    rt.shutdown(None).await;
    let rt = Runtime::start_with_options(store, activities(), orchestrations(), options).await;
    for i in 0..4 {
        client.raise_event(&format!("live-{i}"), "go", "yes").await.unwrap();
    }
    for i in 0..4 {
        let id = format!("live-{i}");
        let status = client.wait_for_orchestration(&id, Duration::from_secs(30)).await.unwrap();
        assert!(matches!(status, OrchestrationStatus::Completed { .. }), "{id}: {status:?}");
        client.get_orchestration_status(&id).await.unwrap();
        client.read_execution_history(&id, None).await.unwrap();
        client.values(&id).await.unwrap();
        client.get_value(&id, "round").await.unwrap();
    }
    rt.shutdown(None).await;
}

/// The names a statement gives the growing tables: each table's own name and its aliases
/// (`FROM history h`, `JOIN instances AS i`).
fn growing_names(sql: &str) -> Vec<(String, &'static str)> {
    const KEYWORDS: &[&str] = &[
        "where",
        "join",
        "left",
        "inner",
        "on",
        "set",
        "values",
        "select",
        "order",
        "group",
        "limit",
        "using",
        "returning",
        "union",
        "and",
        "or",
        "as",
        "(",
        ",",
        "cross",
        "natural",
        "for",
        "default",
    ];
    let words: Vec<String> = sql
        .replace(['(', ')', ','], " ")
        .split_whitespace()
        .map(|w| w.trim_matches('"').to_ascii_lowercase())
        .collect();
    let mut names: Vec<(String, &'static str)> = GROWING.iter().map(|t| (t.to_string(), *t)).collect();
    for (i, w) in words.iter().enumerate() {
        let Some(table) = GROWING.iter().find(|t| **t == w.as_str()) else { continue };
        let after = words.get(i + 1).map(String::as_str);
        let alias = match after {
            Some("as") => words.get(i + 2).map(String::as_str),
            other => other,
        };
        if let Some(a) =
            alias.filter(|a| !KEYWORDS.contains(a) && a.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            names.push((a.to_string(), table));
        }
    }
    names
}

/// Why a plan line walks a growing table, if it does.
fn full_walk(
    line: &str,
    names: &[(String, &'static str)],
    partial_indexes: &BTreeSet<String>,
) -> Option<String> {
    if let Some(rest) = line.strip_prefix("SCAN ") {
        // SQLite: "SCAN history", "SCAN h USING INDEX x", "SCAN i USING COVERING INDEX y".
        let name = rest.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
        let (_, table) = names.iter().find(|(n, _)| *n == name)?;
        let index = rest.split("INDEX ").nth(1).and_then(|s| s.split_whitespace().next());
        if index.is_some_and(|i| partial_indexes.contains(i)) {
            return None;
        }
        return Some(format!("walks all of `{table}`"));
    }
    // PostgreSQL: "Seq Scan on history h  (cost=..)".
    let rest = line.split("Seq Scan on ").nth(1)?;
    let name = rest.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
    let table = GROWING.iter().find(|t| **t == name)?;
    Some(format!("walks all of `{table}`"))
}

// ---------------------------------------------------------------------------------------
// SQLite

async fn preload_sqlite(url: &str) {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let last = FINISHED - 1;
    let rows = format!("WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {last})");
    for sql in [
        format!(
            "{rows} INSERT INTO instances (instance_id, name, version, execution_id, state, output, \
               duroxide_version, created_at, updated_at) \
             SELECT printf('done-%06d', x), 'Everything', '1.0.0', 1, 'Completed', '\"ok\"', '0.1.0', \
               1700000000000 + x, 1700000000500 + x FROM n"
        ),
        format!(
            "{rows} INSERT INTO executions (instance_id, execution_id, version, state, duroxide_version, \
               started_at, updated_at) \
             SELECT printf('done-%06d', x), 1, '1.0.0', 'Completed', '0.1.0', 1700000000000 + x, \
               1700000000500 + x FROM n"
        ),
        format!(
            "{rows}, e(k) AS (VALUES (1), (2), (3), (4)) \
             INSERT INTO history (instance_id, execution_id, event_id, event_type, data) \
             SELECT printf('done-%06d', x), 1, k, 'Preloaded', '{{}}' FROM n, e"
        ),
        format!(
            "{rows} INSERT INTO instance_values (instance_id, key, value, updated_at) \
             SELECT printf('done-%06d', x), 'round', '1', 1700000000500 + x FROM n"
        ),
        "ANALYZE".to_string(),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_paths_never_walk_finished_work() {
    install_capture();

    // SQLite (file store).
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("hot.db").display());
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&url, None).await.expect("open the store"));
    preload_sqlite(&url).await;
    CAPTURING.store(true, Ordering::SeqCst);
    run_workload(store).await;
    CAPTURING.store(false, Ordering::SeqCst);
    let sqlite_walks = check_sqlite(&url, take_statements()).await;
    let report = |store: &str, walks: &[String]| {
        assert!(walks.is_empty(), "{store} hot-path statements walk finished work:\n{}", walks.join("\n"))
    };

    // PostgreSQL.
    let Some(pg_url) = pg::pg_url() else {
        eprintln!("SKIPPED (PostgreSQL part): {}", pg::skip_message());
        report("SQLite", &sqlite_walks);
        return;
    };
    // Twice: with statistics (what autovacuum gives a settled store), and without any (a
    // store that grew faster than autovacuum analyzed it: the planner then guesses, and a
    // generic plan must still not walk finished work).
    let mut pg_walks = Vec::new();
    let mut captured = Vec::new();
    for analyzed in [true, false] {
        let schema = pg::random_schema();
        let store: Arc<dyn Provider> = Arc::new(pg::open(&pg_url, &schema).await);
        let (url, name) = (pg_url.clone(), schema.clone());
        let checked = async move {
            let (pg_url, schema) = (url, name);
            preload_postgres(&pg_url, &schema, analyzed).await;
            CAPTURING.store(true, Ordering::SeqCst);
            run_workload(store).await;
            CAPTURING.store(false, Ordering::SeqCst);
            let statements = take_statements();
            (check_postgres(&pg_url, &schema, statements.clone(), false).await, statements)
        };
        let result = tokio::spawn(checked).await;
        pg::drop_schema(&pg_url, &schema).await;
        let (walks, statements) = result.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let label = if analyzed { "analyzed" } else { "no statistics" };
        pg_walks.extend(walks.into_iter().map(|w| format!("({label}) {w}")));
        captured = statements;
    }
    assert_wake_ups_skip_durable_writes(&captured);
    // Once more, planned on an empty store: a store's connections prepare their statements
    // while its tables are young, and PostgreSQL keeps a statement's generic plan for the
    // connection's life (until the table is analyzed again, which may be never). That plan
    // must not walk finished work either once the tables have grown.
    let schema = pg::random_schema();
    drop(pg::open(&pg_url, &schema).await);
    // Spawned like the runs above, so the schema is dropped even if the check panics.
    let (url, name) = (pg_url.clone(), schema.clone());
    let empty_store_statements = captured.clone();
    let result =
        tokio::spawn(async move { check_postgres(&url, &name, empty_store_statements, false).await }).await;
    pg::drop_schema(&pg_url, &schema).await;
    let walks = result.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    pg_walks.extend(walks.into_iter().map(|w| format!("(planned on an empty store) {w}")));
    // And planned with a backlog: messages of many instances waiting in the queue. Taking
    // one instance reads its visible messages; that lookup must stay bounded by the
    // instance, never read every visible message of the queue.
    let schema = pg::random_schema();
    drop(pg::open(&pg_url, &schema).await);
    let (url, name) = (pg_url.clone(), schema.clone());
    let result = tokio::spawn(async move {
        preload_backlog(&url, &name).await;
        check_postgres(&url, &name, captured, true).await
    })
    .await;
    pg::drop_schema(&pg_url, &schema).await;
    let walks = result.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    pg_walks.extend(walks.into_iter().map(|w| format!("(planned with a backlog) {w}")));
    let all: Vec<String> = sqlite_walks
        .iter()
        .map(|w| format!("SQLite: {w}"))
        .chain(pg_walks.iter().map(|w| format!("PostgreSQL: {w}")))
        .collect();
    report("the", &all);
}

async fn check_sqlite(url: &str, statements: Vec<String>) -> Vec<String> {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let partial: BTreeSet<String> =
        sqlx::query("SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '%WHERE%'")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
    assert!(statements.len() >= 10, "too few statements captured: {statements:#?}");
    let mut walks = Vec::new();
    for sql in &statements {
        let params =
            match conn.prepare(sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(sql.clone()))).await {
                Ok(stmt) => match sqlx::Statement::parameters(&stmt) {
                    Some(sqlx::Either::Right(n)) => n,
                    Some(sqlx::Either::Left(types)) => types.len(),
                    None => 0,
                },
                Err(e) => panic!("cannot prepare a captured statement: {e}\n{sql}"),
            };
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
        for _ in 0..params {
            query = query.bind(None::<i64>);
        }
        let plan: Vec<String> =
            query.fetch_all(&mut conn).await.unwrap().iter().map(|r| r.get::<String, _>("detail")).collect();
        println!("sqlite | {} | {}", one_line(sql), plan.join(" / "));
        for line in &plan {
            if let Some(why) = full_walk(line, &growing_names(sql), &partial) {
                walks.push(format!("{why}: {line}\n    {}", one_line(sql)));
            }
        }
    }
    walks
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// Loads the finished work; `analyzed`: then gathers statistics, otherwise keeps
/// autovacuum away so the tables stay without any.
async fn preload_postgres(url: &str, schema: &str, analyzed: bool) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let last = FINISHED - 1;
    let id = "'done-' || lpad(x::text, 6, '0')";
    if !analyzed {
        for table in GROWING {
            let sql = format!("ALTER TABLE \"{schema}\".{table} SET (autovacuum_enabled = false)");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
        }
    }
    for sql in [
        format!(
            "INSERT INTO \"{schema}\".instances (instance_id, name, version, execution_id, state, output, \
               duroxide_version, created_at, updated_at) \
             SELECT {id}, 'Everything', '1.0.0', 1, 'Completed', '\"ok\"', '0.1.0', 1700000000000 + x, \
               1700000000500 + x FROM generate_series(0, {last}) AS x"
        ),
        format!(
            "INSERT INTO \"{schema}\".executions (instance_id, execution_id, version, state, duroxide_version, \
               started_at, updated_at) \
             SELECT {id}, 1, '1.0.0', 'Completed', '0.1.0', 1700000000000 + x, 1700000000500 + x \
             FROM generate_series(0, {last}) AS x"
        ),
        format!(
            "INSERT INTO \"{schema}\".history (instance_id, execution_id, event_id, event_type, data) \
             SELECT {id}, 1, k, 'Preloaded', '{{}}' FROM generate_series(0, {last}) AS x, \
               generate_series(1, 4) AS k"
        ),
        format!(
            "INSERT INTO \"{schema}\".instance_values (instance_id, key, value, updated_at) \
             SELECT {id}, 'round', '1', 1700000000500 + x FROM generate_series(0, {last}) AS x"
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    }
    if analyzed {
        for table in GROWING {
            let sql = format!("ANALYZE \"{schema}\".{table}");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
        }
    }
    conn.close().await.unwrap();
}

/// Messages waiting in the queue when the backlog's plans are made, spread over
/// [`BACKLOG_INSTANCES`] instances (a hundred each, as after a burst of events), each the
/// size of a typical serialized message.
const BACKLOG: i64 = 20_000;
const BACKLOG_INSTANCES: i64 = 200;

/// A queue with a backlog: [`BACKLOG`] visible messages, analyzed. With many messages per
/// instance the planner narrowed one instance's messages by also reading the visible-time
/// index (every visible message) until the instance index held both columns (migration 11).
async fn preload_backlog(url: &str, schema: &str) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let queue = format!("\"{schema}\".orchestrator_queue");
    for sql in [
        format!(
            "INSERT INTO {queue} (instance_id, message, visible_at, enqueued_at) \
             SELECT 'waiting-' || lpad((x % {BACKLOG_INSTANCES})::text, 5, '0'), repeat('x', 300), \
               1700000000000 + x, 1700000000000 + x FROM generate_series(0, {BACKLOG} - 1) AS x"
        ),
        format!("ANALYZE {queue}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
}

/// With a backlog in the queue: a plan that reads the visible-time index (every visible
/// message) to find one instance's messages, combined with the instance's index in a
/// bitmap AND or scanned with the instance as a filter. `plan[0]` is the node.
fn backlog_walk(plan: &[String]) -> Option<String> {
    let node = plan[0].trim().trim_start_matches("-> ").trim();
    let why = "reads every visible message of `orchestrator_queue` to find one instance's";
    if node.starts_with("BitmapAnd") {
        let children: Vec<&String> = plan[1..].iter().take(6).collect();
        if children.iter().any(|l| l.contains("orchestrator_queue_visible")) {
            return Some(why.to_string());
        }
    }
    if node.contains("using orchestrator_queue_visible") {
        let details = plan[1..].iter().take_while(|l| !l.trim_start().starts_with("->"));
        if details.clone().any(|l| l.contains("Filter") && l.contains("instance_id")) {
            return Some(why.to_string());
        }
    }
    None
}

/// The walks in the generic plans of `statements` on `schema`; with `backlog`, also the
/// walks of the queue's backlog (see [`backlog_walk`]).
async fn check_postgres(url: &str, schema: &str, statements: Vec<String>, backlog: bool) -> Vec<String> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("SET search_path TO \"{schema}\"")))
        .execute(&mut conn)
        .await
        .unwrap();
    // The plan a statement gets whatever its parameters: the generic plan.
    sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut conn).await.unwrap();
    assert!(statements.len() >= 10, "too few statements captured: {statements:#?}");
    let partial: BTreeSet<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT indexname FROM pg_indexes WHERE schemaname = '{schema}' AND indexdef LIKE '% WHERE %'"
    )))
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect();
    let mut walks = Vec::new();
    for (n, sql) in statements.iter().enumerate() {
        let params = (1..=64).rev().find(|i| sql.contains(&format!("${i}"))).unwrap_or(0);
        let name = format!("hot_{n}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE {name} AS {sql}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot prepare a captured statement: {e}\n{sql}"));
        let args = if params == 0 { String::new() } else { format!("({})", vec!["NULL"; params].join(", ")) };
        let plan: Vec<String> = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("EXPLAIN EXECUTE {name}{args}")))
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
        println!(
            "postgres | {} | {}",
            one_line(sql),
            plan.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" / ")
        );
        for (i, line) in plan.iter().enumerate() {
            if let Some(why) = full_walk(line.trim(), &[], &partial)
                .or_else(|| unbounded_index_walk(&plan[i..], &partial))
                .or_else(|| backlog.then(|| backlog_walk(&plan[i..])).flatten())
            {
                walks.push(format!("{why}: {}\n    {}", line.trim(), one_line(sql)));
            }
        }
    }
    walks
}

/// A PostgreSQL index scan of a growing table with no `Index Cond` reads the whole index
/// (unless the index is partial). `plan[0]` is the scan's node; its details follow until
/// the next node (`->`).
fn unbounded_index_walk(plan: &[String], partial: &BTreeSet<String>) -> Option<String> {
    let node = plan[0].trim().trim_start_matches("-> ").trim();
    let rest =
        node.strip_prefix("Index Scan using ").or_else(|| node.strip_prefix("Index Only Scan using "))?;
    let mut words = rest.split_whitespace();
    let index = words.next()?;
    let table = words.nth(1)?; // "<index> on <table>"
    let table = GROWING.iter().find(|t| **t == table)?;
    if partial.contains(index) {
        return None;
    }
    let details = plan[1..].iter().take_while(|l| !l.trim_start().starts_with("->"));
    let bounded = details.clone().any(|l| l.contains("Index Cond"));
    (!bounded).then(|| format!("walks all of index `{index}` of `{table}`"))
}

fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}
