//! Conformance tests for payloads, identifier limits and unreadable data: large and unusual
//! values round-trip, ids and names at the shared limits work, and corrupt rows are reported
//! and isolated instead of blocking other instances. Not here: filters (`filters`).

use super::support::*;
use super::*;

// Payloads and unreadable data

const MIB: usize = 1024 * 1024;

/// A 1 MiB input survives create and fetch.
pub async fn large_input_roundtrips(f: Factory) {
    let p = f.create_provider().await;
    let input = big(MIB);
    p.create_instance("big", NAME, None, &input).await.unwrap();
    let item = fetch_some(&p, "big").await;
    match &item.messages[..] {
        [OrchestratorMessage::StartOrchestration { input: got, .. }] => {
            assert!(*got == input, "input changed")
        }
        other => panic!("unexpected {}", other.len()),
    }
}

/// A 1 MiB event survives commit and read.
pub async fn large_event_roundtrips(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "bigev").await;
    let item = fetch_some(&p, "bigev").await;
    let events = vec![started(&big(MIB)), scheduled(2, "A", &big(MIB))];
    p.commit_turn(&item.lock_token, turn(1, events.clone(), InstanceState::Running)).await.unwrap();
    assert!(p.read_history("bigev", None).await.unwrap() == events, "large history changed");
}

/// 1 MiB activity input and result survive the worker queue.
pub async fn large_activity_payloads_roundtrip(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "bigact").await;
    let item = fetch_some(&p, "bigact").await;
    let input = big(MIB);
    let mut c = turn(1, vec![started("x"), scheduled(2, "A", &input)], InstanceState::Running);
    c.activities.push(work("bigact", 1, 2, "A", &input));
    p.commit_turn(&item.lock_token, c).await.unwrap();
    let w = fetch_work(&p, LOCK).await.unwrap();
    assert!(w.input == input, "activity input changed");
    let result = big(MIB + 7);
    p.complete_work_item(&w.lock_token, completion("bigact", 2, &result)).await.unwrap();
    match &fetch_some(&p, "bigact").await.messages[..] {
        [OrchestratorMessage::ActivityCompleted { result: got, .. }] => {
            assert!(*got == result, "result changed")
        }
        other => panic!("unexpected {} messages", other.len()),
    }
}

/// Non-ASCII text, NUL-free control characters and JSON-looking strings are kept exactly.
pub async fn unicode_payloads_roundtrip(f: Factory) {
    let p = f.create_provider().await;
    let input = "héllo ✓ 日本語 🚀 \"quoted\" \\ back\tslash\n{\"json\": [1,2]}";
    p.create_instance("uni", NAME, None, input).await.unwrap();
    let item = fetch_some(&p, "uni").await;
    assert!(
        matches!(&item.messages[0], OrchestratorMessage::StartOrchestration { input: got, .. } if got == input)
    );
    let events = vec![started(input), scheduled(2, input, input)];
    p.commit_turn(&item.lock_token, turn(1, events.clone(), InstanceState::Running)).await.unwrap();
    assert_eq!(p.read_history("uni", None).await.unwrap(), events);
}

/// Prepares an instance with one readable event and asks the factory to store `raw` as
/// event 2. Returns false when the factory cannot.
async fn with_raw_event(f: &Factory, p: &Arc<dyn Provider>, instance: &str, raw: &str) -> bool {
    started_instance(p, instance).await;
    if !f.insert_raw_history_event(instance, 1, 2, raw).await {
        eprintln!("factory cannot write raw history rows; unreadable-history check skipped");
        return false;
    }
    true
}

/// Unreadable history does not fail the fetch: it is reported in `history_error`.
pub async fn unreadable_history_sets_history_error(f: Factory) {
    let p = f.create_provider().await;
    if !with_raw_event(&f, &p, "bad", "{ this is not json").await {
        return;
    }
    p.enqueue_message(external("bad", "e", "")).await.unwrap();
    let item = fetch_some(&p, "bad").await;
    assert!(item.history_error.is_some(), "history_error must be set");
    assert!(item.history.is_empty(), "history must be empty when unreadable");
    assert_eq!(item.history_len, 2, "history_len counts stored events");
    assert_eq!(names(&item.messages), vec!["e"]);
}

