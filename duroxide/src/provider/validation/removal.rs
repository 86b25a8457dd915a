//! Conformance tests for the management writes: delete (one tree, bulk batches, against a
//! turn in flight), pruning of old executions, termination, and the store summary. Not
//! here: listings and reads (`listing`).

use super::listing::instance_in;
use super::support::*;
use super::*;
use crate::ErrorCategory;

/// True when nothing at all is stored about `instance` any more.
async fn gone(p: &Arc<dyn Provider>, instance: &str) -> bool {
    p.get_instance(instance).await.unwrap().is_none()
        && p.describe_instance(instance).await.unwrap().is_none()
        && p.list_executions(instance).await.unwrap().is_empty()
        && matches!(p.read_history(instance, Some(1)).await, Ok(h) if h.is_empty())
        && matches!(p.export_instance(instance).await, Err(ProviderError::InstanceNotFound(_)))
}

/// A parent (started) with a child (started, its history linked to the parent), both in
/// `Running`.
async fn parent_with_child(p: &Arc<dyn Provider>, parent: &str, child: &str) {
    started_instance(p, parent).await;
    p.enqueue_message(external(parent, "go", "")).await.unwrap();
    let item = fetch_some(p, parent).await;
    let mut c = turn(
        1,
        vec![ev(
            2,
            EventKind::SubOrchestrationScheduled {
                name: "Child".into(),
                version: None,
                instance: child.into(),
                input: "child-in".into(),
                call_site: None,
            },
        )],
        InstanceState::Running,
    );
    c.messages.push(child_start(child, Some(link(parent))));
    p.commit_turn(&item.lock_token, c).await.unwrap();
    let item = fetch_some(p, child).await;
    let started = ev(
        1,
        EventKind::OrchestrationStarted {
            name: "Child".into(),
            version: "3.0.0".into(),
            input: "child-in".into(),
            parent: Some(link(parent)),
            duroxide_version: DUROXIDE_VERSION.into(),
        },
    );
    let mut c = turn(1, vec![started], InstanceState::Running);
    c.update.name = "Child".into();
    c.update.version = "3.0.0".into();
    p.commit_turn(&item.lock_token, c).await.unwrap();
}

/// Deleting a finished instance removes its record, executions, history, queued messages
/// and activity work, and only its own.
pub async fn delete_removes_everything_of_the_instance(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "doomed", &[2, 3]).await;
    with_activities(&p, "kept", &[2]).await;
    p.enqueue_message(external("doomed", "late", "")).await.unwrap();
    let item = fetch_some(&p, "doomed").await;
    let mut c = turn(
        1,
        vec![ev(4, EventKind::OrchestrationCompleted { output: "o".into() })],
        InstanceState::Completed,
    );
    c.update.output = Some("o".into());
    p.commit_turn(&item.lock_token, c).await.unwrap();
    p.enqueue_message(external("doomed", "later", "")).await.unwrap();
    assert_eq!(p.delete_instance("doomed", false).await.unwrap(), vec!["doomed".to_string()]);
    assert!(gone(&p, "doomed").await, "everything of the instance is gone");
    fetch_none(&p).await;
    // Only the other instance's activity is left.
    let w = fetch_work(&p, LOCK).await.expect("kept's activity");
    assert_eq!(w.instance, "kept");
    assert!(fetch_work(&p, LOCK).await.is_none(), "the deleted instance's activities are gone");
    assert_eq!(p.get_instance("kept").await.unwrap().unwrap().state, InstanceState::Running);
    match p.delete_instance("doomed", false).await {
        Err(ProviderError::InstanceNotFound(id)) => assert_eq!(id, "doomed"),
        other => panic!("expected InstanceNotFound, got {other:?}"),
    }
}

/// An unfinished instance is refused unless forced; forced, it goes.
pub async fn delete_of_running_instance_needs_force(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "busy").await;
    match p.delete_instance("busy", false).await {
        Err(ProviderError::InstanceRunning(id)) => assert_eq!(id, "busy"),
        other => panic!("expected InstanceRunning, got {other:?}"),
    }
    assert!(p.get_instance("busy").await.unwrap().is_some(), "a refused delete removes nothing");
    create(&p, "pending").await;
    assert!(matches!(p.delete_instance("pending", false).await, Err(ProviderError::InstanceRunning(_))));
    assert_eq!(p.delete_instance("busy", true).await.unwrap(), vec!["busy".to_string()]);
    assert_eq!(p.delete_instance("pending", true).await.unwrap(), vec!["pending".to_string()]);
    assert!(gone(&p, "busy").await && gone(&p, "pending").await);
}

