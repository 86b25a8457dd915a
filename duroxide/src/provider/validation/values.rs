//! Conformance tests for durable values: `commit_turn` keeps each instance's values from
//! the value events of its turns, `get_value` / `get_values` read them, and deleting,
//! pruning, exporting and importing treat them as part of the instance.

use super::support::*;
use super::*;

fn set(event_id: u64, key: &str, value: &str) -> Event {
    ev(event_id, EventKind::ValueSet { key: key.into(), value: value.into(), call_site: None })
}

fn cleared(event_id: u64, key: &str) -> Event {
    ev(event_id, EventKind::ValueCleared { key: key.into(), call_site: None })
}

/// Runs one more turn of the started instance with `events` (ids continue its history).
async fn value_turn(p: &Arc<dyn Provider>, instance: &str, events: Vec<Event>) {
    p.enqueue_message(external(instance, "go", "")).await.unwrap();
    let item = fetch_some(p, instance).await;
    p.commit_turn(&item.lock_token, turn(1, events, InstanceState::Running)).await.expect("commit");
}

fn map(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A turn's `ValueSet` / `ValueCleared` events are applied in order, in its commit; reads
/// return one value or all of them sorted by key; unknown keys and instances read as none.
pub async fn values_follow_the_turns_value_events(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "kv").await;
    assert_eq!(p.get_values("kv").await.unwrap(), map(&[]));
    // Set twice in one turn: the last write wins. Keys and values keep every character.
    let odd = "quote \" backslash \\ emoji \u{1F600} tab-free";
    value_turn(&p, "kv", vec![set(2, "b", "1"), set(3, "a", odd), set(4, "b", "2"), set(5, "Z", "z")]).await;
    assert_eq!(p.get_value("kv", "a").await.unwrap().as_deref(), Some(odd));
    assert_eq!(p.get_value("kv", "b").await.unwrap().as_deref(), Some("2"));
    assert_eq!(p.get_value("kv", "missing").await.unwrap(), None);
    assert_eq!(p.get_value("ghost", "a").await.unwrap(), None);
    assert_eq!(p.get_values("ghost").await.unwrap(), map(&[]));
    let all = p.get_values("kv").await.unwrap();
    assert_eq!(all, map(&[("Z", "z"), ("a", odd), ("b", "2")]));
    assert_eq!(all.keys().collect::<Vec<_>>(), ["Z", "a", "b"], "byte order");
    // A clear in a later turn; clearing a key that is not set changes nothing.
    value_turn(&p, "kv", vec![cleared(6, "b"), cleared(7, "never-set"), set(8, "c", "3")]).await;
    assert_eq!(p.get_values("kv").await.unwrap(), map(&[("Z", "z"), ("a", odd), ("c", "3")]));
    // Another instance's values are its own.
    started_instance(&p, "other").await;
    value_turn(&p, "other", vec![set(2, "a", "theirs")]).await;
    assert_eq!(p.get_value("kv", "a").await.unwrap().as_deref(), Some(odd));
    assert_eq!(p.get_value("other", "a").await.unwrap().as_deref(), Some("theirs"));
}

/// `ValuesCleared` removes every key; `ValuesCarried` (the start of a continued execution)
/// replaces the values with what it carries.
pub async fn values_cleared_and_carried(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "kc").await;
    value_turn(&p, "kc", vec![set(2, "a", "1"), set(3, "b", "2")]).await;
    value_turn(&p, "kc", vec![ev(4, EventKind::ValuesCleared { call_site: None }), set(5, "c", "3")]).await;
    assert_eq!(p.get_values("kc").await.unwrap(), map(&[("c", "3")]));
    let carried = map(&[("x", "9"), ("y", "8")]);
    value_turn(&p, "kc", vec![ev(6, EventKind::ValuesCarried { values: carried.clone() })]).await;
    assert_eq!(p.get_values("kc").await.unwrap(), carried);
}

/// A commit whose lock was lost writes no values.
pub async fn stale_commit_writes_no_values(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "ks").await;
    p.enqueue_message(external("ks", "go", "")).await.unwrap();
    let first = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    sleep_ms(450).await;
    let second = fetch_some(&p, "ks").await;
    let stale = turn(1, vec![set(2, "a", "stale"), set(3, "b", "stale")], InstanceState::Running);
    assert_lock_lost(p.commit_turn(&first.lock_token, stale).await, "stale commit");
    assert_eq!(p.get_values("ks").await.unwrap(), map(&[]));
    let fresh = turn(1, vec![set(2, "a", "fresh")], InstanceState::Running);
    p.commit_turn(&second.lock_token, fresh).await.unwrap();
    assert_eq!(p.get_values("ks").await.unwrap(), map(&[("a", "fresh")]));
}

/// Deleting an instance removes its values (a new instance with its id starts with none);
/// pruning old executions keeps them.
pub async fn values_go_with_deleted_instances_and_stay_after_prune(f: Factory) {
    let p = f.create_provider().await;
    let item = continue_as_new(&p, "kd").await;
    let carried = map(&[("k", "v")]);
    let events = vec![started_v2("next"), ev(2, EventKind::ValuesCarried { values: carried.clone() })];
    let mut c = turn(2, events, InstanceState::Running);
    c.update.version = "2.0.0".into();
    p.commit_turn(&item.lock_token, c).await.unwrap();
    let pruned = p.prune_executions("kd", &PruneOptions { keep_last: Some(1), ..Default::default() }).await;
    assert_eq!(pruned.unwrap(), 1, "execution 1 pruned");
    assert_eq!(p.get_values("kd").await.unwrap(), carried, "pruning keeps the values");
    p.delete_instance("kd", true).await.unwrap();
    assert_eq!(p.get_value("kd", "k").await.unwrap(), None);
    assert_eq!(p.get_values("kd").await.unwrap(), map(&[]));
    started_instance(&p, "kd").await;
    assert_eq!(p.get_values("kd").await.unwrap(), map(&[]), "a new instance with the id starts empty");
}

/// Export carries the values and import restores them.
pub async fn values_travel_with_export_and_import(f: Factory) {
    let source = f.create_provider().await;
    started_instance(&source, "kt").await;
    value_turn(&source, "kt", vec![set(2, "b", "2"), set(3, "a", "1")]).await;
    let snap = source.export_instance("kt").await.unwrap();
    assert_eq!(snap.values, map(&[("a", "1"), ("b", "2")]));
    let target = f.create_provider().await;
    target.import_instance(snap).await.unwrap();
    assert_eq!(target.get_values("kt").await.unwrap(), map(&[("a", "1"), ("b", "2")]));
    assert_eq!(target.get_value("kt", "a").await.unwrap().as_deref(), Some("1"));
}
