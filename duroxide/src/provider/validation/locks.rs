//! Conformance tests for instance locks: expiry and takeover, renewal, stale holders, cached
//! fetches, and attempt counting for poison detection. Not here: activity locks (`activities`).

use super::support::*;
use super::*;

// Locks

/// Once a lock expires, another fetch takes the instance with a new token.
pub async fn expired_lock_can_be_taken_over(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "ex").await;
    let first = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    fetch_none(&p).await;
    sleep_ms(450).await;
    let second = fetch_some(&p, "ex").await;
    assert_ne!(first.lock_token, second.lock_token);
    assert_eq!(second.messages, first.messages);
}

/// The old holder's commit fails after a takeover; the new holder's succeeds.
pub async fn commit_after_takeover_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "to").await;
    let first = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    sleep_ms(450).await;
    let second = fetch_some(&p, "to").await;
    assert_lock_lost(
        p.commit_turn(&first.lock_token, turn(1, vec![started("old")], InstanceState::Running)).await,
        "stale commit",
    );
    p.commit_turn(&second.lock_token, turn(1, vec![started("new")], InstanceState::Running)).await.unwrap();
    let h = p.read_history("to", None).await.unwrap();
    assert_eq!(h.len(), 1);
    assert!(matches!(&h[0].kind, EventKind::OrchestrationStarted { input, .. } if input == "new"));
}

/// A stale commit writes nothing at all: no events, no activities, no messages to itself
/// or others, no child instance, and the consumed messages stay with the new holder.
pub async fn stale_commit_with_effects_writes_nothing(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "other").await;
    create(&p, "st").await;
    let first = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    sleep_ms(450).await;
    let second = fetch_some(&p, "st").await;
    let mut c = turn(1, vec![started("old"), scheduled(2, "Act", "in")], InstanceState::Running);
    c.activities.push(work("st", 1, 2, "Act", "in"));
    c.messages = vec![
        external("other", "from-stale", ""),
        delayed("st", "timer", now()),
        child_start("stale-child", Some(link("st"))),
    ];
    assert_lock_lost(p.commit_turn(&first.lock_token, c).await, "stale commit with effects");
    assert!(p.read_history("st", None).await.unwrap().is_empty(), "no events");
    assert!(fetch_work(&p, LOCK).await.is_none(), "no activity");
    assert!(p.get_instance("stale-child").await.unwrap().is_none(), "no child instance");
    // The new holder still has the start message, and nothing else arrived meanwhile.
    assert_eq!(names(&second.messages), vec!["StartOrchestration"]);
    p.commit_turn(&second.lock_token, turn(1, vec![started("new")], InstanceState::Running)).await.unwrap();
    fetch_none(&p).await;
}

/// Renewal keeps the lock past its original expiry.
pub async fn renew_extends_orchestration_lock(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "rn").await;
    let item = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    sleep_ms(100).await;
    p.renew_orchestration_lock(&item.lock_token, Duration::from_secs(30)).await.unwrap();
    sleep_ms(450).await;
    fetch_none(&p).await;
    p.commit_turn(&item.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
}

/// Renewing a token nobody holds fails with `LockLost`.
pub async fn renew_with_unknown_token_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "ru").await;
    assert_lock_lost(p.renew_orchestration_lock("nope", LOCK).await, "renew");
}

/// A committed token can no longer be renewed.
pub async fn renew_after_commit_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "rc").await;
    let item = fetch_some(&p, "rc").await;
    p.commit_turn(&item.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
    assert_lock_lost(p.renew_orchestration_lock(&item.lock_token, LOCK).await, "renew after commit");
}

/// The old holder cannot abandon after a takeover (it would release the new lock).
pub async fn abandon_after_takeover_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "at").await;
    let first = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    sleep_ms(450).await;
    let second = fetch_some(&p, "at").await;
    assert_lock_lost(
        p.abandon_orchestration_item(&first.lock_token, None, None, Attempt::Counted).await,
        "stale abandon",
    );
    fetch_none(&p).await;
    p.renew_orchestration_lock(&second.lock_token, LOCK).await.unwrap();
}

/// After an expiry, the new batch includes messages that arrived meanwhile.
pub async fn messages_arriving_after_expiry_join_next_batch(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "mj").await;
    let _first = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    p.enqueue_message(external("mj", "meanwhile", "")).await.unwrap();
    sleep_ms(450).await;
    let second = fetch_some(&p, "mj").await;
    assert_eq!(names(&second.messages), vec!["StartOrchestration", "meanwhile"]);
}

// ---------------------------------------------------------------------------------------
// Cached fetches (`fetch_orchestration_item_cached`)

async fn fetch_cached(p: &Arc<dyn Provider>, exec: u64, len: u64) -> OrchestrationItem {
    let cached = move |_: &str| Some(CachedPosition { execution_id: exec, last_event_id: len });
    p.fetch_orchestration_item_cached(LOCK, &all(), &cached)
        .await
        .expect("fetch_orchestration_item_cached")
        .expect("a batch")
}