/// Children go with their parent; an unfinished child blocks an unforced delete and is
/// named in the refusal.
pub async fn delete_cascades_to_children(f: Factory) {
    let p = f.create_provider().await;
    parent_with_child(&p, "fam", "fam-kid").await;
    // Finish the parent; the child still runs.
    p.enqueue_message(external("fam", "end", "")).await.unwrap();
    let item = fetch_some(&p, "fam").await;
    p.commit_turn(
        &item.lock_token,
        turn(
            1,
            vec![ev(3, EventKind::OrchestrationCompleted { output: "o".into() })],
            InstanceState::Completed,
        ),
    )
    .await
    .unwrap();
    match p.delete_instance("fam", false).await {
        Err(ProviderError::InstanceRunning(id)) => assert_eq!(id, "fam-kid"),
        other => panic!("expected InstanceRunning naming the child, got {other:?}"),
    }
    assert!(
        p.get_instance("fam").await.unwrap().is_some() && p.get_instance("fam-kid").await.unwrap().is_some()
    );
    let deleted = p.delete_instance("fam", true).await.unwrap();
    assert_eq!(deleted, vec!["fam".to_string(), "fam-kid".to_string()]);
    assert!(gone(&p, "fam").await && gone(&p, "fam-kid").await);
}

/// A turn in flight on an instance that is deleted fails to commit and writes nothing: the
/// instance does not come back, nor do its activities or messages.
pub async fn delete_during_a_turn_wins(f: Factory) {
    let p = f.create_provider().await;
    instance_in(&p, "raced", NAME, InstanceState::Completed).await;
    p.enqueue_message(external("raced", "late", "")).await.unwrap();
    let item = fetch_some(&p, "raced").await;
    assert_eq!(p.delete_instance("raced", false).await.unwrap(), vec!["raced".to_string()]);
    let mut c = turn(1, vec![scheduled(3, "Act", "x")], InstanceState::Running);
    c.activities.push(work("raced", 1, 3, "Act", "x"));
    c.messages.push(external("other", "x", ""));
    assert_lock_lost(p.commit_turn(&item.lock_token, c).await, "commit after delete");
    assert!(gone(&p, "raced").await, "no resurrected instance");
    assert!(fetch_work(&p, LOCK).await.is_none());

    // Forced, on a running instance whose activity a worker holds.
    with_activities(&p, "raced-2", &[2]).await;
    let w = fetch_work(&p, LOCK).await.expect("work");
    p.enqueue_message(external("raced-2", "go", "")).await.unwrap();
    let item = fetch_some(&p, "raced-2").await;
    p.delete_instance("raced-2", true).await.unwrap();
    assert_lock_lost(
        p.commit_turn(&item.lock_token, turn(1, Vec::new(), InstanceState::Running)).await,
        "commit",
    );
    let done = p.complete_work_item(&w.lock_token, completion("raced-2", 2, "r")).await;
    assert!(done.is_err(), "completing deleted work fails: {done:?}");
    assert!(gone(&p, "raced-2").await, "the completion did not bring the instance back");
    fetch_none(&p).await;
}

/// Deletes racing turns of the same instances: each commit either lands before the delete
/// or fails, and afterwards nothing of any instance is left.
pub async fn concurrent_delete_and_commit_leave_nothing(f: Factory) {
    let p = f.create_provider().await;
    let ids: Vec<String> = (0..12).map(|i| format!("race-{i:02}")).collect();
    for id in &ids {
        instance_in(&p, id, NAME, InstanceState::Completed).await;
    }
    for id in &ids {
        p.enqueue_message(external(id, "late", "")).await.unwrap();
    }
    let mut items = Vec::new();
    for _ in &ids {
        items.push(fetch(&p).await.expect("a late message"));
    }
    let mut tasks = Vec::new();
    for item in items {
        let (p1, p2) = (p.clone(), p.clone());
        let id = item.instance.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = turn(1, vec![scheduled(3, "Act", "x")], InstanceState::Completed);
            c.activities.push(work(&item.instance, 1, 3, "Act", "x"));
            p1.commit_turn(&item.lock_token, c).await
        }));
        tasks.push(tokio::spawn(async move { p2.delete_instance(&id, false).await.map(|_| ()) }));
    }
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) | Err(ProviderError::LockLost(_)) => {}
            Err(e) => panic!("unexpected error in the race: {e:?}"),
        }
    }
    for id in &ids {
        assert!(gone(&p, id).await, "{id} half deleted or resurrected");
    }
    assert!(fetch_work(&p, LOCK).await.is_none(), "no orphaned activity");
    assert_eq!(p.count_instances(&InstanceFilter::default()).await.unwrap(), 0);
}

