//! Model-based test of the provider contract: random sequences of operations (create an
//! instance, enqueue a message, fetch / commit / abandon a turn, fetch / complete / abandon an
//! activity, commit with a stale lock) run against a store and against a small in-memory
//! model of what the store must hold; after every step the store must agree with the model
//! (instance existence, history length, queued messages and activities, as exported).
//!
//! Runs on the SQLite memory store, the SQLite file store and, with `DUROXIDE_TEST_PG_URL`
//! set (features `postgres,provider-test`), PostgreSQL. `PROPTEST_CASES=N` runs more cases.

#[cfg(all(feature = "postgres", feature = "provider-test"))]
mod pg_support;

use duroxide::history::{Event, EventKind};
use duroxide::provider::{
    ActivityWorkItem, Attempt, FetchFilter, InstanceState, InstanceUpdate, OrchestratorMessage,
    OutboundMessage, TurnCommit, WorkerIdentity,
};
use duroxide::{Provider, ProviderError, SqliteProvider};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

const INSTANCES: usize = 3;
const LOCK: Duration = Duration::from_secs(60);

/// One step. Indexes pick among instances, or among the locks the test holds.
#[derive(Debug, Clone)]
enum Op {
    Create(usize),
    Enqueue(usize, u8),
    FetchTurn,
    Commit(usize, bool),
    Abandon(usize),
    CommitStale(usize),
    FetchActivity,
    Complete(usize),
    AbandonActivity(usize),
}

fn arb_op() -> impl Strategy<Value = Op> {
    let i = 0..INSTANCES;
    let held = 0usize..4;
    prop_oneof![
        2 => i.clone().prop_map(Op::Create),
        2 => (i, any::<u8>()).prop_map(|(i, n)| Op::Enqueue(i, n)),
        3 => Just(Op::FetchTurn),
        3 => (held.clone(), any::<bool>()).prop_map(|(h, schedule)| Op::Commit(h, schedule)),
        1 => held.clone().prop_map(Op::Abandon),
        1 => held.clone().prop_map(Op::CommitStale),
        2 => Just(Op::FetchActivity),
        2 => held.clone().prop_map(Op::Complete),
        1 => held.prop_map(Op::AbandonActivity),
    ]
}

/// What the store must hold for one instance.
#[derive(Debug, Default, Clone)]
struct ModelInstance {
    exists: bool,
    history: Vec<Event>,
    /// Queued messages, oldest first; `locked` says which ones the current lock holds.
    messages: Vec<(OrchestratorMessage, bool)>,
    locked: bool,
    /// Queued activities: (event id, locked).
    activities: Vec<(u64, bool)>,
}

struct HeldTurn {
    instance: usize,
    token: String,
    messages: Vec<OrchestratorMessage>,
}

struct HeldActivity {
    instance: usize,
    token: String,
    event_id: u64,
}

fn name(i: usize) -> String {
    format!("m{i}")
}

fn index(instance: &str) -> Result<usize, String> {
    instance
        .strip_prefix('m')
        .and_then(|n| n.parse().ok())
        .filter(|n| *n < INSTANCES)
        .ok_or_else(|| format!("unknown instance {instance}"))
}

/// The history event a turn writes for a consumed message.
fn event_for(message: &OrchestratorMessage) -> EventKind {
    match message {
        OrchestratorMessage::StartOrchestration { name, input, .. } => EventKind::OrchestrationStarted {
            name: name.clone(),
            version: "1.0.0".into(),
            input: input.clone(),
            parent: None,
            duroxide_version: duroxide::history::DUROXIDE_VERSION.into(),
        },
        OrchestratorMessage::ActivityCompleted { event_id, result, .. } => {
            EventKind::ActivityCompleted { source_event_id: *event_id, result: result.clone() }
        }
        OrchestratorMessage::ExternalRaised { name, data } => {
            EventKind::ExternalRaised { name: name.clone(), data: data.clone() }
        }
        other => EventKind::CustomStatusSet { status: Some(other.type_name().to_string()) },
    }
}

struct Checker {
    store: Arc<dyn Provider>,
    model: Vec<ModelInstance>,
    turns: Vec<HeldTurn>,
    activities: Vec<HeldActivity>,
    stale: Vec<String>,
    worker: WorkerIdentity,
}

