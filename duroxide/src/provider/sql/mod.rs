//! What the SQLite and PostgreSQL stores share: value conversions and error
//! classification (here), row decoding (`rows`), history decoding (`history`),
//! instance export and import (`transfer`), and the `Provider` impl that forwards to each
//! store's methods (`provider_impl`). SQL text that really differs between the two
//! databases stays in each store; where only placeholders or a conflict clause differ,
//! a [`Dialect`] spells them.
#![cfg(any(feature = "sqlite", feature = "postgres"))]

mod history;
pub(crate) mod management;
mod provider_impl;
mod rows;
mod transfer;
mod tx;

pub(crate) use history::parse_history;
pub(crate) use provider_impl::provider_impl;
pub(crate) use rows::{
    activity_from_row, blocked_instance, current_execution, events_or_corrupt, execution_from_row,
    locked_record_from_row, record_from_row, version_count_from_row,
};
pub(crate) use transfer::{export, import};
pub(crate) use tx::{Dialect, SqlTx, Statement, Value, bind_values};

use super::ProviderError;
use crate::history::ErrorDetails;
use serde::Serialize;

/// A store's time or counter as the signed 64-bit integer both databases keep; values past
/// `i64::MAX` (never written by the runtime) saturate instead of wrapping negative.
pub(crate) fn ms(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// A fresh lock token.
pub(crate) fn token() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Error details as stored: JSON, or (written by older versions or by hand) plain text,
/// which is kept as an infrastructure error instead of being lost.
pub(crate) fn parse_details(s: Option<String>) -> Option<ErrorDetails> {
    s.map(|s| serde_json::from_str(&s).unwrap_or_else(|_| ErrorDetails::infrastructure(s)))
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<String, ProviderError> {
    serde_json::to_string(v).map_err(|e| ProviderError::Corrupt(format!("cannot serialize: {e}")))
}

/// Classifies a database failure: one whose SQLSTATE or result code `refused` says the
/// data itself is at fault, or a value that cannot be encoded, is
/// [`ProviderError::InvalidInput`] (permanent); anything else is [`ProviderError::Storage`],
/// which retrying may fix.
pub(crate) fn classify(e: sqlx::Error, refused: impl FnOnce(&str) -> bool) -> ProviderError {
    let invalid = match &e {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| refused(&c)),
        sqlx::Error::Encode(_) => true,
        _ => false,
    };
    if invalid { ProviderError::InvalidInput(e.to_string()) } else { ProviderError::Storage(e.to_string()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_saturate_instead_of_wrapping() {
        assert_eq!(ms(5), 5);
        assert_eq!(ms(u64::MAX), i64::MAX);
    }

    #[test]
    fn plain_text_details_are_kept() {
        assert!(parse_details(None).is_none());
        let kept = parse_details(Some("disk on fire".into())).unwrap();
        assert_eq!(kept, ErrorDetails::infrastructure("disk on fire".to_string()));
    }
}
