//! What a caller can tune when opening a PostgreSQL store (schema, pool size, lock
//! timeouts, whether it may create and migrate the schema), and the check a schema name must pass. Applying them lives in `connection`.

use super::*;

/// Options for [`PostgresProvider::new`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Schema holding all tables (created if missing). `None`: `public`. Lowercase ASCII
    /// letters, digits and `_`, starting with a letter or `_`, at most 48 characters.
    pub schema: Option<String>,
    /// Connections in the pool (one more is used by the notification listener).
    pub max_connections: u32,
    /// How long to wait for a connection before failing with [`ProviderError::Storage`].
    pub acquire_timeout: Duration,
    /// Listen for notifications from other processes (LISTEN/NOTIFY). Default true.
    pub listen: bool,
    /// `application_name` of the connections, shown in `pg_stat_activity`. Default
    /// `duroxide`.
    pub application_name: String,
    /// Open only a schema that already exists at this duroxide's version: never create the
    /// schema, never apply migrations. A missing schema, one without duroxide's tables, or
    /// one whose migrations are older or newer than this version fails with
    /// [`ProviderError::Configuration`] saying so. For tools that must not write where
    /// they only read (the `duroxide` CLI opens stores this way). Default `false`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), duroxide::ProviderError> {
    /// use duroxide::{PostgresOptions, PostgresProvider};
    /// let options = PostgresOptions { existing_only: true, listen: false, ..Default::default() };
    /// let store = PostgresProvider::new("postgres://postgres@127.0.0.1:5432/app", Some(options)).await?;
    /// # Ok(()) }
    /// ```
    pub existing_only: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            schema: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            listen: true,
            application_name: "duroxide".to_string(),
            existing_only: false,
        }
    }
}

/// Checks a schema name: it is spliced into DDL and a channel name, so only a safe subset
/// of identifiers is accepted.
pub fn validate_schema_name(schema: &str) -> Result<(), ProviderError> {
    let mut chars = schema.chars();
    let first_ok = matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !first_ok || !rest_ok || schema.len() > 48 || schema.starts_with("pg_") {
        return Err(ProviderError::Configuration(format!(
            "invalid schema name '{schema}': use 1-48 lowercase ASCII letters, digits or '_', \
             starting with a letter or '_' (and not 'pg_')"
        )));
    }
    Ok(())
}
