//! Export and import of one instance, through the statements both stores share
//! (`provider::sql`); this file gives the SQLite spelling and the transactions.

use super::*;

/// The SQLite spelling of the statements export and import share.
pub(super) static DIALECT: Dialect = Dialect {
    numbered: false,
    insert_ignore: "INSERT OR IGNORE INTO",
    ignore_suffix: "",
    not_cancelled: "cancel_requested = 0",
    attempt: |a| Value::Int(Some(i64::from(a))),
    bytewise: "",
    for_update: "",
};

/// An export's reads inside one read transaction.
pub(super) struct Tx<'a, 'c>(pub(super) &'a mut sqlx::Transaction<'c, Sqlite>);

impl SqlTx for Tx<'_, '_> {
    type Row = SqliteRow;

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    async fn query(&mut self, statement: Statement) -> Result<Vec<SqliteRow>, ProviderError> {
        let query = sql::bind_values!(sqlx::query(sqlx::AssertSqlSafe(statement.sql)), statement.values);
        query.fetch_all(&mut **self.0).await.map_err(storage)
    }

    async fn rows(&mut self, sql: String, instance: &str) -> Result<Vec<SqliteRow>, ProviderError> {
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(instance).fetch_all(&mut **self.0).await.map_err(storage)
    }

    async fn record(&mut self, instance: &str) -> Result<Option<InstanceRecord>, ProviderError> {
        SqliteProvider::instance_row(self.0, instance).await
    }

    async fn history(
        &mut self,
        instance: &str,
        execution_id: u64,
    ) -> Result<(Vec<Event>, Option<String>, u64), ProviderError> {
        SqliteProvider::load_history(self.0, instance, execution_id).await
    }

    async fn execute(&mut self, statement: Statement) -> Result<u64, ProviderError> {
        let query = sql::bind_values!(sqlx::query(sqlx::AssertSqlSafe(statement.sql)), statement.values);
        Ok(query.execute(&mut **self.0).await.map_err(storage)?.rows_affected())
    }

    fn attempt(row: &SqliteRow) -> Result<u32, ProviderError> {
        Ok(row.try_get::<i64, _>("attempt_count").map_err(storage)? as u32)
    }
}

impl SqliteProvider {
    pub(super) async fn export(&self, instance: &str) -> Result<InstanceSnapshot, ProviderError> {
        // One read transaction, so the snapshot is consistent.
        let mut conn = self.conns.reader().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(storage)?;
        let snapshot = sql::export(&mut Tx(&mut tx), instance).await?;
        tx.rollback().await.map_err(storage)?;
        drop(conn);
        self.conns.settle().await?;
        Ok(snapshot)
    }

    pub(super) async fn import(&self, snapshot: InstanceSnapshot) -> Result<(), ProviderError> {
        write_tx!(self.conns, _w, tx, self.conns.begin_durable);
        sql::import(&mut Tx(&mut tx), &snapshot, crate::now_ms()).await?;
        tx.commit().await.map_err(storage)?;
        self.notifiers.wake_orchestrator_at(None);
        self.notifiers.worker.notify_waiters();
        Ok(())
    }
}
