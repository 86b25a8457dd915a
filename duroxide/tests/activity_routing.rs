//! End-to-end: activity routing by tag (pools, orchestration-only nodes, work for a tag
//! nobody serves), what activities know of their context, stable node ids reclaiming
//! sessions, and the cancellation grace period. Each scenario runs on an in-memory, a file
//! and a PostgreSQL store, with the instance cache on and off.

mod common;
#[path = "pg_support/mod.rs"]
mod pg;

use duroxide::history::EventKind;
use duroxide::prelude::*;
use duroxide::provider::TagFilter;
use duroxide::{Either2, ErrorCategory, Provider};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy)]
enum Store {
    Memory,
    File,
    Postgres,
}

/// Runs `body` on a fresh store of `kind` with test options (cache on or off).
async fn run<F, Fut>(kind: Store, cached: bool, body: F)
where
    F: FnOnce(Arc<dyn Provider>, RuntimeOptions) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut options = common::fast_options();
    if !cached {
        options.instance_cache_size = 0;
    }
    match kind {
        Store::Memory => body(common::memory_store().await.store, options).await,
        Store::File => {
            let ts = common::file_store().await;
            body(ts.store.clone(), options).await;
            drop(ts);
        }
        Store::Postgres => {
            let Some(url) = pg::pg_url() else {
                eprintln!("SKIPPED: {}", pg::skip_message());
                return;
            };
            let schema = pg::random_schema();
            let store: Arc<dyn Provider> = Arc::new(pg::open(&url, &schema).await);
            let result = tokio::spawn(body(store, options)).await;
            pg::drop_schema(&url, &schema).await;
            if let Err(e) = result {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}

macro_rules! on_every_store {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                run(Store::Memory, true, $body).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory_uncached() {
                run(Store::Memory, false, $body).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn file() {
                run(Store::File, true, $body).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn file_uncached() {
                run(Store::File, false, $body).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(Store::Postgres, true, $body).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_uncached() {
                run(Store::Postgres, false, $body).await
            }
        }
    };
}

/// Reports where it ran and what it knows: `node|tag|orchestration@version`.
#[activity(name = "Where")]
async fn where_am_i(ctx: ActivityContext, _input: u32) -> Result<String, ActivityError> {
    Ok(format!(
        "{}|{}|{}@{}",
        ctx.worker_id(),
        ctx.tag().unwrap_or("-"),
        ctx.orchestration_name(),
        ctx.orchestration_version()
    ))
}

/// A typed activity routed to `gpu` by default.
#[activity(name = "Render", tag = "gpu")]
async fn render(ctx: ActivityContext, _frame: u32) -> Result<String, ActivityError> {
    Ok(format!("{}|{}", ctx.worker_id(), ctx.tag().unwrap_or("-")))
}

fn activities() -> ActivityRegistry {
    ActivityRegistry::builder()
        .register_typed(where_am_i)
        .register_typed(render)
        .register("Stubborn", |ctx: ActivityContext, _input: String| async move {
            started(ctx.instance_id());
            // Ignores its cancellation token: only the grace period ends it.
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok("finished".to_string())
        })
        .register("Polite", |ctx: ActivityContext, _input: String| async move {
            started(ctx.instance_id());
            ctx.cancelled().await;
            Err(ActivityError::non_retryable("stopped on request"))
        })
        .register("Session", |ctx: ActivityContext, _input: String| async move {
            Ok(format!("{}|new={}", ctx.worker_id(), ctx.is_new_session()))
        })
        .register("Held", |ctx: ActivityContext, _input: String| async move {
            started(ctx.instance_id());
            // Holds its worker slot until the test releases the instance (at most 30 s).
            for _ in 0..3000 {
                if RELEASED.lock().unwrap().contains(ctx.instance_id()) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(ctx.worker_id().to_string())
        })
        .build()
}

/// Instances whose `Held` activities may return.
static RELEASED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Instances whose `Stubborn` / `Polite` activities have started, with how many did.
static STARTED: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn started(instance: &str) {
    *STARTED.lock().unwrap().entry(instance.to_string()).or_default() += 1;
}

/// Waits (up to 30 s) until `n` of the instance's cancellable activities run. On timeout
/// the panic says what the store holds, so a failure on a loaded machine can be read.
async fn wait_started(client: &Client, instance: &str, n: usize) {
    for _ in 0..3000 {
        if STARTED.lock().unwrap().get(instance).copied().unwrap_or(0) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = STARTED.lock().unwrap().get(instance).copied().unwrap_or(0);
    let pending = client.describe_instance(instance).await.map(|d| d.pending_activities);
    let history = client.read_execution_history(instance, None).await.unwrap_or_default();
    let kinds: Vec<&str> = history.iter().map(|e| e.kind.type_name()).collect();
    panic!(
        "{instance}: {started} of the {n} activities to cancel started in 30 s\n\
         pending: {pending:#?}\nhistory: {kinds:?}"
    );
}

fn orchestrations() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register_versioned("Pools", "2.1.0", |ctx: OrchestrationContext, _input: String| async move {
            let plain = ctx.schedule_activity("Where", "1").await?;
            let gpu = ctx.schedule_activity("Where", "2").with_tag("gpu").await?;
            let typed = ctx.call(render, 3).await?;
            let overridden = ctx.call(where_am_i, 4).with_tag("gpu").await?;
            // Retried calls route every attempt, in the string API and the typed one.
            let policy = RetryPolicy { max_attempts: 2, backoff: Backoff::None, timeout: None };
            let retried = ctx.schedule_activity_with_retry("Where", "5", policy).with_tag("gpu").await?;
            let typed_retried = ctx.call_with_retry(where_am_i, 6, None).with_tag("gpu").await?;
            Ok(format!("{plain};{gpu};{typed};{overridden};{retried};{typed_retried}"))
        })
        .register("Waiting", |ctx: OrchestrationContext, _input: String| async move {
            let untagged = ctx.schedule_activity("Where", "1");
            let video = ctx.schedule_activity("Where", "2").with_tag("video");
            let (a, b) = ctx.join2(untagged, video).await;
            Ok(format!("{};{}", a?, b?))
        })
        .register("Holds", |ctx: OrchestrationContext, _input: String| async move {
            // More video work than one worker slot runs and fetches ahead, so some waits.
            let held: Vec<_> = (0..8).map(|_| ctx.schedule_activity("Held", "").with_tag("video")).collect();
            let ran = ctx.join(held).await;
            Ok(ran.into_iter().collect::<Result<Vec<String>, _>>()?.join(","))
        })
        .register("Abandons", |ctx: OrchestrationContext, _input: String| async move {
            let stubborn = ctx.schedule_activity("Stubborn", "");
            let polite = ctx.schedule_activity("Polite", "");
            // The test raises "go" once both run: cancelling work that never started runs
            // nothing, and this test is about work that is running.
            let go = ctx.schedule_wait("go");
            if let Either2::First(_) = ctx.select2(stubborn, go).await {
                return Err("the stubborn activity should have lost".into());
            }
            drop(polite); // no longer wanted either
            ctx.schedule_wait("done").await;
            ctx.schedule_activity("Where", "5").await.map_err(Into::into)
        })
        .register("Sessions", |ctx: OrchestrationContext, _input: String| async move {
            let first = ctx.schedule_activity_on_session("Session", "", "s1").await?;
            ctx.schedule_wait("next").await;
            let second = ctx.schedule_activity_on_session("Session", "", "s1").await?;
            Ok(format!("{first};{second}"))
        })
        .build()
}

async fn node(store: &Arc<dyn Provider>, options: &RuntimeOptions, id: &str, tags: TagFilter) -> Runtime {
    let options =
        RuntimeOptions { worker_node_id: Some(id.to_string()), activity_tags: tags, ..options.clone() };
    Runtime::start_with_options(store.clone(), activities(), orchestrations(), options).await
}

on_every_store!(
    gpu_and_general_pools_each_take_their_own_work,
    |store: Arc<dyn Provider>, options: RuntimeOptions| async move {
        let general = node(&store, &options, "general", TagFilter::Untagged).await;
        let gpu = node(&store, &options, "gpu-1", TagFilter::tags(["gpu"])).await;
        let client = Client::new(store.clone());
        client.start_orchestration("p-1", "Pools", "").await.unwrap();
        let output = common::completed(&client, "p-1").await;
        assert_eq!(
            output,
            concat!(
                r#""general|-|Pools@2.1.0";"gpu-1|gpu|Pools@2.1.0";gpu-1|gpu;gpu-1|gpu|Pools@2.1.0;"#,
                r#""gpu-1|gpu|Pools@2.1.0";gpu-1|gpu|Pools@2.1.0"#
            ),
            "untagged work on the general pool, tagged work on the gpu pool"
        );
        let history = client.read_execution_history("p-1", None).await.unwrap();
        let tags: Vec<Option<String>> = history
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::ActivityScheduled { tag, .. } => Some(tag.clone()),
                _ => None,
            })
            .collect();
        let tagged = || Some("gpu".to_string());
        assert_eq!(tags, [None, tagged(), tagged(), tagged(), tagged(), tagged()]);
        common::assert_clean_history(&history);
        general.shutdown(None).await;
        gpu.shutdown(None).await;
    }
);

on_every_store!(
    unserved_tags_wait_visibly_until_a_node_serves_them,
    |store: Arc<dyn Provider>, options: RuntimeOptions| async move {
        // An orchestration-only node: it runs turns, never activities.
        let orchestrator = Runtime::start_with_options(
            store.clone(),
            activities(),
            orchestrations(),
            RuntimeOptions {
                worker_concurrency: 0,
                worker_node_id: Some("orchestrator".into()),
                ..options.clone()
            },
        )
        .await;
        let client = Client::new(store.clone());
        // It recorded itself at start, with no activity slots.
        let workers = client.workers(false).await.unwrap();
        let seen: Vec<(&str, &TagFilter, u32, bool)> = workers
            .iter()
            .map(|w| (w.record.worker_id.as_str(), &w.record.tags, w.record.activity_slots, w.live))
            .collect();
        assert_eq!(seen, [("orchestrator", &TagFilter::None, 0, true)]);

        client.start_orchestration("w-1", "Waiting", "").await.unwrap();
        // One id per store and cache mode: the held activities are released by instance.
        let held = format!("h-{:p}", Arc::as_ptr(&store));
        client.start_orchestration(&held, "Holds", "").await.unwrap();
        for id in ["w-1", held.as_str()] {
            common::wait_for_event(&client, id, |k| {
                matches!(k, EventKind::ActivityScheduled { tag: Some(_), .. })
            })
            .await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let d = client.describe_instance("w-1").await.unwrap();
        let pending: Vec<(Option<&str>, Option<bool>)> =
            d.pending_activities.iter().map(|a| (a.tag.as_deref(), a.served)).collect();
        assert_eq!(
            pending,
            [(None, Some(false)), (Some("video"), Some(false))],
            "both wait, and nobody alive serves them"
        );
        let summary = client.store_summary().await.unwrap();
        let waiting: Vec<(Option<&str>, u64, u32)> =
            summary.activity_tags.iter().map(|t| (t.tag.as_deref(), t.waiting, t.served_by)).collect();
        assert_eq!(waiting, [(None, 1, 0), (Some("video"), 9, 0)]);
        assert!(summary.activity_tags.iter().all(|t| t.oldest_age_ms(summary.taken_at_ms) >= 200));

        // A node serving untagged and video work, one activity at a time: it takes the
        // work, and while its slot is held the video work left waiting is served by it.
        let video_options = RuntimeOptions { worker_concurrency: 1, ..options.clone() };
        let workers = node(&store, &video_options, "video-1", TagFilter::untagged_and(["video"])).await;
        wait_started(&client, &held, 1).await;
        let summary = client.store_summary().await.unwrap();
        let video = summary.activity_tags.iter().find(|t| t.tag.as_deref() == Some("video"));
        let video = video.expect("video work still waits: one slot runs one activity and fetches few ahead");
        assert_eq!(video.served_by, 1, "{summary:?}");
        assert!(summary.activity_tags.iter().all(|t| t.served_by == 1), "{summary:?}");
        let d = client.describe_instance(&held).await.unwrap();
        assert!(d.pending_activities.iter().all(|a| a.served == Some(true)), "{:?}", d.pending_activities);
        RELEASED.lock().unwrap().insert(held.clone());

        let output = common::completed(&client, "w-1").await;
        assert_eq!(output, r#""video-1|-|Waiting@1.0.0";"video-1|video|Waiting@1.0.0""#);
        assert_eq!(common::completed(&client, &held).await, ["video-1"; 8].join(","));
        assert!(client.store_summary().await.unwrap().activity_tags.is_empty());
        let ids = |ws: Vec<duroxide::WorkerPresence>| -> Vec<String> {
            ws.into_iter().map(|w| w.record.worker_id).collect()
        };
        assert_eq!(ids(client.workers(false).await.unwrap()), ["orchestrator", "video-1"]);
        // A graceful shutdown removes the node's record at once.
        workers.shutdown(None).await;
        assert_eq!(ids(client.workers(true).await.unwrap()), ["orchestrator"]);
        orchestrator.shutdown(None).await;
        assert!(client.workers(true).await.unwrap().is_empty());
    }
);

on_every_store!(
    cancelled_activities_stop_or_are_aborted_after_the_grace_period,
    |store: Arc<dyn Provider>, options: RuntimeOptions| async move {
        let options = RuntimeOptions {
            worker_concurrency: 2,
            cancellation_grace_period: Duration::from_millis(300),
            ..options
        };
        let rt = node(&store, &options, "n1", TagFilter::Untagged).await;
        let client = Client::new(store.clone());
        // One id per run: the activities report their starts by instance, in one map for
        // every test of this process.
        let id = format!("c-{}", uuid::Uuid::new_v4().simple());
        client.start_orchestration(&id, "Abandons", "").await.unwrap();
        wait_started(&client, &id, 2).await;
        client.raise_event(&id, "go", "").await.unwrap();
        // Both outcomes reach history: the polite activity's own error, the stubborn one's abort.
        common::wait_for_event(&client, &id, |k| {
            matches!(k, EventKind::ActivityFailed { details, .. }
            if details.category == ErrorCategory::Cancelled && details.message.contains("grace period"))
        })
        .await;
        common::wait_for_event(&client, &id, |k| {
        matches!(k, EventKind::ActivityFailed { details, .. } if details.message.contains("stopped on request"))
    })
    .await;
        // Both worker slots are free again: the next activity runs at once.
        client.raise_event(&id, "done", "").await.unwrap();
        let output = common::completed(&client, &id).await;
        assert_eq!(output, r#""n1|-|Abandons@1.0.0""#);
        let history = client.read_execution_history(&id, None).await.unwrap();
        common::assert_clean_history(&history);
        let cancels =
            history.iter().filter(|e| matches!(e.kind, EventKind::ActivityCancelRequested { .. })).count();
        assert_eq!(cancels, 2);
        rt.shutdown(None).await;
    }
);

on_every_store!(
    a_restarted_node_with_the_same_id_takes_its_sessions_back_at_once,
    |store: Arc<dyn Provider>, options: RuntimeOptions| async move {
        let options = RuntimeOptions { session_lock_timeout: Duration::from_secs(60), ..options };
        let first = node(&store, &options, "stable-node", TagFilter::Untagged).await;
        let client = Client::new(store.clone());
        client.start_orchestration("s-1", "Sessions", "").await.unwrap();
        common::wait_until_subscribed(&client, "s-1").await;
        drop(first); // a crash: the session's lease stays with "stable-node" for 60 s
        // Another node must wait for the lease ...
        let other = node(&store, &options, "other-node", TagFilter::Untagged).await;
        client.raise_event("s-1", "next", "").await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            matches!(
                client.get_orchestration_status("s-1").await.unwrap(),
                OrchestrationStatus::Running { .. }
            ),
            "the session is still leased to the crashed node"
        );
        drop(other);
        // ... the same node id takes it back at once, with fresh in-memory state.
        let restarted = node(&store, &options, "stable-node", TagFilter::Untagged).await;
        let output = tokio::time::timeout(Duration::from_secs(10), common::completed(&client, "s-1"))
            .await
            .expect("the restarted node ran the session's activity without waiting for the lease");
        assert_eq!(output, "stable-node|new=true;stable-node|new=true");
        restarted.shutdown(None).await;
    }
);

/// A history recorded before tags existed (no `tag` fields) replays against code that now
/// routes its activities by tag: tags are routing, not part of the decision, so adding one
/// in a new deployment does not break instances in flight. The replayed history keeps the
/// recorded (untagged) events.
#[test]
fn histories_recorded_before_tags_replay_against_tagged_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/histories/render_before_tags.json");
    let json = std::fs::read_to_string(path).expect("fixture");
    let history = duroxide::history::from_json(&json).expect("an old history loads");
    assert!(history.iter().all(|e| !matches!(&e.kind, EventKind::ActivityScheduled { tag: Some(_), .. })));
    let registry = OrchestrationRegistry::builder()
        .register("Film", |ctx: OrchestrationContext, frame: String| async move {
            let rendered = ctx.schedule_activity("Render", frame).with_tag("gpu").await?;
            let encoded = ctx.schedule_activity("Encode", rendered).with_tag("video").await?;
            Ok(encoded)
        })
        .build();
    let report = duroxide::testing::replay_history(&registry, "film-7", 1, &history)
        .unwrap_or_else(|e| panic!("an untagged history no longer replays: {e}"));
    let _ = report;
    // The same code diverging in what it calls is still caught.
    let renamed = OrchestrationRegistry::builder()
        .register("Film", |ctx: OrchestrationContext, frame: String| async move {
            Ok(ctx.schedule_activity("Paint", frame).with_tag("gpu").await?)
        })
        .build();
    assert!(duroxide::testing::replay_history(&renamed, "film-7", 1, &history).is_err());
}
