//! duroxide benchmark workloads. Prints a human table and one JSON line per workload.
//!
//! ```sh
//! cargo bench -p duroxide --bench workloads                 # all workloads, all stores
//! cargo bench -p duroxide --bench workloads -- fanout latency --store file --seconds 10
//! DUROXIDE_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo bench -p duroxide --features postgres --bench workloads -- --store postgres
//! ```
//!
//! Workloads: fanout, overhead, sequential, latency, replay, idle, management (see
//! docs/performance.md; `management` runs only when named).
//! Stores: memory (SQLite in-memory), file (SQLite file in a temp dir, default durability),
//! postgres (with `--features postgres`; a fresh schema per run).

use duroxide::history::{Event, EventKind};
use duroxide::prelude::*;
use duroxide::replay::{OrchestrationHandler, ReplayEngine, TurnEnv};
use duroxide::{Provider, SqliteProvider};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "workloads/management.rs"]
mod management;

struct Args {
    workloads: Vec<String>,
    stores: Vec<String>,
    seconds: u64,
    idle_instances: usize,
    management_instances: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        workloads: Vec::new(),
        stores: Vec::new(),
        seconds: 10,
        idle_instances: 10_000,
        management_instances: 100_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--store" => a.stores.extend(it.next()),
            "--seconds" => a.seconds = it.next().and_then(|s| s.parse().ok()).unwrap_or(10),
            "--idle-instances" => a.idle_instances = it.next().and_then(|s| s.parse().ok()).unwrap_or(10_000),
            "--management-instances" => {
                a.management_instances = it.next().and_then(|s| s.parse().ok()).unwrap_or(100_000)
            }
            s if s.starts_with("--") => {} // cargo bench passes --bench
            w => a.workloads.push(w.to_string()),
        }
    }
    if a.workloads.is_empty() {
        a.workloads =
            ["fanout", "overhead", "sequential", "latency", "replay", "idle"].map(String::from).to_vec();
    }
    if a.stores.is_empty() {
        a.stores = vec!["memory".into(), "file".into()];
        // PostgreSQL when compiled in and reachable (DUROXIDE_TEST_PG_URL).
        if cfg!(feature = "postgres") && std::env::var("DUROXIDE_TEST_PG_URL").is_ok() {
            a.stores.push("postgres".into());
        }
    }
    a
}

struct Store {
    provider: Arc<dyn Provider>,
    url: String,
    /// The PostgreSQL schema of the run (read only by PostgreSQL-specific loads).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

async fn open(kind: &str) -> Store {
    match kind {
        "memory" => {
            let url = "sqlite::memory:".to_string();
            Store {
                provider: Arc::new(SqliteProvider::new(&url, None).await.unwrap()),
                url,
                schema: None,
                _dir: None,
            }
        }
        "file" => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite:{}", dir.path().join("bench.db").display());
            Store {
                provider: Arc::new(SqliteProvider::new(&url, None).await.unwrap()),
                url,
                schema: None,
                _dir: Some(dir),
            }
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            use duroxide::provider::postgres::{PostgresOptions, PostgresProvider};
            let url = std::env::var("DUROXIDE_TEST_PG_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let options = PostgresOptions { schema: Some(schema.clone()), ..Default::default() };
            Store {
                provider: Arc::new(PostgresProvider::new(&url, Some(options)).await.unwrap()),
                url,
                schema: Some(schema),
                _dir: None,
            }
        }
        other => panic!("unknown store '{other}' (memory, file, postgres with --features postgres)"),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(workload: &str, store: &str, figures: &[(&str, f64)]) {
    let human: Vec<String> = figures.iter().map(|(k, v)| format!("{k}={v:.2}")).collect();
    println!("{workload:<11} {store:<7} {}", human.join("  "));
    let json: Vec<String> = figures.iter().map(|(k, v)| format!("\"{k}\":{v:.4}")).collect();
    println!("JSON {{\"workload\":\"{workload}\",\"store\":\"{store}\",{}}}", json.join(","));
}

/// Total and count of the activities' real sleep times: the honest ceiling of `fanout`.
static SLEPT_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static SLEEPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn activities(sleep_ms: u64) -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Work", move |_ctx: ActivityContext, input: String| async move {
            if sleep_ms > 0 {
                let t = Instant::now();
                // tokio's timer rounds sleeps up to whole milliseconds (10 ms becomes about
                // 11 ms); a thread sleep on the blocking pool keeps the workload's 10 ms exact.
                let _ =
                    tokio::task::spawn_blocking(move || std::thread::sleep(Duration::from_millis(sleep_ms)))
                        .await;
                SLEPT_US.fetch_add(t.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
                SLEEPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(input)
        })
        .build()
}

fn orchestrations() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("FanOut", |ctx: OrchestrationContext, input: String| async move {
            let n: usize = input.parse().unwrap_or(5);
            let tasks = (0..n).map(|i| ctx.schedule_activity("Work", i.to_string())).collect();
            for r in ctx.join(tasks).await {
                r?;
            }
            Ok(String::new())
        })
        .register("Sequential", |ctx: OrchestrationContext, input: String| async move {
            let n: usize = input.parse().unwrap_or(1);
            for i in 0..n {
                ctx.schedule_activity("Work", i.to_string()).await?;
            }
            Ok(String::new())
        })
        .register("Idle", |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx.schedule_wait("Go").await)
        })
        .build()
}

