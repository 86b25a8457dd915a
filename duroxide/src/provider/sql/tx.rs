//! The one abstraction both stores' shared SQL runs through: a [`Dialect`] that spells
//! what differs (placeholders, "insert unless present", booleans, collation), statements
//! with their [`Value`]s, and [`SqlTx`], a transaction a store opened, which runs them.
//! Export and import (`transfer`) and the management calls (`management`) are written
//! once against it.

use super::rows::Columns;
use crate::history::Event;
use crate::provider::{InstanceRecord, ProviderError};

/// How one database spells what the shared statements need.
pub(crate) struct Dialect {
    /// `$1, $2, …` parameters (PostgreSQL) rather than `?1, ?2, …` (SQLite). Both are
    /// numbered, so a statement may use one parameter twice.
    pub numbered: bool,
    /// Starts an insert that skips a row whose key exists (`INSERT OR IGNORE INTO`).
    pub insert_ignore: &'static str,
    /// Ends that insert (`ON CONFLICT … DO NOTHING`), empty where the start said it all.
    pub ignore_suffix: &'static str,
    /// The condition on `worker_queue` for an activity nobody cancelled.
    pub not_cancelled: &'static str,
    /// The attempt counter as the `attempt_count` column stores it.
    pub attempt: fn(u32) -> Value,
    /// Appended to an instance id in a comparison, so that ids compare byte by byte (in
    /// code point order) whatever the database's collation: id-prefix ranges rely on it.
    pub bytewise: &'static str,
    /// Appended to a select that must lock the rows it reads until the transaction ends
    /// (empty where the write transaction locks everything already).
    pub for_update: &'static str,
}

impl Dialect {
    pub(crate) fn param(&self, n: usize) -> String {
        if self.numbered { format!("${n}") } else { format!("?{n}") }
    }

    pub(crate) fn params(&self, count: usize) -> String {
        (1..=count).map(|n| self.param(n)).collect::<Vec<_>>().join(", ")
    }
}

/// A parameter of a shared statement.
pub(crate) enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    /// PostgreSQL's `INTEGER` columns; SQLite has none narrower than 64 bits.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Int32(i32),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_string()))
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(Some(v.clone()))
    }
}

impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Self {
        Value::Text(v.clone())
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}

/// One statement with its parameters, in order.
pub(crate) struct Statement {
    pub sql: String,
    pub values: Vec<Value>,
}

/// What export and import do inside a transaction the store opened (for an export, one
/// consistent snapshot).
pub(crate) trait SqlTx {
    type Row: Columns;
    fn dialect(&self) -> &'static Dialect;
    /// The rows `statement` selects.
    async fn query(&mut self, statement: Statement) -> Result<Vec<Self::Row>, ProviderError>;
    /// The rows `sql` selects with `instance` as its only parameter.
    async fn rows(&mut self, sql: String, instance: &str) -> Result<Vec<Self::Row>, ProviderError>;
    async fn record(&mut self, instance: &str) -> Result<Option<InstanceRecord>, ProviderError>;
    /// One execution's events, why they are unreadable, and the last event id.
    async fn history(
        &mut self,
        instance: &str,
        execution_id: u64,
    ) -> Result<(Vec<Event>, Option<String>, u64), ProviderError>;
    /// The stored attempt counter of a `worker_queue` row.
    fn attempt(row: &Self::Row) -> Result<u32, ProviderError>;
    /// Runs `statement`; the number of rows it affected.
    async fn execute(&mut self, statement: Statement) -> Result<u64, ProviderError>;
}

/// Binds a statement's [`Value`]s, in order, to a `sqlx` query of either store.
macro_rules! bind_values {
    ($query:expr, $values:expr) => {{
        let mut q = $query;
        for v in $values {
            q = match v {
                $crate::provider::sql::Value::Text(t) => q.bind(t),
                $crate::provider::sql::Value::Int(n) => q.bind(n),
                $crate::provider::sql::Value::Int32(n) => q.bind(n),
            };
        }
        q
    }};
}
pub(crate) use bind_values;