/// A bulk delete removes only finished instances the filter selects, a bounded batch at a
/// time, skipping (and reporting) one whose child still runs.
pub async fn bulk_delete_goes_in_bounded_batches(f: Factory) {
    let p = f.create_provider().await;
    for i in 0..7 {
        instance_in(&p, &format!("done-{i}"), NAME, InstanceState::Completed).await;
    }
    instance_in(&p, "failed-0", NAME, InstanceState::Failed).await;
    instance_in(&p, "running-0", NAME, InstanceState::Running).await;
    parent_with_child(&p, "dad", "dad-kid").await;
    p.enqueue_message(external("dad", "end", "")).await.unwrap();
    let item = fetch_some(&p, "dad").await;
    p.commit_turn(
        &item.lock_token,
        turn(
            1,
            vec![ev(3, EventKind::OrchestrationCompleted { output: "o".into() })],
            InstanceState::Completed,
        ),
    )
    .await
    .unwrap();

    let completed = InstanceFilter::default().state(InstanceState::Completed);
    let mut after: Option<InstanceCursor> = None;
    let (mut deleted, mut skipped, mut batches) = (0, 0, 0);
    loop {
        let b = p.delete_instances(&completed, after.as_ref(), 3).await.unwrap();
        assert!(b.deleted <= 3 * 2, "a batch is bounded (each root may take its children)");
        deleted += b.deleted;
        skipped += b.skipped;
        batches += 1;
        match b.next {
            Some(n) => after = Some(n),
            None => break,
        }
        assert!(batches < 20, "bulk delete never ended");
    }
    assert_eq!(deleted, 7, "the seven completed instances");
    assert_eq!(skipped, 1, "the completed parent of a running child");
    assert!(batches >= 3, "three-instance batches: {batches}");
    for i in 0..7 {
        assert!(gone(&p, &format!("done-{i}")).await);
    }
    for kept in ["failed-0", "running-0", "dad", "dad-kid"] {
        assert!(p.get_instance(kept).await.unwrap().is_some(), "{kept} kept");
    }
    // The store never selects unfinished instances, even when asked to.
    let b = p
        .delete_instances(&InstanceFilter::default().state(InstanceState::Running), None, 100)
        .await
        .unwrap();
    assert_eq!((b.deleted, b.next), (0, None));
    // Without a state filter: every finished instance (the parent still skipped).
    let b = p.delete_instances(&InstanceFilter::default(), None, 100).await.unwrap();
    assert_eq!((b.deleted, b.skipped), (1, 1));
    assert!(gone(&p, "failed-0").await);
    assert_eq!(p.count_instances(&InstanceFilter::default()).await.unwrap(), 3);
}

/// A bulk delete honours time filters: instances finished before a point go, later ones stay.
pub async fn bulk_delete_by_finish_time(f: Factory) {
    let p = f.create_provider().await;
    instance_in(&p, "early", NAME, InstanceState::Completed).await;
    sleep_ms(5).await;
    let cut = now();
    sleep_ms(5).await;
    instance_in(&p, "late", NAME, InstanceState::Failed).await;
    let b = p.delete_instances(&InstanceFilter::default().updated_before_ms(cut), None, 10).await.unwrap();
    assert_eq!(b.deleted, 1);
    assert!(gone(&p, "early").await);
    assert!(p.get_instance("late").await.unwrap().is_some());
}

/// Continue `instance` as new until it has `executions` executions (the last running).
async fn executions_chain(p: &Arc<dyn Provider>, instance: &str, executions: u64) {
    started_instance(p, instance).await;
    for e in 1..executions {
        p.enqueue_message(external(instance, "go", "")).await.unwrap();
        let item = fetch_some(p, instance).await;
        let mut c = turn(
            e,
            vec![ev(2, EventKind::OrchestrationContinuedAsNew { input: "next".into(), version: V1.into() })],
            InstanceState::Running,
        );
        c.next_execution_id = Some(e + 1);
        c.messages.push(OutboundMessage {
            instance: instance.into(),
            message: OrchestratorMessage::ContinueAsNew {
                execution_id: e + 1,
                name: NAME.into(),
                version: V1.into(),
                input: "next".into(),
                parent: None,
                queue_messages: Vec::new(),
            },
            visible_at_ms: None,
        });
        p.commit_turn(&item.lock_token, c).await.unwrap();
        let item = fetch_some(p, instance).await;
        p.commit_turn(&item.lock_token, turn(e + 1, vec![started("next")], InstanceState::Running))
            .await
            .unwrap();
        sleep_ms(2).await;
    }
}

