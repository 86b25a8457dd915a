//! Conformance tests for event queues and progress status: the custom status version a
//! commit raises, and queue messages (sent, and carried on a continue-as-new) kept intact
//! and in order. Not here: plain custom status writes (`commit`).

use super::support::*;
use super::*;

fn status_set(event_id: u64, status: &str) -> Event {
    ev(event_id, EventKind::CustomStatusSet { status: Some(status.into()) })
}

async fn version(p: &Arc<dyn Provider>, instance: &str) -> u64 {
    p.get_instance(instance).await.unwrap().unwrap().custom_status_version
}

/// The status version starts at 0 and rises by the number of `CustomStatusSet` events each
/// commit appends (turns without one leave it); it survives a continue-as-new and is
/// listed, exported and imported with the record.
pub async fn custom_status_version_counts_status_changes(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "sv").await;
    assert_eq!(version(&p, "sv").await, 0);
    let item = fetch_some(&p, "sv").await;
    let mut c = turn(1, vec![started("x"), status_set(2, "a"), status_set(3, "b")], InstanceState::Running);
    c.update.custom_status = Some(Some("b".into()));
    p.commit_turn(&item.lock_token, c).await.unwrap();
    assert_eq!(version(&p, "sv").await, 2);
    p.enqueue_message(external("sv", "e", "")).await.unwrap();
    let item = fetch_some(&p, "sv").await;
    let mut c = turn(1, vec![scheduled(4, "A", "a")], InstanceState::Running);
    c.update.custom_status = Some(Some("b".into()));
    p.commit_turn(&item.lock_token, c).await.unwrap();
    assert_eq!(version(&p, "sv").await, 2, "a turn without a status change keeps the version");
    p.enqueue_message(external("sv", "e", "")).await.unwrap();
    let item = fetch_some(&p, "sv").await;
    let mut c = turn(
        1,
        vec![
            status_set(5, "c"),
            ev(6, EventKind::OrchestrationContinuedAsNew { input: "n".into(), version: V1.into() }),
        ],
        InstanceState::Running,
    );
    c.update.custom_status = Some(Some("c".into()));
    c.next_execution_id = Some(2);
    p.commit_turn(&item.lock_token, c).await.unwrap();
    let r = p.get_instance("sv").await.unwrap().unwrap();
    assert_eq!((r.custom_status_version, r.custom_status.as_deref()), (3, Some("c")));
    let page = p.list_instances_page(&InstanceFilter::default(), &PageRequest::default()).await.unwrap();
    assert_eq!(page.instances.iter().find(|i| i.instance == "sv").map(|i| i.custom_status_version), Some(3));
    let snap = p.export_instance("sv").await.unwrap();
    assert_eq!(snap.record.custom_status_version, 3);
    let target = f.create_provider().await;
    target.import_instance(snap).await.unwrap();
    assert_eq!(version(&target, "sv").await, 3);
}

/// Queue messages come back from a fetch exactly as sent, in order with the instance's
/// other messages; the unread messages a continue-as-new carries ride intact on its
/// `ContinueAsNew` message.
pub async fn queue_messages_kept_in_order(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "q").await;
    let queued = |queue: &str, data: &str| OutboundMessage {
        instance: "q".into(),
        message: OrchestratorMessage::QueueMessage { queue: queue.into(), data: data.into() },
        visible_at_ms: None,
    };
    p.enqueue_message(queued("jobs", "1")).await.unwrap();
    p.enqueue_message(external("q", "ping", "")).await.unwrap();
    p.enqueue_message(queued("jobs", "2")).await.unwrap();
    let item = fetch_some(&p, "q").await;
    assert_eq!(
        item.messages,
        vec![queued("jobs", "1").message, external("q", "ping", "").message, queued("jobs", "2").message]
    );
    let carried = vec![
        QueueMessage { queue: "jobs".into(), data: "2".into() },
        QueueMessage { queue: "other".into(), data: "x".into() },
    ];
    let next = OrchestratorMessage::ContinueAsNew {
        execution_id: 2,
        name: NAME.into(),
        version: V1.into(),
        input: "n".into(),
        parent: None,
        queue_messages: carried,
    };
    let mut c = turn(
        1,
        vec![ev(2, EventKind::OrchestrationContinuedAsNew { input: "n".into(), version: V1.into() })],
        InstanceState::Running,
    );
    c.next_execution_id = Some(2);
    c.messages.push(OutboundMessage { instance: "q".into(), message: next.clone(), visible_at_ms: None });
    p.commit_turn(&item.lock_token, c).await.unwrap();
    p.enqueue_message(queued("jobs", "3")).await.unwrap();
    let item = fetch_some(&p, "q").await;
    assert_eq!(item.messages, vec![next, queued("jobs", "3").message]);
}
