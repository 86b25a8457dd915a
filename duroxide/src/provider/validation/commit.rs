//! Conformance tests for `commit_turn`: what a turn writes (history, record, status,
//! activities) and that a failed commit leaves no trace. Not here: stale-token commits (`locks`).

use super::support::*;
use super::*;

// Atomic commit

/// Committed events are read back exactly, in order.
pub async fn commit_appends_history(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "h").await;
    let item = fetch_some(&p, "h").await;
    let events = vec![
        started("in"),
        scheduled(2, "A", "a"),
        ev(3, EventKind::SystemCall { op: "guid".into(), value: "g".into(), call_site: None }),
        ev(4, EventKind::CustomStatusSet { status: Some("s".into()) }),
    ];
    p.commit_turn(&item.lock_token, turn(1, events.clone(), InstanceState::Running)).await.unwrap();
    assert_eq!(p.read_history("h", None).await.unwrap(), events);
    assert_eq!(p.read_history("h", Some(1)).await.unwrap(), events);
}

/// The record follows the commit: state, version, execution, duroxide version.
pub async fn commit_updates_instance_record(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "r").await;
    let r = p.get_instance("r").await.unwrap().unwrap();
    assert_eq!(r.state, InstanceState::Running);
    assert_eq!(r.version.as_deref(), Some(V1));
    assert_eq!(r.execution_id, 1);
    assert_eq!(r.duroxide_version.as_deref(), Some(DUROXIDE_VERSION));
    assert_eq!(r.name, NAME);
}

/// A completing turn stores the output and ends the execution.
pub async fn commit_completed_sets_output(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "done").await;
    let item = fetch_some(&p, "done").await;
    let mut c = turn(
        1,
        vec![started("x"), ev(2, EventKind::OrchestrationCompleted { output: "result".into() })],
        InstanceState::Completed,
    );
    c.update.output = Some("result".into());
    p.commit_turn(&item.lock_token, c).await.unwrap();
    let r = p.get_instance("done").await.unwrap().unwrap();
    assert_eq!(r.state, InstanceState::Completed);
    assert_eq!(r.output.as_deref(), Some("result"));
    let ex = p.list_executions("done").await.unwrap();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].state, InstanceState::Completed);
    assert_eq!(ex[0].event_count, 2);
}

/// A failing turn stores the error details exactly.
pub async fn commit_failed_sets_error(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "fail").await;
    let item = fetch_some(&p, "fail").await;
    let details = ErrorDetails::poison("tried 5 times");
    let mut c = turn(
        1,
        vec![started("x"), ev(2, EventKind::OrchestrationFailed { details: details.clone() })],
        InstanceState::Failed,
    );
    c.update.error = Some(details.clone());
    p.commit_turn(&item.lock_token, c).await.unwrap();
    let r = p.get_instance("fail").await.unwrap().unwrap();
    assert_eq!(r.state, InstanceState::Failed);
    assert_eq!(r.error, Some(details));
    assert_eq!(p.list_executions("fail").await.unwrap()[0].state, InstanceState::Failed);
}

/// A commit that fails (duplicate event id) leaves no trace: no events, no activities, no
/// messages, no record change.
pub async fn duplicate_event_id_rolls_back_everything(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "dup").await;
    create(&p, "other").await;
    let other = fetch_some(&p, "other").await;
    p.commit_turn(&other.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
    p.enqueue_message(external("dup", "e", "")).await.unwrap();
    let item = fetch_some(&p, "dup").await;
    let mut c = turn(
        1,
        vec![scheduled(2, "A", "a"), ev(1, EventKind::ExternalRaised { name: "e".into(), data: "".into() })],
        InstanceState::Completed,
    );
    c.update.output = Some("should not be stored".into());
    c.update.custom_status = Some(Some("nope".into()));
    c.activities.push(work("dup", 1, 2, "A", "a"));
    c.messages.push(external("other", "leak", ""));
    c.messages.push(OutboundMessage {
        instance: "child".into(),
        message: OrchestratorMessage::StartOrchestration {
            name: NAME.into(),
            version: None,
            input: "".into(),
            parent: None,
        },
        visible_at_ms: None,
    });
    assert!(p.commit_turn(&item.lock_token, c).await.is_err(), "a duplicate event id must fail the commit");
    assert_eq!(p.read_history("dup", None).await.unwrap().len(), 1, "no event of the failed turn may remain");
    let r = p.get_instance("dup").await.unwrap().unwrap();
    assert_eq!(r.state, InstanceState::Running);
    assert_eq!(r.output, None);
    assert_eq!(r.custom_status, None);
    assert!(fetch_work(&p, LOCK).await.is_none(), "no activity of the failed turn may be enqueued");
    assert!(p.get_instance("child").await.unwrap().is_none(), "no instance may be created");
    fetch_none(&p).await; // "dup" is still locked and "other" got no message
    p.abandon_orchestration_item(&item.lock_token, None, None, Attempt::Counted).await.unwrap();
    let again = fetch_some(&p, "dup").await;
    assert_eq!(names(&again.messages), vec!["e"]);
}