impl Checker {
    fn new(store: Arc<dyn Provider>) -> Self {
        Self {
            store,
            model: vec![ModelInstance::default(); INSTANCES],
            turns: Vec::new(),
            activities: Vec::new(),
            stale: Vec::new(),
            worker: WorkerIdentity {
                worker_id: "model-worker".into(),
                session_lease: LOCK,
                max_sessions: 10,
                tags: duroxide::provider::TagFilter::Untagged,
            },
        }
    }

    async fn step(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Create(i) => {
                let r = self.store.create_instance(&name(i), "Model", None, "in").await;
                let m = &mut self.model[i];
                match (m.exists, r) {
                    (false, Ok(())) => {
                        m.exists = true;
                        let start = OrchestratorMessage::StartOrchestration {
                            name: "Model".into(),
                            version: None,
                            input: "in".into(),
                            parent: None,
                        };
                        m.messages.push((start, false));
                    }
                    (true, Err(ProviderError::InstanceExists(_))) => {}
                    (exists, r) => return Err(format!("create {i} (exists: {exists}) returned {r:?}")),
                }
            }
            Op::Enqueue(i, n) => {
                if !self.model[i].exists {
                    return Ok(());
                }
                let message = OrchestratorMessage::ExternalRaised { name: "E".into(), data: n.to_string() };
                let out =
                    OutboundMessage { instance: name(i), message: message.clone(), visible_at_ms: None };
                self.store.enqueue_message(out).await.map_err(|e| format!("enqueue to {i}: {e}"))?;
                self.model[i].messages.push((message, false));
            }
            Op::FetchTurn => {
                let item = self
                    .store
                    .fetch_orchestration_item(LOCK, &FetchFilter::default())
                    .await
                    .map_err(|e| format!("fetch turn: {e}"))?;
                let fetchable: Vec<usize> = (0..INSTANCES)
                    .filter(|&i| !self.model[i].locked && !self.model[i].messages.is_empty())
                    .collect();
                match item {
                    None if fetchable.is_empty() => {}
                    None => {
                        return Err(format!("fetch found nothing; instances {fetchable:?} have messages"));
                    }
                    Some(item) => {
                        let i = index(&item.instance)?;
                        if !fetchable.contains(&i) {
                            return Err(format!("fetched {i}, which is locked or has no messages"));
                        }
                        let m = &mut self.model[i];
                        let expected: Vec<OrchestratorMessage> =
                            m.messages.iter().map(|(msg, _)| msg.clone()).collect();
                        if item.messages != expected {
                            return Err(format!(
                                "fetched {i} with {:?}; expected {expected:?}",
                                item.messages
                            ));
                        }
                        if item.history != m.history {
                            return Err(format!(
                                "fetched {i} with history {:?}; expected {:?}",
                                item.history, m.history
                            ));
                        }
                        m.locked = true;
                        for entry in &mut m.messages {
                            entry.1 = true;
                        }
                        self.turns.push(HeldTurn {
                            instance: i,
                            token: item.lock_token,
                            messages: item.messages,
                        });
                    }
                }
            }
            Op::Commit(h, schedule) => {
                if self.turns.is_empty() {
                    return Ok(());
                }
                let held = self.turns.remove(h % self.turns.len());
                let m = &self.model[held.instance];
                let mut events = Vec::new();
                let mut next = m.history.len() as u64 + 1;
                for msg in &held.messages {
                    // Only the first turn starts the execution; a later start is a no-op.
                    if matches!(msg, OrchestratorMessage::StartOrchestration { .. }) && !m.history.is_empty()
                    {
                        continue;
                    }
                    events.push(Event { event_id: next, timestamp_ms: 0, kind: event_for(msg) });
                    next += 1;
                }
                let mut activities = Vec::new();
                if schedule && (!m.history.is_empty() || !events.is_empty()) {
                    let kind = EventKind::ActivityScheduled {
                        name: "Act".into(),
                        input: next.to_string(),
                        call_site: None,
                        session_id: None,
                        tag: None,
                    };
                    events.push(Event { event_id: next, timestamp_ms: 0, kind });
                    activities.push(ActivityWorkItem {
                        instance: name(held.instance),
                        execution_id: 1,
                        event_id: next,
                        name: "Act".into(),
                        input: next.to_string(),
                        session_id: None,
                        lock_token: String::new(),
                        attempt: 0,
                        session_claimed: false,
                        visible_at_ms: 0,
                        tag: None,
                        orchestration_name: String::new(),
                        orchestration_version: String::new(),
                    });
                }
                let commit = TurnCommit {
                    execution_id: 1,
                    new_events: events.clone(),
                    update: InstanceUpdate {
                        name: "Model".into(),
                        version: "1.0.0".into(),
                        state: InstanceState::Running,
                        output: None,
                        error: None,
                        custom_status: None,
                    },
                    next_execution_id: None,
                    activities: activities.clone(),
                    activity_lock_timeout: LOCK,
                    cancelled_activities: Vec::new(),
                    messages: Vec::new(),
                };
                self.store
                    .commit_turn(&held.token, commit)
                    .await
                    .map_err(|e| format!("commit on {}: {e}", held.instance))?;
                let m = &mut self.model[held.instance];
                m.history.extend(events);
                m.messages.retain(|(_, locked)| !locked);
                m.locked = false;
                m.activities.extend(activities.iter().map(|a| (a.event_id, false)));
                self.stale.push(held.token);
            }
            Op::Abandon(h) => {
                if self.turns.is_empty() {
                    return Ok(());
                }
                let held = self.turns.remove(h % self.turns.len());
                self.store
                    .abandon_orchestration_item(&held.token, None, None, Attempt::GivenBack)
                    .await
                    .map_err(|e| format!("abandon on {}: {e}", held.instance))?;
                let m = &mut self.model[held.instance];
                m.locked = false;
                for entry in &mut m.messages {
                    entry.1 = false;
                }
                self.stale.push(held.token);
            }
            Op::CommitStale(h) => {
                if self.stale.is_empty() {
                    return Ok(());
                }
                let token = self.stale[h % self.stale.len()].clone();
                let commit = TurnCommit {
                    execution_id: 1,
                    new_events: Vec::new(),
                    update: InstanceUpdate {
                        name: "Model".into(),
                        version: "1.0.0".into(),
                        state: InstanceState::Running,
                        output: None,
                        error: None,
                        custom_status: None,
                    },
                    next_execution_id: None,
                    activities: Vec::new(),
                    activity_lock_timeout: LOCK,
                    cancelled_activities: Vec::new(),
                    messages: Vec::new(),
                };
                match self.store.commit_turn(&token, commit).await {
                    Err(ProviderError::LockLost(_)) => {}
                    other => return Err(format!("commit with a released lock returned {other:?}")),
                }
            }
            Op::FetchActivity => {
                let item = self
                    .store
                    .fetch_work_item(LOCK, &self.worker)
                    .await
                    .map_err(|e| format!("fetch activity: {e}"))?;
                let any_free = self.model.iter().any(|m| m.activities.iter().any(|(_, locked)| !locked));
                match item {
                    None if !any_free => {}
                    None => return Err("fetch activity found nothing; unlocked activities are queued".into()),
                    Some(item) => {
                        let i = index(&item.instance)?;
                        let entry = self.model[i]
                            .activities
                            .iter_mut()
                            .find(|(id, locked)| *id == item.event_id && !locked)
                            .ok_or_else(|| {
                                format!("fetched activity {i}/{} that is locked or unknown", item.event_id)
                            })?;
                        entry.1 = true;
                        self.activities.push(HeldActivity {
                            instance: i,
                            token: item.lock_token,
                            event_id: item.event_id,
                        });
                    }
                }
            }
            Op::Complete(h) => {
                if self.activities.is_empty() {
                    return Ok(());
                }
                let held = self.activities.remove(h % self.activities.len());
                let message = OrchestratorMessage::ActivityCompleted {
                    execution_id: 1,
                    event_id: held.event_id,
                    result: format!("r{}", held.event_id),
                };
                let out = OutboundMessage {
                    instance: name(held.instance),
                    message: message.clone(),
                    visible_at_ms: None,
                };
                self.store
                    .complete_work_item(&held.token, out)
                    .await
                    .map_err(|e| format!("complete {}/{}: {e}", held.instance, held.event_id))?;
                let m = &mut self.model[held.instance];
                m.activities.retain(|(id, _)| *id != held.event_id);
                m.messages.push((message, false));
            }
            Op::AbandonActivity(h) => {
                if self.activities.is_empty() {
                    return Ok(());
                }
                let held = self.activities.remove(h % self.activities.len());
                self.store
                    .abandon_work_item(&held.token, None)
                    .await
                    .map_err(|e| format!("abandon activity {}/{}: {e}", held.instance, held.event_id))?;
                if let Some(entry) =
                    self.model[held.instance].activities.iter_mut().find(|(id, _)| *id == held.event_id)
                {
                    entry.1 = false;
                }
            }
        }
        Ok(())
    }

    /// The store holds what the model says.
    async fn agree(&self) -> Result<(), String> {
        for (i, m) in self.model.iter().enumerate() {
            let record = self.store.get_instance(&name(i)).await.map_err(|e| format!("get {i}: {e}"))?;
            if record.is_some() != m.exists {
                return Err(format!("instance {i}: store has it {}, model {}", record.is_some(), m.exists));
            }
            if !m.exists {
                continue;
            }
            let history =
                self.store.read_history(&name(i), None).await.map_err(|e| format!("history {i}: {e}"))?;
            if history != m.history {
                return Err(format!("instance {i}: stored history {history:?}; model {:?}", m.history));
            }
            let snapshot =
                self.store.export_instance(&name(i)).await.map_err(|e| format!("export {i}: {e}"))?;
            let mut stored: Vec<String> =
                snapshot.messages.iter().map(|p| format!("{:?}", p.message)).collect();
            let mut expected: Vec<String> = m.messages.iter().map(|(msg, _)| format!("{msg:?}")).collect();
            stored.sort();
            expected.sort();
            if stored != expected {
                return Err(format!("instance {i}: queued messages {stored:?}; model {expected:?}"));
            }
            let mut stored: Vec<u64> = snapshot.activities.iter().map(|a| a.event_id).collect();
            let mut expected: Vec<u64> = m.activities.iter().map(|(id, _)| *id).collect();
            stored.sort_unstable();
            expected.sort_unstable();
            if stored != expected {
                return Err(format!("instance {i}: queued activities {stored:?}; model {expected:?}"));
            }
        }
        Ok(())
    }
}

