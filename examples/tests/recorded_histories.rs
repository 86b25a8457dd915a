//! Replays the recorded histories in `duroxide/tests/histories/process_order/` against the current code
//! of `ProcessOrder`. A code change that would break instances already running in
//! production fails here, with the nondeterminism error naming the call.
//!
//! The fixtures were written by this same test with `DUROXIDE_RECORD_HISTORIES=1`; they are
//! kept as they were recorded (do not regenerate them to make a failing change pass: add a
//! new version instead).

use duroxide::history::{from_json, to_json};
use duroxide::testing::{TestHarness, replay_histories_in, replay_history};
use duroxide_examples::orders;
use std::path::PathBuf;
use std::time::Duration;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../duroxide/tests/histories/process_order")
}

/// (fixture file, version, input, event to raise or none for a running-instance history)
const CASES: &[(&str, &str, &str, Option<&str>)] = &[
    ("process_order_v1_completed.json", "1.0.0", "2 x widget", Some("paid")),
    ("process_order_v1_waiting.json", "1.0.0", "3 x bolt", None),
    ("process_order_v2_completed.json", "2.0.0", "1 x gadget", Some("paid")),
    ("process_order_v2_waiting.json", "2.0.0", "5 x nut", None),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_histories_replay_against_current_code() {
    if std::env::var("DUROXIDE_RECORD_HISTORIES").is_ok() {
        record().await;
    }
    let registry = orders::v1_v2_registry();
    for (file, version, _, _) in CASES {
        let path = dir().join(file);
        let json =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
        let history = from_json(&json).expect("fixture parses");
        let instance = file.trim_end_matches(".json");
        let report = replay_history(&registry, instance, 1, &history)
            .unwrap_or_else(|e| panic!("{file} no longer replays: {e}"));
        assert_eq!(report.version, *version);
    }
    // The same folder in one call, as a CI job over golden histories would do it.
    let replayed =
        replay_histories_in(&registry, dir()).and_then(|r| r.check()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(replayed.len(), CASES.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaking_change_to_v1_is_caught_by_the_fixtures() {
    use duroxide::prelude::*;
    // v1 "improved" in place, without a new version: reserve after waiting.
    let broken = OrchestrationRegistry::builder()
        .register_versioned("ProcessOrder", "1.0.0", |ctx: OrchestrationContext, order: String| async move {
            let payment = ctx.schedule_wait("PaymentConfirmed").await;
            let reservation = ctx.schedule_activity("Reserve", &order).await?;
            Ok(ctx.schedule_activity("Charge", format!("{reservation}/{payment}")).await?)
        })
        .build();
    let json = std::fs::read_to_string(dir().join("process_order_v1_completed.json")).unwrap();
    let err =
        replay_history(&broken, "process_order_v1_completed", 1, &from_json(&json).unwrap()).unwrap_err();
    assert!(err.to_string().contains("nondeterministic"), "{err}");
}

async fn record() {
    let harness = TestHarness::new(orders::activities(), orders::v1_v2_registry()).await.unwrap();
    let client = harness.client().clone();
    for (file, version, input, event) in CASES {
        let instance = file.trim_end_matches(".json");
        client.start_orchestration_versioned(instance, "ProcessOrder", version, *input).await.unwrap();
        // Let it reach the wait.
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Some(data) = event {
            client.raise_event(instance, "PaymentConfirmed", *data).await.unwrap();
            client.wait_for_orchestration(instance, Duration::from_secs(10)).await.unwrap();
        }
        let history = client.read_execution_history(instance, None).await.unwrap();
        std::fs::create_dir_all(dir()).unwrap();
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&to_json(&history).unwrap()).unwrap(),
        )
        .unwrap();
        std::fs::write(dir().join(file), pretty + "\n").unwrap();
    }
    harness.shutdown().await;
}
