//! Conformance tests for activity work items: fetch order, completion, abandon, lock renewal
//! and takeover, and cancellation. Not here: sessions (`sessions`) or batch calls (`batches`).

use super::support::*;
use super::*;

// Activities

/// No work, no item.
pub async fn fetch_work_empty_returns_none(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "w").await;
    assert!(fetch_work(&p, LOCK).await.is_none());
}

/// Work items come out in the order they were enqueued.
pub async fn work_items_are_fifo(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "fifo", &[2, 3, 4]).await;
    let mut ids = Vec::new();
    while let Some(w) = fetch_work(&p, LOCK).await {
        ids.push(w.event_id);
    }
    assert_eq!(ids, vec![2, 3, 4]);
}

/// A locked item is not handed to another worker.
pub async fn locked_work_item_is_not_refetched(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "lw", &[2]).await;
    let _w = fetch_work(&p, LOCK).await.unwrap();
    assert!(fetch_work(&p, LOCK).await.is_none());
}

/// Completing deletes the item and enqueues the completion for the orchestration.
pub async fn complete_work_item_enqueues_completion(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cw", &[2]).await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    p.complete_work_item(&w.lock_token, completion("cw", 2, "ok")).await.unwrap();
    let item = fetch_some(&p, "cw").await;
    assert_eq!(
        item.messages,
        vec![OrchestratorMessage::ActivityCompleted { execution_id: 1, event_id: 2, result: "ok".into() }]
    );
    assert!(fetch_work(&p, Duration::from_millis(1)).await.is_none());
    sleep_ms(20).await;
    assert!(fetch_work(&p, LOCK).await.is_none(), "a completed item must be gone");
}

/// Completing with a token nobody holds fails and enqueues nothing.
pub async fn complete_with_unknown_token_fails(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cu", &[2]).await;
    assert_lock_lost(p.complete_work_item("nope", completion("cu", 2, "x")).await, "complete");
    fetch_none(&p).await;
    assert!(fetch_work(&p, LOCK).await.is_some());
}

/// A work item completes once.
pub async fn complete_twice_fails(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "ct", &[2]).await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    p.complete_work_item(&w.lock_token, completion("ct", 2, "1")).await.unwrap();
    assert_lock_lost(p.complete_work_item(&w.lock_token, completion("ct", 2, "2")).await, "second complete");
    let item = fetch_some(&p, "ct").await;
    assert_eq!(item.messages.len(), 1, "only one completion may be enqueued");
}

/// An abandoned item can be fetched again at once.
pub async fn abandon_work_item_retries_now(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "aw", &[2]).await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    p.abandon_work_item(&w.lock_token, None).await.unwrap();
    let again = fetch_work(&p, LOCK).await.expect("abandoned item is visible");
    assert_eq!(again.event_id, 2);
    assert_ne!(again.lock_token, w.lock_token);
    assert_lock_lost(p.complete_work_item(&w.lock_token, completion("aw", 2, "x")).await, "old token");
}

/// An item abandoned with a delay stays invisible until it passes.
pub async fn abandon_work_item_with_delay(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "awd", &[2]).await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    p.abandon_work_item(&w.lock_token, Some(SHORT)).await.unwrap();
    assert!(fetch_work(&p, LOCK).await.is_none());
    sleep_ms(450).await;
    assert!(fetch_work(&p, LOCK).await.is_some());
}

/// A fetched item says when it became runnable (scheduled, or released after a delay), in
/// single and batch fetches: the runtime's schedule-to-start time starts there.
pub async fn fetched_work_says_when_it_became_runnable(f: Factory) {
    let p = f.create_provider().await;
    let before = crate::now_ms();
    with_activities(&p, "vis", &[2, 3, 4]).await;
    let after = crate::now_ms();
    let first = fetch_work(&p, LOCK).await.unwrap();
    let rest = p.fetch_work_items(LOCK, &worker("w-batch"), 2).await.unwrap();
    assert_eq!(rest.len(), 2);
    for w in std::iter::once(&first).chain(&rest) {
        assert!((before..=after).contains(&w.visible_at_ms), "{} not in {before}..={after}", w.visible_at_ms);
    }
    let released = crate::now_ms();
    p.abandon_work_item(&first.lock_token, Some(SHORT)).await.unwrap();
    sleep_ms(450).await;
    let again = fetch_work(&p, LOCK).await.unwrap();
    assert!(again.visible_at_ms >= released + SHORT.as_millis() as u64, "visible again after the delay");
}

