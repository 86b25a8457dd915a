//! Cross-process wake-ups: the `pg_notify` payloads writes send once they committed (see
//! `wakeups`), and the listener task that turns them into this process's notifiers.

use super::*;

/// The notification for orchestrator messages visible at `visible_at_ms`, sent by the store
/// named `origin`: `o:<time>` for a future time, so dispatchers sleep until then, and
/// `o::<origin>` for now. The sending store has already woken its own process, so its
/// listener skips an `o::` notice of its own origin (it would send one more dispatcher to
/// the store for work another has taken). Versions before the origin was added send `o`
/// and read `o::<origin>` as "now" too.
pub(super) fn orchestrator_wake(origin: &str, visible_at_ms: Option<u64>) -> String {
    match visible_at_ms {
        Some(t) if t > crate::now_ms() => format!("o:{t}"),
        _ => format!("o::{origin}"),
    }
}

/// The notification that `instance` finished: `f:<instance>` when the id is within
/// [`MAX_INSTANCE_ID_BYTES`], else `f` (some instance finished). PostgreSQL refuses payloads
/// of 8,000 bytes or more and the refusal would fail the whole commit, so the payload never
/// carries an unbounded id (ids that bypassed the client's check stay committable).
pub(super) fn finished_wake(instance: &str) -> String {
    if instance.len() <= MAX_INSTANCE_ID_BYTES { format!("f:{instance}") } else { "f".to_string() }
}

/// The notification that `instance`'s custom status changed, sent by the store named
/// `origin`: `s:<origin>:<instance>`, or `s:<origin>` (some instance's status changed) for
/// ids over [`MAX_INSTANCE_ID_BYTES`], as for [`finished_wake`]. The sending store has
/// already told its own process, so its listener skips notices of its own origin.
pub(super) fn status_wake(origin: &str, instance: &str) -> String {
    if instance.len() <= MAX_INSTANCE_ID_BYTES {
        format!("s:{origin}:{instance}")
    } else {
        format!("s:{origin}")
    }
}

/// What a notification asks this process to do.
pub(super) fn handle_notification(notifiers: &Arc<Notifiers>, payload: &str, own_origin: &str) {
    match payload.split_once(':') {
        Some(("o", at)) => match at.strip_prefix(':') {
            Some(origin) if origin == own_origin => {}
            Some(_) => notifiers.wake_orchestrator_at(None),
            None => notifiers.wake_orchestrator_at(at.parse().ok()),
        },
        Some(("f", instance)) => {
            let _ = notifiers.finished.send(Finished::id_only(instance));
        }
        Some(("s", from)) => {
            let (origin, instance) = from.split_once(':').unwrap_or((from, ""));
            if origin != own_origin {
                let _ = notifiers.status_changed.send(instance.to_string());
            }
        }
        _ if payload == "f" => {
            let _ = notifiers.finished.send(Finished::unknown());
        }
        _ if payload == "w" => notifiers.worker.notify_waiters(),
        _ => notifiers.wake_orchestrator_at(None),
    }
}

pub(super) async fn listen_loop(pool: PgPool, channel: String, notifiers: Arc<Notifiers>, origin: String) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "postgres listener cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(&channel).await {
            tracing::warn!(error = %e, "postgres LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => handle_notification(&notifiers, n.payload(), &origin),
                Ok(None) => {
                    // Connection lost (sqlx reconnects): notifications may have been missed,
                    // so everyone reads the store once.
                    notifiers.notices_missed();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "postgres listener failed; reconnecting");
                    notifiers.notices_missed();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}

impl PostgresProvider {
    /// Queues wake-ups for other processes, sent after this point (see `wakeups`); for the
    /// runtime's own writes, which do not wait for them.
    pub(super) fn post_wakeups(&self, payloads: impl IntoIterator<Item = String>) {
        self.wakeups.post(payloads);
    }

    /// Sends wake-ups for other processes and waits until they went out (see `wakeups`);
    /// for client calls, whose process may end right after.
    pub(super) async fn send_wakeups(&self, payloads: impl IntoIterator<Item = String>) {
        self.wakeups.sent_through(self.wakeups.post(payloads)).await;
    }
}
