//! Moving instances between stores (for example from SQLite to PostgreSQL, or from an
//! in-memory store to a file), with every execution's history, status, pinned versions,
//! pending messages, timers and activity work. Instances that were running continue on the
//! new store.
//!
//! Stop the runtimes on the old store first, copy, then start runtimes on the new store.
//! The same operations are commands of the `duroxide` tool (feature `cli`):
//! `duroxide --store <from-url> copy --to <to-url>`, `duroxide export`, `duroxide import`
//! (see `docs/operations.md`).

use crate::provider::{InstanceSnapshot, Provider, ProviderError};

/// What [`copy_instances`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferReport {
    /// Instances copied.
    pub copied: Vec<String>,
    /// Instances skipped because the target already has the id.
    pub skipped_existing: Vec<String>,
}

/// A failed transfer, naming the instance it stopped at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transfer of instance '{instance}' failed: {source}")]
pub struct TransferError {
    /// The instance being copied.
    pub instance: String,
    /// The store error.
    #[source]
    pub source: ProviderError,
}

/// Copies every instance of `from` into `to`. Instances already in `to` are skipped (so a
/// transfer that stopped half-way can be run again).
pub async fn copy_instances(from: &dyn Provider, to: &dyn Provider) -> Result<TransferReport, TransferError> {
    let mut report = TransferReport::default();
    let ids = from.list_instances().await.map_err(|source| TransferError { instance: "*".into(), source })?;
    for id in ids {
        let snapshot = from
            .export_instance(&id)
            .await
            .map_err(|source| TransferError { instance: id.clone(), source })?;
        match to.import_instance(snapshot).await {
            Ok(()) => report.copied.push(id),
            Err(ProviderError::InstanceExists(_)) => report.skipped_existing.push(id),
            Err(source) => return Err(TransferError { instance: id, source }),
        }
    }
    Ok(report)
}

/// Exports every instance of `store` as JSON lines (one [`InstanceSnapshot`] per line).
pub async fn export_json_lines(store: &dyn Provider) -> Result<String, TransferError> {
    let mut out = String::new();
    for id in store.list_instances().await.map_err(|source| TransferError { instance: "*".into(), source })? {
        let snapshot = store
            .export_instance(&id)
            .await
            .map_err(|source| TransferError { instance: id.clone(), source })?;
        let line = serde_json::to_string(&snapshot).map_err(|e| TransferError {
            instance: id.clone(),
            source: ProviderError::Corrupt(e.to_string()),
        })?;
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// Imports instances written by [`export_json_lines`]; existing ids are skipped.
pub async fn import_json_lines(
    store: &dyn Provider,
    json_lines: &str,
) -> Result<TransferReport, TransferError> {
    let mut report = TransferReport::default();
    for (n, line) in json_lines.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let snapshot: InstanceSnapshot = serde_json::from_str(line).map_err(|e| TransferError {
            instance: format!("line {}", n + 1),
            source: ProviderError::Corrupt(format!("malformed instance snapshot: {e}")),
        })?;
        let id = snapshot.record.instance.clone();
        match store.import_instance(snapshot).await {
            Ok(()) => report.copied.push(id),
            Err(ProviderError::InstanceExists(_)) => report.skipped_existing.push(id),
            Err(source) => return Err(TransferError { instance: id, source }),
        }
    }
    Ok(report)
}
