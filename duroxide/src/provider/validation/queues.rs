//! Conformance tests for the orchestration queue: batches, ordering, per-instance locking on
//! fetch, abandon, and delayed visibility (timers). Not here: lock expiry and renewal (`locks`).

use super::support::*;
use super::*;

// Queue semantics

/// An empty store has nothing to fetch.
pub async fn fetch_empty_store_returns_none(f: Factory) {
    let p = f.create_provider().await;
    fetch_none(&p).await;
    assert!(fetch_work(&p, LOCK).await.is_none());
}

/// A batch holds all visible messages of the instance, oldest first.
pub async fn messages_come_in_enqueue_order(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "o").await;
    for n in ["e1", "e2", "e3"] {
        p.enqueue_message(external("o", n, n)).await.unwrap();
    }
    let item = fetch_some(&p, "o").await;
    assert_eq!(names(&item.messages), vec!["StartOrchestration", "e1", "e2", "e3"]);
}

/// While locked, an instance is not fetched again.
pub async fn fetched_instance_is_locked(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "l").await;
    let _item = fetch_some(&p, "l").await;
    fetch_none(&p).await;
    p.enqueue_message(external("l", "more", "")).await.unwrap();
    fetch_none(&p).await;
}

/// Locking one instance does not block others.
pub async fn other_instances_fetchable_while_one_is_locked(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "a").await;
    create(&p, "b").await;
    let first = fetch(&p).await.unwrap();
    let second = fetch(&p).await.unwrap();
    let got: HashSet<_> = [first.instance, second.instance].into_iter().collect();
    assert_eq!(got, ["a".to_string(), "b".to_string()].into_iter().collect());
    assert_ne!(first.lock_token, second.lock_token);
}

/// The instance with the oldest visible message is fetched first.
pub async fn oldest_message_first_across_instances(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "zeta").await;
    create(&p, "alpha").await;
    create(&p, "mid").await;
    let order = [
        fetch(&p).await.unwrap().instance,
        fetch(&p).await.unwrap().instance,
        fetch(&p).await.unwrap().instance,
    ];
    assert_eq!(order, ["zeta", "alpha", "mid"]);
}

/// A batch never contains another instance's messages.
pub async fn batch_holds_only_its_instance(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "x").await;
    create(&p, "y").await;
    p.enqueue_message(external("y", "for-y", "")).await.unwrap();
    p.enqueue_message(external("x", "for-x", "")).await.unwrap();
    let x = fetch_some(&p, "x").await;
    assert_eq!(names(&x.messages), vec!["StartOrchestration", "for-x"]);
    let y = fetch_some(&p, "y").await;
    assert_eq!(names(&y.messages), vec!["StartOrchestration", "for-y"]);
}

/// `commit_turn` deletes the consumed messages and releases the lock.
pub async fn commit_deletes_consumed_messages(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "c").await;
    let item = fetch_some(&p, "c").await;
    p.commit_turn(&item.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
    fetch_none(&p).await;
    p.enqueue_message(external("c", "next", "")).await.unwrap();
    let again = fetch_some(&p, "c").await;
    assert_eq!(names(&again.messages), vec!["next"]);
}

/// Messages enqueued while a turn runs are not consumed by its commit.
pub async fn messages_arriving_during_turn_survive_commit(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "d").await;
    let item = fetch_some(&p, "d").await;
    p.enqueue_message(external("d", "late", "")).await.unwrap();
    p.commit_turn(&item.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
    let next = fetch_some(&p, "d").await;
    assert_eq!(names(&next.messages), vec!["late"]);
    assert_eq!(next.history.len(), 1);
}

/// Abandon releases the lock; the same messages come back.
pub async fn abandon_makes_messages_visible_again(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "ab").await;
    p.enqueue_message(external("ab", "e", "")).await.unwrap();
    let item = fetch_some(&p, "ab").await;
    p.abandon_orchestration_item(&item.lock_token, None, None, Attempt::Counted).await.unwrap();
    let again = fetch_some(&p, "ab").await;
    assert_eq!(again.messages, item.messages);
    assert_ne!(again.lock_token, item.lock_token);
}

/// Abandon with a delay keeps the messages invisible until it passes.
pub async fn abandon_with_delay_hides_messages(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "ad").await;
    let item = fetch_some(&p, "ad").await;
    p.abandon_orchestration_item(&item.lock_token, Some(SHORT), None, Attempt::Counted).await.unwrap();
    fetch_none(&p).await;
    sleep_ms(450).await;
    fetch_some(&p, "ad").await;
}

