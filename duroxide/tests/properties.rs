//! Property tests (proptest).
//!
//! - The durable-format decoders (`Event`, `EventKind`, `OrchestratorMessage`, history JSON)
//!   never panic, whatever bytes or JSON values they get; `testing::replay_history_json`
//!   answers garbage with an error.
//! - The replay engine never panics on structurally valid but arbitrary histories.
//! - For a fan-out/select orchestration, any order of completions delivered in any batching
//!   of turns writes the same history on cached execution (one engine kept across turns) and
//!   on cold replay (a new engine per turn from the stored history), and the final history
//!   replays cold to the same outcome.
//!
//! `PROPTEST_CASES=N` changes the number of cases per property.

use duroxide::history::{self, ErrorDetails, Event, EventKind, ParentLink};
use duroxide::provider::OrchestratorMessage;
use duroxide::replay::{Action, OrchestrationHandler, ReplayEngine, TurnEnv, TurnOutcome};
use duroxide::testing::{replay_history, replay_history_json};
use duroxide::{Either2, OrchestrationContext, OrchestrationRegistry};
use proptest::prelude::*;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

fn config() -> ProptestConfig {
    // Few enough cases that the default run stays quick in a debug build; PROPTEST_CASES
    // overrides (proptest reads it into the default config).
    let default = ProptestConfig::default();
    let cases = if std::env::var("PROPTEST_CASES").is_ok() { default.cases } else { 256 };
    ProptestConfig { cases, failure_persistence: None, ..default }
}

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