/// After a failed commit the lock is still held and the messages are still there.
pub async fn failed_commit_keeps_lock_and_messages(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "fk").await;
    p.enqueue_message(external("fk", "e", "")).await.unwrap();
    let item = fetch_some(&p, "fk").await;
    let bad = turn(1, vec![started("again")], InstanceState::Running);
    assert!(p.commit_turn(&item.lock_token, bad).await.is_err());
    p.renew_orchestration_lock(&item.lock_token, LOCK).await.unwrap();
    let good = turn(
        1,
        vec![ev(2, EventKind::ExternalRaised { name: "e".into(), data: "".into() })],
        InstanceState::Running,
    );
    p.commit_turn(&item.lock_token, good).await.unwrap();
    assert_eq!(p.read_history("fk", None).await.unwrap().len(), 2);
    fetch_none(&p).await;
}

/// `custom_status: Some(x)` sets, `None` keeps, `Some(None)` clears.
pub async fn custom_status_set_kept_and_cleared(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "cs").await;
    let item = fetch_some(&p, "cs").await;
    let mut c = turn(1, vec![started("x")], InstanceState::Running);
    c.update.custom_status = Some(Some("step 1".into()));
    p.commit_turn(&item.lock_token, c).await.unwrap();
    assert_eq!(p.get_instance("cs").await.unwrap().unwrap().custom_status.as_deref(), Some("step 1"));
    p.enqueue_message(external("cs", "e", "")).await.unwrap();
    let item = fetch_some(&p, "cs").await;
    p.commit_turn(&item.lock_token, turn(1, Vec::new(), InstanceState::Running)).await.unwrap();
    assert_eq!(p.get_instance("cs").await.unwrap().unwrap().custom_status.as_deref(), Some("step 1"));
    p.enqueue_message(external("cs", "e", "")).await.unwrap();
    let item = fetch_some(&p, "cs").await;
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    c.update.custom_status = Some(None);
    p.commit_turn(&item.lock_token, c).await.unwrap();
    assert_eq!(p.get_instance("cs").await.unwrap().unwrap().custom_status, None);
}

/// A successful turn clears the status note.
pub async fn commit_clears_status_note(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "sn").await;
    let item = fetch_some(&p, "sn").await;
    p.abandon_orchestration_item(&item.lock_token, None, Some("blocked".into()), Attempt::GivenBack)
        .await
        .unwrap();
    let item = fetch_some(&p, "sn").await;
    p.commit_turn(&item.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
    assert_eq!(p.get_instance("sn").await.unwrap().unwrap().status_note, None);
}

/// A turn with no new events still consumes its messages and releases the lock.
pub async fn commit_without_events_consumes_messages(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "ne").await;
    p.enqueue_message(external("ne", "ignored", "")).await.unwrap();
    let item = fetch_some(&p, "ne").await;
    p.commit_turn(&item.lock_token, turn(1, Vec::new(), InstanceState::Running)).await.unwrap();
    fetch_none(&p).await;
    assert_eq!(p.read_history("ne", None).await.unwrap().len(), 1);
}

