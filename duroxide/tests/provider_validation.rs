//! The provider conformance suite (`duroxide::provider::validation`) against every store:
//! SQLite in memory, SQLite in a file, and PostgreSQL (one fresh schema per test; see
//! `common/pg.rs` for when the PostgreSQL run is skipped).

#[path = "pg_support/mod.rs"]
mod pg;

use duroxide::provider::validation::ProviderFactory;
use duroxide::{Provider, SqliteProvider};
use sqlx::{Connection, SqliteConnection};
use std::sync::{Arc, Mutex};

/// Private in-memory SQLite stores. Raw rows cannot be written from outside, so the
/// unreadable-history tests pass without checking here (the file store covers them).
struct SqliteMemoryFactory;

#[async_trait::async_trait]
impl ProviderFactory for SqliteMemoryFactory {
    async fn create_provider(&self) -> Arc<dyn Provider> {
        Arc::new(SqliteProvider::in_memory().await.expect("open in-memory SQLite"))
    }
}

/// SQLite stores in files under a temporary directory.
#[derive(Default)]
struct SqliteFileFactory {
    dir: Mutex<Option<tempfile::TempDir>>,
    last: Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl ProviderFactory for SqliteFileFactory {
    async fn create_provider(&self) -> Arc<dyn Provider> {
        let path = {
            let mut dir = self.dir.lock().unwrap();
            let dir = dir.get_or_insert_with(|| tempfile::tempdir().expect("temp dir"));
            dir.path().join(format!("{}.db", uuid::Uuid::new_v4().simple()))
        };
        let url = format!("sqlite:{}", path.display());
        *self.last.lock().unwrap() = Some(url.clone());
        Arc::new(SqliteProvider::new(&url, None).await.expect("open SQLite file"))
    }

    async fn insert_raw_history_event(
        &self,
        instance: &str,
        execution_id: u64,
        event_id: u64,
        raw: &str,
    ) -> bool {
        let url = self.last.lock().unwrap().clone().expect("a store was created");
        let mut conn = SqliteConnection::connect(&url).await.expect("open SQLite file");
        sqlx::query(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, data) VALUES (?, ?, ?, 'Raw', ?)",
        )
        .bind(instance)
        .bind(execution_id as i64)
        .bind(event_id as i64)
        .bind(raw)
        .execute(&mut conn)
        .await
        .expect("insert raw history row");
        let _ = conn.close().await;
        true
    }

    async fn set_raw_instance_state(&self, instance: &str, state: &str) -> bool {
        let url = self.last.lock().unwrap().clone().expect("a store was created");
        let mut conn = SqliteConnection::connect(&url).await.expect("open SQLite file");
        sqlx::query("UPDATE instances SET state = ? WHERE instance_id = ?")
            .bind(state)
            .bind(instance)
            .execute(&mut conn)
            .await
            .expect("overwrite instance state");
        let _ = conn.close().await;
        true
    }

    async fn teardown(&self) {
        self.dir.lock().unwrap().take();
    }
}

mod sqlite_memory {
    use super::*;
    duroxide::provider_validation_tests!(SqliteMemoryFactory);
}

mod sqlite_file {
    use super::*;
    duroxide::provider_validation_tests!(SqliteFileFactory::default());
}

mod postgres {
    use super::*;
    duroxide::provider_validation_tests!(pg::PgFactory::new());
}

/// The suite is big enough to mean something, and `run_all` agrees with the macro.
#[tokio::test]
async fn suite_has_at_least_80_tests_and_run_all_works() {
    let tests = duroxide::provider::validation::all_tests();
    assert!(tests.len() >= 80, "only {} conformance tests", tests.len());
    let names: std::collections::HashSet<_> = tests.iter().map(|t| t.name).collect();
    assert_eq!(names.len(), tests.len(), "duplicate test names");
}

/// `run_all` reports failures instead of panicking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_reports_failures_of_a_broken_factory() {
    struct Broken;
    #[async_trait::async_trait]
    impl ProviderFactory for Broken {
        async fn create_provider(&self) -> Arc<dyn Provider> {
            panic!("no store today")
        }
    }
    let failures = duroxide::provider::validation::run_all(Arc::new(Broken)).await;
    assert_eq!(failures.len(), duroxide::provider::validation::all_tests().len());
    assert!(failures[0].1.contains("no store today"), "{:?}", failures[0]);
}

