//! End-to-end tests of durable values: on an in-memory, a file and a PostgreSQL store,
//! each with the instance cache on and off (every turn replays then); the histories the
//! two write must match, and so must what clients read.

mod common;
#[path = "pg_support/mod.rs"]
mod pg;

use common::{TestStore, completed, start_runtime};
use duroxide::history::EventKind;
use duroxide::orchestration::{ValueError, ValueLimits};
use duroxide::prelude::*;
use duroxide::{ClientError, Provider};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Runs a scenario on every store, cached and uncached.
macro_rules! on_every_store {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                ($body)(common::memory_store().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory_uncached() {
                ($body)(common::uncached(common::memory_store().await)).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn file() {
                let mut ts = common::file_store().await;
                let _dir = ts.dir.take();
                ($body)(ts).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn file_uncached() {
                let mut ts = common::uncached(common::file_store().await);
                let _dir = ts.dir.take();
                ($body)(ts).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                on_postgres(false, $body).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_uncached() {
                on_postgres(true, $body).await;
            }
        }
    };
}

async fn on_postgres<F, Fut>(uncached: bool, body: F)
where
    F: FnOnce(TestStore) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(url) = pg::pg_url() else {
        eprintln!("SKIPPED: {}", pg::skip_message());
        return;
    };
    let schema = pg::random_schema();
    let store: Arc<dyn Provider> = Arc::new(pg::open(&url, &schema).await);
    let mut ts = TestStore { store, dir: None, url: url.clone(), options: common::fast_options() };
    if uncached {
        ts = common::uncached(ts);
    }
    let result = tokio::spawn(body(ts)).await;
    pg::drop_schema(&url, &schema).await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A counter that continues as new twice, carrying its values, then waits for an event.
fn counter() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Counter", |ctx: OrchestrationContext, input: String| async move {
            let round: u32 = input.parse().map_err(|e| format!("bad round: {e}"))?;
            let n: u32 = ctx.get_typed("count")?.unwrap_or(0);
            ctx.set_typed("count", &(n + 1))?;
            ctx.set_value(format!("round-{round}"), "seen")?;
            if round == 0 {
                ctx.set_value("temp", "x")?;
            }
            if round < 2 {
                ctx.continue_as_new((round + 1).to_string());
                return Ok(String::new());
            }
            ctx.clear_value("temp")?;
            ctx.set_value("stage", "waiting")?;
            let go = ctx.schedule_wait("go").await;
            // Replayed (uncached) or live, the code sees the same state here.
            let seen = ctx.get_value("stage").unwrap_or_default();
            ctx.set_value("stage", format!("{seen}->{go}"))?;
            Ok(ctx.keys().join(","))
        })
        .build()
}

fn types(history: &[duroxide::Event]) -> Vec<&'static str> {
    history.iter().map(|e| e.kind.type_name()).collect()
}

