//! Conformance tests for instances: creation, records, listing, status notes, and
//! executions across continue-as-new. Not here: queue behaviour (`queues`) or commits (`commit`).

use super::support::*;
use super::*;

// Instances

/// `create_instance` enqueues a StartOrchestration with the name, version and input.
pub async fn create_instance_enqueues_start(f: Factory) {
    let p = f.create_provider().await;
    p.create_instance("i1", NAME, None, "hello").await.unwrap();
    let item = fetch_some(&p, "i1").await;
    assert_eq!(
        item.messages,
        vec![OrchestratorMessage::StartOrchestration {
            name: NAME.into(),
            version: None,
            input: "hello".into(),
            parent: None
        }]
    );
    assert_eq!(item.record.state, InstanceState::Pending);
    assert_eq!(item.record.execution_id, 0);
    assert!(item.history.is_empty());
    assert_eq!(item.history_len, 0);
    assert!(item.history_error.is_none());
}

/// A second `create_instance` with the same id fails and enqueues nothing.
pub async fn create_instance_duplicate_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "dup").await;
    match p.create_instance("dup", "Other", None, "x").await {
        Err(ProviderError::InstanceExists(id)) => assert_eq!(id, "dup"),
        other => panic!("expected InstanceExists, got {other:?}"),
    }
    let item = fetch_some(&p, "dup").await;
    assert_eq!(item.messages.len(), 1, "the duplicate must not enqueue a start");
    assert_eq!(item.record.name, NAME);
}

/// A pinned version is stored on the record and in the start message.
pub async fn create_instance_with_pinned_version(f: Factory) {
    let p = f.create_provider().await;
    p.create_instance("pinned", NAME, Some("2.1.0"), "x").await.unwrap();
    let r = p.get_instance("pinned").await.unwrap().expect("record");
    assert_eq!(r.version.as_deref(), Some("2.1.0"));
    let item = fetch_some(&p, "pinned").await;
    assert!(matches!(
        &item.messages[0],
        OrchestratorMessage::StartOrchestration { version: Some(v), .. } if v == "2.1.0"
    ));
}

/// `get_instance` of an unknown id is `None`, not an error.
pub async fn get_unknown_instance_is_none(f: Factory) {
    let p = f.create_provider().await;
    assert_eq!(p.get_instance("nope").await.unwrap(), None);
}

/// Creation and update times are set, in ms since the epoch.
pub async fn instance_timestamps_are_set(f: Factory) {
    let p = f.create_provider().await;
    let before = now();
    create(&p, "t").await;
    let after = now();
    let r = p.get_instance("t").await.unwrap().unwrap();
    assert!(r.created_at_ms >= before.saturating_sub(1000) && r.created_at_ms <= after + 1000, "{r:?}");
    assert!(r.updated_at_ms >= r.created_at_ms, "{r:?}");
    assert_eq!(r.parent_instance, None);
    assert_eq!(r.output, None);
}

/// An empty store lists no instances.
pub async fn list_instances_empty_store(f: Factory) {
    let p = f.create_provider().await;
    assert!(p.list_instances().await.unwrap().is_empty());
}

/// `list_instances` returns ids oldest first.
pub async fn list_instances_in_creation_order(f: Factory) {
    let p = f.create_provider().await;
    for id in ["c-first", "a-second", "b-third"] {
        create(&p, id).await;
        sleep_ms(3).await;
    }
    assert_eq!(p.list_instances().await.unwrap(), vec!["c-first", "a-second", "b-third"]);
}

/// `enqueue_message` to an unknown instance fails with `InstanceNotFound`.
pub async fn enqueue_to_unknown_instance_fails(f: Factory) {
    let p = f.create_provider().await;
    match p.enqueue_message(external("ghost", "E", "x")).await {
        Err(ProviderError::InstanceNotFound(id)) => assert_eq!(id, "ghost"),
        other => panic!("expected InstanceNotFound, got {other:?}"),
    }
    assert!(p.list_instances().await.unwrap().is_empty());
}

/// Ids with quotes, spaces, unicode and long ids are stored exactly.
pub async fn unusual_instance_ids_roundtrip(f: Factory) {
    let p = f.create_provider().await;
    let ids = ["it's \"quoted\"", "with space", "ünïcødé-✓", "semi;colon--", &"x".repeat(300)];
    for id in ids {
        create(&p, id).await;
        assert_eq!(p.get_instance(id).await.unwrap().expect("record").instance, id);
    }
    let listed: HashSet<String> = p.list_instances().await.unwrap().into_iter().collect();
    for id in ids {
        assert!(listed.contains(id), "{id} missing from {listed:?}");
    }
}

