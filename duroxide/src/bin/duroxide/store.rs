//! Store URLs and opening stores. Commands open the store "existing only" (no file or
//! schema created, no migration applied, so nothing is written by opening); only the
//! targets of `import` and `copy` may be created and migrated.

use crate::error::{CliError, store_error};
use duroxide::{PostgresOptions, PostgresProvider, Provider, SqliteOptions, SqliteProvider};
use std::sync::Arc;

/// Whether opening may create and migrate the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The store must exist at this version's schema; opening writes nothing.
    Existing,
    /// Create the file or schema if missing and apply migrations (import and copy targets).
    CreateOrMigrate,
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite:<path>` (a plain path is taken as one).
    Sqlite(String),
    /// `postgres://...` without the `schema` parameter, and the schema.
    Postgres { url: String, schema: Option<String> },
}

impl StoreUrl {
    /// Parses `text`; `schema` (from --schema) overrides a `?schema=` parameter.
    pub fn parse(text: &str, schema: Option<&str>) -> Result<Self, CliError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(no_store());
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            let (url, from_url) = take_schema_param(text);
            return Ok(StoreUrl::Postgres { url, schema: schema.map(str::to_string).or(from_url) });
        }
        if schema.is_some() {
            return Err(CliError::usage(
                "--schema applies to PostgreSQL stores only",
                "drop --schema (or DUROXIDE_SCHEMA) for a SQLite store",
            ));
        }
        if text.starts_with("sqlite:") {
            if text.contains(":memory:") || text.contains("mode=memory") {
                return Err(CliError::usage(
                    format!("'{text}' is an in-memory store, which is empty in every new process"),
                    "name the database file the runtimes use, e.g. sqlite:./app.db",
                ));
            }
            return Ok(StoreUrl::Sqlite(text.to_string()));
        }
        if text.contains("://") {
            return Err(CliError::usage(
                format!("unsupported store URL '{}'", redact(text)),
                "use sqlite:./app.db or postgres://user@host/database",
            ));
        }
        Ok(StoreUrl::Sqlite(format!("sqlite:{text}")))
    }

    /// The URL for messages (password hidden).
    pub fn display(&self) -> String {
        match self {
            StoreUrl::Sqlite(u) => u.clone(),
            StoreUrl::Postgres { url, schema: Some(s) } => format!("{} (schema {s})", redact(url)),
            StoreUrl::Postgres { url, schema: None } => redact(url),
        }
    }

    /// Opens the store.
    pub async fn open(&self, access: Access) -> Result<Arc<dyn Provider>, CliError> {
        let existing_only = access == Access::Existing;
        let opened: Result<Arc<dyn Provider>, _> = match self {
            StoreUrl::Sqlite(url) => {
                let options = SqliteOptions { existing_only, max_connections: 2, ..Default::default() };
                SqliteProvider::new(url, Some(options)).await.map(|s| Arc::new(s) as Arc<dyn Provider>)
            }
            StoreUrl::Postgres { url, schema } => {
                let options = PostgresOptions {
                    schema: schema.clone(),
                    max_connections: 2,
                    listen: false,
                    application_name: "duroxide-cli".to_string(),
                    existing_only,
                    ..Default::default()
                };
                PostgresProvider::new(url, Some(options)).await.map(|s| Arc::new(s) as Arc<dyn Provider>)
            }
        };
        opened.map_err(|e| {
            let mut err = store_error(e);
            // Store messages quote the URL as given; never print a password.
            if let StoreUrl::Postgres { url, .. } = self {
                err.message = err.message.replace(url.as_str(), &redact(url));
            }
            err
        })
    }
}

/// The error for a command run without a store.
pub fn no_store() -> CliError {
    CliError::usage(
        "no store given",
        "pass --store sqlite:./app.db (or postgres://user@host/db), or set DUROXIDE_STORE",
    )
}

/// Removes a `schema=NAME` query parameter from a PostgreSQL URL (the driver does not
/// know it), returning the URL without it and the schema.
fn take_schema_param(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_string(), None) };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| match p.strip_prefix("schema=") {
            Some(s) => {
                schema = Some(s.to_string());
                false
            }
            None => !p.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    (url, schema)
}

/// `url` with the password of `user:password@` replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_string() };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(StoreUrl::parse("sqlite:./a.db", None).unwrap(), StoreUrl::Sqlite("sqlite:./a.db".into()));
        assert_eq!(StoreUrl::parse("./a.db", None).unwrap(), StoreUrl::Sqlite("sqlite:./a.db".into()));
        assert_eq!(
            StoreUrl::parse("postgres://u@h/db?schema=orders&sslmode=disable", None).unwrap(),
            StoreUrl::Postgres {
                url: "postgres://u@h/db?sslmode=disable".into(),
                schema: Some("orders".into())
            }
        );
        assert_eq!(
            StoreUrl::parse("postgres://u@h/db?schema=orders", Some("other")).unwrap(),
            StoreUrl::Postgres { url: "postgres://u@h/db".into(), schema: Some("other".into()) }
        );
        assert_eq!(StoreUrl::parse("mysql://h/db", None).unwrap_err().exit, 2);
        assert_eq!(StoreUrl::parse("sqlite:a.db", Some("s")).unwrap_err().exit, 2);
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite:./a.db"), "sqlite:./a.db");
    }
}