/// Opening with a bad URL or schema is a configuration error; an unreachable server is a
/// storage error.
#[tokio::test]
async fn postgres_configuration_errors_are_typed() {
    use duroxide::{PostgresOptions, PostgresProvider, ProviderError};
    let bad_schema =
        PostgresOptions { schema: Some("Robert'); DROP TABLE x;--".into()), ..Default::default() };
    match PostgresProvider::new("postgres://postgres@127.0.0.1:5432/test", Some(bad_schema)).await {
        Err(ProviderError::Configuration(_)) => {}
        other => panic!("expected Configuration, got {other:?}"),
    }
    match PostgresProvider::new("mysql://nope", None).await {
        Err(ProviderError::Configuration(_)) => {}
        other => panic!("expected Configuration, got {other:?}"),
    }
    let opts = PostgresOptions { acquire_timeout: std::time::Duration::from_secs(2), ..Default::default() };
    match PostgresProvider::new("postgres://postgres@127.0.0.1:1/test", Some(opts)).await {
        Err(ProviderError::Storage(msg)) => assert!(msg.contains("127.0.0.1:1"), "{msg}"),
        other => panic!("expected Storage, got {other:?}"),
    }
}

/// PostgreSQL-only checks: several providers (standing in for several processes) on one
/// schema, concurrent opening, cross-process wake-ups and connection loss.
mod postgres_multi {
    use super::pg;
    use duroxide::Provider;
    use duroxide::provider::{FetchFilter, InstanceState, InstanceUpdate, OutboundMessage, TurnCommit};
    use std::sync::Arc;
    use std::time::Duration;