/// Any JSON value, nested a few levels.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        ".{0,12}".prop_map(Value::String),
        // Field and tag names the decoders look for, so objects get past the first check.
        prop::sample::select(NAMES).prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(NAMES), inner), 0..8).prop_map(|fields| {
                Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// Tags and field names of the durable formats.
const NAMES: &[&str] = &[
    "type",
    "event_id",
    "timestamp_ms",
    "OrchestrationStarted",
    "OrchestrationCompleted",
    "OrchestrationFailed",
    "ActivityScheduled",
    "ActivityCompleted",
    "ActivityFailed",
    "TimerCreated",
    "TimerFired",
    "ExternalRaised",
    "SubOrchestrationScheduled",
    "SubOrchestrationCompleted",
    "StartOrchestration",
    "ContinueAsNew",
    "CancelRequested",
    "name",
    "version",
    "input",
    "output",
    "parent",
    "duroxide_version",
    "source_event_id",
    "result",
    "details",
    "category",
    "message",
    "retryable",
    "execution_id",
    "instance",
    "data",
    "fire_at_ms",
    "delay_ms",
];

/// A real, valid history (of the orchestration below) as JSON, to mutate.
fn sample_history() -> Vec<Event> {
    let kinds = vec![
        started("Fan", "1.0.0"),
        EventKind::ActivityScheduled {
            name: "A".into(),
            input: "0".into(),
            call_site: None,
            session_id: None,
            tag: None,
        },
        EventKind::TimerCreated { delay_ms: 1000, fire_at_ms: 2000, call_site: None },
        EventKind::ActivityCompleted { source_event_id: 2, result: "r".into() },
        EventKind::ExternalRaised { name: "Go".into(), data: "d".into() },
        EventKind::TimerFired { source_event_id: 3, fire_at_ms: 2000 },
        EventKind::OrchestrationFailed { details: ErrorDetails::application("x") },
    ];
    numbered(kinds)
}

/// Replaces the value at a random path of `value` with `replacement`.
fn mutate(value: &mut Value, path: &[usize], replacement: Value) {
    let Some((&step, rest)) = path.split_first() else {
        *value = replacement;
        return;
    };
    match value {
        Value::Array(items) if !items.is_empty() => {
            let n = items.len();
            mutate(&mut items[step % n], rest, replacement)
        }
        Value::Object(map) if !map.is_empty() => {
            let n = map.len();
            if let Some((_, v)) = map.iter_mut().nth(step % n) {
                mutate(v, rest, replacement)
            }
        }
        _ => *value = replacement,
    }
}

fn started(name: &str, version: &str) -> EventKind {
    EventKind::OrchestrationStarted {
        name: name.into(),
        version: version.into(),
        input: "in".into(),
        parent: None,
        duroxide_version: "0.1.0".into(),
    }
}

fn numbered(kinds: Vec<EventKind>) -> Vec<Event> {
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Event { event_id: i as u64 + 1, timestamp_ms: 0, kind })
        .collect()
}

/// Any event kind, with small ids and names so that some refer to each other.
fn arb_kind() -> impl Strategy<Value = EventKind> {
    let id = 0u64..12;
    let name = prop::sample::select(&["A", "B", "C", "Go", "Fan", "Child"][..]).prop_map(String::from);
    let text = prop::sample::select(&["", "0", "1", "2", "x", "{\"k\":1}"][..]).prop_map(String::from);
    let site = prop::option::of(Just("site.rs:1:1".to_string()));
    let details = (any::<bool>(), text.clone())
        .prop_map(|(retry, m)| ErrorDetails { retryable: retry, ..ErrorDetails::application(m) });
    prop_oneof![
        (name.clone(), text.clone(), site.clone()).prop_map(|(name, input, call_site)| {
            EventKind::ActivityScheduled { name, input, call_site, session_id: None, tag: None }
        }),
        (id.clone(), text.clone())
            .prop_map(|(source_event_id, result)| EventKind::ActivityCompleted { source_event_id, result }),
        (id.clone(), details.clone())
            .prop_map(|(source_event_id, details)| EventKind::ActivityFailed { source_event_id, details }),
        id.clone().prop_map(|source_event_id| EventKind::ActivityCancelRequested { source_event_id }),
        (0u64..5000, site.clone()).prop_map(|(delay_ms, call_site)| EventKind::TimerCreated {
            delay_ms,
            fire_at_ms: 1000 + delay_ms,
            call_site
        }),
        (id.clone(), 0u64..5000)
            .prop_map(|(source_event_id, fire_at_ms)| EventKind::TimerFired { source_event_id, fire_at_ms }),
        (name.clone(), site.clone())
            .prop_map(|(name, call_site)| EventKind::ExternalSubscribed { name, call_site }),
        (name.clone(), text.clone()).prop_map(|(name, data)| EventKind::ExternalRaised { name, data }),
        (name.clone(), text.clone(), site.clone()).prop_map(|(name, input, call_site)| {
            EventKind::SubOrchestrationScheduled {
                instance: format!("i1::sub::1.{}", name.len()),
                name,
                version: None,
                input,
                call_site,
            }
        }),
        (id.clone(), text.clone()).prop_map(|(source_event_id, result)| {
            EventKind::SubOrchestrationCompleted { source_event_id, result }
        }),
        (id.clone(), details.clone()).prop_map(|(source_event_id, details)| {
            EventKind::SubOrchestrationFailed { source_event_id, details }
        }),
        id.clone().prop_map(|source_event_id| EventKind::SubOrchestrationCancelRequested { source_event_id }),
        (prop::sample::select(&["guid", "utc_now", "other"][..]), text.clone(), site)
            .prop_map(|(op, value, call_site)| EventKind::SystemCall { op: op.into(), value, call_site }),
        prop::option::of(text.clone()).prop_map(|status| EventKind::CustomStatusSet { status }),
        text.clone().prop_map(|reason| EventKind::OrchestrationCancelRequested { reason }),
        text.clone().prop_map(|output| EventKind::OrchestrationCompleted { output }),
        details.prop_map(|details| EventKind::OrchestrationFailed { details }),
        (text, prop::sample::select(&["1.0.0", "2.0.0"][..]))
            .prop_map(|(input, v)| EventKind::OrchestrationContinuedAsNew { input, version: v.into() }),
        Just(started("Fan", "1.0.0")),
    ]
}

/// A history that starts like a real one (mostly) and continues with arbitrary events; ids
/// run 1..n unless `renumber` breaks them.
fn arb_history() -> impl Strategy<Value = Vec<Event>> {
    let first = prop_oneof![
        8 => Just(started("Fan", "1.0.0")),
        1 => Just(started("Fan", "9.9.9")),
        1 => Just(started("Nope", "1.0.0")),
        1 => arb_kind(),
    ];
    (first, prop::collection::vec(arb_kind(), 0..14), prop::option::of((0usize..16, 0u64..20))).prop_map(
        |(first, rest, renumber)| {
            let mut kinds = vec![first];
            kinds.extend(rest);
            let mut events = numbered(kinds);
            if let Some((at, id)) = renumber {
                let n = events.len();
                events[at % n].event_id = id;
            }
            events
        },
    )
}

// ---------------------------------------------------------------------------------------
// The orchestration driven by the interleaving property
// ---------------------------------------------------------------------------------------

/// A fan-out (joined), a select over activities, a race of an activity against a timer and
/// a race of an external event against a timer.
fn fan_select() -> Arc<dyn OrchestrationHandler> {
    Arc::new(|ctx: OrchestrationContext, input: String| async move {
        let fan: Vec<_> = (0..3).map(|i| ctx.schedule_activity("A", format!("{input}{i}"))).collect();
        let parts: Vec<String> = ctx
            .join(fan)
            .await
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| format!("err({})", e.message)))
            .collect();
        let (first, out) =
            ctx.select(vec![ctx.schedule_activity("B", "0"), ctx.schedule_activity("B", "1")]).await;
        let race = ctx
            .select2(ctx.schedule_activity("C", parts.join(",")), ctx.schedule_timer(Duration::from_secs(1)))
            .await;
        let race = match race {
            Either2::First(r) => format!("C={r:?}"),
            Either2::Second(()) => "timer".to_string(),
        };
        let go = ctx.select2(ctx.schedule_wait("Go"), ctx.schedule_timer(Duration::from_secs(2))).await;
        Ok(format!("{parts:?}|B{first}={out:?}|{race}|{go:?}"))
    })
}

