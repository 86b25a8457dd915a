//! Conformance tests for activity sessions: claiming, affinity to one worker, limits, leases
//! and idle release. Not here: plain activity work (`activities`).

use super::support::*;
use super::*;

// Sessions

async fn fetch_as(p: &Arc<dyn Provider>, w: &WorkerIdentity) -> Option<ActivityWorkItem> {
    p.fetch_work_item(LOCK, w).await.expect("fetch_work_item")
}

/// The first activity of a free session claims it; later ones do not claim again.
pub async fn session_work_claims_the_session(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("s1")), (3, Some("s1"))]).await;
    let w1 = worker("w1");
    let first = fetch_as(&p, &w1).await.expect("session work");
    assert_eq!(first.session_id.as_deref(), Some("s1"));
    assert!(first.session_claimed, "the first fetch claims the session");
    let second = fetch_as(&p, &w1).await.expect("more session work");
    assert!(!second.session_claimed, "the holder does not claim again");
}

/// Another worker does not get a held session's work; work without a session goes anywhere.
pub async fn session_work_stays_with_its_worker(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("s1")), (3, Some("s1")), (4, None)]).await;
    let (w1, w2) = (worker("w1"), worker("w2"));
    assert_eq!(fetch_as(&p, &w1).await.unwrap().event_id, 2);
    let other = fetch_as(&p, &w2).await.expect("sessionless work is free for all");
    assert_eq!(other.event_id, 4);
    assert!(fetch_as(&p, &w2).await.is_none(), "s1 is held by w1");
    assert_eq!(fetch_as(&p, &w1).await.expect("the holder gets it").event_id, 3);
}

/// Once the holder's lease expires, another worker takes the session over.
pub async fn session_taken_over_after_lease_expiry(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("s1")), (3, Some("s1"))]).await;
    let w1 = WorkerIdentity { session_lease: SHORT, ..worker("w1") };
    let w2 = worker("w2");
    let _ = fetch_as(&p, &w1).await.unwrap();
    assert!(fetch_as(&p, &w2).await.is_none());
    sleep_ms(450).await;
    let taken = fetch_as(&p, &w2).await.expect("taken over after the lease expired");
    assert_eq!(taken.event_id, 3);
    assert!(taken.session_claimed);
}

/// A worker at its session cap leaves further sessions to others.
pub async fn max_sessions_caps_claims(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("a")), (3, Some("b"))]).await;
    let w1 = WorkerIdentity { max_sessions: 1, ..worker("w1") };
    assert_eq!(fetch_as(&p, &w1).await.unwrap().session_id.as_deref(), Some("a"));
    assert!(fetch_as(&p, &w1).await.is_none(), "w1 may hold one session only");
    let b = fetch_as(&p, &worker("w2")).await.expect("w2 claims b");
    assert_eq!(b.session_id.as_deref(), Some("b"));
}

/// A session a worker still holds but has no work for does not count against its cap: a
/// worker with a cap of 1 whose session went idle claims the next session at once instead
/// of waiting for the idle timeout, and keeps the idle one (its next work comes back to it).
pub async fn idle_sessions_do_not_count_against_the_cap(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("a"))]).await;
    with_session_activities(&p, "t", &[(2, Some("b"))]).await;
    with_session_activities(&p, "u", &[(2, Some("c"))]).await;
    let w1 = WorkerIdentity { max_sessions: 1, ..worker("w1") };
    let a = fetch_as(&p, &w1).await.expect("w1 claims a");
    assert_eq!(a.session_id.as_deref(), Some("a"));
    p.complete_work_item(&a.lock_token, completion("s", 2, "done")).await.unwrap();
    let b = fetch_as(&p, &w1).await.expect("an idle session does not block a new claim");
    assert_eq!(b.session_id.as_deref(), Some("b"));
    assert!(b.session_claimed);
    // Busy with b, w1 is at its cap: the third session is left to others.
    assert!(fetch_as(&p, &w1).await.is_none(), "w1 is at its cap while b runs");
    let c = fetch_as(&p, &worker("w2")).await.expect("w2 claims c");
    assert_eq!(c.session_id.as_deref(), Some("c"));
}

/// `renew_sessions` keeps a worker's sessions past their original lease.
pub async fn renew_sessions_extends_leases(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("s1")), (3, Some("s1"))]).await;
    let w1 = WorkerIdentity { session_lease: SHORT, ..worker("w1") };
    let _ = fetch_as(&p, &w1).await.unwrap();
    sleep_ms(150).await;
    let extended = WorkerIdentity { session_lease: LOCK, ..w1.clone() };
    let released = p.renew_sessions(&extended, Duration::from_secs(3600)).await.unwrap();
    assert!(released.is_empty(), "{released:?}");
    sleep_ms(300).await;
    assert!(fetch_as(&p, &worker("w2")).await.is_none(), "the renewed lease still holds");
}

/// Sessions idle past the timeout, with nothing running, are released.
pub async fn renew_sessions_releases_idle_sessions(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("s1")), (3, Some("s1"))]).await;
    let w1 = worker("w1");
    let w = fetch_as(&p, &w1).await.unwrap();
    p.complete_work_item(&w.lock_token, completion("s", 2, "done")).await.unwrap();
    sleep_ms(30).await;
    let released = p.renew_sessions(&w1, Duration::from_millis(10)).await.unwrap();
    assert_eq!(released, vec!["s1".to_string()]);
    let next = fetch_as(&p, &worker("w2")).await.expect("a released session is free");
    assert!(next.session_claimed);
}

/// A session with a running activity is not released, however idle it looks.
pub async fn renew_sessions_keeps_busy_sessions(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("s1")), (3, Some("s1"))]).await;
    let w1 = worker("w1");
    let _running = fetch_as(&p, &w1).await.unwrap();
    sleep_ms(30).await;
    assert!(p.renew_sessions(&w1, Duration::from_millis(1)).await.unwrap().is_empty());
    assert!(fetch_as(&p, &worker("w2")).await.is_none());
}

/// The session id of queued work survives fetch, abandon and export/import.
pub async fn session_id_survives_queue_and_export(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("sess-✓"))]).await;
    let snap = p.export_instance("s").await.unwrap();
    assert_eq!(snap.activities[0].session_id.as_deref(), Some("sess-✓"));
    let w = fetch_as(&p, &worker("w1")).await.unwrap();
    p.abandon_work_item(&w.lock_token, None).await.unwrap();
    assert_eq!(fetch_as(&p, &worker("w1")).await.unwrap().session_id.as_deref(), Some("sess-✓"));
    let target = f.create_provider().await;
    target.import_instance(snap).await.unwrap();
    assert_eq!(fetch_as(&target, &worker("w9")).await.unwrap().session_id.as_deref(), Some("sess-✓"));
}
