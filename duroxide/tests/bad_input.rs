//! Bad input, over every store (SQLite in a file; PostgreSQL when `DUROXIDE_TEST_PG_URL` is
//! set, failing under `CI=true` when it is not): ids and names at and over the limits,
//! unicode, NUL bytes, SQL fragments, malformed JSON to typed starts, malformed URLs and
//! corrupt rows of each table. Each must give a typed error or a visibly failed instance,
//! never a panic, a hang (everything runs under a timeout) or an endless retry.

#[path = "pg_support/mod.rs"]
mod pg;

use duroxide::client::FinalState;
use duroxide::prelude::*;
use duroxide::provider::{MAX_EVENT_NAME_BYTES, MAX_INSTANCE_ID_BYTES, MAX_NAME_BYTES};
use duroxide::{ClientError, PostgresOptions, Provider, ProviderError, SqliteOptions};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The longest any single scenario may take before it counts as a hang.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// Which store a scenario runs on, with what it needs to write raw rows.
#[derive(Clone)]
enum Backend {
    Sqlite { url: String },
    Postgres { url: String, schema: String },
}

impl Backend {
    fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres { .. })
    }

    /// Runs `sql` (tables unqualified, `$1`/`?` placeholders per store; `args` bound as text)
    /// directly on the database, bypassing the store.
    async fn raw(&self, sql: &str, args: &[&str]) -> u64 {
        use sqlx::Connection;
        match self {
            Backend::Sqlite { url } => {
                let mut conn = sqlx::SqliteConnection::connect(url).await.expect("open SQLite file");
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
                for a in args {
                    q = q.bind(a.to_string());
                }
                let n = q.execute(&mut conn).await.expect("raw SQLite statement").rows_affected();
                let _ = conn.close().await;
                n
            }
            Backend::Postgres { url, schema } => {
                let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
                sqlx::query(sqlx::AssertSqlSafe(format!("SET search_path TO \"{schema}\"")))
                    .execute(&mut conn)
                    .await
                    .expect("search_path");
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.replace('?', "$1")));
                for a in args {
                    q = q.bind(a.to_string());
                }
                let n = q.execute(&mut conn).await.expect("raw PostgreSQL statement").rows_affected();
                let _ = conn.close().await;
                n
            }
        }
    }
}

/// Runs `body` on a fresh SQLite file store, then on a fresh PostgreSQL schema (skipped
/// with a message when no server is configured), each under [`SCENARIO_TIMEOUT`].
async fn on_every_store<F, Fut>(body: F)
where
    F: Fn(Arc<dyn Provider>, Backend) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("bad.db").display());
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&url, None).await.expect("open SQLite"));
    run_bounded("sqlite", body(store, Backend::Sqlite { url })).await;

    let Some(url) = pg::pg_url() else {
        eprintln!("SKIPPED the PostgreSQL half: {}", pg::skip_message());
        return;
    };
    let schema = pg::random_schema();
    let store: Arc<dyn Provider> = Arc::new(pg::open(&url, &schema).await);
    let backend = Backend::Postgres { url: url.clone(), schema: schema.clone() };
    let result = tokio::spawn(tokio::time::timeout(SCENARIO_TIMEOUT, body(store, backend))).await;
    pg::drop_schema(&url, &schema).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("postgres: scenario did not finish within {SCENARIO_TIMEOUT:?}"),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

async fn run_bounded(store: &str, body: impl Future<Output = ()> + Send + 'static) {
    match tokio::spawn(tokio::time::timeout(SCENARIO_TIMEOUT, body)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("{store}: scenario did not finish within {SCENARIO_TIMEOUT:?}"),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn options() -> RuntimeOptions {
    RuntimeOptions {
        dispatcher_poll_interval: Duration::from_millis(20),
        orchestration_lock_timeout: Duration::from_secs(2),
        activity_lock_timeout: Duration::from_secs(2),
        max_unregistered_backoff: Duration::from_millis(100),
        max_attempts: 3,
        ..Default::default()
    }
}

/// `Echo` returns its input through activity `Same`; `Wait` waits for event `Go`.
async fn runtime(store: Arc<dyn Provider>) -> Runtime {
    let activities = ActivityRegistry::builder()
        .register("Same", |_ctx: ActivityContext, input: String| async move { Ok(input) })
        .register_typed(double)
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("Echo", |ctx: OrchestrationContext, input: String| async move {
            Ok(ctx.schedule_activity("Same", &input).await?)
        })
        .register("Wait", |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx.schedule_wait("Go").await)
        })
        .register_typed(doubler)
        .build();
    Runtime::start_with_options(store, activities, orchestrations, options()).await
}