fn registry() -> OrchestrationRegistry {
    let code = fan_select();
    OrchestrationRegistry::builder()
        .register("Fan", move |ctx: OrchestrationContext, input: String| {
            let code = code.clone();
            async move { code.invoke(ctx, input).await }
        })
        .build()
}

/// Work the orchestration is waiting on, whose completion the driver may deliver.
#[derive(Debug, Clone, PartialEq)]
enum Pending {
    Activity(u64),
    Timer(u64, u64),
}

/// Delivers completions in the order and batches `choices` pick; returns the history
/// written, the outcome and the actions of every turn.
fn drive(cached: bool, choices: &[u32]) -> (Vec<Event>, TurnOutcome, Vec<Vec<Action>>) {
    let code = fan_select();
    // The start event is new in the first turn (persisted length 0), as for a fresh instance.
    let mut engine = ReplayEngine::new(code.clone(), "i1", 1, numbered(vec![started("Fan", "1.0.0")]), 0)
        .expect("valid start");
    let mut stored: Vec<Event> = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut delivered: Vec<EventKind> = Vec::new();
    let mut raised = false;
    let mut actions = Vec::new();
    let mut next = choices.iter().copied().chain(std::iter::repeat(0));
    let mut batch: Vec<EventKind> = Vec::new();
    for turn in 0..64u64 {
        let env = TurnEnv { now_ms: 1_000 + turn * 10, ..Default::default() };
        let result = if cached || turn == 0 {
            engine.run_turn(std::mem::take(&mut batch), env)
        } else {
            let n = stored.len();
            let mut cold =
                ReplayEngine::new(code.clone(), "i1", 1, stored.clone(), n).expect("stored history");
            cold.run_turn(std::mem::take(&mut batch), env)
        };
        stored.extend(result.new_events.iter().cloned());
        for a in &result.actions {
            match a {
                Action::ScheduleActivity { event_id, .. } => pending.push(Pending::Activity(*event_id)),
                Action::CreateTimer { event_id, fire_at_ms } => {
                    pending.push(Pending::Timer(*event_id, *fire_at_ms))
                }
                _ => {}
            }
        }
        actions.push(result.actions);
        if result.outcome.is_terminal() {
            return (stored, result.outcome, actions);
        }
        // The next batch: 1 to 3 deliveries, each a pending completion, the external event,
        // or a duplicate of something delivered before.
        let size = 1 + next.next().unwrap_or(0) % 3;
        for _ in 0..size {
            let c = next.next().unwrap_or(0);
            let options = pending.len() + usize::from(!raised) + usize::from(!delivered.is_empty());
            let pick = c as usize % options.max(1);
            let kind = if pick < pending.len() {
                match pending.remove(pick) {
                    Pending::Activity(id) if c % 5 == 4 => EventKind::ActivityFailed {
                        source_event_id: id,
                        details: ErrorDetails::application("boom"),
                    },
                    Pending::Activity(id) => {
                        EventKind::ActivityCompleted { source_event_id: id, result: format!("r{id}") }
                    }
                    Pending::Timer(id, fire_at_ms) => {
                        EventKind::TimerFired { source_event_id: id, fire_at_ms }
                    }
                }
            } else if !raised && pick == pending.len() {
                raised = true;
                EventKind::ExternalRaised { name: "Go".into(), data: "go".into() }
            } else if let Some(again) = delivered.get(c as usize / 7 % delivered.len().max(1)) {
                again.clone()
            } else {
                continue;
            };
            delivered.push(kind.clone());
            batch.push(kind);
        }
    }
    panic!("the orchestration did not finish in 64 turns: {stored:#?}");
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoders_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<Event>(&bytes);
        let _ = serde_json::from_slice::<EventKind>(&bytes);
        let _ = serde_json::from_slice::<OrchestratorMessage>(&bytes);
        let _ = serde_json::from_slice::<Vec<Event>>(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = history::from_json(text);
        }
    }

    #[test]
    fn decoders_never_panic_on_json_values(value in arb_json()) {
        let _ = serde_json::from_value::<Event>(value.clone());
        let _ = serde_json::from_value::<EventKind>(value.clone());
        let _ = serde_json::from_value::<OrchestratorMessage>(value.clone());
        let _ = serde_json::from_value::<ParentLink>(value.clone());
        let _ = serde_json::from_value::<Vec<Event>>(Value::Array(vec![value]));
    }

    #[test]
    fn replay_history_json_rejects_garbage(text in ".{0,200}") {
        let result = replay_history_json(&registry(), "i1", 1, &text);
        prop_assert!(result.is_err(), "garbage {text:?} replayed: {result:?}");
    }

    #[test]
    fn replay_history_json_never_panics_on_mutated_histories(
        path in prop::collection::vec(any::<usize>(), 1..5),
        replacement in arb_json(),
    ) {
        let mut value = serde_json::to_value(sample_history()).expect("serializable");
        mutate(&mut value, &path, replacement);
        let text = value.to_string();
        let _ = serde_json::from_str::<Vec<Event>>(&text);
        let _ = replay_history_json(&registry(), "i1", 1, &text);
    }

    #[test]
    fn replay_never_panics_on_arbitrary_histories(history in arb_history(), messages in prop::collection::vec(arb_kind(), 0..4)) {
        let _ = replay_history(&registry(), "i1", 1, &history);
        // The engine also takes arbitrary new messages after such a history.
        let n = history.len();
        if let Ok(mut engine) = ReplayEngine::new(fan_select(), "i1", 1, history, n) {
            let first = engine.run_turn(Vec::new(), TurnEnv::default());
            let second = engine.run_turn(messages, TurnEnv::default());
            if first.outcome.is_terminal() {
                prop_assert!(
                    second.new_events.iter().all(|e| !e.kind.is_terminal()),
                    "a second terminal event after {:?}: {:?}", first.outcome, second.new_events
                );
            }
        }
    }

    #[test]
    fn cached_and_cold_execution_write_the_same_history(choices in prop::collection::vec(any::<u32>(), 0..96)) {
        let (cached, cached_outcome, cached_actions) = drive(true, &choices);
        let (cold, cold_outcome, cold_actions) = drive(false, &choices);
        prop_assert_eq!(&cached, &cold);
        prop_assert_eq!(&cached_outcome, &cold_outcome);
        prop_assert_eq!(cached_actions, cold_actions);
        // Event ids run 1..n and the finished history replays cold to the same end.
        for (i, e) in cached.iter().enumerate() {
            prop_assert_eq!(e.event_id, i as u64 + 1);
        }
        let report = replay_history(&registry(), "i1", 1, &cached);
        prop_assert!(report.is_ok(), "final history does not replay: {:?}", report);
        prop_assert_eq!(report.map(|r| r.outcome).ok(), Some(cached_outcome));
    }
}

/// The driver explores: over a range of scripts, each race is won by each side and some
/// activities fail, so the property above is not checking one path only.
#[test]
fn interleaving_driver_reaches_every_branch() {
    let mut seen = std::collections::BTreeSet::new();
    for s in 0..300u32 {
        let choices: Vec<u32> =
            (0..96u32).map(|i| s.wrapping_mul(2_654_435_761).rotate_left(i % 32) ^ i).collect();
        let (_, outcome, _) = drive(true, &choices);
        let TurnOutcome::Completed(out) = outcome else { panic!("unexpected outcome {outcome:?}") };
        for (marker, name) in [
            ("err(boom)", "a failed fan-out activity"),
            ("B0=", "first B wins"),
            ("B1=", "second B wins"),
            ("C=", "C beats the timer"),
            ("|timer|", "the timer beats C"),
            ("First(\"go\")", "the event beats its timer"),
            ("Second(())", "the timer beats the event"),
        ] {
            if out.contains(marker) {
                seen.insert(name);
            }
        }
    }
    assert_eq!(seen.len(), 7, "branches reached: {seen:?}");
}