/// `set_status_note` shows in the record.
pub async fn set_status_note_is_visible(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "n").await;
    p.set_status_note("n", "no node runs this").await.unwrap();
    assert_eq!(p.get_instance("n").await.unwrap().unwrap().status_note.as_deref(), Some("no node runs this"));
}

// Executions (continue-as-new)

/// `next_execution_id` switches the current execution; its history starts empty.
pub async fn continue_as_new_switches_execution(f: Factory) {
    let p = f.create_provider().await;
    let item = continue_as_new(&p, "can").await;
    assert_eq!(item.record.execution_id, 2);
    assert!(item.history.is_empty(), "execution 2 starts with no history: {:?}", item.history);
    assert_eq!(item.history_len, 0);
    assert!(matches!(item.messages[..], [OrchestratorMessage::ContinueAsNew { execution_id: 2, .. }]));
    assert_eq!(p.get_instance("can").await.unwrap().unwrap().version.as_deref(), Some("2.0.0"));
}

/// `list_executions` shows each execution with its version, state and event count.
pub async fn list_executions_after_continue_as_new(f: Factory) {
    let p = f.create_provider().await;
    let item = continue_as_new(&p, "le").await;
    p.commit_turn(&item.lock_token, turn(2, vec![started_v2("next")], InstanceState::Running)).await.unwrap();
    let ex = p.list_executions("le").await.unwrap();
    assert_eq!(ex.len(), 2, "{ex:?}");
    assert_eq!((ex[0].execution_id, ex[0].version.as_str(), ex[0].event_count), (1, V1, 2));
    assert_eq!(ex[0].state, InstanceState::Completed);
    assert_eq!((ex[1].execution_id, ex[1].version.as_str(), ex[1].event_count), (2, "2.0.0", 1));
    assert_eq!(ex[1].state, InstanceState::Running);
}

/// `read_history` reads any execution; `None` is the current one.
pub async fn read_history_per_execution(f: Factory) {
    let p = f.create_provider().await;
    let item = continue_as_new(&p, "rh").await;
    p.commit_turn(&item.lock_token, turn(2, vec![started_v2("next")], InstanceState::Running)).await.unwrap();
    let h1 = p.read_history("rh", Some(1)).await.unwrap();
    assert_eq!(h1.len(), 2);
    assert!(matches!(h1[1].kind, EventKind::OrchestrationContinuedAsNew { .. }));
    let h2 = p.read_history("rh", Some(2)).await.unwrap();
    assert_eq!(h2.len(), 1);
    assert_eq!(p.read_history("rh", None).await.unwrap(), h2);
    assert!(p.read_history("rh", Some(7)).await.unwrap().is_empty());
}

/// Event ids restart at 1 in a new execution without clashing with the old one.
pub async fn new_execution_history_restarts_at_one(f: Factory) {
    let p = f.create_provider().await;
    let item = continue_as_new(&p, "ra").await;
    let events = vec![started_v2("next"), ev(2, EventKind::OrchestrationCompleted { output: "end".into() })];
    let mut c = turn(2, events, InstanceState::Completed);
    c.update.version = "2.0.0".into();
    c.update.output = Some("end".into());
    p.commit_turn(&item.lock_token, c).await.unwrap();
    let r = p.get_instance("ra").await.unwrap().unwrap();
    assert_eq!((r.execution_id, r.state), (2, InstanceState::Completed));
    assert_eq!(p.read_history("ra", Some(2)).await.unwrap().len(), 2);
    assert_eq!(p.read_history("ra", Some(1)).await.unwrap().len(), 2);
}

/// The current history of an unknown instance is `InstanceNotFound`.
pub async fn read_history_unknown_instance_fails(f: Factory) {
    let p = f.create_provider().await;
    match p.read_history("ghost", None).await {
        Err(ProviderError::InstanceNotFound(_)) => {}
        other => panic!("expected InstanceNotFound, got {other:?}"),
    }
}

/// An unknown instance has no executions.
pub async fn list_executions_unknown_instance_is_empty(f: Factory) {
    let p = f.create_provider().await;
    assert!(p.list_executions("ghost").await.unwrap().is_empty());
    create(&p, "fresh").await;
    assert!(p.list_executions("fresh").await.unwrap().is_empty(), "no execution before the first turn");
}
