//! The `duroxide` command-line tool, run as a real process against a real SQLite file (and
//! a PostgreSQL schema when `DUROXIDE_TEST_PG_URL` is set; under `CI=true` a missing URL
//! fails the PostgreSQL test): every command, its `--json` shape, and every error exit.
//!
//! A runtime populates one template store once per test process (an instance that
//! completes, one that fails, one waiting on an event with a timer, a parent with a
//! completed and one with a running sub-orchestration, one that continued as new three
//! times, one no node can start), then shuts down; each test runs the binary on its own
//! copy of that file.

use assert_cmd::Command;
use duroxide::Either2;
use duroxide::prelude::*;
use duroxide::testing::replay_history_json;
use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// The template store

fn activities() -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Hello", |_ctx: ActivityContext, name: String| async move { Ok(format!("Hello, {name}!")) })
        .build()
}

fn orchestrations() -> OrchestrationRegistry {
    let greet = |ctx: OrchestrationContext, name: String| async move {
        Ok(ctx.schedule_activity("Hello", name).await?)
    };
    OrchestrationRegistry::builder()
        .register_versioned("Greet", "1.0.0", greet)
        .register_versioned("Greet", "2.0.0", greet)
        .register("Fail", |_ctx: OrchestrationContext, _input: String| async move {
            Err::<String, _>(OrchestrationError::from("boom"))
        })
        .register("Approval", |ctx: OrchestrationContext, _input: String| async move {
            ctx.set_custom_status("waiting for approval");
            ctx.set_value("stage", "review")?;
            ctx.set_value("approver", "ops@example.com")?;
            let decision = ctx.schedule_wait("Approve");
            let deadline = ctx.schedule_timer(Duration::from_secs(3600));
            Ok(match ctx.select2(decision, deadline).await {
                Either2::First(data) => format!("approved: {data}"),
                Either2::Second(()) => "expired".to_string(),
            })
        })
        .register("Parent", |ctx: OrchestrationContext, input: String| async move {
            let child = format!("{}-child", ctx.instance_id());
            Ok(ctx.schedule_sub_orchestration_with_id("Greet", child, input).await?)
        })
        .register("Holder", |ctx: OrchestrationContext, input: String| async move {
            let child = format!("{}-child", ctx.instance_id());
            Ok(ctx.schedule_sub_orchestration_with_id("Approval", child, input).await?)
        })
        .register("Counter", |ctx: OrchestrationContext, input: String| async move {
            let n: u32 = input.parse().unwrap_or(0);
            if n < 3 {
                ctx.continue_as_new((n + 1).to_string());
            }
            Ok(n.to_string())
        })
        .build()
}

/// Every instance of the template, with its final or current state.
const INSTANCES: &[(&str, &str)] = &[
    ("done-1", "Completed"),
    ("done-2", "Completed"),
    ("failed-1", "Failed"),
    ("waiting-1", "Running"),
    ("parent-1", "Completed"),
    ("parent-1-child", "Completed"),
    ("holder-1", "Running"),
    ("holder-1-child", "Running"),
    ("counter-1", "Completed"),
    ("pending-1", "Pending"),
];

async fn populate(url: &str) {
    let store = Arc::new(SqliteProvider::new(url, None).await.expect("create the template store"));
    let rt = Runtime::start_with_store(store.clone(), activities(), orchestrations()).await;
    let client = Client::new(store.clone());
    client.start_orchestration_versioned("done-1", "Greet", "1.0.0", "Ada").await.unwrap();
    client.start_orchestration("done-2", "Greet", "Grace").await.unwrap();
    client.start_orchestration("failed-1", "Fail", "").await.unwrap();
    client.start_orchestration("waiting-1", "Approval", "").await.unwrap();
    client.start_orchestration("parent-1", "Parent", "Linus").await.unwrap();
    client.start_orchestration("holder-1", "Holder", "").await.unwrap();
    client.start_orchestration("counter-1", "Counter", "0").await.unwrap();
    // No node has it registered: it stays pending, with no version pinned.
    client.start_orchestration("pending-1", "Unregistered", "").await.unwrap();
    for id in ["done-1", "done-2", "failed-1", "parent-1", "counter-1"] {
        let status = client.wait_for_orchestration(id, Duration::from_secs(20)).await.unwrap();
        assert!(status.is_terminal(), "{id}: {status:?}");
    }
    for id in ["waiting-1", "holder-1-child", "holder-1"] {
        wait_running(&client, id).await;
    }
    rt.shutdown(None).await;
    for (id, state) in INSTANCES {
        let record = client.get_instance_info(id).await.unwrap().unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(record.state.as_str(), *state, "{id}");
    }
}

/// Writes a consistent one-file snapshot of the store at `url` to `into`. The store's own
/// connections close on their own threads after it is dropped, checkpointing and removing
/// the WAL at a moment no test controls; copying the live file and its WAL could race with
/// that. `VACUUM INTO` reads one snapshot through a connection closed here.
async fn snapshot(url: &str, into: &Path) {
    let mut conn = sqlx::SqliteConnection::connect(url).await.expect("open the template store");
    let into = into.display().to_string().replace('\'', "''");
    sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{into}'")))
        .execute(&mut conn)
        .await
        .expect("snapshot the template store");
    conn.close().await.expect("close the snapshot connection");
    // The snapshot comes out in rollback-journal mode; stores run in WAL mode, and a reader
    // that switched it would change the file under `read_commands_never_write`.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", into.replace("''", "'")))
        .await
        .expect("open the snapshot");
    sqlx::query("PRAGMA journal_mode = WAL").execute(&mut conn).await.expect("switch the snapshot to WAL");
    conn.close().await.expect("close the snapshot");
}

