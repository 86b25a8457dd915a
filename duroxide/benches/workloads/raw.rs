//! The raw commit ceiling of a store: minimal one-row insert+delete transactions through
//! sqlx with the store's own settings, the most a store could commit if duroxide cost
//! nothing. `overhead` divides its activities per second by it.

use std::time::{Duration, Instant};

/// SQLite with the store's settings (WAL, FULL, its page size) on one dedicated connection
/// (no pool checkout per transaction): the best sqlx does, and what the store's single
/// writer connection does too.
pub async fn sqlite_commits_per_s(url: &str, seconds: u64) -> f64 {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use std::str::FromStr;
    let mut opts = SqliteConnectOptions::from_str(url).expect("a SQLite URL").create_if_missing(true);
    if !url.contains(":memory:") {
        let page_size = duroxide::SqliteOptions::default().page_size;
        opts = opts
            .page_size(page_size)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
    }
    let mut conn = sqlx::ConnectOptions::connect(&opts).await.expect("connect for the raw ceiling");
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw (id INTEGER PRIMARY KEY, v TEXT)")
        .execute(&mut conn)
        .await
        .expect("create the raw table");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline {
        let mut tx = sqlx::Connection::begin_with(&mut conn, "BEGIN IMMEDIATE").await.expect("begin");
        sqlx::query("INSERT INTO bench_raw (v) VALUES ('x')").execute(&mut *tx).await.expect("insert");
        sqlx::query("DELETE FROM bench_raw WHERE id = (SELECT MIN(id) FROM bench_raw)")
            .execute(&mut *tx)
            .await
            .expect("delete");
        tx.commit().await.expect("commit");
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// PostgreSQL on the store's server, in the run's schema, from `connections` connections
/// at once (each its own session, as the store's pool holds them), server defaults
/// (`synchronous_commit` on, as the store uses). Each connection inserts a row and deletes
/// it again, so connections never wait on each other's rows: what is shared is the
/// server's WAL flush, as for the store.
#[cfg(feature = "postgres")]
pub async fn postgres_commits_per_s(url: &str, schema: &str, connections: usize, seconds: u64) -> f64 {
    use sqlx::Connection;
    let table = format!("\"{schema}\".bench_raw");
    let mut setup = sqlx::PgConnection::connect(url).await.expect("connect for the raw ceiling");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {table} (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v TEXT)"
    )))
    .execute(&mut setup)
    .await
    .expect("create the raw table");
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(sqlx::PgConnection::connect(url).await.expect("connect for the raw ceiling"));
    }
    let insert = format!("INSERT INTO {table} (v) VALUES ('x') RETURNING id");
    let delete = format!("DELETE FROM {table} WHERE id = $1");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for mut conn in conns {
        let (insert, delete) = (insert.clone(), delete.clone());
        tasks.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let mut tx = conn.begin().await.expect("begin");
                let id: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(insert.as_str()))
                    .fetch_one(&mut *tx)
                    .await
                    .expect("insert");
                sqlx::query(sqlx::AssertSqlSafe(delete.as_str()))
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .expect("delete");
                tx.commit().await.expect("commit");
                n += 1;
            }
            let _ = conn.close().await;
            n
        });
    }
    let mut total = 0u64;
    while let Some(n) = tasks.join_next().await {
        total += n.expect("a raw commit task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}
