//! Orchestration versioning as the migration guide describes it: policies, pinning,
//! continue-as-new across versions, rolling deploys, draining, storage migration, and the
//! testing tools.

mod common;

use common::{
    assert_clean_history, completed, fast_options, file_store, memory_store, wait, wait_until_subscribed,
};
use duroxide::prelude::*;
use duroxide::registry::RegistryError;
use duroxide::testing::{ReplayCheckError, TestHarness, replay_history};
use duroxide::{ErrorCategory, Provider};
use std::sync::Arc;
use std::time::Duration;

fn activities() -> ActivityRegistry {
    ActivityRegistry::builder()
        .register(
            "ProcessV1",
            |_ctx: ActivityContext, input: String| async move { Ok(format!("v1({input})")) },
        )
        .register(
            "ProcessV2",
            |_ctx: ActivityContext, input: String| async move { Ok(format!("v2({input})")) },
        )
        .register(
            "Validate",
            |_ctx: ActivityContext, input: String| async move { Ok(format!("valid:{input}")) },
        )
        .build()
}

// The guide's "Versioning Strategy", as written.
fn guide_registry(policy: VersionPolicy) -> OrchestrationRegistry {
    // Version 1.0.0
    let orchestration_v1 = |ctx: OrchestrationContext, input: String| async move {
        let go = ctx.schedule_wait("Go").await;
        let result = ctx.schedule_activity("ProcessV1", format!("{input}{go}")).await?;
        Ok(result)
    };
    // Version 2.0.0 - Added validation step
    let orchestration_v2 = |ctx: OrchestrationContext, input: String| async move {
        let go = ctx.schedule_wait("Go").await;
        let input = format!("{input}{go}");
        let validated = ctx.schedule_activity("Validate", &input).await?;
        let result = ctx.schedule_activity("ProcessV2", validated).await?;
        Ok(result)
    };
    OrchestrationRegistry::builder()
        .register_versioned("MyOrchestration", "1.0.0", orchestration_v1)
        .register_versioned("MyOrchestration", "2.0.0", orchestration_v2)
        .with_version_policy(policy)
        .build()
}

fn v1_only() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register_versioned(
            "MyOrchestration",
            "1.0.0",
            |ctx: OrchestrationContext, input: String| async move {
                let go = ctx.schedule_wait("Go").await;
                Ok(ctx.schedule_activity("ProcessV1", format!("{input}{go}")).await?)
            },
        )
        .build()
}

async fn version_of(client: &Client, instance: &str) -> Option<String> {
    client.get_instance_info(instance).await.unwrap().unwrap().version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_instance_survives_deploy_of_v2_and_new_instances_get_v2() {
    let mut ts = file_store().await;
    let _dir = ts.dir.take();
    let client = Client::new(ts.store.clone());
    // Deploy 1: only v1 exists.
    let rt = Runtime::start_with_options(ts.store.clone(), activities(), v1_only(), fast_options()).await;
    client.start_orchestration("old", "MyOrchestration", "a").await.unwrap();
    wait_until_subscribed(&client, "old").await;
    assert_eq!(version_of(&client, "old").await.as_deref(), Some("1.0.0"));
    rt.shutdown(None).await;

    // Deploy 2: v1 and v2, policy Latest. "old" stays on v1; a new instance gets v2.
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&ts.url, None).await.unwrap());
    let client = Client::new(store.clone());
    let rt = Runtime::start_with_options(
        store.clone(),
        activities(),
        guide_registry(VersionPolicy::Latest),
        fast_options(),
    )
    .await;
    client.start_orchestration("new", "MyOrchestration", "b").await.unwrap();
    client.raise_event("old", "Go", "!").await.unwrap();
    client.raise_event("new", "Go", "!").await.unwrap();
    assert_eq!(completed(&client, "old").await, "v1(a!)");
    assert_eq!(completed(&client, "new").await, "v2(valid:b!)");
    assert_eq!(version_of(&client, "new").await.as_deref(), Some("2.0.0"));
    let running = client.list_running_versions().await.unwrap();
    assert!(running.is_empty(), "no instance left running: {running:?}");
    let counts = client.count_instances_by_version().await.unwrap();
    assert!(counts.iter().any(|c| c.version.as_deref() == Some("1.0.0") && c.count == 1));
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_with_exact_policy_and_explicit_versions() {
    let ts = memory_store().await;
    // Emergency rollback configuration from the guide.
    let orchestrations = guide_registry(VersionPolicy::Exact("1.0.0"));
    let rt =
        Runtime::start_with_options(ts.store.clone(), activities(), orchestrations, fast_options()).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("r1", "MyOrchestration", "x").await.unwrap();
    client.start_orchestration_versioned("r2", "MyOrchestration", "2.0.0", "y").await.unwrap();
    for id in ["r1", "r2"] {
        wait_until_subscribed(&client, id).await;
        client.raise_event(id, "Go", "").await.unwrap();
    }
    assert_eq!(completed(&client, "r1").await, "v1(x)");
    assert_eq!(completed(&client, "r2").await, "v2(valid:y)");
    rt.shutdown(None).await;
}