/// Pruning keeps the current execution and the last N, or removes those finished before a
/// time; the current execution's history is untouched.
pub async fn prune_keeps_the_current_execution(f: Factory) {
    let p = f.create_provider().await;
    executions_chain(&p, "can", 5).await;
    let ids = |ex: Vec<ExecutionRecord>| ex.into_iter().map(|e| e.execution_id).collect::<Vec<_>>();
    assert_eq!(ids(p.list_executions("can").await.unwrap()), vec![1, 2, 3, 4, 5]);
    let none_before = PruneOptions { keep_last: None, finished_before_ms: Some(1) };
    assert_eq!(p.prune_executions("can", &none_before).await.unwrap(), 0);
    let keep_two = PruneOptions { keep_last: Some(2), finished_before_ms: None };
    assert_eq!(p.prune_executions("can", &keep_two).await.unwrap(), 3);
    assert_eq!(ids(p.list_executions("can").await.unwrap()), vec![4, 5]);
    assert!(p.read_history("can", Some(1)).await.unwrap().is_empty(), "pruned history is gone");
    assert_eq!(p.read_history("can", Some(4)).await.unwrap().len(), 2);
    assert_eq!(p.read_history("can", None).await.unwrap().len(), 1, "current history untouched");
    let all_old = PruneOptions { keep_last: None, finished_before_ms: Some(now() + 1000) };
    assert_eq!(p.prune_executions("can", &all_old).await.unwrap(), 1);
    assert_eq!(ids(p.list_executions("can").await.unwrap()), vec![5]);
    // The instance still runs on.
    p.enqueue_message(external("can", "go", "")).await.unwrap();
    let item = fetch_some(&p, "can").await;
    assert_eq!(item.record.execution_id, 5);
    assert_eq!(item.history.len(), 1);
    assert!(matches!(p.prune_executions("nobody", &keep_two).await, Err(ProviderError::InstanceNotFound(_))));
}

/// Terminating a running instance fails its execution with a `Terminated` event, drops its
/// queued messages, timers and activities, and makes a turn in flight fail to commit.
pub async fn terminate_ends_a_running_instance(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "stop", &[2]).await;
    let fire_at = now() + 3_600_000;
    p.enqueue_message(OutboundMessage {
        instance: "stop".into(),
        message: OrchestratorMessage::TimerFired { execution_id: 1, event_id: 3, fire_at_ms: fire_at },
        visible_at_ms: Some(fire_at),
    })
    .await
    .unwrap();
    p.enqueue_message(external("stop", "go", "")).await.unwrap();
    let in_flight = fetch_some(&p, "stop").await;
    match p.terminate_instance("stop", "operator said so").await.unwrap() {
        TerminateOutcome::Terminated(ids) => assert_eq!(ids, vec!["stop".to_string()]),
        other => panic!("expected Terminated, got {other:?}"),
    }
    let r = p.get_instance("stop").await.unwrap().unwrap();
    assert_eq!(r.state, InstanceState::Failed);
    let err = r.error.expect("error recorded");
    assert_eq!((err.category, err.message.as_str()), (ErrorCategory::Terminated, "operator said so"));
    let history = p.read_history("stop", None).await.unwrap();
    assert_eq!(history.len(), 3);
    match &history[2].kind {
        EventKind::OrchestrationFailed { details } => assert_eq!(details.category, ErrorCategory::Terminated),
        other => panic!("expected OrchestrationFailed, got {other:?}"),
    }
    assert_eq!(history[2].event_id, 3);
    assert_lock_lost(
        p.commit_turn(&in_flight.lock_token, turn(1, vec![scheduled(3, "Act", "x")], InstanceState::Running))
            .await,
        "commit after terminate",
    );
    assert!(fetch_work(&p, LOCK).await.is_none(), "activities dropped");
    let d = p.describe_instance("stop").await.unwrap().unwrap();
    assert!(d.queued_messages.is_empty() && d.pending_timers.is_empty(), "{d:?}");
    assert_eq!(d.executions[0].state, InstanceState::Failed);
    assert_eq!(
        p.terminate_instance("stop", "again").await.unwrap(),
        TerminateOutcome::AlreadyFinished(InstanceState::Failed)
    );
    assert!(matches!(p.terminate_instance("nobody", "x").await, Err(ProviderError::InstanceNotFound(_))));
    // Never started: failed without any history.
    create(&p, "never").await;
    assert!(matches!(p.terminate_instance("never", "x").await.unwrap(), TerminateOutcome::Terminated(_)));
    assert_eq!(p.get_instance("never").await.unwrap().unwrap().state, InstanceState::Failed);
    assert!(p.read_history("never", None).await.unwrap_or_default().is_empty());
    fetch_none(&p).await;
}