/// Runs FanOut instances for `seconds`, keeping at most `in_flight` running.
async fn fanout_run(
    store: &Store,
    sleep_ms: u64,
    opts: RuntimeOptions,
    seconds: u64,
    in_flight: usize,
) -> (f64, f64, Vec<f64>) {
    let rt =
        Runtime::start_with_options(store.provider.clone(), activities(sleep_ms), orchestrations(), opts)
            .await;
    let client = Client::new(store.provider.clone());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut n = 0u64;
    let mut latencies = Vec::new();
    let mut done = 0u64;
    while Instant::now() < deadline {
        while set.len() < in_flight {
            let id = format!("f-{}-{n}", std::process::id());
            n += 1;
            let c = client.clone();
            set.spawn(async move {
                let t = Instant::now();
                c.start_orchestration(&id, "FanOut", "5").await.unwrap();
                c.wait_for_orchestration(&id, Duration::from_secs(60)).await.unwrap();
                t.elapsed().as_secs_f64() * 1000.0
            });
        }
        if let Some(Ok(ms)) = set.join_next().await {
            latencies.push(ms);
            done += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    while let Some(Ok(ms)) = set.join_next().await {
        latencies.push(ms);
    }
    rt.shutdown(Some(Duration::from_secs(10))).await;
    latencies.sort_by(f64::total_cmp);
    (done as f64 / elapsed, done as f64 * 5.0 / elapsed, latencies)
}

async fn fanout(store_kind: &str, seconds: u64) {
    let store = open(store_kind).await;
    let opts = RuntimeOptions { orchestration_concurrency: 2, worker_concurrency: 2, ..Default::default() };
    SLEPT_US.store(0, std::sync::atomic::Ordering::Relaxed);
    SLEEPS.store(0, std::sync::atomic::Ordering::Relaxed);
    let (orch_s, act_s, lat) = fanout_run(&store, 10, opts, seconds, 20).await;
    let sleep_ms = SLEPT_US.load(std::sync::atomic::Ordering::Relaxed) as f64
        / SLEEPS.load(std::sync::atomic::Ordering::Relaxed).max(1) as f64
        / 1000.0;
    let ceiling = 2.0 * 1000.0 / sleep_ms;
    report(
        "fanout",
        store_kind,
        &[
            ("orchestrations_per_s", orch_s),
            ("activities_per_s", act_s),
            ("real_sleep_ms_mean", sleep_ms),
            ("ceiling_activities_per_s", ceiling),
            ("ratio_to_ceiling", act_s / ceiling),
            ("latency_p50_ms", percentile(&lat, 0.5)),
            ("latency_p99_ms", percentile(&lat, 0.99)),
        ],
    );
}

/// Minimal one-row insert+delete transactions with the store's own SQLite settings.
async fn raw_commits_per_s(url: &str, seconds: u64) -> f64 {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use std::str::FromStr;
    let mut opts = SqliteConnectOptions::from_str(url).unwrap().create_if_missing(true);
    if !url.contains(":memory:") {
        // The store's settings: WAL, FULL, and the page size it creates files with.
        let page_size = duroxide::SqliteOptions::default().page_size;
        opts = opts
            .page_size(page_size)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
    }
    // One dedicated connection (no pool checkout per transaction): the best sqlx does.
    let mut conn = sqlx::ConnectOptions::connect(&opts).await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw (id INTEGER PRIMARY KEY, v TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline {
        let mut tx = sqlx::Connection::begin_with(&mut conn, "BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO bench_raw (v) VALUES ('x')").execute(&mut *tx).await.unwrap();
        sqlx::query("DELETE FROM bench_raw WHERE id = (SELECT MIN(id) FROM bench_raw)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn overhead(store_kind: &str, seconds: u64) {
    let store = open(store_kind).await;
    // The concurrency that suits each store on the 2-core machine (measured): SQLite wants
    // enough turn slots and workers that a round trip in flight does not idle the node
    // (8/8 beats 2/4, more does not help); PostgreSQL does best at 2/4 (at 8/8 the
    // dispatchers contend on the server: about half the throughput).
    let (turns, workers) = if store_kind == "postgres" { (2, 4) } else { (8, 8) };
    let opts = RuntimeOptions {
        orchestration_concurrency: turns,
        worker_concurrency: workers,
        ..Default::default()
    };
    let (orch_s, act_s, lat) = fanout_run(&store, 0, opts, seconds, 40).await;
    let raw_url = match store_kind {
        "memory" => "sqlite::memory:".to_string(),
        "file" => format!("{}-raw", store.url),
        // The raw ceiling is measured for the SQLite settings only.
        _ => {
            report(
                "overhead",
                store_kind,
                &[
                    ("orchestrations_per_s", orch_s),
                    ("activities_per_s", act_s),
                    ("latency_p50_ms", percentile(&lat, 0.5)),
                ],
            );
            return;
        }
    };
    let raw = raw_commits_per_s(&raw_url, seconds.min(5)).await;
    report(
        "overhead",
        store_kind,
        &[
            ("orchestrations_per_s", orch_s),
            ("activities_per_s", act_s),
            ("latency_p50_ms", percentile(&lat, 0.5)),
            ("raw_commits_per_s", raw),
            ("activity_round_trips_per_raw_commit", act_s / raw),
        ],
    );
}

async fn sequential(store_kind: &str) {
    let mut times = Vec::new();
    for n in [500usize, 1000, 2000] {
        let store = open(store_kind).await;
        let rt = Runtime::start_with_store(store.provider.clone(), activities(0), orchestrations()).await;
        let client = Client::new(store.provider.clone());
        let t = Instant::now();
        client.start_orchestration("seq", "Sequential", n.to_string()).await.unwrap();
        client.wait_for_orchestration("seq", Duration::from_secs(600)).await.unwrap();
        let s = t.elapsed().as_secs_f64();
        rt.shutdown(None).await;
        times.push((n, s));
    }
    report(
        "sequential",
        store_kind,
        &[
            ("t500_s", times[0].1),
            ("t1000_s", times[1].1),
            ("t2000_s", times[2].1),
            ("ratio_t2000_t1000", times[2].1 / times[1].1),
        ],
    );
}

async fn latency(store_kind: &str) {
    let store = open(store_kind).await;
    let rt = Runtime::start_with_store(store.provider.clone(), activities(0), orchestrations()).await;
    let client = Client::new(store.provider.clone());
    let mut lat = Vec::new();
    for i in 0..200 {
        let id = format!("lat-{i}");
        let t = Instant::now();
        client.start_orchestration(&id, "Sequential", "1").await.unwrap();
        client.wait_for_orchestration(&id, Duration::from_secs(30)).await.unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    rt.shutdown(None).await;
    lat.sort_by(f64::total_cmp);
    report("latency", store_kind, &[("p50_ms", percentile(&lat, 0.5)), ("p99_ms", percentile(&lat, 0.99))]);
}

fn replay() {
    // 1 start + 4,999 (scheduled, completed) pairs + 1 = 10,000 events.
    let mut history = vec![Event {
        event_id: 1,
        timestamp_ms: 0,
        kind: EventKind::OrchestrationStarted {
            name: "Sequential".into(),
            version: "1.0.0".into(),
            input: "5000".into(),
            parent: None,
            duroxide_version: "0.1.0".into(),
        },
    }];
    for i in 0..4999u64 {
        let id = history.len() as u64 + 1;
        history.push(Event {
            event_id: id,
            timestamp_ms: 0,
            kind: EventKind::ActivityScheduled {
                name: "Work".into(),
                input: i.to_string(),
                call_site: None,
                session_id: None,
                tag: None,
            },
        });
        history.push(Event {
            event_id: id + 1,
            timestamp_ms: 0,
            kind: EventKind::ActivityCompleted { source_event_id: id, result: i.to_string() },
        });
    }
    history.push(Event {
        event_id: history.len() as u64 + 1,
        timestamp_ms: 0,
        kind: EventKind::ActivityScheduled {
            name: "Work".into(),
            input: "4999".into(),
            call_site: None,
            session_id: None,
            tag: None,
        },
    });
    let handler: Arc<dyn OrchestrationHandler> =
        orchestrations().resolve("Sequential", Some("1.0.0")).map(|(_, h)| h).unwrap();
    let mut runs = Vec::new();
    for _ in 0..5 {
        let h = history.clone();
        let n = h.len();
        let t = Instant::now();
        let mut engine = ReplayEngine::new(handler.clone(), "replay", 1, h, n).unwrap();
        let r = engine.run_turn(Vec::new(), TurnEnv::default());
        runs.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(r.new_events.is_empty(), "replay must not add events");
    }
    runs.sort_by(f64::total_cmp);
    report(
        "replay",
        "none",
        &[("events", history.len() as f64), ("cold_replay_ms_median", percentile(&runs, 0.5))],
    );
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

async fn idle(store_kind: &str, instances: usize) {
    let store = open(store_kind).await;
    let rt = Runtime::start_with_store(store.provider.clone(), activities(0), orchestrations()).await;
    let client = Client::new(store.provider.clone());
    for i in 0..instances {
        client.start_orchestration(&format!("idle-{i}"), "Idle", "").await.unwrap();
    }
    // Wait until all are waiting.
    loop {
        let running = client
            .count_instances_by_version()
            .await
            .unwrap()
            .iter()
            .filter(|c| c.state == duroxide::provider::InstanceState::Running)
            .map(|c| c.count)
            .sum::<u64>();
        if running as usize >= instances {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss = peak_rss_mib();
    let t = Instant::now();
    for i in 0..instances {
        client.raise_event(&format!("idle-{i}"), "Go", "x").await.unwrap();
    }
    for i in 0..instances {
        client.wait_for_orchestration(&format!("idle-{i}"), Duration::from_secs(600)).await.unwrap();
    }
    let drain = t.elapsed().as_secs_f64();
    rt.shutdown(None).await;
    report("idle", store_kind, &[("instances", instances as f64), ("peak_rss_mib", rss), ("drain_s", drain)]);
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    println!(
        "duroxide benchmarks on {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    for w in &args.workloads {
        if w == "replay" {
            replay();
            continue;
        }
        for s in &args.stores {
            match w.as_str() {
                "fanout" => fanout(s, args.seconds).await,
                "overhead" => overhead(s, args.seconds).await,
                "sequential" => sequential(s).await,
                "latency" => latency(s).await,
                "idle" => idle(s, args.idle_instances).await,
                "management" => management::management(s, args.management_instances).await,
                other => eprintln!("unknown workload '{other}'"),
            }
        }
    }
}