/// Each turn's events continue the history; fetched items carry the whole history.
pub async fn history_grows_across_turns(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "g", &[2]).await;
    p.enqueue_message(completion("g", 2, "r")).await.unwrap();
    let item = fetch_some(&p, "g").await;
    assert_eq!(item.history.len(), 2);
    assert_eq!(item.history_len, 2);
    let events = vec![
        ev(3, EventKind::ActivityCompleted { source_event_id: 2, result: "r".into() }),
        ev(4, EventKind::OrchestrationCompleted { output: "r".into() }),
    ];
    p.commit_turn(&item.lock_token, turn(1, events, InstanceState::Completed)).await.unwrap();
    let h = p.read_history("g", None).await.unwrap();
    assert_eq!(h.iter().map(|e| e.event_id).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
}

/// Activities committed by a turn are fetched by workers with all fields.
pub async fn commit_enqueues_activities(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "act", &[2]).await;
    let w = fetch_work(&p, LOCK).await.expect("work item");
    assert_eq!((w.instance.as_str(), w.execution_id, w.event_id), ("act", 1, 2));
    assert_eq!((w.name.as_str(), w.input.as_str()), ("Act", "in-2"));
    assert!(!w.lock_token.is_empty());
    assert_eq!(w.attempt, 1);
}

/// Enqueuing the same (execution, event id) activity twice keeps one work item.
pub async fn duplicate_activity_enqueue_is_ignored(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "da", &[2]).await;
    p.enqueue_message(external("da", "e", "")).await.unwrap();
    let item = fetch_some(&p, "da").await;
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    c.activities.push(work("da", 1, 2, "Act", "in-2"));
    p.commit_turn(&item.lock_token, c).await.expect("a re-enqueued activity is not an error");
    assert!(fetch_work(&p, LOCK).await.is_some());
    assert!(fetch_work(&p, LOCK).await.is_none(), "the activity must be queued once");
}

/// An activity enqueued with a lock token is stored locked for its holder: workers do not
/// get it, the holder completes it with that token, and its first attempt is counted.
pub async fn commit_enqueues_locked_activity(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "el").await;
    p.enqueue_message(external("el", "go", "")).await.unwrap();
    let item = fetch_some(&p, "el").await;
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    let mut held = work("el", 1, 2, "Act", "in-2");
    held.lock_token = "eager-token-1".into();
    held.attempt = 1;
    c.activities.push(held);
    c.activities.push(work("el", 1, 3, "Act", "in-3"));
    c.activity_lock_timeout = LOCK;
    p.commit_turn(&item.lock_token, c).await.unwrap();
    let w = fetch_work(&p, LOCK).await.expect("the unlocked activity is fetchable");
    assert_eq!(w.event_id, 3);
    assert!(fetch_work(&p, LOCK).await.is_none(), "the locked activity must not be handed out");
    p.renew_work_item("eager-token-1", LOCK).await.expect("the holder's token renews");
    p.complete_work_item("eager-token-1", completion("el", 2, "done")).await.unwrap();
    let next = fetch_some(&p, "el").await;
    assert_eq!(
        next.messages,
        vec![OrchestratorMessage::ActivityCompleted { execution_id: 1, event_id: 2, result: "done".into() }]
    );
}

/// An activity enqueued locked whose holder never runs it is fetched by another worker
/// once the lock expires, as its second attempt.
pub async fn locked_activity_expires_for_others(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "ex").await;
    p.enqueue_message(external("ex", "go", "")).await.unwrap();
    let item = fetch_some(&p, "ex").await;
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    let mut held = work("ex", 1, 2, "Act", "in-2");
    held.lock_token = "eager-token-2".into();
    c.activities.push(held);
    c.activity_lock_timeout = SHORT;
    p.commit_turn(&item.lock_token, c).await.unwrap();
    assert!(fetch_work(&p, LOCK).await.is_none());
    sleep_ms(450).await;
    let w = fetch_work(&p, LOCK).await.expect("taken over after the lock expired");
    assert_eq!((w.event_id, w.attempt), (2, 2));
    assert_lock_lost(
        p.complete_work_item("eager-token-2", completion("ex", 2, "late")).await,
        "stale holder",
    );
}