#[test]
fn compatible_policy_resolution_table() {
    let f = |_ctx: OrchestrationContext, i: String| async move { Ok(i) };
    let reg = |policy: VersionPolicy| {
        OrchestrationRegistry::builder()
            .register_versioned("O", "1.0.0", f)
            .register_versioned("O", "1.2.0", f)
            .register_versioned("O", "1.3.1", f)
            .register_versioned("O", "2.0.0", f)
            .register_versioned("O", "2.1.0-beta.1", f)
            .with_version_policy(policy)
            .build()
    };
    let table = [
        (VersionPolicy::Latest, Some("2.1.0-beta.1")),
        (VersionPolicy::Compatible("^1"), Some("1.3.1")),
        (VersionPolicy::Compatible("^1.2"), Some("1.3.1")),
        (VersionPolicy::Compatible("~1.2"), Some("1.2.0")),
        (VersionPolicy::Compatible("=1.0.0"), Some("1.0.0")),
        (VersionPolicy::Compatible("^2"), Some("2.0.0")),
        (VersionPolicy::Compatible("^3"), None),
        (VersionPolicy::Exact("1.2.0"), Some("1.2.0")),
        (VersionPolicy::Exact("1.1.0"), None),
    ];
    for (policy, expected) in table {
        let got = reg(policy.clone()).resolve("O", None).ok().map(|(v, _)| v);
        assert_eq!(got.as_deref(), expected, "{policy:?}");
    }
    // Per-name override beats the default policy.
    let r = OrchestrationRegistry::builder()
        .register_versioned("O", "1.0.0", f)
        .register_versioned("O", "2.0.0", f)
        .register_versioned("P", "1.0.0", f)
        .register_versioned("P", "2.0.0", f)
        .with_version_policy(VersionPolicy::Latest)
        .with_version_policy_for("O", VersionPolicy::Exact("1.0.0"))
        .build();
    assert_eq!(r.resolve("O", None).unwrap().0, "1.0.0");
    assert_eq!(r.resolve("P", None).unwrap().0, "2.0.0");
    assert!(r.resolve("Q", None).is_err());
    let err = r.resolve("O", Some("3.0.0")).err().expect("3.0.0 is not registered");
    assert!(err.to_string().contains("registered: 1.0.0, 2.0.0"), "{err}");
}

