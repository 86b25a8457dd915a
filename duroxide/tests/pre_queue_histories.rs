//! Data written before event queues and the status version existed still loads and
//! replays: a recorded history (events, a select lost by a wait, custom status,
//! continue-as-new), a `ContinueAsNew` message without carried queue messages, and an
//! exported instance record without a status version.

#[path = "replay_support/mod.rs"]
mod support;

use duroxide::history::{self, EventKind};
use duroxide::provider::{InstanceRecord, OrchestratorMessage};
use duroxide::replay::{ReplayEngine, TurnOutcome};
use duroxide::{Either2, OrchestrationContext};
use std::path::PathBuf;
use std::time::Duration;
use support::{env, handler};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/histories").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The orchestration that wrote `approval_rounds_before_queues.json`: an approval with a
/// deadline per round; it continues as new with the approver.
fn approval_rounds() -> std::sync::Arc<dyn duroxide::replay::OrchestrationHandler> {
    handler(|ctx: OrchestrationContext, _in: String| async move {
        for round in 1..=3 {
            if round > 1 {
                ctx.set_custom_status(format!("waiting, round {round}"));
            }
            let wait = ctx.schedule_wait("Approval");
            let deadline = ctx.schedule_timer(Duration::from_secs(3600));
            if let Either2::First(by) = ctx.select2(wait, deadline).await {
                ctx.continue_as_new(by);
                return Ok(String::new());
            }
        }
        Err("no approval".into())
    })
}

#[test]
fn a_history_recorded_before_queues_replays_to_the_same_end() {
    let recorded =
        history::from_json(&fixture("approval_rounds_before_queues.json")).expect("old history loads");
    let (stored, terminal) = recorded.split_at(recorded.len() - 1);
    let n = stored.len();
    let mut engine =
        ReplayEngine::new(approval_rounds(), "old-1", 1, stored.to_vec(), n).expect("valid history");
    let r = engine.run_turn(vec![], env());
    assert!(r.actions.is_empty(), "{:?}", r.actions);
    assert_eq!(r.outcome, TurnOutcome::ContinuedAsNew { input: "alice".into(), version: "1.0.0".into() });
    assert_eq!(r.new_events.len(), 1);
    assert_eq!(r.new_events[0].kind, terminal[0].kind);
    assert!(r.carried_queue_messages.is_empty());
    assert_eq!(r.custom_status, Some(Some("waiting, round 2".into())));
}

#[test]
fn an_old_continue_as_new_message_loads_without_queue_messages() {
    let json =
        r#"{"type":"ContinueAsNew","execution_id":2,"name":"F","version":"1.0.0","input":"x","parent":null}"#;
    let m: OrchestratorMessage = serde_json::from_str(json).unwrap();
    assert!(
        matches!(m, OrchestratorMessage::ContinueAsNew { ref queue_messages, .. } if queue_messages.is_empty())
    );
    // And one without carried messages is written as before.
    assert!(!serde_json::to_string(&m).unwrap().contains("queue_messages"));
}

#[test]
fn an_old_exported_record_loads_with_status_version_zero() {
    let json = r#"{"instance":"i","name":"F","version":"1.0.0","execution_id":1,"state":"Running",
        "output":null,"error":null,"custom_status":"half","parent_instance":null,
        "duroxide_version":"0.1.0","status_note":null,"created_at_ms":1,"updated_at_ms":2}"#;
    let r: InstanceRecord = serde_json::from_str(json).unwrap();
    assert_eq!((r.custom_status.as_deref(), r.custom_status_version), (Some("half"), 0));
}

#[test]
fn new_event_kinds_have_stable_tags() {
    let e = EventKind::QueueMessageReceived { queue: "q".into(), data: "d".into() };
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(json, r#"{"type":"QueueMessageReceived","queue":"q","data":"d"}"#);
    let s: EventKind = serde_json::from_str(r#"{"type":"QueueSubscribed","queue":"q"}"#).unwrap();
    assert_eq!(s, EventKind::QueueSubscribed { queue: "q".into(), call_site: None });
}