/// A worker that lost its lock cannot complete; the new holder can.
pub async fn expired_work_lock_is_taken_over(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "ew", &[2]).await;
    let first = fetch_work(&p, SHORT).await.unwrap();
    sleep_ms(450).await;
    let second = fetch_work(&p, LOCK).await.expect("taken over");
    assert_lock_lost(p.complete_work_item(&first.lock_token, completion("ew", 2, "old")).await, "stale");
    assert_lock_lost(p.renew_work_item(&first.lock_token, LOCK).await, "stale renew");
    p.complete_work_item(&second.lock_token, completion("ew", 2, "new")).await.unwrap();
    let item = fetch_some(&p, "ew").await;
    assert_eq!(
        item.messages,
        vec![OrchestratorMessage::ActivityCompleted { execution_id: 1, event_id: 2, result: "new".into() }]
    );
}

/// Renewing an activity lock keeps it past its original expiry.
pub async fn renew_work_item_extends_lock(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "rw", &[2]).await;
    let w = fetch_work(&p, SHORT).await.unwrap();
    sleep_ms(100).await;
    p.renew_work_item(&w.lock_token, Duration::from_secs(30)).await.unwrap();
    sleep_ms(450).await;
    assert!(fetch_work(&p, LOCK).await.is_none());
    p.complete_work_item(&w.lock_token, completion("rw", 2, "x")).await.unwrap();
}

/// Renewing an unknown activity lock fails with `LockLost`.
pub async fn renew_work_item_unknown_token_fails(f: Factory) {
    let p = f.create_provider().await;
    assert_lock_lost(p.renew_work_item("nope", LOCK).await, "renew work");
}

/// Failure completions keep their error details.
pub async fn activity_failure_completion_roundtrips(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "af", &[2]).await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    let mut details = ErrorDetails::application("boom");
    details.retryable = false;
    let msg = OrchestratorMessage::ActivityFailed { execution_id: 1, event_id: 2, details };
    p.complete_work_item(
        &w.lock_token,
        OutboundMessage { instance: "af".into(), message: msg.clone(), visible_at_ms: None },
    )
    .await
    .unwrap();
    assert_eq!(fetch_some(&p, "af").await.messages, vec![msg]);
}

// ---------------------------------------------------------------------------------------
// Cancellation

async fn cancel_turn(p: &Arc<dyn Provider>, instance: &str, ids: &[u64]) {
    p.enqueue_message(external(instance, "cancel-trigger", "")).await.unwrap();
    let item = fetch_some(p, instance).await;
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    c.cancelled_activities = ids.to_vec();
    p.commit_turn(&item.lock_token, c).await.unwrap();
}

/// Cancelling a queued activity removes it.
pub async fn cancel_removes_queued_activity(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cq", &[2]).await;
    cancel_turn(&p, "cq", &[2]).await;
    assert!(fetch_work(&p, LOCK).await.is_none());
}

/// Cancelling a running activity makes its renewal fail with `Cancelled`.
pub async fn cancel_flags_running_activity(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cr", &[2]).await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    p.renew_work_item(&w.lock_token, LOCK).await.unwrap();
    cancel_turn(&p, "cr", &[2]).await;
    match p.renew_work_item(&w.lock_token, LOCK).await {
        Err(ProviderError::Cancelled) => {}
        other => panic!("expected Cancelled, got {other:?}"),
    }
}

/// A cancelled running activity whose worker died is not run again.
pub async fn cancelled_running_activity_dropped_after_expiry(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cd", &[2]).await;
    let _w = fetch_work(&p, SHORT).await.unwrap();
    cancel_turn(&p, "cd", &[2]).await;
    sleep_ms(450).await;
    assert!(fetch_work(&p, LOCK).await.is_none(), "cancelled work must not be retried");
}

/// Cancellation affects only the named activity.
pub async fn cancel_touches_only_named_activity(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "co", &[2, 3]).await;
    cancel_turn(&p, "co", &[2]).await;
    let w = fetch_work(&p, LOCK).await.expect("the other activity remains");
    assert_eq!(w.event_id, 3);
    p.renew_work_item(&w.lock_token, LOCK).await.expect("not cancelled");
    assert!(fetch_work(&p, LOCK).await.is_none());
}

/// Cancelling an activity that does not exist (already completed) is not an error.
pub async fn cancel_of_unknown_activity_is_noop(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cn", &[2]).await;
    cancel_turn(&p, "cn", &[99]).await;
    assert!(fetch_work(&p, LOCK).await.is_some());
}