#[activity]
async fn double(_ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
    Ok(n * 2)
}

#[orchestration(name = "Doubler")]
async fn doubler(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    Ok(ctx.call(double, n).await?)
}

async fn finish(client: &Client, instance: &str) -> OrchestrationStatus {
    client
        .wait_for_orchestration(instance, Duration::from_secs(30))
        .await
        .unwrap_or_else(|_| panic!("{} did not finish", &instance[..instance.len().min(40)]))
}

/// `len` bytes of text that does not compress (an index entry cannot shrink it).
fn random_text(len: usize) -> String {
    let mut s = String::with_capacity(len + 32);
    while s.len() < len {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(len);
    s
}

fn too_long(result: Result<(), ClientError>, field: &str, length: usize, limit: usize) {
    match result {
        Err(ClientError::TooLong { field: f, length: l, limit: m }) => {
            assert_eq!((f.as_str(), l, m), (field, length, limit));
        }
        other => panic!("{field} of {length} bytes: expected TooLong, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_names_at_and_over_the_limits() {
    on_every_store(|store, _| async move {
        let rt = runtime(store.clone()).await;
        let client = Client::new(store.clone());
        // At the limit (multi-byte characters count in bytes): accepted and run to the end.
        let at_limit = format!("{}{}", "é".repeat(100), random_text(MAX_INSTANCE_ID_BYTES - 200));
        assert_eq!(at_limit.len(), MAX_INSTANCE_ID_BYTES);
        client.start_orchestration(&at_limit, "Echo", "in").await.unwrap();
        assert_eq!(finish(&client, &at_limit).await, OrchestrationStatus::Completed { output: "in".into() });

        // One byte over, and far over (PostgreSQL's index and notification limits).
        for len in [MAX_INSTANCE_ID_BYTES + 1, 3000, 8000, 100_000] {
            let id = random_text(len);
            too_long(
                client.start_orchestration(&id, "Echo", "in").await,
                "instance id",
                len,
                MAX_INSTANCE_ID_BYTES,
            );
            too_long(client.raise_event(&id, "Go", "x").await, "instance id", len, MAX_INSTANCE_ID_BYTES);
            too_long(client.cancel_instance(&id, "x").await, "instance id", len, MAX_INSTANCE_ID_BYTES);
        }
        let name = "N".repeat(MAX_NAME_BYTES);
        client.start_orchestration("long-name", &name, "in").await.unwrap();
        assert_eq!(store.get_instance("long-name").await.unwrap().unwrap().name, name);
        let name = "N".repeat(MAX_NAME_BYTES + 1);
        too_long(
            client.start_orchestration("longer-name", &name, "in").await,
            "orchestration name",
            MAX_NAME_BYTES + 1,
            MAX_NAME_BYTES,
        );
        assert!(store.get_instance("longer-name").await.unwrap().is_none());

        client.start_orchestration("waiter", "Wait", "").await.unwrap();
        let event = "E".repeat(MAX_EVENT_NAME_BYTES + 1);
        too_long(
            client.raise_event("waiter", &event, "x").await,
            "event name",
            event.len(),
            MAX_EVENT_NAME_BYTES,
        );
        client.raise_event("waiter", "Go", "ok").await.unwrap();
        assert_eq!(finish(&client, "waiter").await, OrchestrationStatus::Completed { output: "ok".into() });
        rt.shutdown(None).await;
    })
    .await;
}

/// An instance whose id is longer than PostgreSQL can put into a notification (8,000
/// bytes), written straight to the store (bypassing the client's check), still finishes:
/// its final commit does not carry the id in the payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_with_a_huge_id_written_past_the_client_still_finishes() {
    on_every_store(|store, _| async move {
        let id = "x".repeat(8200); // compresses, so PostgreSQL's index takes it
        store.create_instance(&id, "Echo", None, "in").await.unwrap();
        let rt = runtime(store.clone()).await;
        let client = Client::new(store.clone());
        assert_eq!(finish(&client, &id).await, OrchestrationStatus::Completed { output: "in".into() });
        rt.shutdown(None).await;
    })
    .await;
}

/// What the store itself refuses is a permanent `InvalidInput`, never a retryable
/// `Storage` error the caller would retry forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_a_store_refuses_is_invalid_input_not_retryable() {
    on_every_store(|store, backend| async move {
        let nul = "a\0b";
        let long_random = random_text(3000);
        for id in [nul, long_random.as_str()] {
            match store.create_instance(id, "Echo", None, "in").await {
                Ok(()) => assert!(!backend.is_postgres(), "PostgreSQL accepted {:?}", &id[..3]),
                Err(e @ ProviderError::InvalidInput(_)) => assert!(!e.is_retryable()),
                Err(e) => panic!("expected InvalidInput, got {e:?}"),
            }
        }
        // The store still works.
        store.create_instance("fine", "Echo", None, "in").await.unwrap();
        assert!(store.get_instance("fine").await.unwrap().is_some());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_sql_fragments_and_control_characters() {
    on_every_store(|store, backend| async move {
        let rt = runtime(store.clone()).await;
        let client = Client::new(store.clone());
        let ids = [
            "'; DROP TABLE instances; --",
            "Robert'); DROP TABLE history;--",
            "ünïcødé ✓ 日本語 🚀",
            "\"quoted\" \\ back\\slash %_ like",
        ];
        for id in ids {
            client.start_orchestration(id, "Echo", id).await.unwrap();
        }
        for id in ids {
            assert_eq!(finish(&client, id).await, OrchestrationStatus::Completed { output: id.into() });
        }
        let listed = client.list_instances().await.unwrap();
        for id in ids {
            assert!(listed.iter().any(|l| l == id), "{id} not listed");
        }

        // NUL and other control characters in ids and names: refused before any write.
        for (id, name) in
            [("a\0b", "Echo"), ("line\nbreak", "Echo"), ("ok-id", "Ec\0ho"), ("ok-id", "tab\tname")]
        {
            match client.start_orchestration(id, name, "in").await {
                Err(ClientError::InvalidArgument(m)) => assert!(m.contains("control"), "{m}"),
                other => panic!("{id:?}/{name:?}: expected InvalidArgument, got {other:?}"),
            }
        }
        assert!(store.get_instance("ok-id").await.unwrap().is_none());
        match client.raise_event(ids[0], "G\0o", "x").await {
            Err(ClientError::InvalidArgument(_)) => {}
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
        for bad in ["", "   "] {
            assert!(matches!(
                client.start_orchestration(bad, "Echo", "").await,
                Err(ClientError::InvalidArgument(_))
            ));
        }

        // A NUL byte in data: SQLite stores it; PostgreSQL refuses it where it is stored as
        // text (the activity queue), and the instance fails visibly at once with the store's
        // reason instead of retrying a write that can never succeed.
        client.start_orchestration("nul-data", "Echo", "a\0b").await.unwrap();
        match finish(&client, "nul-data").await {
            OrchestrationStatus::Completed { output } => {
                assert!(!backend.is_postgres());
                assert_eq!(output, "a\0b");
            }
            OrchestrationStatus::Failed { details } => {
                assert!(backend.is_postgres(), "SQLite failed it: {details}");
                assert_eq!(details.category, duroxide::ErrorCategory::Configuration, "{details}");
                assert!(
                    details.message.contains("the store refused the turn's changes: invalid input"),
                    "{details}"
                );
            }
            other => panic!("nul-data: {other:?}"),
        }
        client.start_orchestration("nul-event", "Wait", "").await.unwrap();
        client.raise_event("nul-event", "Go", "x\0y").await.unwrap();
        // The output column is text too: PostgreSQL fails the instance, SQLite completes it.
        match finish(&client, "nul-event").await {
            OrchestrationStatus::Completed { output } => {
                assert!(!backend.is_postgres());
                assert_eq!(output, "x\0y");
            }
            OrchestrationStatus::Failed { details } => {
                assert!(backend.is_postgres(), "SQLite failed it: {details}");
                assert!(details.message.contains("invalid input"), "{details}");
            }
            other => panic!("nul-event: {other:?}"),
        }
        rt.shutdown(None).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_to_a_typed_orchestration_fails_the_instance() {
    on_every_store(|store, _| async move {
        let rt = runtime(store.clone()).await;
        let client = Client::new(store.clone());
        client.start_typed(doubler, "typed-ok", &21).await.unwrap();
        assert_eq!(client.wait_for_typed(doubler, "typed-ok", Duration::from_secs(30)).await.unwrap(), 42);
        for (i, raw) in ["{not json", "\"a string\"", "-1", "", "null", "[1,2]", "1e400"].iter().enumerate() {
            let id = format!("typed-bad-{i}");
            client.start_orchestration_versioned(&id, "Doubler", "1.0.0", *raw).await.unwrap();
            match finish(&client, &id).await {
                OrchestrationStatus::Failed { .. } => {}
                other => panic!("input {raw:?}: expected a failed instance, got {other:?}"),
            }
            match client.wait_for_typed(doubler, &id, Duration::from_secs(5)).await {
                Err(duroxide::TypedClientError::Failed { .. }) => {}
                other => panic!("input {raw:?}: expected TypedClientError::Failed, got {other:?}"),
            }
        }
        rt.shutdown(None).await;
    })
    .await;
}

/// Events to and cancellation of a finished instance are refused with its final state;
/// an unknown instance is `NotFound`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_cancellation_of_finished_instances_are_refused() {
    on_every_store(|store, _| async move {
        let rt = runtime(store.clone()).await;
        let client = Client::new(store.clone());
        client.start_orchestration("done", "Echo", "x").await.unwrap();
        finish(&client, "done").await;
        client.start_orchestration("failed", "Doubler", "not json").await.unwrap();
        finish(&client, "failed").await;
        client.start_orchestration("cancelled", "Wait", "").await.unwrap();
        client.cancel_instance("cancelled", "stop").await.unwrap();
        assert!(matches!(finish(&client, "cancelled").await, OrchestrationStatus::Cancelled { .. }));
        for (id, state) in [
            ("done", FinalState::Completed),
            ("failed", FinalState::Failed),
            ("cancelled", FinalState::Cancelled),
        ] {
            for result in [client.raise_event(id, "Go", "x").await, client.cancel_instance(id, "again").await]
            {
                match result {
                    Err(ClientError::InstanceFinished { instance, state: s }) => {
                        assert_eq!((instance.as_str(), s), (id, state));
                    }
                    other => panic!("{id}: expected InstanceFinished, got {other:?}"),
                }
            }
        }
        for result in
            [client.raise_event("ghost", "Go", "x").await, client.cancel_instance("ghost", "x").await]
        {
            assert_eq!(result, Err(ClientError::NotFound("ghost".into())));
        }
        rt.shutdown(None).await;
    })
    .await;
}

/// Repeating a start (as after a storage error whose write in fact succeeded) succeeds; a
/// different start with the same id is `InstanceExists`. Before and after the first turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_start_is_idempotent_and_a_different_one_conflicts() {
    on_every_store(|store, _| async move {
        let client = Client::new(store.clone());
        client.start_orchestration("s1", "Echo", "in").await.unwrap();
        client.start_orchestration_versioned("s2", "Echo", "1.0.0", "in").await.unwrap();
        client.start_typed(doubler, "s3", &5).await.unwrap();
        for phase in ["queued", "finished"] {
            client.start_orchestration("s1", "Echo", "in").await.unwrap_or_else(|e| panic!("{phase}: {e}"));
            client.start_orchestration_versioned("s2", "Echo", "1.0.0", "in").await.unwrap();
            client.start_typed(doubler, "s3", &5).await.unwrap();
            let conflicts = [
                client.start_orchestration("s1", "Echo", "other").await,
                client.start_orchestration("s1", "Wait", "in").await,
                client.start_orchestration_versioned("s1", "Echo", "9.0.0", "in").await,
                client.start_orchestration_versioned("s2", "Echo", "2.0.0", "in").await,
                client.start_orchestration("s2", "Echo", "in2").await,
            ];
            for (i, c) in conflicts.into_iter().enumerate() {
                assert!(matches!(c, Err(ClientError::InstanceExists(_))), "{phase} #{i}: {c:?}");
            }
            assert!(matches!(
                client.start_typed(doubler, "s3", &6).await,
                Err(duroxide::TypedClientError::Client(ClientError::InstanceExists(_)))
            ));
            if phase == "queued" {
                let rt = runtime(store.clone()).await;
                finish(&client, "s1").await;
                finish(&client, "s2").await;
                assert_eq!(client.wait_for_typed(doubler, "s3", Duration::from_secs(30)).await.unwrap(), 10);
                rt.shutdown(None).await;
            }
        }
        // One history each: the repeats started nothing.
        assert_eq!(client.list_executions("s1").await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sqlite_urls_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing_dir = format!("sqlite:{}", dir.path().join("no/such/dir/x.db").display());
    let bad = [
        "",
        "sqlite:",
        "sqlite://",
        "sqlite:?mode=rwc",
        "sqlite://?mode=rwc",
        "sqlite:   ",
        "postgres://postgres@127.0.0.1/test",
        "mysql://x/y",
        "sqlite:x.db?mode=bogus",
        "sqlite:x.db?unknown=1",
        "sqlite:x.db?cache=weird",
    ];
    for url in bad {
        let opened =
            tokio::time::timeout(Duration::from_secs(10), SqliteProvider::new(url, None)).await.unwrap();
        match opened {
            Err(ProviderError::Configuration(_)) => {}
            Err(other) => panic!("{url:?}: expected Configuration, got {other:?}"),
            Ok(_) => panic!("{url:?} opened a store"),
        }
    }
    // A path that cannot be created is a typed error too (not a panic).
    let opened = tokio::time::timeout(Duration::from_secs(10), SqliteProvider::new(&missing_dir, None)).await;
    assert!(opened.unwrap().is_err());
}

/// Every in-memory form is one database for the whole store (what one call writes, the
/// next reads), and a second store on `sqlite::memory:` is a different database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_sqlite_urls_are_one_database_per_store() {
    use duroxide::provider::FetchFilter;
    for url in [
        "sqlite::memory:",
        "sqlite://:memory:",
        "sqlite://?mode=memory",
        "sqlite:named?mode=memory",
        "sqlite::memory:?cache=private",
    ] {
        let store =
            SqliteProvider::new(url, Some(SqliteOptions { max_connections: 4, ..Default::default() }))
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
        for i in 0..8 {
            store.create_instance(&format!("i{i}"), "O", None, "").await.unwrap();
        }
        assert_eq!(store.list_instances().await.unwrap().len(), 8, "{url}");
        let item =
            store.fetch_orchestration_item(Duration::from_secs(5), &FetchFilter::default()).await.unwrap();
        assert_eq!(item.expect(url).instance, "i0");
    }
    let other = SqliteProvider::in_memory().await.unwrap();
    assert!(other.list_instances().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_postgres_urls_and_options_are_typed_errors() {
    let Some(url) = pg::pg_url() else {
        eprintln!("SKIPPED: {}", pg::skip_message());
        return;
    };
    let quick =
        || PostgresOptions { acquire_timeout: Duration::from_secs(3), listen: false, ..Default::default() };
    let cases = [
        "".to_string(),
        "postgres://".to_string(),
        "sqlite::memory:".to_string(),
        "postgres://postgres@127.0.0.1:notaport/test".to_string(),
        "postgres://postgres@127.0.0.1:5432/test?sslmode=bogus".to_string(),
        "postgres://postgres@127.0.0.1:1/test".to_string(),
        "postgres://postgres@127.0.0.1:5432/no_such_database_dx".to_string(),
    ];
    for bad in &cases {
        let opened = tokio::time::timeout(Duration::from_secs(20), PostgresProvider::new(bad, Some(quick())))
            .await
            .unwrap_or_else(|_| panic!("{bad:?}: open hung"));
        match opened {
            Err(ProviderError::Configuration(_) | ProviderError::Storage(_)) => {}
            Err(other) => panic!("{bad:?}: unexpected {other:?}"),
            Ok(_) => panic!("{bad:?} opened a store"),
        }
    }
    for schema in ["", "Bad", "a;drop", "pg_x", "x\0"] {
        let options = PostgresOptions { schema: Some(schema.to_string()), ..quick() };
        assert!(
            matches!(PostgresProvider::new(&url, Some(options)).await, Err(ProviderError::Configuration(_))),
            "{schema:?}"
        );
    }
}

/// Corrupt rows in each table affect only their own instance, which fails visibly; every
/// other instance runs, and listing and counting keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_fail_only_their_own_instance() {
    on_every_store(|store, backend| async move {
        let client = Client::new(store.clone());
        // Started and waiting, so each has history, then corrupted with no runtime running.
        let rt = runtime(store.clone()).await;
        for id in ["bad-history", "bad-message"] {
            client.start_orchestration(id, "Wait", "").await.unwrap();
        }
        for id in ["bad-history", "bad-message"] {
            let h = async {
                loop {
                    if client.read_execution_history(id, None).await.unwrap().len() >= 2 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(20), h).await.expect("started");
        }
        rt.shutdown(None).await;
        client.start_orchestration("bad-state", "Echo", "x").await.unwrap();
        assert_eq!(
            backend.raw("UPDATE instances SET state = 'Bogus' WHERE instance_id = ?", &["bad-state"]).await,
            1
        );
        assert_eq!(
            backend
                .raw(
                    "UPDATE history SET data = '{garbage' WHERE instance_id = ? AND event_id = 1",
                    &["bad-history"]
                )
                .await,
            1
        );
        client.raise_event("bad-history", "Go", "x").await.unwrap();
        client.raise_event("bad-message", "Go", "x").await.unwrap();
        assert_eq!(
            backend
                .raw(
                    "UPDATE orchestrator_queue SET message = '{\"type\":\"Nope\"}' WHERE instance_id = ?",
                    &["bad-message"]
                )
                .await,
            1
        );
        for i in 0..5 {
            client.start_orchestration(&format!("good-{i}"), "Echo", "g").await.unwrap();
        }

        // Listing and counting work despite the corrupt state.
        assert_eq!(client.list_instances().await.unwrap().len(), 8);
        let counts = client.count_instances_by_version().await.unwrap();
        assert_eq!(counts.iter().map(|c| c.count).sum::<u64>(), 7, "{counts:?}");
        assert!(matches!(store.get_instance("bad-state").await, Err(ProviderError::Corrupt(_))));
        assert!(matches!(
            client.get_orchestration_status("bad-state").await,
            Err(ClientError::Provider(ProviderError::Corrupt(_)))
        ));

        let rt = runtime(store.clone()).await;
        for i in 0..5 {
            assert_eq!(
                finish(&client, &format!("good-{i}")).await,
                OrchestrationStatus::Completed { output: "g".into() }
            );
        }
        for id in ["bad-state", "bad-history", "bad-message"] {
            let status = async {
                loop {
                    if let Ok(s) = client.get_orchestration_status(id).await
                        && s.is_terminal()
                    {
                        return s;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            let status = tokio::time::timeout(Duration::from_secs(30), status)
                .await
                .unwrap_or_else(|_| panic!("{id} never failed"));
            match status {
                OrchestrationStatus::Failed { details } => {
                    assert!(details.message.contains("max_attempts"), "{id}: {details}")
                }
                other => panic!("{id}: expected Failed, got {other:?}"),
            }
        }
        let counts = client.count_instances_by_version().await.unwrap();
        assert_eq!(counts.iter().map(|c| c.count).sum::<u64>(), 8, "{counts:?}");
        rt.shutdown(None).await;
    })
    .await;
}

/// Corrupt activity rows (pointing at no scheduled activity, naming no registered activity,
/// or for an instance that does not exist) do not stop other work, and the instance they
/// claim to belong to still runs and can be cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_work_items_do_not_stop_other_work() {
    on_every_store(|store, backend| async move {
        let client = Client::new(store.clone());
        client.start_orchestration("victim", "Wait", "").await.unwrap();
        let insert = "INSERT INTO worker_queue (instance_id, execution_id, event_id, name, input, visible_at) \
                      VALUES (?, 77, 999, 'Same', 'x', 0)";
        backend.raw(insert, &["victim"]).await;
        backend.raw(&insert.replace("999", "998").replace("'Same'", "'NoSuchActivity'"), &["victim"]).await;
        backend.raw(insert, &["no-such-instance"]).await;
        let rt = runtime(store.clone()).await;
        for i in 0..3 {
            client.start_orchestration(&format!("other-{i}"), "Echo", "o").await.unwrap();
        }
        for i in 0..3 {
            assert_eq!(finish(&client, &format!("other-{i}")).await, OrchestrationStatus::Completed { output: "o".into() });
        }
        client.cancel_instance("victim", "stop").await.unwrap();
        assert!(matches!(finish(&client, "victim").await, OrchestrationStatus::Cancelled { .. }));
        rt.shutdown(None).await;
    })
    .await;
}