/// Abandon's note is recorded on the instance.
pub async fn abandon_records_note(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "an").await;
    let item = fetch_some(&p, "an").await;
    p.abandon_orchestration_item(
        &item.lock_token,
        None,
        Some("not registered here".into()),
        Attempt::GivenBack,
    )
    .await
    .unwrap();
    assert_eq!(
        p.get_instance("an").await.unwrap().unwrap().status_note.as_deref(),
        Some("not registered here")
    );
}

/// Abandon with a token nobody holds fails with `LockLost`.
pub async fn abandon_with_unknown_token_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "au").await;
    assert_lock_lost(
        p.abandon_orchestration_item("no-such-token", None, None, Attempt::Counted).await,
        "abandon",
    );
    fetch_some(&p, "au").await;
}

/// Commit with a token nobody holds fails with `LockLost` and changes nothing.
pub async fn commit_with_unknown_token_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "cu").await;
    assert_lock_lost(
        p.commit_turn("no-such-token", turn(1, vec![started("x")], InstanceState::Running)).await,
        "commit",
    );
    assert_eq!(p.get_instance("cu").await.unwrap().unwrap().state, InstanceState::Pending);
    fetch_some(&p, "cu").await;
}

/// A token is good for one commit.
pub async fn commit_twice_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "c2").await;
    let item = fetch_some(&p, "c2").await;
    p.commit_turn(&item.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
    let second = TurnCommit {
        new_events: vec![ev(2, EventKind::OrchestrationCompleted { output: "o".into() })],
        ..turn(1, Vec::new(), InstanceState::Completed)
    };
    assert_lock_lost(p.commit_turn(&item.lock_token, second).await, "second commit");
    assert_eq!(p.read_history("c2", None).await.unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------
// Delayed visibility

/// A message with `visible_at_ms` in the future is invisible until then.
pub async fn delayed_message_invisible_until_due(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "dm").await;
    p.enqueue_message(delayed("dm", "later", now() + 300)).await.unwrap();
    fetch_none(&p).await;
    sleep_ms(450).await;
    let item = fetch_some(&p, "dm").await;
    assert_eq!(names(&item.messages), vec!["later"]);
}

/// Visible messages are delivered without the instance's delayed ones.
pub async fn delayed_message_does_not_hold_back_visible_ones(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "mix").await;
    p.enqueue_message(delayed("mix", "later", now() + 60_000)).await.unwrap();
    p.enqueue_message(external("mix", "now", "")).await.unwrap();
    let item = fetch_some(&p, "mix").await;
    assert_eq!(names(&item.messages), vec!["now"]);
    p.commit_turn(&item.lock_token, turn(1, Vec::new(), InstanceState::Running)).await.unwrap();
    fetch_none(&p).await;
}

/// A timer committed by a turn (a delayed message to itself) fires at its time.
pub async fn timer_committed_by_turn_is_delayed(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "tm").await;
    let item = fetch_some(&p, "tm").await;
    let fire_at = now() + 300;
    let mut c = turn(
        1,
        vec![
            started("x"),
            ev(2, EventKind::TimerCreated { delay_ms: 300, fire_at_ms: fire_at, call_site: None }),
        ],
        InstanceState::Running,
    );
    c.messages.push(OutboundMessage {
        instance: "tm".into(),
        message: OrchestratorMessage::TimerFired { execution_id: 1, event_id: 2, fire_at_ms: fire_at },
        visible_at_ms: Some(fire_at),
    });
    p.commit_turn(&item.lock_token, c).await.unwrap();
    fetch_none(&p).await;
    sleep_ms(450).await;
    let fired = fetch_some(&p, "tm").await;
    assert_eq!(
        fired.messages,
        vec![OrchestratorMessage::TimerFired { execution_id: 1, event_id: 2, fire_at_ms: fire_at }]
    );
}

/// `visible_at_ms` in the past means visible now.
pub async fn past_visible_at_is_visible_now(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "past").await;
    p.enqueue_message(delayed("past", "old", now().saturating_sub(60_000))).await.unwrap();
    let item = fetch_some(&p, "past").await;
    assert_eq!(names(&item.messages), vec!["old"]);
}

/// An instance whose only message is delayed does not block other instances.
pub async fn delayed_instance_does_not_block_others(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "waiting").await;
    p.enqueue_message(delayed("waiting", "later", now() + 60_000)).await.unwrap();
    create(&p, "ready").await;
    fetch_some(&p, "ready").await;
    fetch_none(&p).await;
}
