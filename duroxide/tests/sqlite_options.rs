//! `SqliteOptions`: the page size new files are created with, bad values, and opening an
//! existing store only (`existing_only`).
use duroxide::{Provider, ProviderError, SqliteOptions, SqliteProvider};
use std::sync::Arc;

async fn page_size_of(path: &std::path::Path) -> i64 {
    let url = format!("sqlite:{}", path.display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query_scalar("PRAGMA page_size").fetch_one(&mut conn).await.unwrap()
}

#[tokio::test]
async fn new_files_get_the_configured_page_size_and_existing_files_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.db");
    let store = SqliteProvider::new(&format!("sqlite:{}", fresh.display()), None).await.unwrap();
    let store: Arc<dyn Provider> = Arc::new(store);
    store.create_instance("i", "O", None, "in").await.unwrap();
    assert_eq!(page_size_of(&fresh).await, i64::from(SqliteOptions::default().page_size));

    let custom = dir.path().join("custom.db");
    let options = SqliteOptions { page_size: 4096, ..Default::default() };
    let store = SqliteProvider::new(&format!("sqlite:{}", custom.display()), Some(options)).await.unwrap();
    drop(store);
    assert_eq!(page_size_of(&custom).await, 4096);

    // Reopening with another page size keeps the file's own, and its data.
    let options = SqliteOptions { page_size: 1024, ..Default::default() };
    let store =
        SqliteProvider::new(&format!("sqlite:{}", fresh.display()), Some(options.clone())).await.unwrap();
    assert!(store.get_instance("i").await.unwrap().is_some());
    drop(store);
    let store = SqliteProvider::new(&format!("sqlite:{}", custom.display()), Some(options)).await.unwrap();
    drop(store);
    assert_eq!(page_size_of(&custom).await, 4096);
}

/// Opens `path` with `existing_only`, expecting a configuration error that mentions `needle`.
async fn refused_existing_only(path: &std::path::Path, needle: &str) {
    let options = SqliteOptions { existing_only: true, ..Default::default() };
    match SqliteProvider::new(&format!("sqlite:{}", path.display()), Some(options)).await {
        Err(ProviderError::Configuration(m)) => assert!(m.contains(needle), "{needle}: {m}"),
        Err(other) => panic!("expected a configuration error mentioning {needle}, got {other}"),
        Ok(_) => panic!("existing_only opened {}", path.display()),
    }
}

#[tokio::test]
async fn existing_only_opens_a_current_store_and_refuses_anything_else_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let existing_only = SqliteOptions { existing_only: true, ..Default::default() };

    // A missing file is not created.
    let missing = dir.path().join("missing.db");
    refused_existing_only(&missing, "no SQLite database").await;
    assert!(!missing.exists(), "existing_only created the file");
    let memory = SqliteProvider::new("sqlite::memory:", Some(existing_only.clone())).await;
    assert!(matches!(memory, Err(ProviderError::Configuration(_))));

    // A store at this version opens and reads what a normal open wrote.
    let current = dir.path().join("current.db");
    let url = format!("sqlite:{}", current.display());
    let store = SqliteProvider::new(&url, None).await.unwrap();
    store.create_instance("i", "O", None, "in").await.unwrap();
    drop(store);
    let reopened = SqliteProvider::new(&url, Some(existing_only.clone())).await.unwrap();
    assert!(reopened.get_instance("i").await.unwrap().is_some());
    drop(reopened);

    // An older schema (a migration not applied) is refused, and not migrated.
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)")
        .execute(&mut conn)
        .await
        .unwrap();
    let count = "SELECT COUNT(*) FROM _sqlx_migrations";
    let before: i64 = sqlx::query_scalar(count).fetch_one(&mut conn).await.unwrap();
    refused_existing_only(&current, "older than duroxide").await;
    let after: i64 = sqlx::query_scalar(count).fetch_one(&mut conn).await.unwrap();
    assert_eq!(before, after, "existing_only applied a migration");

    // A newer one (a migration this version does not know) is refused too.
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (999999, 'future', TRUE, X'00', 0)")
        .execute(&mut conn)
        .await
        .unwrap();
    refused_existing_only(&current, "newer duroxide").await;

    // A SQLite file without duroxide's schema is not a store.
    let other = dir.path().join("other.db");
    let other_url = format!("sqlite:{}?mode=rwc", other.display());
    let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&other_url).await.unwrap();
    sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut c).await.unwrap();
    refused_existing_only(&other, "not a duroxide store").await;
}

#[tokio::test]
async fn a_bad_page_size_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [0, 100, 1000, 131072] {
        let url = format!("sqlite:{}", dir.path().join(format!("bad-{bad}.db")).display());
        let options = SqliteOptions { page_size: bad, ..Default::default() };
        match SqliteProvider::new(&url, Some(options)).await {
            Err(ProviderError::Configuration(m)) => assert!(m.contains("page_size"), "{m}"),
            Err(other) => panic!("page_size {bad}: expected a configuration error, got {other}"),
            Ok(_) => panic!("page_size {bad} was accepted"),
        }
    }
}

/// Writes run as one-round-trip batches that begin and commit their own transaction. A
/// caller cancelled mid-way (a timeout, a dropped runtime) may leave that transaction open
/// on the writer connection; the next write must roll it back first and work, and every
/// cancelled write must be all or nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_cancelled_mid_way_leave_the_store_usable_and_consistent() {
    use duroxide::provider::{FetchFilter, OrchestratorMessage};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("cancel.db").display());
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&url, None).await.unwrap());
    let lock = Duration::from_secs(30);
    let filter = FetchFilter::default();
    let mut locked = 0;
    for round in 0..500u64 {
        let ids: Vec<String> = (0..3).map(|k| format!("i{round}-{k}")).collect();
        // Cancel after a few microseconds to a fraction of a millisecond: before, during
        // or after the batches. Three starts at once share a group commit (one batch each,
        // the first beginning the transaction and the last committing it).
        let budget = Duration::from_micros(round % 60 * 10);
        let starts =
            futures::future::join_all(ids.iter().map(|id| store.create_instance(id, "O", None, "in")));
        let created = tokio::time::timeout(budget, starts).await;
        // Whatever happened, the store takes the next write, and each instance is there
        // with its start message or not at all.
        for (k, id) in ids.iter().enumerate() {
            let again = store.create_instance(id, "O", None, "in").await;
            match again {
                Ok(()) => assert!(
                    !matches!(&created, Ok(results) if results[k].is_ok()),
                    "round {round}: {id} created twice"
                ),
                Err(ProviderError::InstanceExists(_)) => {}
                Err(e) => panic!("round {round}: the store is unusable after a cancelled write: {e}"),
            }
        }
        let fetched = tokio::time::timeout(budget, store.fetch_orchestration_item(lock, &filter)).await;
        if let Ok(Ok(Some(_))) = fetched {
            locked += 1;
        }
    }
    // Every instance is either locked by a fetch that returned it, locked by a cancelled
    // fetch (its lock expires), or fetchable now with exactly its start message.
    let mut fetchable = 0;
    while let Some(item) = store.fetch_orchestration_item(lock, &filter).await.unwrap() {
        assert!(
            matches!(item.messages.as_slice(), [OrchestratorMessage::StartOrchestration { .. }]),
            "{:?}",
            item.messages
        );
        fetchable += 1;
    }
    assert!(locked + fetchable <= 1500);
    assert!(fetchable > 0 && locked > 0, "locked {locked}, fetchable {fetchable}");
}
