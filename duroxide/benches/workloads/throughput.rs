//! Throughput and latency through the normal API: `fanout` (activities that sleep),
//! `overhead` (no-op activities, against the raw commit ceiling of the same store) and
//! `latency` (one instance at a time).

use super::app::{SLEEPS, SLEPT_US, activities, orchestrations};
use super::report::{Goal, percentile, report, target_ratio};
use super::store::Store;
use duroxide::prelude::*;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What a load of FanOut instances achieved.
pub struct Driven {
    pub orchestrations_per_s: f64,
    pub activities_per_s: f64,
    /// Start-to-complete latencies, sorted (milliseconds).
    pub latencies_ms: Vec<f64>,
    /// Every instance started (all finished when the load returns).
    pub instances: Vec<String>,
    /// How long the runtime took to start (0 when it runs elsewhere): it grows with the
    /// store when start-up reads every instance.
    pub runtime_start_ms: f64,
}

/// Starts FanOut instances of 5 activities through `client` for `seconds`, keeping at most
/// `in_flight` unfinished, and waits for the last ones. Whatever runs them (a runtime in
/// this process or in others) must be up already.
pub async fn drive(client: &Client, prefix: &str, seconds: u64, in_flight: usize) -> Driven {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut instances = Vec::new();
    let mut latencies = Vec::new();
    let mut done = 0u64;
    while Instant::now() < deadline {
        while set.len() < in_flight {
            let id = format!("{prefix}-{}-{}", std::process::id(), instances.len());
            instances.push(id.clone());
            let c = client.clone();
            set.spawn(async move {
                let t = Instant::now();
                c.start_orchestration(&id, "FanOut", "5").await.expect("start an instance");
                c.wait_for_orchestration(&id, Duration::from_secs(60)).await.expect("instance finishes");
                t.elapsed().as_secs_f64() * 1000.0
            });
        }
        if let Some(Ok(ms)) = set.join_next().await {
            latencies.push(ms);
            done += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    while let Some(joined) = set.join_next().await {
        latencies.push(joined.expect("an instance's task"));
    }
    latencies.sort_by(f64::total_cmp);
    Driven {
        orchestrations_per_s: done as f64 / elapsed,
        activities_per_s: done as f64 * 5.0 / elapsed,
        latencies_ms: latencies,
        instances,
        runtime_start_ms: 0.0,
    }
}

/// Runs FanOut instances for `seconds` on a runtime in this process.
async fn fanout_run(
    store: &Store,
    sleep_ms: u64,
    opts: RuntimeOptions,
    seconds: u64,
    in_flight: usize,
) -> Driven {
    let t = Instant::now();
    let rt =
        Runtime::start_with_options(store.provider.clone(), activities(sleep_ms), orchestrations(), opts)
            .await;
    let runtime_start_ms = t.elapsed().as_secs_f64() * 1000.0;
    let client = Client::new(store.provider.clone());
    let driven = drive(&client, "f", seconds, in_flight).await;
    rt.shutdown(Some(Duration::from_secs(10))).await;
    Driven { runtime_start_ms, ..driven }
}

pub async fn fanout(store_kind: &str, seconds: u64) {
    let store = super::store::open(store_kind).await;
    let opts = RuntimeOptions { orchestration_concurrency: 2, worker_concurrency: 2, ..Default::default() };
    SLEPT_US.store(0, Ordering::Relaxed);
    SLEEPS.store(0, Ordering::Relaxed);
    let d = fanout_run(&store, 10, opts, seconds, 20).await;
    let sleep_ms =
        SLEPT_US.load(Ordering::Relaxed) as f64 / SLEEPS.load(Ordering::Relaxed).max(1) as f64 / 1000.0;
    let ceiling = 2.0 * 1000.0 / sleep_ms;
    report(
        "fanout",
        store_kind,
        &[
            ("orchestrations_per_s", d.orchestrations_per_s),
            ("activities_per_s", d.activities_per_s),
            ("real_sleep_ms_mean", sleep_ms),
            ("ceiling_activities_per_s", ceiling),
            ("ratio_to_ceiling", d.activities_per_s / ceiling),
            ("latency_p50_ms", percentile(&d.latencies_ms, 0.5)),
            ("latency_p99_ms", percentile(&d.latencies_ms, 0.99)),
        ],
    );
    store.close().await;
}

/// The runtime settings `overhead` uses on every store: eight turn slots and sixteen
/// workers, the concurrency that suits one node on the 2-core machine (measured; see
/// docs/performance.md, round two's ninth levers). Enough turn slots that a round trip in
/// flight does not idle the node and that commits share flushes (on PostgreSQL each turn
/// waits for its own commit's flush on the server), and twice as many workers so that a
/// fan-out's five activities finish close together and one turn answers them. PostgreSQL,
/// activities per raw commit in rotation: 4/8 0.40-0.44, 8/16 0.48-0.52, 12/24 0.46-0.48;
/// the file store, activities/s: 8/8 4,650-5,095, 8/16 5,333-5,714, 4/8 3,717-4,083.
///
/// `DUROXIDE_BENCH_CONCURRENCY=T/W` overrides it, to explore other settings.
pub fn overhead_options() -> RuntimeOptions {
    options_with(concurrency_from_env("DUROXIDE_BENCH_CONCURRENCY").unwrap_or((8, 16)))
}

/// The runtime settings of each node of `nodes`: 2/4, so that three nodes together hold
/// fewer turn slots and workers than one `overhead` node and the two cores are not
/// oversubscribed (three nodes at 4/8 each ran at 0.69 of one). `nodes` compares its own
/// runs with each other, so what it measures is the cost of sharing one store.
///
/// `DUROXIDE_BENCH_NODE_CONCURRENCY=T/W` overrides it.
pub fn node_options() -> RuntimeOptions {
    options_with(concurrency_from_env("DUROXIDE_BENCH_NODE_CONCURRENCY").unwrap_or((2, 4)))
}

/// `T/W` from the environment variable `name`: turn slots and activity workers.
fn concurrency_from_env(name: &str) -> Option<(usize, usize)> {
    let v = std::env::var(name).ok()?;
    let (t, w) = v.split_once('/')?;
    Some((t.trim().parse().ok()?, w.trim().parse().ok()?))
}

fn options_with((turns, workers): (usize, usize)) -> RuntimeOptions {
    RuntimeOptions { orchestration_concurrency: turns, worker_concurrency: workers, ..Default::default() }
}

/// Instances `overhead` keeps in flight per runtime.
pub const OVERHEAD_IN_FLIGHT: usize = 40;

/// Round-two targets (docs/performance.md): activities per raw commit of the same store.
fn overhead_target(store_kind: &str) -> Option<f64> {
    match store_kind {
        "file" => Some(1.0),
        "postgres" => Some(0.5),
        _ => None,
    }
}

/// What `overhead` measured.
pub struct Overhead {
    pub activities_per_s: f64,
    /// Activities per raw commit (the store's own ceiling, same run).
    pub per_raw_commit: f64,
}

/// `overhead` on an open store (possibly preloaded with `preloaded` finished instances).
pub async fn overhead_on(store: &Store, store_kind: &str, seconds: u64, preloaded: u64) -> Overhead {
    let d = fanout_run(store, 0, overhead_options(), seconds, OVERHEAD_IN_FLIGHT).await;
    let mut figures = vec![
        ("preloaded_instances", preloaded as f64),
        ("orchestrations_per_s", d.orchestrations_per_s),
        ("activities_per_s", d.activities_per_s),
        ("latency_p50_ms", percentile(&d.latencies_ms, 0.5)),
        ("runtime_start_ms", d.runtime_start_ms),
    ];
    let raw_seconds = seconds.min(5);
    let raw = match store_kind {
        "memory" => super::raw::sqlite_commits_per_s("sqlite::memory:", raw_seconds).await,
        "file" => super::raw::sqlite_commits_per_s(&format!("{}-raw", store.url), raw_seconds).await,
        #[cfg(feature = "postgres")]
        "postgres" => {
            let schema = store.schema.as_deref().expect("postgres stores have a schema");
            let pool = super::store::pg_pool();
            let one = super::raw::postgres_commits_per_s(&store.url, schema, 1, raw_seconds).await;
            let n = super::raw::postgres_commits_per_s(&store.url, schema, pool as usize, raw_seconds).await;
            figures.push(("raw_connections", pool as f64));
            figures.push(("raw_commits_per_s_1_connection", one));
            n
        }
        other => panic!("no raw ceiling for store '{other}'"),
    };
    let per_raw_commit = d.activities_per_s / raw;
    figures.push(("raw_commits_per_s", raw));
    figures.push(("activity_round_trips_per_raw_commit", per_raw_commit));
    report("overhead", store_kind, &figures);
    if let Some(target) = overhead_target(store_kind) {
        let name = "activity_round_trips_per_raw_commit";
        target_ratio("overhead", store_kind, name, per_raw_commit, Goal::AtLeast, target);
    }
    Overhead { activities_per_s: d.activities_per_s, per_raw_commit }
}

pub async fn overhead(store_kind: &str, seconds: u64, preload: u64) {
    let store = super::store::open(store_kind).await;
    let preloaded = super::preload::preload_if_asked(&store, store_kind, preload).await;
    overhead_on(&store, store_kind, seconds, preloaded).await;
    store.close().await;
}

/// What `latency` measured (milliseconds).
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `latency` on an open store: 200 single-activity instances one after another.
pub async fn latency_on(store: &Store, store_kind: &str, preloaded: u64) -> Latency {
    let t = Instant::now();
    let rt = Runtime::start_with_store(store.provider.clone(), activities(0), orchestrations()).await;
    let runtime_start_ms = t.elapsed().as_secs_f64() * 1000.0;
    let client = Client::new(store.provider.clone());
    let mut lat = Vec::new();
    for i in 0..200 {
        let id = format!("lat-{i}");
        let t = Instant::now();
        client.start_orchestration(&id, "Sequential", "1").await.expect("start an instance");
        client.wait_for_orchestration(&id, Duration::from_secs(30)).await.expect("instance finishes");
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    rt.shutdown(None).await;
    lat.sort_by(f64::total_cmp);
    let l = Latency { p50_ms: percentile(&lat, 0.5), p99_ms: percentile(&lat, 0.99) };
    report(
        "latency",
        store_kind,
        &[
            ("preloaded_instances", preloaded as f64),
            ("p50_ms", l.p50_ms),
            ("p99_ms", l.p99_ms),
            ("runtime_start_ms", runtime_start_ms),
        ],
    );
    if store_kind == "postgres" {
        target_ratio("latency", store_kind, "p50_ms", l.p50_ms, Goal::AtMost, 5.0);
        target_ratio("latency", store_kind, "p99_ms", l.p99_ms, Goal::AtMost, 15.0);
    }
    l
}

pub async fn latency(store_kind: &str, preload: u64) {
    let store = super::store::open(store_kind).await;
    let preloaded = super::preload::preload_if_asked(&store, store_kind, preload).await;
    latency_on(&store, store_kind, preloaded).await;
    store.close().await;
}