/// Terminating a child tells its waiting parent; terminating a parent takes its unfinished
/// children with it.
pub async fn terminate_tells_the_parent_and_takes_the_children(f: Factory) {
    let p = f.create_provider().await;
    parent_with_child(&p, "boss", "boss-kid").await;
    assert!(matches!(
        p.terminate_instance("boss-kid", "stop the kid").await.unwrap(),
        TerminateOutcome::Terminated(_)
    ));
    let item = fetch_some(&p, "boss").await;
    match &item.messages[..] {
        [OrchestratorMessage::SubOrchestrationFailed { execution_id: 1, event_id: 2, details }] => {
            assert_eq!(
                (details.category, details.message.as_str()),
                (ErrorCategory::Terminated, "stop the kid")
            );
        }
        other => panic!("expected the child's failure for the parent, got {other:?}"),
    }
    p.abandon_orchestration_item(&item.lock_token, Some(Duration::from_secs(60)), None, Attempt::GivenBack)
        .await
        .unwrap();

    parent_with_child(&p, "chief", "chief-kid").await;
    match p.terminate_instance("chief", "all of it").await.unwrap() {
        TerminateOutcome::Terminated(ids) => {
            assert_eq!(ids, vec!["chief".to_string(), "chief-kid".to_string()])
        }
        other => panic!("expected Terminated, got {other:?}"),
    }
    for id in ["chief", "chief-kid"] {
        let r = p.get_instance(id).await.unwrap().unwrap();
        assert_eq!(r.error.map(|e| e.category), Some(ErrorCategory::Terminated), "{id}");
    }
    // Nobody was sent a message for "chief": only "boss" (released above) has one.
    fetch_none(&p).await;
    assert_eq!(p.describe_instance("boss").await.unwrap().unwrap().queued_messages.len(), 1);
}

/// The summary counts instances per state and the depth of each queue.
pub async fn store_summary_counts_states_and_queues(f: Factory) {
    let p = f.create_provider().await;
    let s = p.store_summary().await.unwrap();
    assert!(s.instances.iter().all(|c| c.count == 0) && s.instances.len() == 4, "{s:?}");
    assert_eq!(s.orchestrator_queue, QueueDepth::default());
    instance_in(&p, "s-done", NAME, InstanceState::Completed).await;
    with_activities(&p, "s-work", &[2, 3, 4]).await;
    fetch_work(&p, LOCK).await.expect("work");
    create(&p, "s-pending").await;
    p.enqueue_message(delayed("s-work", "later", now() + 3_600_000)).await.unwrap();
    sleep_ms(20).await;
    let s = p.store_summary().await.unwrap();
    let count = |state| s.instances.iter().find(|c| c.state == state).map(|c| c.count);
    assert_eq!(count(InstanceState::Pending), Some(1));
    assert_eq!(count(InstanceState::Running), Some(1));
    assert_eq!(count(InstanceState::Completed), Some(1));
    assert_eq!(count(InstanceState::Failed), Some(0));
    assert_eq!(
        (s.orchestrator_queue.ready, s.orchestrator_queue.delayed, s.orchestrator_queue.locked),
        (1, 1, 0)
    );
    assert!(s.orchestrator_queue.oldest_ready_age_ms.is_some_and(|a| a >= 20), "{s:?}");
    assert_eq!((s.activity_queue.ready, s.activity_queue.locked, s.activity_queue.delayed), (2, 1, 0));
    assert!(s.activity_queue.oldest_ready_age_ms.is_some());
    assert!(s.taken_at_ms >= now() - 60_000);
    // The live summary: the same queues, instance counts for unfinished states only.
    let live = p.live_summary().await.unwrap();
    let states: Vec<(InstanceState, u64)> = live.instances.iter().map(|c| (c.state, c.count)).collect();
    assert_eq!(states, [(InstanceState::Pending, 1), (InstanceState::Running, 1)]);
    let depth = |q: &QueueDepth| (q.ready, q.locked, q.delayed);
    assert_eq!(depth(&live.activity_queue), depth(&s.activity_queue));
    assert_eq!(depth(&live.orchestrator_queue), depth(&s.orchestrator_queue));
    assert_eq!(live.sessions, s.sessions);
}