    /// Runs `body` with the URL and a fresh schema, dropping the schema afterwards.
    async fn with_schema<F, Fut>(body: F)
    where
        F: FnOnce(String, String) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let Some(url) = pg::pg_url() else {
            eprintln!("SKIPPED: {}", pg::skip_message());
            return;
        };
        let schema = pg::random_schema();
        let result = tokio::spawn(body(url.clone(), schema.clone())).await;
        pg::drop_schema(&url, &schema).await;
        if let Err(e) = result {
            std::panic::resume_unwind(e.into_panic());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_open_of_one_schema_migrates_once() {
        with_schema(|url, schema| async move {
            let opens: Vec<_> = (0..6)
                .map(|_| {
                    let (url, schema) = (url.clone(), schema.clone());
                    tokio::spawn(async move { pg::open(&url, &schema).await })
                })
                .collect();
            let mut stores = Vec::new();
            for o in opens {
                stores.push(o.await.expect("open task"));
            }
            stores[0].create_instance("x", "N", None, "").await.unwrap();
            assert!(stores[5].get_instance("x").await.unwrap().is_some());
            // Reopening an up-to-date schema is a no-op.
            let again = pg::open(&url, &schema).await;
            assert_eq!(again.list_instances().await.unwrap(), vec!["x"]);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn schemas_are_isolated() {
        with_schema(|url, schema| async move {
            let other_schema = pg::random_schema();
            let a = pg::open(&url, &schema).await;
            let b = pg::open(&url, &other_schema).await;
            a.create_instance("same-id", "N", None, "").await.unwrap();
            b.create_instance("same-id", "N", None, "").await.expect("same id in another schema");
            assert_eq!(b.list_instances().await.unwrap().len(), 1);
            drop(b);
            pg::drop_schema(&url, &other_schema).await;
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_stores_share_queues_and_locks() {
        with_schema(|url, schema| async move {
            let a: Arc<dyn Provider> = Arc::new(pg::open(&url, &schema).await);
            let b: Arc<dyn Provider> = Arc::new(pg::open(&url, &schema).await);
            a.create_instance("shared", "N", None, "").await.unwrap();
            let lock = Duration::from_millis(300);
            let item = b.fetch_orchestration_item(lock, &FetchFilter::default()).await.unwrap().unwrap();
            assert!(a.fetch_orchestration_item(lock, &FetchFilter::default()).await.unwrap().is_none());
            // b "dies"; a takes over after the lock expires.
            tokio::time::sleep(Duration::from_millis(450)).await;
            let taken = a.fetch_orchestration_item(lock, &FetchFilter::default()).await.unwrap().unwrap();
            assert_eq!(taken.attempt, 2);
            let commit = TurnCommit {
                execution_id: 1,
                new_events: Vec::new(),
                update: InstanceUpdate {
                    name: "N".into(),
                    version: "1.0.0".into(),
                    state: InstanceState::Running,
                    output: None,
                    error: None,
                    custom_status: None,
                },
                next_execution_id: None,
                activities: Vec::new(),
                activity_lock_timeout: Duration::ZERO,
                cancelled_activities: Vec::new(),
                messages: Vec::new(),
            };
            assert!(b.commit_turn(&item.lock_token, commit.clone()).await.is_err());
            a.commit_turn(&taken.lock_token, commit).await.unwrap();
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn notifications_wake_other_stores() {
        with_schema(|url, schema| async move {
            let a = pg::open(&url, &schema).await;
            let b = pg::open(&url, &schema).await;
            // Give b's listener a moment to LISTEN.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let nb = b.notifiers().expect("postgres has notifiers");
            let mut finished = nb.finished.subscribe();
            let woke = nb.orchestrator.notified();
            tokio::pin!(woke);
            woke.as_mut().enable();
            a.create_instance("n1", "N", None, "").await.unwrap();
            tokio::time::timeout(Duration::from_secs(3), woke).await.expect("b woken by a's enqueue");

            let item =
                a.fetch_orchestration_item(Duration::from_secs(30), &FetchFilter::default()).await.unwrap();
            let item = item.unwrap();
            let work_woke = nb.worker.notified();
            tokio::pin!(work_woke);
            work_woke.as_mut().enable();
            let commit = TurnCommit {
                execution_id: 1,
                new_events: Vec::new(),
                update: InstanceUpdate {
                    name: "N".into(),
                    version: "1.0.0".into(),
                    state: InstanceState::Completed,
                    output: Some("done".into()),
                    error: None,
                    custom_status: None,
                },
                next_execution_id: None,
                activities: vec![duroxide::provider::ActivityWorkItem {
                    instance: "n1".into(),
                    execution_id: 1,
                    event_id: 2,
                    name: "A".into(),
                    input: "".into(),
                    session_id: None,
                    lock_token: String::new(),
                    attempt: 0,
                    session_claimed: false,
                    visible_at_ms: 0,
                    tag: None,
                    orchestration_name: String::new(),
                    orchestration_version: String::new(),
                }],
                activity_lock_timeout: Duration::ZERO,
                cancelled_activities: Vec::new(),
                messages: Vec::new(),
            };
            a.commit_turn(&item.lock_token, commit).await.unwrap();
            tokio::time::timeout(Duration::from_secs(3), work_woke).await.expect("b's workers woken");
            let done = tokio::time::timeout(Duration::from_secs(3), finished.recv())
                .await
                .expect("b told about the finished instance")
                .unwrap();
            assert_eq!(done.instance, "n1");

            // Delayed messages wake at their due time.
            let later = nb.orchestrator.notified();
            tokio::pin!(later);
            later.as_mut().enable();
            let due = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
                as u64
                + 400;
            a.enqueue_message(OutboundMessage {
                instance: "n1".into(),
                message: duroxide::provider::OrchestratorMessage::ExternalRaised {
                    name: "e".into(),
                    data: "".into(),
                },
                visible_at_ms: Some(due),
            })
            .await
            .unwrap();
            tokio::time::timeout(Duration::from_secs(3), later).await.expect("woken at the due time");
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connection_loss_is_a_retryable_storage_error() {
        with_schema(|url, schema| async move {
            let store = pg::open(&url, &schema).await;
            store.create_instance("c", "N", None, "").await.unwrap();
            // Kill every server session of this store (named after its schema).
            let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
            let killed: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(&schema)
            .fetch_all(&mut admin)
            .await
            .unwrap();
            assert!(!killed.is_empty());
            let mut saw_error = false;
            let mut ok = false;
            for _ in 0..20 {
                match store.get_instance("c").await {
                    Ok(r) => {
                        assert!(r.is_some());
                        ok = true;
                        break;
                    }
                    Err(e) => {
                        saw_error = true;
                        assert!(e.is_retryable(), "connection loss must be retryable: {e:?}");
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(ok, "the store recovers after the connections were killed");
            eprintln!("connection loss surfaced as an error first: {saw_error}");
        })
        .await;
    }
}
