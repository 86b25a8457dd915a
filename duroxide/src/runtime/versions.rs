//! Versions this node cannot run: the warning at start-up and the periodic scan that notes
//! on blocked instances why they wait.
//!
//! Which version an instance runs is decided by the registry and the turn, not here.

use super::Inner;
use super::options::RuntimeOptions;
use super::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;

/// Logs a warning for each (name, version) with running or pending instances that this node
/// cannot run, so operators see a half-finished rollout or a version removed too early.
pub(super) async fn warn_about_missing_versions(inner: &Inner) {
    let counts = match inner.store.count_live_instances_by_version().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "could not list running versions");
            return;
        }
    };
    for c in counts.into_iter().filter(|c| !c.state.is_terminal()) {
        let missing = match &c.version {
            Some(v) => !inner.orchestrations.has(&c.name, v),
            None => inner.orchestrations.resolve(&c.name, None).is_err(),
        };
        if missing {
            tracing::warn!(
                orchestration = %c.name,
                version = c.version.as_deref().unwrap_or("(not pinned)"),
                instances = c.count,
                state = c.state.as_str(),
                "instances exist that this node cannot run; another node must have this version registered"
            );
        }
    }
}

/// Every few poll intervals, notes on instances this node cannot run why they wait, so a
/// status query shows it (e.g. an orchestration or version no node has registered).
pub(super) async fn blocked_scan_loop(inner: Arc<Inner>, mut shutdown: Shutdown) {
    let every = (inner.options.dispatcher_poll_interval * 5).max(Duration::from_millis(100));
    loop {
        if !shutdown.sleep(every).await {
            return;
        }
        let blocked = match inner.store.list_blocked_instances(&inner.filter, 100).await {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(error = %e, "listing blocked instances failed");
                continue;
            }
        };
        for b in blocked {
            let why = match (&b.version, &b.duroxide_version) {
                (_, Some(dv)) if !duroxide_version_supported(&inner.options, dv) => format!(
                    "its history was written by duroxide {dv}, outside this node's supported_replay_versions"
                ),
                (Some(v), _) if inner.orchestrations.resolve(&b.name, Some(v)).is_err() => {
                    format!("orchestration '{}' version {v} is not registered on this node", b.name)
                }
                _ => match inner.orchestrations.resolve(&b.name, None) {
                    Err(e) => e.to_string(),
                    Ok(_) => continue,
                },
            };
            let note = format!("waiting for a node that can run it: {why}");
            if let Err(e) = inner.store.set_status_note(&b.instance, &note).await {
                tracing::debug!(error = %e, "recording a status note failed");
            }
        }
    }
}

fn duroxide_version_supported(opts: &RuntimeOptions, dv: &str) -> bool {
    match (&opts.supported_replay_versions, semver::Version::parse(dv)) {
        (None, _) => true,
        (Some(range), Ok(v)) => range.contains(&v),
        (Some(_), Err(_)) => false,
    }
}