/// When the node's cached length is current, the store may skip the history, but the
/// batch and `history_len` are complete.
pub async fn cached_fetch_with_current_length_keeps_history_len(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cc", &[2, 3]).await;
    p.enqueue_message(external("cc", "e", "")).await.unwrap();
    let item = fetch_cached(&p, 1, 3).await;
    assert_eq!(item.history_len, 3);
    assert!(item.history.is_empty() || item.history.len() == 3, "{:?}", item.history);
    assert!(item.history_error.is_none());
    assert_eq!(names(&item.messages), vec!["e"]);
    assert_eq!(item.record.execution_id, 1);
}

/// A stale cached length (another node ran a turn) makes the store read the history.
pub async fn cached_fetch_with_stale_length_reads_history(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cs", &[2, 3]).await;
    p.enqueue_message(external("cs", "e", "")).await.unwrap();
    let item = fetch_cached(&p, 1, 2).await;
    assert_eq!(item.history.len(), 3, "a stale cache must get the full history");
    assert_eq!(item.history_len, 3);
}

/// A cache of another execution is ignored.
pub async fn cached_fetch_of_other_execution_reads_history(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "ce", &[2]).await;
    p.enqueue_message(external("ce", "e", "")).await.unwrap();
    let item = fetch_cached(&p, 7, 2).await;
    assert_eq!(item.history.len(), 2);
}

// ---------------------------------------------------------------------------------------
// Attempts

/// The first fetch of a batch is attempt 1.
pub async fn first_fetch_is_attempt_one(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "a1").await;
    assert_eq!(fetch_some(&p, "a1").await.attempt, 1);
}

/// Each fetch after an abandon counts an attempt.
pub async fn abandon_counts_attempts(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "ac").await;
    for expected in 1..=4 {
        let item = fetch_some(&p, "ac").await;
        assert_eq!(item.attempt, expected);
        p.abandon_orchestration_item(&item.lock_token, None, None, Attempt::Counted).await.unwrap();
    }
}

/// `count_attempt = false` gives the attempt back.
pub async fn abandon_without_count_keeps_attempt(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "nc").await;
    for _ in 0..3 {
        let item = fetch_some(&p, "nc").await;
        assert_eq!(item.attempt, 1);
        p.abandon_orchestration_item(&item.lock_token, None, None, Attempt::GivenBack).await.unwrap();
    }
    let item = fetch_some(&p, "nc").await;
    p.abandon_orchestration_item(&item.lock_token, None, None, Attempt::Counted).await.unwrap();
    assert_eq!(fetch_some(&p, "nc").await.attempt, 2);
}

/// A fetch whose lock expired counted as an attempt (the holder may have crashed on it).
pub async fn lock_expiry_counts_an_attempt(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "le").await;
    let _ = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    sleep_ms(450).await;
    assert_eq!(fetch_some(&p, "le").await.attempt, 2);
}

/// A batch's attempt is that of its most-tried message.
pub async fn attempt_is_highest_of_batch(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "hb").await;
    for _ in 0..2 {
        let item = fetch_some(&p, "hb").await;
        p.abandon_orchestration_item(&item.lock_token, None, None, Attempt::Counted).await.unwrap();
    }
    p.enqueue_message(external("hb", "fresh", "")).await.unwrap();
    let item = fetch_some(&p, "hb").await;
    assert_eq!(item.messages.len(), 2);
    assert_eq!(item.attempt, 3);
}

/// Once committed, the next batch starts again at attempt 1.
pub async fn new_batch_after_commit_is_attempt_one(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "nb").await;
    let item = fetch_some(&p, "nb").await;
    p.abandon_orchestration_item(&item.lock_token, None, None, Attempt::Counted).await.unwrap();
    let item = fetch_some(&p, "nb").await;
    assert_eq!(item.attempt, 2);
    p.commit_turn(&item.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
    p.enqueue_message(external("nb", "e", "")).await.unwrap();
    assert_eq!(fetch_some(&p, "nb").await.attempt, 1);
}

/// Activity fetches count attempts; abandon keeps the count.
pub async fn activity_attempts_count_up(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "aa", &[2]).await;
    for expected in 1..=3 {
        let w = fetch_work(&p, LOCK).await.expect("work item");
        assert_eq!(w.attempt, expected);
        p.abandon_work_item(&w.lock_token, None).await.unwrap();
    }
}

/// An activity whose lock expired is refetched with the next attempt number.
pub async fn activity_lock_expiry_counts_attempt(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "ae", &[2]).await;
    let w = fetch_work(&p, SHORT).await.unwrap();
    assert_eq!(w.attempt, 1);
    sleep_ms(450).await;
    let again = fetch_work(&p, LOCK).await.expect("refetch after expiry");
    assert_eq!(again.attempt, 2);
    assert_eq!(again.event_id, 2);
}
