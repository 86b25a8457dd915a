//! Sessions this worker holds: the in-memory state handed to their activities and the
//! heartbeat that keeps their leases and releases idle ones.
//!
//! Which worker a session's activities go to is decided by the store's fetch, not here.

use super::Inner;
use super::shutdown::Shutdown;
use crate::context::SessionState;
use crate::provider::ActivityWorkItem;
use std::sync::Arc;
use std::time::Duration;

/// The state of the item's session on this worker (`None` for an activity without one),
/// and whether it is new here: claimed by this fetch, or held by this node's id but
/// without state in this process (the node restarted with the same `worker_node_id` and
/// took its sessions back at once).
pub(super) fn session_state_for(inner: &Inner, item: &ActivityWorkItem) -> (Option<Arc<SessionState>>, bool) {
    let Some(sid) = item.session_id.as_ref() else { return (None, false) };
    let mut sessions = inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
    if item.session_claimed {
        // New on this worker (first use, or taken over): state from an earlier tenure
        // may be stale, since another worker may have run the session meanwhile.
        sessions.remove(sid);
    }
    let new = !sessions.contains_key(sid);
    (Some(sessions.entry(sid.clone()).or_default().clone()), new)
}

/// Renews this worker's session leases and releases idle sessions (and their state).
pub(super) async fn session_heartbeat_loop(inner: Arc<Inner>, mut shutdown: Shutdown) {
    let every = (inner.options.session_lock_timeout / 3).max(Duration::from_millis(20));
    loop {
        if !shutdown.sleep(every).await {
            return;
        }
        match inner.store.renew_sessions(&inner.worker, inner.options.session_idle_timeout).await {
            Ok(released) if !released.is_empty() => {
                let mut sessions = inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
                for sid in released {
                    tracing::debug!(session = %sid, "session released after being idle");
                    sessions.remove(&sid);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "renewing sessions failed; retrying"),
        }
    }
}
