//! Conformance tests for export and import of instances between stores. Not here: the
//! transfer API over them (`crate::transfer`).

use super::support::*;
use super::*;

// Export and import

/// Exporting an unknown instance is `InstanceNotFound`.
pub async fn export_unknown_instance_fails(f: Factory) {
    let p = f.create_provider().await;
    match p.export_instance("ghost").await {
        Err(ProviderError::InstanceNotFound(_)) => {}
        other => panic!("expected InstanceNotFound, got {other:?}"),
    }
}

/// An instance with two executions, a pending delayed message and queued work.
async fn rich_instance(p: &Arc<dyn Provider>, instance: &str) {
    let item = continue_as_new(p, instance).await;
    let mut c = turn(2, vec![started_v2("next"), scheduled(2, "Act", "in-2")], InstanceState::Running);
    c.update.version = "2.0.0".into();
    c.update.custom_status = Some(Some("halfway".into()));
    let mut w = work(instance, 2, 2, "Act", "in-2");
    w.execution_id = 2;
    c.activities.push(w);
    p.commit_turn(&item.lock_token, c).await.unwrap();
    p.enqueue_message(delayed(instance, "later", now() + 60_000)).await.unwrap();
}

/// Export then import into a fresh store gives the same instance, histories and queues.
pub async fn export_import_roundtrip(f: Factory) {
    let source = f.create_provider().await;
    rich_instance(&source, "moved").await;
    let snap = source.export_instance("moved").await.unwrap();
    assert_eq!(snap.executions.len(), 2);
    assert_eq!(snap.executions[0].history.len(), 2);
    assert_eq!(snap.executions[1].history.len(), 2);
    assert_eq!(snap.messages.len(), 1);
    assert_eq!(snap.activities.len(), 1);
    assert_eq!(snap.record.custom_status.as_deref(), Some("halfway"));
    let target = f.create_provider().await;
    target.import_instance(snap.clone()).await.unwrap();
    let mut again = target.export_instance("moved").await.unwrap();
    again.record.updated_at_ms = snap.record.updated_at_ms;
    assert_eq!(again, snap);
    assert_eq!(target.read_history("moved", Some(1)).await.unwrap(), snap.executions[0].history);
    assert_eq!(target.list_executions("moved").await.unwrap().len(), 2);
}

/// Importing over an existing id fails with `InstanceExists` and changes nothing.
pub async fn import_existing_instance_fails(f: Factory) {
    let p = f.create_provider().await;
    rich_instance(&p, "twice").await;
    let snap = p.export_instance("twice").await.unwrap();
    match p.import_instance(snap.clone()).await {
        Err(ProviderError::InstanceExists(_)) => {}
        other => panic!("expected InstanceExists, got {other:?}"),
    }
    let mut again = p.export_instance("twice").await.unwrap();
    again.record.updated_at_ms = snap.record.updated_at_ms;
    assert_eq!(again, snap);
}

/// An imported instance's queued work and messages are runnable on the new store.
pub async fn imported_instance_continues(f: Factory) {
    let source = f.create_provider().await;
    rich_instance(&source, "cont").await;
    source.enqueue_message(external("cont", "now", "")).await.unwrap();
    let snap = source.export_instance("cont").await.unwrap();
    let target = f.create_provider().await;
    target.import_instance(snap).await.unwrap();
    let w = fetch_work(&target, LOCK).await.expect("imported work is queued");
    assert_eq!((w.execution_id, w.event_id), (2, 2));
    let item = fetch_some(&target, "cont").await;
    assert_eq!(names(&item.messages), vec!["now"], "the delayed message keeps its due time");
    assert_eq!(item.record.execution_id, 2);
    assert_eq!(item.history.len(), 2);
}