#[test]
fn duplicate_and_invalid_registrations_are_typed_errors() {
    let f = |_ctx: OrchestrationContext, i: String| async move { Ok(i) };
    let dup = OrchestrationRegistry::builder()
        .register_versioned("O", "1.0.0", f)
        .register("Other", f)
        .register_versioned("O", "1.0.0", f)
        .try_build()
        .unwrap_err();
    assert_eq!(
        dup,
        RegistryError::DuplicateOrchestration {
            name: "O".into(),
            version: "1.0.0".into(),
            first: 1,
            second: 3
        }
    );
    assert!(dup.to_string().contains("registrations #1 and #3"), "{dup}");
    let bad = OrchestrationRegistry::builder().register_versioned("O", "one", f).try_build().unwrap_err();
    assert!(matches!(bad, RegistryError::InvalidVersion { ref version, .. } if version == "one"), "{bad}");
    let bad_policy = OrchestrationRegistry::builder()
        .register("O", f)
        .with_version_policy(VersionPolicy::Compatible("not a req"))
        .try_build()
        .unwrap_err();
    assert!(matches!(bad_policy, RegistryError::InvalidPolicy { .. }), "{bad_policy}");
    let a = |_ctx: ActivityContext, i: String| async move { Ok(i) };
    let dup_act = ActivityRegistry::builder().register("A", a).register("A", a).try_build().unwrap_err();
    assert!(matches!(dup_act, RegistryError::DuplicateActivity { first: 1, second: 2, .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_as_new_versioned_moves_the_instance() {
    let ts = memory_store().await;
    let orchestrations = OrchestrationRegistry::builder()
        .register_versioned("Loop", "1.0.0", |ctx: OrchestrationContext, input: String| async move {
            // Migrate running instance to new version via ContinueAsNew
            let new_input = format!("{input}>v1");
            ctx.continue_as_new_versioned("2.0.0", new_input);
            Ok(String::new())
        })
        .register_versioned("Loop", "2.0.0", |ctx: OrchestrationContext, input: String| async move {
            if input.matches(">v2").count() < 1 {
                // Plain continue_as_new keeps the version.
                ctx.continue_as_new(format!("{input}>v2"));
                return Ok(String::new());
            }
            Ok(format!("{input} on {}", ctx.orchestration_version()))
        })
        .build();
    let rt =
        Runtime::start_with_options(ts.store.clone(), activities(), orchestrations, fast_options()).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration_versioned("loop", "Loop", "1.0.0", "start").await.unwrap();
    assert_eq!(completed(&client, "loop").await, "start>v1>v2 on 2.0.0");
    let execs = client.list_executions("loop").await.unwrap();
    let versions: Vec<&str> = execs.iter().map(|e| e.version.as_str()).collect();
    assert_eq!(versions, vec!["1.0.0", "2.0.0", "2.0.0"]);
    assert_eq!(version_of(&client, "loop").await.as_deref(), Some("2.0.0"));
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_deploy_two_runtimes_each_serve_their_versions() {
    let mut ts = file_store().await;
    let _dir = ts.dir.take();
    let client = Client::new(ts.store.clone());
    // Old node: v1 only. New node: v2 only (v1 removed). Same database file.
    let v2_only = OrchestrationRegistry::builder()
        .register_versioned(
            "MyOrchestration",
            "2.0.0",
            |ctx: OrchestrationContext, input: String| async move {
                let go = ctx.schedule_wait("Go").await;
                Ok(ctx.schedule_activity("ProcessV2", format!("{input}{go}")).await?)
            },
        )
        .build();
    let old_store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&ts.url, None).await.unwrap());
    let new_store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&ts.url, None).await.unwrap());
    let old = Runtime::start_with_options(old_store, activities(), v1_only(), fast_options()).await;
    let new = Runtime::start_with_options(new_store, activities(), v2_only, fast_options()).await;
    for i in 0..6 {
        let v = if i % 2 == 0 { "1.0.0" } else { "2.0.0" };
        client
            .start_orchestration_versioned(&format!("roll-{i}"), "MyOrchestration", v, i.to_string())
            .await
            .unwrap();
    }
    for i in 0..6 {
        wait_until_subscribed(&client, &format!("roll-{i}")).await;
        client.raise_event(&format!("roll-{i}"), "Go", "").await.unwrap();
    }
    for i in 0..6 {
        let expected = if i % 2 == 0 { format!("v1({i})") } else { format!("v2({i})") };
        assert_eq!(
            completed(&client, &format!("roll-{i}")).await,
            expected,
            "never failed by the other node"
        );
    }
    old.shutdown(None).await;
    new.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_nobody_has_is_visible_in_status() {
    let ts = memory_store().await;
    let rt = Runtime::start_with_options(ts.store.clone(), activities(), v1_only(), fast_options()).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration_versioned("future", "MyOrchestration", "9.0.0", "").await.unwrap();
    let mut note = None;
    for _ in 0..300 {
        if let OrchestrationStatus::Pending { note: Some(n) } =
            client.get_orchestration_status("future").await.unwrap()
        {
            note = Some(n);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let note = note.expect("status explains why");
    assert!(note.contains("version 9.0.0 is not registered"), "{note}");
    rt.shutdown(None).await;
}

async fn raw_pool(url: &str) -> sqlx::SqlitePool {
    sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_unreadable_histories_ends_in_visible_poison() {
    let mut ts = file_store().await;
    let _dir = ts.dir.take();
    let client = Client::new(ts.store.clone());
    let rt = Runtime::start_with_options(ts.store.clone(), activities(), v1_only(), fast_options()).await;
    client.start_orchestration("newer", "MyOrchestration", "n").await.unwrap();
    client.start_orchestration("fine", "MyOrchestration", "f").await.unwrap();
    wait_until_subscribed(&client, "newer").await;
    wait_until_subscribed(&client, "fine").await;
    rt.shutdown(None).await;

    // Simulate a history written by a newer duroxide: an event type this version lacks, and
    // a newer pinned duroxide version.
    let pool = raw_pool(&ts.url).await;
    sqlx::query(
        "INSERT INTO history (instance_id, execution_id, event_id, event_type, data) VALUES \
         ('newer', 1, 99, 'QuantumEntangled', '{\"event_id\":99,\"type\":\"QuantumEntangled\"}')",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE instances SET duroxide_version = '9.0.0', duroxide_version_key = ? WHERE instance_id = 'newer'")
        .bind(duroxide::provider::version_key(&semver::Version::new(9, 0, 0)))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    client.raise_event("newer", "Go", "!").await.unwrap();
    client.raise_event("fine", "Go", "!").await.unwrap();

    // A node with the default range for this version leaves it alone; compatible work flows.
    let narrow = RuntimeOptions {
        supported_replay_versions: Some(SemverRange::new(
            semver::Version::new(0, 0, 0),
            semver::Version::new(0, 9, 0),
        )),
        max_attempts: 3,
        ..fast_options()
    };
    let rt = Runtime::start_with_options(ts.store.clone(), activities(), v1_only(), narrow).await;
    assert_eq!(completed(&client, "fine").await, "v1(f!)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let info = client.get_instance_info("newer").await.unwrap().unwrap();
    assert_eq!(info.state, duroxide::provider::InstanceState::Running);
    assert!(info.status_note.unwrap_or_default().contains("duroxide 9.0.0"), "note explains the range");
    rt.shutdown(None).await;

    // Draining as the guide shows: widen the range; the unreadable history fails as poison.
    let wide = RuntimeOptions {
        supported_replay_versions: Some(SemverRange::new(
            semver::Version::new(0, 0, 0),
            semver::Version::new(99, 0, 0),
        )),
        max_attempts: 5,
        ..fast_options()
    };
    let rt = Runtime::start_with_options(ts.store.clone(), activities(), v1_only(), wide).await;
    match wait(&client, "newer").await {
        OrchestrationStatus::Failed { details } => {
            assert_eq!(details.category, ErrorCategory::Poison);
            assert!(
                details.message.contains("fetched 6 times, more than max_attempts = 5"),
                "{}",
                details.message
            );
            assert!(details.message.contains("QuantumEntangled"), "says why: {}", details.message);
        }
        other => panic!("expected poison, got {other:?}"),
    }
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_no_node_can_run_becomes_poison() {
    let ts = memory_store().await;
    let orchestrations = OrchestrationRegistry::builder()
        .register("UsesMissing", |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx.schedule_activity("NotDeployed", "").await?)
        })
        .build();
    let opts = RuntimeOptions {
        max_attempts: 3,
        max_unregistered_backoff: Duration::from_millis(50),
        ..fast_options()
    };
    let rt = Runtime::start_with_options(ts.store.clone(), activities(), orchestrations, opts).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("m", "UsesMissing", "").await.unwrap();
    match wait(&client, "m").await {
        OrchestrationStatus::Failed { details } => {
            assert_eq!(details.category, ErrorCategory::Poison);
            assert!(
                details.message.contains("'NotDeployed'") && details.message.contains("4 times"),
                "{}",
                details.message
            );
        }
        other => panic!("{other:?}"),
    }
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_migration_moves_waiting_instances_to_a_file() {
    let old = memory_store().await;
    let orchestrations = || {
        OrchestrationRegistry::builder()
            .register("Waits", |ctx: OrchestrationContext, input: String| async move {
                let a = ctx.schedule_activity("ProcessV1", &input).await?;
                ctx.set_custom_status("waiting");
                let go = ctx.schedule_wait("Go").await;
                ctx.schedule_timer(Duration::from_millis(200)).await;
                Ok(format!("{a}{go}"))
            })
            .register("Sleeps", |ctx: OrchestrationContext, input: String| async move {
                ctx.schedule_timer(Duration::from_millis(500)).await;
                Ok(format!("slept {input}"))
            })
            .build()
    };
    let rt =
        Runtime::start_with_options(old.store.clone(), activities(), orchestrations(), fast_options()).await;
    let client = Client::new(old.store.clone());
    client.start_orchestration("w", "Waits", "1").await.unwrap();
    client.start_orchestration("s", "Sleeps", "2").await.unwrap();
    client.start_orchestration("done", "Sleeps", "0").await.unwrap();
    assert_eq!(completed(&client, "done").await, "slept 0");
    wait_until_subscribed(&client, "w").await;
    rt.shutdown(None).await;
    // An event raised while no runtime runs: pending in the old store, must move too.
    client.raise_event("w", "Go", "!").await.unwrap();

    let mut new = file_store().await;
    let _dir = new.dir.take();
    let report = duroxide::transfer::copy_instances(old.store.as_ref(), new.store.as_ref()).await.unwrap();
    assert_eq!(report.copied.len(), 3);
    // Idempotent: running it again skips what is there.
    let again = duroxide::transfer::copy_instances(old.store.as_ref(), new.store.as_ref()).await.unwrap();
    assert_eq!(again.skipped_existing.len(), 3);

    let client = Client::new(new.store.clone());
    assert_eq!(
        client.get_orchestration_status("done").await.unwrap(),
        OrchestrationStatus::Completed { output: "slept 0".into() }
    );
    let rt =
        Runtime::start_with_options(new.store.clone(), activities(), orchestrations(), fast_options()).await;
    assert_eq!(completed(&client, "w").await, "v1(1)!");
    assert_eq!(completed(&client, "s").await, "slept 2");
    assert_clean_history(&client.read_execution_history("w", None).await.unwrap());
    // JSON lines round trip (the CLI's format).
    let lines = duroxide::transfer::export_json_lines(new.store.as_ref()).await.unwrap();
    let third = memory_store().await;
    let r = duroxide::transfer::import_json_lines(third.store.as_ref(), &lines).await.unwrap();
    assert_eq!(r.copied.len(), 3);
    assert!(duroxide::transfer::import_json_lines(third.store.as_ref(), "{not json").await.is_err());
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_runs_each_version_and_replays_recorded_histories() {
    // The guide's testing strategy.
    let harness = TestHarness::new(activities(), guide_registry(VersionPolicy::Latest)).await.unwrap();
    // The orchestration waits for "Go": start it, let it reach the wait, raise it.
    let run_with_version = |version: &'static str, input: &'static str| {
        let h = &harness;
        async move {
            let instance = format!("test-MyOrchestration-{version}");
            h.start_versioned(&instance, "MyOrchestration", version, input).await?;
            h.settle().await?;
            h.raise_event(&instance, "Go", "").await?;
            h.wait_for_output(&instance).await
        }
    };
    let v1_result = run_with_version("1.0.0", "in").await.unwrap();
    let v2_result = run_with_version("2.0.0", "in").await.unwrap();
    assert_eq!(v1_result, "v1(in)");
    assert_eq!(v2_result, "v2(valid:in)");

    // Replay each recorded history against the current code: it still fits.
    let client = harness.client().clone();
    let ids = client.list_instances().await.unwrap();
    for id in &ids {
        let history = client.read_execution_history(id, None).await.unwrap();
        let report = replay_history(&guide_registry(VersionPolicy::Latest), id, 1, &history).unwrap();
        assert!(matches!(report.outcome, duroxide::replay::TurnOutcome::Completed(_)));
    }
    // The same v1 history against changed v1 code: the nondeterminism error, not a pass.
    let v1_id = ids.iter().find(|id| id.contains("MyOrchestration-1.0.0")).unwrap();
    let history = client.read_execution_history(v1_id, None).await.unwrap();
    let changed = OrchestrationRegistry::builder()
        .register_versioned(
            "MyOrchestration",
            "1.0.0",
            |ctx: OrchestrationContext, input: String| async move {
                let go = ctx.schedule_wait("Go").await;
                Ok(ctx.schedule_activity("Validate", format!("{input}{go}")).await?)
            },
        )
        .build();
    match replay_history(&changed, v1_id, 1, &history) {
        Err(ReplayCheckError::Nondeterminism(m)) => {
            assert!(m.contains("expected schedule_activity(\"ProcessV1\""), "{m}")
        }
        other => panic!("expected nondeterminism, got {other:?}"),
    }
    harness.shutdown().await;
}

// The guide's "Handling Input/Output Format Changes", with the string API.
mod input_compat {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub struct InputV1 {
        name: String,
    }
    #[derive(Serialize, Deserialize)]
    pub struct InputV2 {
        name: String,
        priority: u8,
    }

    fn migrate_v1_to_v2(v1: InputV1) -> InputV2 {
        InputV2 { name: v1.name, priority: 5 }
    }

    async fn process_v2(ctx: OrchestrationContext, v2: InputV2) -> Result<String, OrchestrationError> {
        Ok(ctx.schedule_activity("ProcessV2", format!("{}@{}", v2.name, v2.priority)).await?)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn untagged_compat_enum_accepts_both_formats() {
        #[derive(Serialize, Deserialize)]
        #[serde(untagged)]
        enum InputCompat {
            V2(InputV2),
            V1(InputV1),
        }

        let orchestration = |ctx: OrchestrationContext, input_json: String| async move {
            let input: InputCompat = serde_json::from_str(&input_json)?;

            match input {
                InputCompat::V1(v1) => {
                    // Handle old format
                    let v2 = migrate_v1_to_v2(v1);
                    process_v2(ctx, v2).await
                }
                InputCompat::V2(v2) => {
                    // Handle new format
                    process_v2(ctx, v2).await
                }
            }
        };
        let orchestrations = OrchestrationRegistry::builder().register("Compat", orchestration).build();
        let harness = TestHarness::new(activities(), orchestrations).await.unwrap();
        assert_eq!(harness.run("Compat", r#"{"name":"old"}"#).await.unwrap(), "v2(old@5)");
        assert_eq!(harness.run("Compat", r#"{"name":"new","priority":1}"#).await.unwrap(), "v2(new@1)");
        let err = harness.run("Compat", "not json").await.unwrap_err();
        assert!(err.to_string().contains("serialization error"), "{err}");
        harness.shutdown().await;
    }
}
