//! Shared fixtures for the conformance tests: timeouts, event and message builders, and
//! small fetch helpers. Not here: any test (each topic has its own file).

use super::*;

pub(super) const LOCK: Duration = Duration::from_secs(30);
pub(super) const SHORT: Duration = Duration::from_millis(300);
pub(super) const NAME: &str = "Orch";
pub(super) const V1: &str = "1.0.0";

pub(super) fn now() -> u64 {
    crate::now_ms()
}

pub(super) async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

pub(super) fn ev(event_id: u64, kind: EventKind) -> Event {
    Event { event_id, timestamp_ms: now(), kind }
}

pub(super) fn started_kind(input: &str) -> EventKind {
    EventKind::OrchestrationStarted {
        name: NAME.into(),
        version: V1.into(),
        input: input.into(),
        parent: None,
        duroxide_version: DUROXIDE_VERSION.into(),
    }
}

pub(super) fn started(input: &str) -> Event {
    ev(1, started_kind(input))
}

pub(super) fn scheduled(event_id: u64, name: &str, input: &str) -> Event {
    ev(
        event_id,
        EventKind::ActivityScheduled {
            name: name.into(),
            input: input.into(),
            call_site: None,
            session_id: None,
            tag: None,
        },
    )
}

pub(super) fn update(state: InstanceState) -> InstanceUpdate {
    InstanceUpdate {
        name: NAME.into(),
        version: V1.into(),
        state,
        output: None,
        error: None,
        custom_status: None,
    }
}

pub(super) fn turn(execution_id: u64, new_events: Vec<Event>, state: InstanceState) -> TurnCommit {
    TurnCommit {
        execution_id,
        new_events,
        update: update(state),
        next_execution_id: None,
        activities: Vec::new(),
        activity_lock_timeout: Duration::ZERO,
        cancelled_activities: Vec::new(),
        messages: Vec::new(),
    }
}

pub(super) fn work(
    instance: &str,
    execution_id: u64,
    event_id: u64,
    name: &str,
    input: &str,
) -> ActivityWorkItem {
    ActivityWorkItem {
        instance: instance.into(),
        execution_id,
        event_id,
        name: name.into(),
        input: input.into(),
        session_id: None,
        lock_token: String::new(),
        attempt: 0,
        session_claimed: false,
        visible_at_ms: 0,
        tag: None,
        orchestration_name: String::new(),
        orchestration_version: String::new(),
    }
}

pub(super) fn worker(id: &str) -> WorkerIdentity {
    WorkerIdentity { worker_id: id.into(), session_lease: LOCK, max_sessions: 64, tags: TagFilter::Untagged }
}

pub(super) fn external(instance: &str, name: &str, data: &str) -> OutboundMessage {
    OutboundMessage {
        instance: instance.into(),
        message: OrchestratorMessage::ExternalRaised { name: name.into(), data: data.into() },
        visible_at_ms: None,
    }
}

pub(super) fn delayed(instance: &str, name: &str, at: u64) -> OutboundMessage {
    OutboundMessage { visible_at_ms: Some(at), ..external(instance, name, "") }
}

pub(super) fn completion(instance: &str, event_id: u64, result: &str) -> OutboundMessage {
    OutboundMessage {
        instance: instance.into(),
        message: OrchestratorMessage::ActivityCompleted { execution_id: 1, event_id, result: result.into() },
        visible_at_ms: None,
    }
}

pub(super) fn all() -> FetchFilter {
    FetchFilter::default()
}

pub(super) async fn create(p: &Arc<dyn Provider>, instance: &str) {
    p.create_instance(instance, NAME, None, "input").await.expect("create_instance");
}

pub(super) async fn fetch(p: &Arc<dyn Provider>) -> Option<OrchestrationItem> {
    p.fetch_orchestration_item(LOCK, &all()).await.expect("fetch_orchestration_item")
}

pub(super) async fn fetch_some(p: &Arc<dyn Provider>, instance: &str) -> OrchestrationItem {
    let item = fetch(p).await.unwrap_or_else(|| panic!("expected a batch for '{instance}', got none"));
    assert_eq!(item.instance, instance, "fetched the wrong instance");
    item
}

pub(super) async fn fetch_none(p: &Arc<dyn Provider>) {
    if let Some(item) = fetch(p).await {
        panic!("expected no visible batch, got instance '{}' with {:?}", item.instance, item.messages);
    }
}

pub(super) async fn fetch_filtered(p: &Arc<dyn Provider>, filter: &FetchFilter) -> Option<OrchestrationItem> {
    p.fetch_orchestration_item(LOCK, filter).await.expect("fetch_orchestration_item")
}

