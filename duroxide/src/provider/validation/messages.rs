//! Conformance tests for messages between instances: sub-orchestration starts (and the
//! reply when the child's id is taken) and messages a turn sends to other instances, now or
//! delayed. Not here: a turn's writes to its own instance (`commit`).

use super::support::*;
use super::*;

// Messages between instances

async fn commit_messages(p: &Arc<dyn Provider>, instance: &str, messages: Vec<OutboundMessage>) {
    p.enqueue_message(external(instance, "trigger", "")).await.unwrap();
    let item = fetch_some(p, instance).await;
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    c.messages = messages;
    p.commit_turn(&item.lock_token, c).await.unwrap();
}

/// A committed StartOrchestration creates the child with its parent and pinned version.
pub async fn start_message_creates_child_instance(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "parent").await;
    commit_messages(&p, "parent", vec![child_start("child", Some(link("parent")))]).await;
    let r = p.get_instance("child").await.unwrap().expect("child created");
    assert_eq!(r.name, "Child");
    assert_eq!(r.version.as_deref(), Some("3.0.0"));
    assert_eq!(r.parent_instance.as_deref(), Some("parent"));
    assert_eq!(r.state, InstanceState::Pending);
    let item = fetch_some(&p, "child").await;
    assert!(matches!(
        &item.messages[..],
        [OrchestratorMessage::StartOrchestration { parent: Some(l), .. }] if *l == link("parent")
    ));
}

/// Starting a child whose id exists sends the parent a `SubOrchestrationFailed`.
pub async fn start_to_existing_child_fails_parent(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "existing").await;
    started_instance(&p, "parent").await;
    commit_messages(&p, "parent", vec![child_start("existing", Some(link("parent")))]).await;
    let item = fetch_some(&p, "parent").await;
    match &item.messages[..] {
        [OrchestratorMessage::SubOrchestrationFailed { execution_id: 1, event_id: 2, details }] => {
            assert!(details.message.contains("existing"), "{details:?}")
        }
        other => panic!("expected SubOrchestrationFailed for the parent, got {other:?}"),
    }
    fetch_none(&p).await;
    assert_eq!(p.get_instance("existing").await.unwrap().unwrap().name, NAME, "existing instance untouched");
}

/// A detached start to an existing id is skipped without failing the commit.
pub async fn detached_start_to_existing_is_skipped(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "taken").await;
    started_instance(&p, "starter").await;
    commit_messages(&p, "starter", vec![child_start("taken", None)]).await;
    fetch_none(&p).await;
}

/// Messages to unknown instances are dropped; the commit succeeds.
pub async fn message_to_unknown_instance_is_dropped(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "sender").await;
    commit_messages(&p, "sender", vec![external("nobody", "e", "")]).await;
    assert!(p.get_instance("nobody").await.unwrap().is_none());
    fetch_none(&p).await;
}

/// Messages to other existing instances are delivered.
pub async fn message_to_other_instance_is_delivered(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "to").await;
    started_instance(&p, "from").await;
    let done = OutboundMessage {
        instance: "to".into(),
        message: OrchestratorMessage::SubOrchestrationCompleted {
            execution_id: 1,
            event_id: 5,
            result: "r".into(),
        },
        visible_at_ms: None,
    };
    commit_messages(&p, "from", vec![done.clone()]).await;
    assert_eq!(fetch_some(&p, "to").await.messages, vec![done.message]);
}

/// Delayed messages to other instances honour their visibility time.
pub async fn delayed_message_to_other_instance(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "target").await;
    started_instance(&p, "src").await;
    commit_messages(&p, "src", vec![delayed("target", "later", now() + 300)]).await;
    fetch_none(&p).await;
    sleep_ms(450).await;
    assert_eq!(names(&fetch_some(&p, "target").await.messages), vec!["later"]);
}
