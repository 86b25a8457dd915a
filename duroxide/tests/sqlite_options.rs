//! `SqliteOptions`: the page size new files are created with, and bad values.
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