/// Creates `instance` and commits its first turn (OrchestrationStarted), state Running.
pub(super) async fn started_instance(p: &Arc<dyn Provider>, instance: &str) {
    create(p, instance).await;
    let item = fetch_some(p, instance).await;
    p.commit_turn(&item.lock_token, turn(1, vec![started("input")], InstanceState::Running))
        .await
        .expect("commit first turn");
}

/// A started instance whose first turn scheduled activities with these event ids.
pub(super) async fn with_activities(p: &Arc<dyn Provider>, instance: &str, event_ids: &[u64]) {
    create(p, instance).await;
    let item = fetch_some(p, instance).await;
    let mut events = vec![started("input")];
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    for &id in event_ids {
        events.push(scheduled(id, "Act", &format!("in-{id}")));
        c.activities.push(work(instance, 1, id, "Act", &format!("in-{id}")));
    }
    c.new_events = events;
    p.commit_turn(&item.lock_token, c).await.expect("commit turn with activities");
}

pub(super) async fn fetch_work(p: &Arc<dyn Provider>, lock: Duration) -> Option<ActivityWorkItem> {
    p.fetch_work_item(lock, &worker("w-default")).await.expect("fetch_work_item")
}

pub(super) fn names(messages: &[OrchestratorMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match m {
            OrchestratorMessage::ExternalRaised { name, .. } => name.clone(),
            other => other.type_name().to_string(),
        })
        .collect()
}

pub(super) fn assert_lock_lost<T: std::fmt::Debug>(r: Result<T, ProviderError>, what: &str) {
    match r {
        Err(ProviderError::LockLost(_)) => {}
        other => panic!("{what}: expected ProviderError::LockLost, got {other:?}"),
    }
}

pub(super) fn big(n: usize) -> String {
    // Varied content so compression or truncation bugs show.
    (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

pub(super) fn only(list: &[(&str, &[&str])]) -> FetchFilter {
    FetchFilter {
        orchestrations: Some(
            list.iter().map(|(n, vs)| (n.to_string(), vs.iter().map(|v| v.to_string()).collect())).collect(),
        ),
        duroxide_versions: None,
    }
}

/// A started instance whose first turn scheduled activities on sessions: `(event id,
/// session)` pairs.
pub(super) async fn with_session_activities(
    p: &Arc<dyn Provider>,
    instance: &str,
    items: &[(u64, Option<&str>)],
) {
    create(p, instance).await;
    let item = fetch_some(p, instance).await;
    let mut c = turn(1, vec![started("input")], InstanceState::Running);
    for &(id, session) in items {
        c.new_events.push(scheduled(id, "Act", "x"));
        let mut w = work(instance, 1, id, "Act", "x");
        w.session_id = session.map(str::to_string);
        c.activities.push(w);
    }
    p.commit_turn(&item.lock_token, c).await.expect("commit turn with session activities");
}

pub(super) fn child_start(child: &str, parent: Option<ParentLink>) -> OutboundMessage {
    OutboundMessage {
        instance: child.into(),
        message: OrchestratorMessage::StartOrchestration {
            name: "Child".into(),
            version: Some("3.0.0".into()),
            input: "child-in".into(),
            parent,
        },
        visible_at_ms: None,
    }
}

pub(super) fn link(parent: &str) -> ParentLink {
    ParentLink { instance: parent.into(), execution_id: 1, event_id: 2 }
}

/// Commits a continue-as-new of `instance` from execution 1 to 2 and returns the batch of
/// execution 2.
pub(super) async fn continue_as_new(p: &Arc<dyn Provider>, instance: &str) -> OrchestrationItem {
    started_instance(p, instance).await;
    p.enqueue_message(external(instance, "go", "")).await.unwrap();
    let item = fetch_some(p, instance).await;
    let mut c = turn(
        1,
        vec![ev(2, EventKind::OrchestrationContinuedAsNew { input: "next".into(), version: "2.0.0".into() })],
        InstanceState::Running,
    );
    c.next_execution_id = Some(2);
    c.update.version = "2.0.0".into();
    c.messages.push(OutboundMessage {
        instance: instance.into(),
        message: OrchestratorMessage::ContinueAsNew {
            execution_id: 2,
            name: NAME.into(),
            version: "2.0.0".into(),
            input: "next".into(),
            parent: None,
            queue_messages: Vec::new(),
        },
        visible_at_ms: None,
    });
    p.commit_turn(&item.lock_token, c).await.unwrap();
    fetch_some(p, instance).await
}

pub(super) fn started_v2(input: &str) -> Event {
    ev(
        1,
        EventKind::OrchestrationStarted {
            name: NAME.into(),
            version: "2.0.0".into(),
            input: input.into(),
            parent: None,
            duroxide_version: DUROXIDE_VERSION.into(),
        },
    )
}