/// Waits until `id` has run a turn and has a timer or a child waiting (its state is
/// `Running` and the turn that created them is committed).
async fn wait_running(client: &Client, id: &str) {
    for _ in 0..2000 {
        if let Some(r) = client.get_instance_info(id).await.unwrap()
            && r.state == duroxide::provider::InstanceState::Running
        {
            let d = client.describe_instance(id).await.unwrap();
            if !d.pending_timers.is_empty() || !d.children.is_empty() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} never started waiting");
}

/// The template file, populated once per test process (in a thread with its own tokio
/// runtime) and written as a one-file snapshot, so copies never depend on a WAL.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let live = dir.path().join("live.db");
        let path = dir.path().join("template.db");
        let url = format!("sqlite:{}", live.display());
        let into = path.clone();
        std::thread::spawn(move || {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async {
                populate(&url).await;
                snapshot(&url, &into).await;
            });
        })
        .join()
        .expect("populating the template store failed");
        (dir, path)
    });
    path
}

/// A private copy of the template store.
struct Store {
    _dir: tempfile::TempDir,
    path: PathBuf,
    url: String,
}

fn store() -> Store {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("app.db");
    let from = template();
    std::fs::copy(from, &path).expect("copy the template");
    let url = format!("sqlite:{}", path.display());
    Store { _dir: dir, path, url }
}

// ---------------------------------------------------------------------------------------
// Running the binary

/// The binary with `--store URL`, no inherited store variables, stdin not a terminal.
fn dx(url: &str) -> Command {
    let mut cmd = bare();
    cmd.arg("--store").arg(url);
    cmd
}

fn bare() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_duroxide"));
    // assert_cmd gives the process an empty stdin (never a terminal).
    cmd.env_remove("DUROXIDE_STORE").env_remove("DUROXIDE_SCHEMA");
    cmd.timeout(Duration::from_secs(30));
    cmd
}