/// An instance row with an unknown state fails neither a batch fetch (it comes with
/// `history_error`, so the runtime fails it) nor the counts; only reading that instance's
/// record is `Corrupt`.
pub async fn corrupt_instance_state_is_isolated(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "bad").await;
    create(&p, "good").await;
    if !f.set_raw_instance_state("bad", "NotAState").await {
        return;
    }
    let counts = p.count_instances_by_version().await.expect("counts despite the corrupt row");
    assert_eq!(counts.iter().map(|c| c.count).sum::<u64>(), 1, "{counts:?}");
    assert!(matches!(p.get_instance("bad").await, Err(ProviderError::Corrupt(_))));
    assert!(p.get_instance("good").await.unwrap().is_some());
    let items = p.fetch_orchestration_items_cached(LOCK, &all(), &|_| None, 10).await.expect("fetch");
    let bad = items.iter().find(|i| i.instance == "bad").expect("the corrupt instance is fetched");
    assert!(bad.history_error.as_deref().unwrap_or("").contains("NotAState"), "{:?}", bad.history_error);
    let good = match items.iter().find(|i| i.instance == "good") {
        Some(item) => item.clone(),
        None => fetch_some(&p, "good").await,
    };
    assert!(good.history_error.is_none());
    // Failing the corrupt instance rewrites its state.
    p.commit_turn(&bad.lock_token, turn(1, vec![started("input")], InstanceState::Failed)).await.unwrap();
    assert_eq!(p.get_instance("bad").await.unwrap().unwrap().state, InstanceState::Failed);
}

/// Ids and names at the shared limits ([`MAX_INSTANCE_ID_BYTES`], [`MAX_NAME_BYTES`],
/// [`MAX_EVENT_NAME_BYTES`]), of text that does not compress, are stored, fetched and
/// finished like any other (every index and notification of the store holds them).
pub async fn identifiers_at_the_limits_work(f: Factory) {
    let p = f.create_provider().await;
    let text = |len: usize| {
        let mut s = String::new();
        while s.len() < len {
            s.push_str(&uuid::Uuid::new_v4().simple().to_string());
        }
        s.truncate(len);
        s
    };
    let (id, name, event) = (text(MAX_INSTANCE_ID_BYTES), text(MAX_NAME_BYTES), text(MAX_EVENT_NAME_BYTES));
    p.create_instance(&id, &name, None, "in").await.expect("create at the limits");
    p.enqueue_message(external(&id, &event, "x")).await.expect("event at the limit");
    let item = fetch_some(&p, &id).await;
    assert_eq!(item.record.name, name);
    assert_eq!(names(&item.messages), vec!["StartOrchestration".to_string(), event.clone()]);
    let mut c = turn(1, vec![started("in")], InstanceState::Running);
    c.activities.push(work(&id, 1, 2, &text(MAX_NAME_BYTES), "a"));
    c.messages.push(OutboundMessage {
        instance: text(MAX_INSTANCE_ID_BYTES),
        message: OrchestratorMessage::StartOrchestration {
            name: name.clone(),
            version: None,
            input: String::new(),
            parent: None,
        },
        visible_at_ms: None,
    });
    p.commit_turn(&item.lock_token, c).await.expect("commit at the limits");
    let w = fetch_work(&p, LOCK).await.expect("activity at the limits");
    p.complete_work_item(&w.lock_token, completion(&id, 2, "r")).await.unwrap();
    // The child started by the turn is queued too: take both, finish ours.
    let items = p.fetch_orchestration_items_cached(LOCK, &all(), &|_| None, 10).await.unwrap();
    let item = items.into_iter().find(|i| i.instance == id).expect("completion visible");
    p.commit_turn(&item.lock_token, turn(1, Vec::new(), InstanceState::Completed))
        .await
        .expect("final commit");
    assert_eq!(p.get_instance(&id).await.unwrap().unwrap().state, InstanceState::Completed);
}

/// Reading unreadable history gives `ProviderError::Corrupt`.
pub async fn unreadable_history_read_is_corrupt(f: Factory) {
    let p = f.create_provider().await;
    if !with_raw_event(&f, &p, "bad", "not json at all").await {
        return;
    }
    match p.read_history("bad", None).await {
        Err(ProviderError::Corrupt(_)) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(p.get_instance("bad").await.unwrap().is_some(), "the record stays readable");
}

/// An event type from a newer duroxide is reported like corruption, not dropped.
pub async fn unknown_event_type_sets_history_error(f: Factory) {
    let p = f.create_provider().await;
    let raw = r#"{"event_id":2,"timestamp_ms":1,"type":"EventFromTheFuture","x":1}"#;
    if !with_raw_event(&f, &p, "future", raw).await {
        return;
    }
    p.enqueue_message(external("future", "e", "")).await.unwrap();
    let item = fetch_some(&p, "future").await;
    assert!(item.history_error.is_some());
    assert!(item.history.is_empty());
}