on_every_store!(values_survive_continue_as_new_and_replay, |ts: TestStore| async move {
    let rt = start_runtime(&ts, ActivityRegistry::builder().build(), counter()).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("kv-1", "Counter", "0").await.unwrap();
    let stage = client.wait_for_value("kv-1", "stage", Duration::from_secs(20)).await.unwrap();
    assert_eq!(stage, "waiting");
    assert_eq!(client.get_typed_value::<u32>("kv-1", "count").await.unwrap(), Some(3));
    assert_eq!(client.get_value("kv-1", "temp").await.unwrap(), None, "cleared in execution 3");
    // A key it never sets: the wait times out with a typed error.
    match client.wait_for_value("kv-1", "never", Duration::from_millis(50)).await {
        Err(ClientError::ValueTimeout { key, .. }) => assert_eq!(key, "never"),
        other => panic!("expected ValueTimeout, got {other:?}"),
    }
    client.raise_event("kv-1", "go", "done").await.unwrap();
    assert_eq!(completed(&client, "kv-1").await, "count,round-0,round-1,round-2,stage");
    let expected: BTreeMap<String, String> = [
        ("count", "3"),
        ("round-0", "seen"),
        ("round-1", "seen"),
        ("round-2", "seen"),
        ("stage", "waiting->done"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(client.values("kv-1").await.unwrap(), expected);
    // Each continued execution starts with what the previous one left.
    let second = client.read_execution_history("kv-1", Some(2)).await.unwrap();
    match &second[1].kind {
        EventKind::ValuesCarried { values } => {
            assert_eq!(values.keys().collect::<Vec<_>>(), ["count", "round-0", "temp"]);
            assert_eq!(values["count"], "1");
        }
        other => panic!("expected ValuesCarried, got {other:?}"),
    }
    let third = client.read_execution_history("kv-1", Some(3)).await.unwrap();
    assert_eq!(
        types(&third),
        [
            "OrchestrationStarted",
            "ValuesCarried",
            "ValueSet",
            "ValueSet",
            "ValueCleared",
            "ValueSet",
            "ExternalSubscribed",
            "ExternalRaised",
            "ValueSet",
            "OrchestrationCompleted"
        ],
        "cached and replayed turns write the same history"
    );
    // Finished without the key: waiting for it fails at once.
    match client.wait_for_value("kv-1", "never", Duration::from_secs(5)).await {
        Err(ClientError::InstanceFinished { .. }) => {}
        other => panic!("expected InstanceFinished, got {other:?}"),
    }
    match client.get_value("ghost", "k").await {
        Err(ClientError::NotFound(id)) => assert_eq!(id, "ghost"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    // Deleting the instance removes its values.
    client.delete_instance("kv-1", false).await.unwrap();
    assert!(matches!(client.values("kv-1").await, Err(ClientError::NotFound(_))));
    rt.shutdown(None).await;
});

on_every_store!(reads_of_another_instance_are_recorded, |ts: TestStore| async move {
    let orchestrations = OrchestrationRegistry::builder()
        .register("Holder", |ctx: OrchestrationContext, _input: String| async move {
            ctx.set_typed("config", &vec![1, 2, 3])?;
            let next = ctx.schedule_wait("change").await;
            ctx.set_value("config", next)?;
            let _ = ctx.schedule_wait("stop").await;
            Ok(String::new())
        })
        .register("Reader", |ctx: OrchestrationContext, _input: String| async move {
            let first: Option<Vec<u32>> = ctx.get_typed_from("holder", "config").await?;
            let missing = ctx.get_value_from("nobody", "config").await?;
            let _ = ctx.schedule_wait("again").await;
            let second = ctx.get_value_from("holder", "config").await?;
            Ok(format!("{first:?}|{missing:?}|{second:?}"))
        })
        .build();
    let rt = start_runtime(&ts, ActivityRegistry::builder().build(), orchestrations).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("holder", "Holder", "").await.unwrap();
    client.wait_for_value("holder", "config", Duration::from_secs(20)).await.unwrap();
    client.start_orchestration("reader", "Reader", "").await.unwrap();
    common::wait_until_subscribed(&client, "reader").await;
    // The holder changes its value; the reader's next turn (replayed when uncached) still
    // sees what its first read recorded.
    client.raise_event("holder", "change", "[9]").await.unwrap();
    common::wait_for_event(
        &client,
        "holder",
        |k| matches!(k, EventKind::ValueSet { value, .. } if value == "[9]"),
    )
    .await;
    client.raise_event("reader", "again", "").await.unwrap();
    assert_eq!(completed(&client, "reader").await, "Some([1, 2, 3])|None|Some(\"[9]\")");
    let h = client.read_execution_history("reader", None).await.unwrap();
    let reads: Vec<_> = h
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ValueReadCompleted { value, .. } => Some(value.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reads, [Some("[1,2,3]".to_string()), None, Some("[9]".to_string())]);
    common::assert_clean_history(&h);
    client.raise_event("holder", "stop", "").await.unwrap();
    completed(&client, "holder").await;
    rt.shutdown(None).await;
});

on_every_store!(limits_refuse_writes_with_typed_errors, |mut ts: TestStore| async move {
    ts.options.value_limits = ValueLimits { max_keys: 2, max_key_bytes: 8, max_value_bytes: 16 };
    let orchestrations = OrchestrationRegistry::builder()
        .register("Limits", |ctx: OrchestrationContext, _input: String| async move {
            let name = |r: Result<(), ValueError>| match r {
                Ok(()) => "ok".to_string(),
                Err(ValueError::InvalidKey { .. }) => "invalid_key".to_string(),
                Err(ValueError::KeyTooLong { length, limit }) => format!("key_too_long:{length}>{limit}"),
                Err(ValueError::ValueTooLarge { size, limit, .. }) => format!("too_large:{size}>{limit}"),
                Err(ValueError::TooManyKeys { limit, .. }) => format!("too_many:{limit}"),
                Err(other) => format!("other:{other}"),
            };
            let out = [
                name(ctx.set_value("", "x")),
                name(ctx.set_value("bad\nkey", "x")),
                name(ctx.set_value("much-too-long", "x")),
                name(ctx.set_value("a", "x".repeat(17))),
                name(ctx.set_value("a", "1")),
                name(ctx.set_value("b", "2")),
                name(ctx.set_value("c", "3")),
                // Replacing an existing key is fine at the key limit.
                name(ctx.set_value("b", "22")),
            ];
            // A pause, so the uncached run replays the refusals too.
            ctx.schedule_timer(Duration::from_millis(10)).await;
            let after = name(ctx.set_value("c", "3"));
            let bad: Result<Option<u32>, ValueError> = ctx.get_typed("a");
            assert_eq!(bad, Ok(Some(1)));
            ctx.set_value("a", "not json at all")?;
            let refused = matches!(ctx.get_typed::<u32>("a"), Err(ValueError::Deserialize { .. }));
            Ok(format!("{}|{after}|{refused}", out.join(",")))
        })
        .build();
    let rt = start_runtime(&ts, ActivityRegistry::builder().build(), orchestrations).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("lim", "Limits", "").await.unwrap();
    assert_eq!(
        completed(&client, "lim").await,
        "invalid_key,invalid_key,key_too_long:13>8,too_large:17>16,ok,ok,too_many:2,ok|too_many:2|true"
    );
    let h = client.read_execution_history("lim", None).await.unwrap();
    let sets = h.iter().filter(|e| matches!(e.kind, EventKind::ValueSet { .. })).count();
    assert_eq!(sets, 4, "refused writes record nothing");
    assert_eq!(client.get_value("lim", "b").await.unwrap().as_deref(), Some("22"));
    match client.get_typed_value::<u32>("lim", "a").await {
        Err(ClientError::Value(ValueError::Deserialize { key, .. })) => assert_eq!(key, "a"),
        other => panic!("expected a Deserialize error, got {other:?}"),
    }
    rt.shutdown(None).await;
});

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/histories").join(name)
}

/// A recorded execution with carried values, value writes and a completion replays
/// against the current code (the fixture is written by this test with
/// `DUROXIDE_RECORD_HISTORIES=1`; never regenerate it to make a change pass). Histories
/// recorded before values existed still load and replay too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_value_histories_replay() {
    let path = fixture("values_counter_execution_3.json");
    if std::env::var("DUROXIDE_RECORD_HISTORIES").is_ok() {
        let ts = common::memory_store().await;
        let rt = start_runtime(&ts, ActivityRegistry::builder().build(), counter()).await;
        let client = Client::new(ts.store.clone());
        client.start_orchestration("kv-rec", "Counter", "0").await.unwrap();
        client.wait_for_value("kv-rec", "stage", Duration::from_secs(20)).await.unwrap();
        client.raise_event("kv-rec", "go", "done").await.unwrap();
        completed(&client, "kv-rec").await;
        let h = client.read_execution_history("kv-rec", Some(3)).await.unwrap();
        std::fs::write(&path, duroxide::history::to_json(&h).unwrap()).unwrap();
        rt.shutdown(None).await;
    }
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    let report = duroxide::testing::replay_history_json(&counter(), "kv-rec", 3, &json)
        .unwrap_or_else(|e| panic!("the recorded value history no longer replays: {e}"));
    assert_eq!(
        report.outcome,
        duroxide::replay::TurnOutcome::Completed("count,round-0,round-1,round-2,stage".into())
    );
    // A history from before values: no value events, and it still loads.
    let old = std::fs::read_to_string(fixture("process_order/process_order_v1_completed.json")).unwrap();
    let events = duroxide::history::from_json(&old).expect("an old history loads");
    assert!(!events.iter().any(|e| e.kind.type_name().starts_with("Value")));
}

/// Changing a recorded write (another value for the key) is a nondeterminism error that
/// names the recorded `set_value` call.
#[tokio::test]
async fn a_changed_write_is_nondeterministic() {
    let json = std::fs::read_to_string(fixture("values_counter_execution_3.json")).unwrap();
    let changed = OrchestrationRegistry::builder()
        .register("Counter", |ctx: OrchestrationContext, _input: String| async move {
            ctx.set_typed("count", &100u32)?;
            Ok(String::new())
        })
        .build();
    let err = duroxide::testing::replay_history_json(&changed, "kv-rec", 3, &json).unwrap_err();
    assert!(err.to_string().contains("set_value(\"count\""), "{err}");
}
