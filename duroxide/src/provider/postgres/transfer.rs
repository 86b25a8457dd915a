//! Export and import of one instance, through the statements both stores share
//! (`provider::sql`); this file gives the PostgreSQL spelling and the transactions.

use super::*;

/// The PostgreSQL spelling of the statements export and import share.
pub(super) static DIALECT: Dialect = Dialect {
    numbered: true,
    insert_ignore: "INSERT INTO",
    ignore_suffix: " ON CONFLICT (instance_id) DO NOTHING",
    not_cancelled: "NOT cancel_requested",
    attempt: |a| Value::Int32(i32::try_from(a).unwrap_or(i32::MAX)),
    bytewise: " COLLATE \"C\"",
    for_update: " FOR UPDATE",
};

/// An export's reads inside one repeatable-read transaction.
pub(super) struct Tx<'a>(pub(super) &'a mut PgConnection);

impl SqlTx for Tx<'_> {
    type Row = PgRow;

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    async fn query(&mut self, statement: Statement) -> Result<Vec<PgRow>, ProviderError> {
        let query = sql::bind_values!(sqlx::query(sqlx::AssertSqlSafe(statement.sql)), statement.values);
        query.fetch_all(&mut *self.0).await.map_err(storage)
    }

    async fn rows(&mut self, sql: String, instance: &str) -> Result<Vec<PgRow>, ProviderError> {
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(instance).fetch_all(&mut *self.0).await.map_err(storage)
    }

    async fn record(&mut self, instance: &str) -> Result<Option<InstanceRecord>, ProviderError> {
        PostgresProvider::instance_row(self.0, instance).await
    }

    async fn history(
        &mut self,
        instance: &str,
        execution_id: u64,
    ) -> Result<(Vec<Event>, Option<String>, u64), ProviderError> {
        PostgresProvider::load_history(self.0, instance, execution_id).await
    }

    async fn execute(&mut self, statement: Statement) -> Result<u64, ProviderError> {
        let query = sql::bind_values!(sqlx::query(sqlx::AssertSqlSafe(statement.sql)), statement.values);
        Ok(query.execute(&mut *self.0).await.map_err(storage)?.rows_affected())
    }

    fn attempt(row: &PgRow) -> Result<u32, ProviderError> {
        attempt_of(row)
    }
}

impl PostgresProvider {
    pub(super) async fn export(&self, instance: &str) -> Result<InstanceSnapshot, ProviderError> {
        // One repeatable-read transaction, so the snapshot is consistent.
        let mut tx = self.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        let snapshot = sql::export(&mut Tx(&mut tx), instance).await?;
        tx.rollback().await.map_err(storage)?;
        Ok(snapshot)
    }

    pub(super) async fn import(&self, snapshot: InstanceSnapshot) -> Result<(), ProviderError> {
        let mut tx = self.begin().await?;
        sql::import(&mut Tx(&mut tx), &snapshot, crate::now_ms()).await?;
        tx.commit().await.map_err(storage)?;
        self.notifiers.wake_orchestrator_at(None);
        self.notifiers.worker.notify_waiters();
        self.send_wakeups([orchestrator_wake(&self.origin, None), "w".to_string()]).await;
        Ok(())
    }
}