async fn check(store: Arc<dyn Provider>, ops: &[Op]) -> Result<(), String> {
    let mut checker = Checker::new(store);
    for (n, op) in ops.iter().enumerate() {
        checker.step(op).await.map_err(|e| format!("step {n} {op:?}: {e}"))?;
        checker.agree().await.map_err(|e| format!("after step {n} {op:?}: {e}"))?;
    }
    Ok(())
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(f)
}

fn cases(default: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    let cases = if std::env::var("PROPTEST_CASES").is_ok() { base.cases } else { default };
    ProptestConfig { cases, failure_persistence: None, ..base }
}

proptest! {
    #![proptest_config(cases(64))]
    #[test]
    fn sqlite_memory_store_follows_the_model(ops in prop::collection::vec(arb_op(), 1..40)) {
        let result = block_on(async {
            let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new("sqlite::memory:", None).await.expect("open"));
            check(store, &ops).await
        });
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

proptest! {
    #![proptest_config(cases(16))]
    #[test]
    fn sqlite_file_store_follows_the_model(ops in prop::collection::vec(arb_op(), 1..40)) {
        let result = block_on(async {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite:{}", dir.path().join("model.db").display());
            let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&url, None).await.expect("open"));
            check(store, &ops).await
        });
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

#[cfg(all(feature = "postgres", feature = "provider-test"))]
proptest! {
    #![proptest_config(cases(8))]
    #[test]
    fn postgres_store_follows_the_model(ops in prop::collection::vec(arb_op(), 1..40)) {
        let Some(url) = pg_support::pg_url() else {
            println!("{}", pg_support::skip_message());
            return Ok(());
        };
        let result = block_on(async {
            let schema = pg_support::random_schema();
            let store: Arc<dyn Provider> = Arc::new(pg_support::open(&url, &schema).await);
            let result = check(store, &ops).await;
            pg_support::drop_schema(&url, &schema).await;
            result
        });
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}