/// Runs `args` with `--json`, expects exit 0 and returns the parsed stdout.
fn json(url: &str, args: &[&str]) -> Value {
    let out = dx(url).args(args).arg("--json").output().expect("run duroxide");
    assert!(
        out.status.success(),
        "duroxide {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("duroxide {args:?}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

/// Runs `args` and expects exit `code` with `needle` on stderr.
fn fails(url: &str, args: &[&str], code: i32, needle: &str) {
    dx(url).args(args).assert().code(code).stderr(contains(needle));
}

fn ids(list: &Value) -> Vec<String> {
    list["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|r| r["instance"].as_str().unwrap().to_string())
        .collect()
}

fn state_of(url: &str, id: &str) -> String {
    json(url, &["show", id])["record"]["state"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------
// Read commands

#[test]
fn list_pages_filters_and_counts() {
    let s = store();
    let all = json(&s.url, &["list"]);
    let mut got = ids(&all);
    got.sort();
    let mut want: Vec<String> = INSTANCES.iter().map(|(i, _)| i.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
    assert!(all["next_cursor"].is_null());
    let first = &all["instances"][0];
    for field in ["instance", "name", "version", "execution_id", "state", "created_at_ms", "updated_at_ms"] {
        assert!(first.get(field).is_some(), "list --json lacks {field}: {first}");
    }

    // Pages of 2 cover every instance exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = vec!["list", "--limit", "2"];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c.as_str()]);
        }
        let page = json(&s.url, &args);
        assert!(ids(&page).len() <= 2);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, want);

    // Oldest first starts with the first instance started.
    assert_eq!(ids(&json(&s.url, &["list", "--order", "oldest", "--limit", "1"])), ["done-1"]);

    assert_eq!(ids(&json(&s.url, &["list", "--state", "failed"])), ["failed-1"]);
    let mut running = ids(&json(&s.url, &["list", "--state", "running,pending"]));
    running.sort();
    assert_eq!(running, ["holder-1", "holder-1-child", "pending-1", "waiting-1"]);
    assert_eq!(ids(&json(&s.url, &["list", "--parent", "holder-1"])), ["holder-1-child"]);
    let mut done = ids(&json(&s.url, &["list", "--prefix", "done-"]));
    done.sort();
    assert_eq!(done, ["done-1", "done-2"]);
    assert_eq!(ids(&json(&s.url, &["list", "--name", "Greet", "--version", "1.0.0"])), ["done-1"]);
    assert_eq!(ids(&json(&s.url, &["list", "--created-after", "1h"])).len(), INSTANCES.len());
    assert!(ids(&json(&s.url, &["list", "--created-before", "2000-01-01"])).is_empty());
    assert!(ids(&json(&s.url, &["list", "--updated-after", "2999-01-01T00:00:00Z"])).is_empty());
    assert_eq!(ids(&json(&s.url, &["list", "--updated-before", "2999-01-01"])).len(), INSTANCES.len());

    let counts = json(&s.url, &["list", "--count"]);
    assert_eq!(counts["total"], INSTANCES.len() as u64);
    let completed =
        counts["by_state"].as_array().unwrap().iter().find(|c| c["state"] == "Completed").unwrap();
    assert_eq!(completed["count"], 5);

    // The table.
    dx(&s.url)
        .args(["list", "--limit", "3"])
        .assert()
        .success()
        .stdout(contains("INSTANCE").and(contains("STATE")).and(contains("--cursor ")));
    dx(&s.url)
        .args(["list", "--state", "failed"])
        .assert()
        .success()
        .stdout(contains("Failed (application)"));
    dx(&s.url)
        .args(["list", "--prefix", "nobody"])
        .assert()
        .success()
        .stdout(contains("No instances match."));
    dx(&s.url).args(["list", "--count"]).assert().success().stdout(contains("total"));
}

#[test]
fn list_rejects_bad_cursors_and_values_as_usage_errors() {
    let s = store();
    fails(&s.url, &["list", "--cursor", "garbage"], 2, "malformed cursor");
    let page = json(&s.url, &["list", "--limit", "1"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    fails(&s.url, &["list", "--cursor", cursor, "--order", "oldest"], 2, "order");
    fails(&s.url, &["list", "--limit", "0"], 2, "--limit");
    fails(&s.url, &["list", "--state", "sleeping"], 2, "possible values");
    fails(&s.url, &["list", "--created-after", "yesterday"], 2, "expected a time");
}

#[test]
fn show_describes_an_instance() {
    let s = store();
    let waiting = json(&s.url, &["show", "waiting-1"]);
    assert_eq!(waiting["record"]["state"], "Running");
    assert_eq!(waiting["record"]["custom_status"], "waiting for approval");
    assert_eq!(waiting["pending_timers"].as_array().unwrap().len(), 1);
    assert_eq!(waiting["executions"].as_array().unwrap().len(), 1);
    for field in ["locked_until_ms", "pending_activities", "queued_messages", "children"] {
        assert!(waiting.get(field).is_some(), "show --json lacks {field}");
    }
    let parent = json(&s.url, &["show", "parent-1"]);
    assert_eq!(parent["children"][0]["instance"], "parent-1-child");
    assert_eq!(parent["children"][0]["state"], "Completed");
    let failed = json(&s.url, &["show", "failed-1"]);
    assert_eq!(failed["record"]["error"]["message"], "boom");
    assert_eq!(json(&s.url, &["show", "counter-1"])["executions"].as_array().unwrap().len(), 4);

    dx(&s.url)
        .args(["show", "waiting-1"])
        .assert()
        .success()
        .stdout(contains("state:").and(contains("Pending timers")).and(contains("waiting for approval")));
    dx(&s.url).args(["show", "holder-1"]).assert().success().stdout(contains("holder-1-child"));
    // Durable values, sorted by key, in both forms; an instance without any shows none.
    assert_eq!(waiting["values"], serde_json::json!({"approver": "ops@example.com", "stage": "review"}));
    assert_eq!(json(&s.url, &["show", "done-1"])["values"], serde_json::json!({}));
    let text = String::from_utf8(dx(&s.url).args(["show", "waiting-1"]).output().unwrap().stdout).unwrap();
    let values = text.split("Values").nth(1).expect("a Values section");
    let (approver, stage) = (values.find("ops@example.com").unwrap(), values.find("review").unwrap());
    assert!(approver < stage && values.contains("approver") && values.contains("stage"), "{values}");
    let pending = json(&s.url, &["show", "pending-1"]);
    assert_eq!(pending["record"]["state"], "Pending");
    assert!(pending["record"]["version"].is_null());
    dx(&s.url).args(["show", "pending-1"]).assert().success().stdout(contains("- (not started)"));
    fails(&s.url, &["show", "nobody"], 1, "not found");
    dx(&s.url).args(["show", "nobody"]).assert().code(1).stderr(contains("hint:"));
}

#[test]
fn history_json_is_the_replayable_export() {
    let s = store();
    let registry = orchestrations();
    for (id, execution) in [
        ("done-1", None),
        ("failed-1", None),
        ("parent-1", None),
        ("counter-1", Some("1")),
        ("counter-1", None),
    ] {
        let mut args = vec!["history", id, "--json"];
        if let Some(e) = execution {
            args.extend(["--execution", e]);
        }
        let out = dx(&s.url).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let execution_id = execution.map_or_else(
            || json(&s.url, &["show", id])["record"]["execution_id"].as_u64().unwrap(),
            |e| e.parse().unwrap(),
        );
        replay_history_json(&registry, id, execution_id, text.trim_end())
            .unwrap_or_else(|e| panic!("{id} execution {execution_id} does not replay: {e}"));
        let events: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(events[0]["type"], "OrchestrationStarted", "{id}");
        assert_eq!(events[0]["event_id"], 1);
    }
    dx(&s.url).args(["history", "counter-1", "--execution", "2"]).assert().success().stdout(
        contains("execution 2")
            .and(contains("OrchestrationStarted"))
            .and(contains("OrchestrationContinuedAsNew")),
    );
    dx(&s.url)
        .args(["history", "pending-1"])
        .assert()
        .success()
        .stdout(contains("No events (the instance has not started)"));
    let pending = dx(&s.url).args(["history", "pending-1", "--json"]).output().unwrap();
    assert!(pending.status.success(), "{}", String::from_utf8_lossy(&pending.stderr));
    assert_eq!(String::from_utf8(pending.stdout).unwrap(), "[]\n");
    fails(&s.url, &["history", "nobody"], 1, "not found");
    fails(&s.url, &["history", "nobody", "--json"], 1, "not found");
    fails(&s.url, &["history", "done-1", "--execution", "9"], 1, "execution 9");
}

#[test]
fn versions_report_what_can_be_retired() {
    let s = store();
    let report = json(&s.url, &["versions"]);
    let rows = report["versions"].as_array().unwrap();
    let row = |name: &str, version: &str| {
        rows.iter()
            .find(|r| r["name"] == name && r["version"] == version)
            .unwrap_or_else(|| panic!("{name} {version}: {report}"))
    };
    assert_eq!(row("Greet", "1.0.0")["completed"], 1);
    assert_eq!(row("Greet", "2.0.0")["completed"], 2, "done-2 and parent-1-child");
    assert_eq!(row("Approval", "1.0.0")["running"], 2);
    let unpinned = rows.iter().find(|r| r["name"] == "Unregistered").expect("the pending instance");
    assert!(unpinned["version"].is_null() && unpinned["duroxide_version"].is_null());
    assert_eq!(unpinned["pending"], 1);
    assert!(row("Approval", "1.0.0")["duroxide_version"].is_string());
    let retirable: Vec<String> = report["retirable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r["name"].as_str().unwrap(), r["version"].as_str().unwrap()))
        .collect();
    assert!(retirable.contains(&"Greet 1.0.0".to_string()), "{retirable:?}");
    assert!(
        !retirable
            .iter()
            .any(|r| r.starts_with("Approval") || r.starts_with("Holder") || r.starts_with("Unregistered")),
        "{retirable:?}"
    );
    assert_eq!(report["duroxide_versions"][0]["unfinished"], 3);

    dx(&s.url).args(["versions"]).assert().success().stdout(
        contains("Retirable (no pending or running instance): ")
            .and(contains("Greet 1.0.0"))
            .and(contains("Not started yet (no version pinned): Unregistered (1 pending)")),
    );
    let only = json(&s.url, &["versions", "--name", "Counter"]);
    assert_eq!(only["versions"].as_array().unwrap().len(), 1);
}

#[test]
fn stats_summarize_the_store() {
    let s = store();
    let stats = json(&s.url, &["stats"]);
    let states = stats["instances"].as_array().unwrap();
    assert_eq!(states.len(), 4, "every state listed: {stats}");
    assert_eq!(states.iter().map(|c| c["count"].as_u64().unwrap()).sum::<u64>(), INSTANCES.len() as u64);
    for q in ["orchestrator_queue", "activity_queue"] {
        for f in ["ready", "locked", "delayed", "oldest_ready_age_ms"] {
            assert!(stats[q].get(f).is_some(), "stats --json lacks {q}.{f}");
        }
    }
    assert!(stats["orchestrator_queue"]["delayed"].as_u64().unwrap() >= 2, "the two timers: {stats}");
    assert!(stats["taken_at_ms"].as_u64().unwrap() > 0);
    assert!(stats.get("sessions").is_some());
    dx(&s.url).arg("stats").assert().success().stdout(contains("QUEUE").and(contains("orchestrator")));
}

#[test]
fn stats_and_show_list_work_waiting_for_a_tag() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("tags.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Arc::new(SqliteProvider::new(&url, None).await.unwrap());
        let orchestrations = OrchestrationRegistry::builder()
            .register("Encode", |ctx: OrchestrationContext, _input: String| async move {
                Ok(ctx.schedule_activity("Transcode", "clip").with_tag("video").await?)
            })
            .build();
        // An orchestration-only node: the work stays queued for a `video` pool.
        let options = RuntimeOptions { worker_concurrency: 0, ..Default::default() };
        let rt = Runtime::start_with_options(store.clone(), activities(), orchestrations, options).await;
        let client = Client::new(store);
        client.start_orchestration("encode-1", "Encode", "").await.unwrap();
        for _ in 0..500 {
            if !client.describe_instance("encode-1").await.unwrap().pending_activities.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        rt.shutdown(None).await;
    });
    // The node has shut down: nobody alive serves `video`, and both commands say so.
    dx(&url).arg("stats").assert().success().stdout(
        contains("1 activities waiting for tag video (oldest queued")
            .and(contains("ago); no live worker serves this tag")),
    );
    dx(&url).args(["show", "encode-1"]).assert().success().stdout(
        contains("TAG").and(contains("video (no live worker)")).and(contains(
            "No live worker serves tag video: its activities wait until a node serving it starts",
        )),
    );
    let stats = json(&url, &["stats"]);
    assert_eq!(stats["activity_tags"][0]["tag"], "video", "{stats}");
    assert_eq!(stats["activity_tags"][0]["waiting"], 1, "{stats}");
    assert_eq!(stats["activity_tags"][0]["served_by"], 0, "{stats}");
    let show = json(&url, &["show", "encode-1"]);
    assert_eq!(show["pending_activities"][0]["served"], false, "{show}");

    // A node that lists the tag but runs no activities (no worker slots) serves nothing.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let node = rt.block_on(async {
        let store = Arc::new(SqliteProvider::new(&url, None).await.unwrap());
        let options = RuntimeOptions {
            worker_node_id: Some("video-1".into()),
            activity_tags: duroxide::provider::TagFilter::tags(["video"]),
            worker_concurrency: 0,
            ..Default::default()
        };
        Runtime::start_with_options(store, activities(), orchestrations(), options).await
    });
    let stats = json(&url, &["stats"]);
    assert_eq!(stats["activity_tags"][0]["served_by"], 0, "no activity slots, no service: {stats}");
    rt.block_on(node.shutdown(None));
}

#[test]
fn workers_lists_live_and_gone_runtimes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("workers.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (gpu, general) = rt.block_on(async {
        let store = Arc::new(SqliteProvider::new(&url, None).await.unwrap());
        let gpu = RuntimeOptions {
            worker_node_id: Some("gpu-1".into()),
            activity_tags: duroxide::provider::TagFilter::tags(["gpu"]),
            worker_concurrency: 2,
            worker_heartbeat_interval: Duration::from_millis(100),
            ..Default::default()
        };
        let general = RuntimeOptions { worker_node_id: Some("general-1".into()), ..Default::default() };
        (
            Runtime::start_with_options(store.clone(), activities(), orchestrations(), gpu).await,
            Runtime::start_with_options(store, activities(), orchestrations(), general).await,
        )
    });
    dx(&url).arg("workers").assert().success().stdout(
        contains("WORKER")
            .and(contains("TAGS"))
            .and(contains("LAST SEEN"))
            .and(predicates::str::is_match(r"gpu-1 +gpu +2 +2 +\S+ +\S+ ago +live").unwrap())
            .and(predicates::str::is_match(r"general-1 +untagged +4 +2 +\S+ +\S+ ago +live").unwrap()),
    );
    let listed = json(&url, &["workers"]);
    let listed = listed.as_array().expect("an array of workers");
    assert_eq!(listed.len(), 2, "{listed:?}");
    let w = &listed[1];
    assert_eq!(w["worker_id"], "gpu-1", "by id: {listed:?}");
    assert_eq!(w["tags"], serde_json::json!({"kind": "tags", "tags": ["gpu"]}));
    assert_eq!(w["activity_slots"], 2);
    assert_eq!(w["orchestration_slots"], 2);
    assert_eq!(w["duroxide_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(w["heartbeat_ms"], 100);
    assert_eq!(w["live"], true);
    for field in ["started_at_ms", "last_seen_ms", "last_seen_ago_ms"] {
        assert!(w[field].is_u64(), "{field}: {w}");
    }

    // A crash leaves the record; three missed heartbeats later it is gone, and only
    // --all lists it. A graceful shutdown removes the record.
    drop(gpu);
    std::thread::sleep(Duration::from_millis(400));
    let live = json(&url, &["workers"]);
    assert_eq!(live.as_array().unwrap().len(), 1, "{live}");
    assert_eq!(live[0]["worker_id"], "general-1");
    let all = json(&url, &["workers", "--all"]);
    assert_eq!(all[1]["worker_id"], "gpu-1");
    assert_eq!(all[1]["live"], false, "{all}");
    dx(&url)
        .args(["workers", "--all"])
        .assert()
        .success()
        .stdout(predicates::str::is_match(r"gpu-1 .* ago +gone").unwrap());
    rt.block_on(general.shutdown(None));
    dx(&url).arg("workers").assert().success().stdout(contains("No live workers."));
    dx(&url)
        .args(["workers", "--all"])
        .assert()
        .success()
        .stdout(contains("gpu-1").and(contains("general-1").not()));
}

#[test]
fn read_commands_never_write() {
    let s = store();
    let before = std::fs::read(&s.path).unwrap();
    for args in [
        vec!["list"],
        vec!["list", "--count"],
        vec!["show", "waiting-1"],
        vec!["history", "done-1"],
        vec!["history", "done-1", "--json"],
        vec!["versions"],
        vec!["stats"],
        vec!["workers"],
        vec!["workers", "--all"],
        vec!["export"],
    ] {
        dx(&s.url).args(&args).assert().success();
    }
    assert!(std::fs::read(&s.path).unwrap() == before, "a read command changed the database file");
    let wal = PathBuf::from(format!("{}-wal", s.path.display()));
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0, "a read command wrote to the WAL");

    // A missing store is reported, not created.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let url = format!("sqlite:{}", missing.display());
    for args in [vec!["list"], vec!["show", "x"], vec!["stats"], vec!["delete", "x", "--yes"], vec!["export"]]
    {
        fails(&url, &args, 1, "no SQLite database");
    }
    assert!(!missing.exists(), "duroxide created {}", missing.display());
    // The same, named in the documented relative form from another working directory.
    bare()
        .current_dir(dir.path())
        .args(["list", "--store", "sqlite:./missing.db"])
        .assert()
        .code(1)
        .stderr(contains("no SQLite database"));
    assert!(!missing.exists());
}

// ---------------------------------------------------------------------------------------
// Commands that write

#[test]
fn raise_queues_an_event() {
    let s = store();
    let raised = json(&s.url, &["raise", "waiting-1", "Approve", "\"yes\""]);
    assert_eq!(raised["instance"], "waiting-1");
    assert_eq!(raised["event"], "Approve");
    let queued = json(&s.url, &["show", "waiting-1"])["queued_messages"].clone();
    let event = queued
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message"]["type"] == "ExternalRaised")
        .expect("queued event");
    assert_eq!(event["message"]["data"], "\"yes\"");
    // From stdin.
    dx(&s.url)
        .args(["raise", "waiting-1", "Note", "-"])
        .write_stdin("{\"by\":\"ops\"}\n")
        .assert()
        .success()
        .stdout(contains("Raised event 'Note'"));
    fails(&s.url, &["raise", "nobody", "Approve", "x"], 1, "not found");
    fails(&s.url, &["raise", "done-1", "Approve", "x"], 1, "already finished");
    fails(&s.url, &["raise", "waiting-1", "Approve"], 2, "DATA");
}

#[test]
fn cancel_asks_first_and_queues_a_cancellation() {
    let s = store();
    let cancellation = |url: &str| {
        let queued = json(url, &["show", "waiting-1"])["queued_messages"].clone();
        queued.as_array().unwrap().iter().find(|m| m["message"]["type"] == "CancelRequested").cloned()
    };
    fails(&s.url, &["cancel", "waiting-1"], 1, "pass --yes");
    assert!(cancellation(&s.url).is_none());
    let out = json(&s.url, &["cancel", "waiting-1", "--yes", "--reason", "not needed"]);
    assert_eq!(out["cancel_requested"], true);
    assert_eq!(cancellation(&s.url).expect("queued cancellation")["message"]["reason"], "not needed");
    fails(&s.url, &["cancel", "done-1", "--yes"], 1, "already finished");
    fails(&s.url, &["cancel", "nobody", "--yes"], 1, "not found");
}

#[test]
fn terminate_ends_an_instance_and_its_children() {
    let s = store();
    fails(&s.url, &["terminate", "holder-1"], 1, "pass --yes");
    assert_eq!(state_of(&s.url, "holder-1"), "Running");
    let out = json(&s.url, &["terminate", "holder-1", "--yes", "--reason", "stuck"]);
    assert_eq!(out["terminated"], serde_json::json!(["holder-1", "holder-1-child"]));
    let record = json(&s.url, &["show", "holder-1"])["record"].clone();
    assert_eq!(record["state"], "Failed");
    assert_eq!(record["error"]["category"], "terminated");
    assert_eq!(record["error"]["message"], "stuck");
    assert_eq!(state_of(&s.url, "holder-1-child"), "Failed");
    fails(&s.url, &["terminate", "holder-1", "--yes"], 1, "already finished");
    fails(&s.url, &["terminate", "nobody", "--yes"], 1, "not found");
    dx(&s.url)
        .args(["terminate", "waiting-1", "-y"])
        .assert()
        .success()
        .stdout(contains("Terminated 1 instance:"));
}

#[test]
fn delete_one_instance() {
    let s = store();
    fails(&s.url, &["delete", "done-1"], 1, "pass --yes");
    assert_eq!(state_of(&s.url, "done-1"), "Completed");

    let dry = json(&s.url, &["delete", "parent-1", "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["would_delete"], 2);
    assert_eq!(dry["instances"][1]["instance"], "parent-1-child");
    assert_eq!(state_of(&s.url, "parent-1-child"), "Completed");

    let out = json(&s.url, &["delete", "parent-1", "--yes"]);
    let mut deleted: Vec<String> = serde_json::from_value(out["deleted"].clone()).unwrap();
    deleted.sort();
    assert_eq!(deleted, ["parent-1", "parent-1-child"]);
    fails(&s.url, &["show", "parent-1-child"], 1, "not found");

    // Unfinished: refused without --force, with a hint naming both ways out.
    dx(&s.url).args(["delete", "waiting-1", "--yes"]).assert().code(1).stderr(
        contains("has not finished").and(contains("duroxide terminate waiting-1")).and(contains("--force")),
    );
    fails(&s.url, &["delete", "holder-1", "--yes"], 1, "has not finished");
    dx(&s.url)
        .args(["delete", "waiting-1", "--yes", "--force"])
        .assert()
        .success()
        .stdout(contains("Deleted 1 instance:"));
    fails(&s.url, &["delete", "nobody", "--yes"], 1, "not found");
    fails(&s.url, &["delete", "done-1", "--force", "--state", "completed"], 2, "cannot be used with");
}

#[test]
fn bulk_delete_previews_asks_and_refuses_empty_filters() {
    let s = store();
    dx(&s.url)
        .args(["delete", "--yes"])
        .assert()
        .code(2)
        .stderr(contains("needs at least one filter").and(contains("--all")));
    fails(&s.url, &["delete", "--state", "running", "--yes"], 2, "only finished instances");

    let dry = json(&s.url, &["delete", "--name", "Greet", "--dry-run"]);
    assert_eq!(dry["would_delete"], 3, "done-1, done-2, parent-1-child: {dry}");
    assert!(dry["instances"].as_array().unwrap().iter().all(|r| r["name"] == "Greet"));
    dx(&s.url)
        .args(["delete", "--name", "Greet", "--dry-run"])
        .assert()
        .success()
        .stdout(contains("3 finished instances selected").and(contains("nothing was deleted")));
    assert_eq!(ids(&json(&s.url, &["list", "--name", "Greet"])).len(), 3);

    // Without a terminal: the preview, then a refusal.
    dx(&s.url).args(["delete", "--prefix", "done-"]).assert().code(1).stderr(
        contains("2 finished instances selected")
            .and(contains("Delete 2 instances?"))
            .and(contains("pass --yes")),
    );
    let out = json(&s.url, &["delete", "--prefix", "done-", "--yes"]);
    assert_eq!(out["deleted"], 2);
    assert!(ids(&json(&s.url, &["list", "--prefix", "done-"])).is_empty());

    assert_eq!(json(&s.url, &["delete", "--prefix", "nobody", "--yes"])["deleted"], 0);
    assert_eq!(json(&s.url, &["delete", "--state", "failed", "--limit", "1", "--yes"])["deleted"], 1);

    dx(&s.url).args(["delete", "--all", "--yes"]).assert().success().stdout(contains("Deleted"));
    let mut left = ids(&json(&s.url, &["list"]));
    left.sort();
    assert_eq!(
        left,
        ["holder-1", "holder-1-child", "pending-1", "waiting-1"],
        "only unfinished instances are left"
    );
}

#[test]
fn prune_removes_old_executions() {
    let s = store();
    fails(&s.url, &["prune", "counter-1", "--keep-last", "1"], 1, "pass --yes");
    dx(&s.url).args(["prune", "counter-1", "--yes"]).assert().code(2).stderr(contains("--keep-last"));
    fails(
        &s.url,
        &["prune", "--keep-last", "1", "--yes"],
        2,
        "prune needs an instance id, filters, or --all",
    );
    fails(&s.url, &["prune", "counter-1", "--keep-last", "0", "--yes"], 2, "--keep-last");
    fails(&s.url, &["prune", "nobody", "--keep-last", "1", "--yes"], 1, "not found");

    // A dry run counts what a prune would remove and removes nothing (no --yes needed).
    let dry = json(&s.url, &["prune", "counter-1", "--keep-last", "3", "--dry-run"]);
    assert_eq!((dry["pruned"].as_u64(), dry["dry_run"].as_bool()), (Some(1), Some(true)));
    assert_eq!(json(&s.url, &["prune", "--all", "--keep-last", "1", "--dry-run"])["pruned"], 3);
    dx(&s.url)
        .args(["prune", "counter-1", "--keep-last", "2", "--dry-run"])
        .assert()
        .success()
        .stdout(contains("Would remove 2 executions (dry run: nothing removed)."));
    assert_eq!(json(&s.url, &["show", "counter-1"])["executions"].as_array().unwrap().len(), 4);

    assert_eq!(json(&s.url, &["prune", "counter-1", "--keep-last", "3", "--yes"])["pruned"], 1);
    assert_eq!(json(&s.url, &["show", "counter-1"])["executions"].as_array().unwrap().len(), 3);
    // Nothing finished before the epoch.
    assert_eq!(
        json(&s.url, &["prune", "--name", "Counter", "--finished-before", "1970-01-02", "--yes"])["pruned"],
        0
    );
    assert_eq!(json(&s.url, &["prune", "--all", "--keep-last", "1", "--yes"])["pruned"], 2);
    let counter = json(&s.url, &["show", "counter-1"]);
    assert_eq!(counter["executions"].as_array().unwrap().len(), 1);
    assert_eq!(counter["executions"][0]["execution_id"], 4);
    dx(&s.url)
        .args(["prune", "counter-1", "--keep-last", "1", "-y"])
        .assert()
        .success()
        .stdout(contains("Removed 0 executions."));
}

#[test]
fn export_import_and_copy_move_every_instance() {
    let s = store();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("instances.jsonl");
    dx(&s.url)
        .args(["export", "--output"])
        .arg(&file)
        .assert()
        .success()
        .stderr(contains("Exported 10 instances"));
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(exported.lines().count(), INSTANCES.len());
    let stdout = dx(&s.url).arg("export").output().unwrap().stdout;
    assert_eq!(String::from_utf8(stdout).unwrap(), exported);

    // import creates the target store.
    let target = format!("sqlite:{}", dir.path().join("imported.db").display());
    let report = json(&target, &["import", "--input", file.to_str().unwrap()]);
    assert_eq!(report["copied"].as_array().unwrap().len(), INSTANCES.len());
    assert!(report["skipped_existing"].as_array().unwrap().is_empty());
    assert_eq!(ids(&json(&target, &["list"])).len(), INSTANCES.len());
    assert_eq!(json(&target, &["show", "counter-1"])["executions"].as_array().unwrap().len(), 4);
    // From stdin, again: everything is skipped.
    dx(&target)
        .arg("import")
        .write_stdin(exported.clone())
        .assert()
        .success()
        .stdout(contains("Imported 0 instances").and(contains("skipped 10")));

    let copy = format!("sqlite:{}", dir.path().join("copy.db").display());
    let report = json(&s.url, &["copy", "--to", &copy]);
    assert_eq!(report["copied"].as_array().unwrap().len(), INSTANCES.len());
    assert_eq!(state_of(&copy, "waiting-1"), "Running");
    assert_eq!(json(&copy, &["show", "waiting-1"])["pending_timers"].as_array().unwrap().len(), 1);
    fails(&s.url, &["copy", "--to", &s.url], 2, "same store");
    fails(&target, &["import", "--input", "/nonexistent/file.jsonl"], 1, "cannot read");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "not json\n").unwrap();
    fails(&target, &["import", "--input", bad.to_str().unwrap()], 1, "line 1");
}

// ---------------------------------------------------------------------------------------
// The command line itself

#[test]
fn usage_errors_exit_2_and_say_what_to_do() {
    bare().assert().code(2).stderr(contains("Usage"));
    bare().arg("frobnicate").assert().code(2);
    bare().arg("list").assert().code(2).stderr(contains("no store given").and(contains("DUROXIDE_STORE")));
    bare().args(["--store", "mysql://h/db", "list"]).assert().code(2).stderr(contains("sqlite:./app.db"));
    bare().args(["--store", "sqlite::memory:", "list"]).assert().code(2).stderr(contains("in-memory"));
    bare()
        .args(["--store", "sqlite:a.db", "--schema", "x", "list"])
        .assert()
        .code(2)
        .stderr(contains("PostgreSQL"));
    bare().args(["show"]).assert().code(2).stderr(contains("<ID>"));
    bare().arg("--help").assert().success().stdout(contains("list").and(contains("copy")));
    bare().arg("--version").assert().success().stdout(contains(env!("CARGO_PKG_VERSION")));
    bare().args(["delete", "--help"]).assert().success().stdout(contains("--dry-run"));
}

#[test]
fn the_store_can_come_from_the_environment() {
    let s = store();
    bare()
        .env("DUROXIDE_STORE", &s.url)
        .args(["show", "done-1", "--json"])
        .assert()
        .success()
        .stdout(contains("\"done-1\""));
    // A plain path is a SQLite file.
    bare().args(["--store", s.path.to_str().unwrap(), "show", "done-1"]).assert().success();
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

const PG_ENV: &str = "DUROXIDE_TEST_PG_URL";

fn pg_url() -> Option<String> {
    match std::env::var(PG_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{PG_ENV} is not set but CI=true: the PostgreSQL CLI test must run in CI");
            }
            eprintln!(
                "SKIPPED: {PG_ENV} is not set, so the PostgreSQL CLI test is skipped (set it, e.g. \
                 {PG_ENV}=postgres://postgres@127.0.0.1:5432/test, to run it)"
            );
            None
        }
    }
}

/// Drops the test's schema when the test ends, passed or not.
struct DropSchema {
    url: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

#[test]
fn postgres_every_command() {
    let Some(pg) = pg_url() else { return };
    let schema = format!("dxcli_{}", uuid::Uuid::new_v4().simple());
    let _drop = DropSchema { url: pg.clone(), schema: schema.clone() };
    let sep = if pg.contains('?') { '&' } else { '?' };
    let url = format!("{pg}{sep}schema={schema}");

    // A schema that does not exist is reported, not created.
    fails(&url, &["list"], 1, &format!("no schema '{schema}'"));

    // copy (and so the PostgreSQL import) from the SQLite template.
    let s = store();
    assert_eq!(json(&s.url, &["copy", "--to", &url])["copied"].as_array().unwrap().len(), INSTANCES.len());
    // --schema names the same store.
    let via_flag = dx(&pg).args(["--schema", &schema, "list", "--json"]).output().unwrap();
    assert!(via_flag.status.success(), "{}", String::from_utf8_lossy(&via_flag.stderr));

    assert_eq!(ids(&json(&url, &["list"])).len(), INSTANCES.len());
    assert_eq!(ids(&json(&url, &["list", "--limit", "4"])).len(), 4);
    assert_eq!(ids(&json(&url, &["list", "--state", "failed"])), ["failed-1"]);
    assert_eq!(json(&url, &["list", "--count"])["total"], INSTANCES.len() as u64);
    fails(&url, &["list", "--cursor", "garbage"], 2, "malformed cursor");
    assert_eq!(json(&url, &["show", "waiting-1"])["pending_timers"].as_array().unwrap().len(), 1);
    fails(&url, &["show", "nobody"], 1, "not found");
    let history = dx(&url).args(["history", "done-1", "--json"]).output().unwrap();
    replay_history_json(
        &orchestrations(),
        "done-1",
        1,
        String::from_utf8(history.stdout).unwrap().trim_end(),
    )
    .unwrap();
    assert!(
        json(&url, &["versions"])["retirable"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "Greet" && r["version"] == "1.0.0")
    );
    assert_eq!(json(&url, &["stats"])["instances"].as_array().unwrap().len(), 4);
    assert_eq!(
        dx(&url).arg("export").output().unwrap().stdout.iter().filter(|b| **b == b'\n').count(),
        INSTANCES.len()
    );

    json(&url, &["raise", "waiting-1", "Approve", "yes"]);
    json(&url, &["cancel", "waiting-1", "--yes"]);
    fails(&url, &["terminate", "holder-1"], 1, "pass --yes");
    assert_eq!(json(&url, &["terminate", "holder-1", "--yes"])["terminated"].as_array().unwrap().len(), 2);
    fails(&url, &["delete", "waiting-1", "--yes"], 1, "has not finished");
    fails(&url, &["delete", "--yes"], 2, "--all");
    assert_eq!(json(&url, &["delete", "--name", "Greet", "--dry-run"])["would_delete"], 3);
    assert_eq!(json(&url, &["delete", "--prefix", "done-", "--yes"])["deleted"], 2);
    assert_eq!(json(&url, &["prune", "counter-1", "--keep-last", "1", "--yes"])["pruned"], 3);
    let mut deleted: Vec<String> =
        serde_json::from_value(json(&url, &["delete", "holder-1", "--yes"])["deleted"].clone()).unwrap();
    deleted.sort();
    assert_eq!(deleted, ["holder-1", "holder-1-child"]);
}
