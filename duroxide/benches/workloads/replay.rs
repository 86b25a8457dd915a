//! `replay`: cold replay (no cache, no store) of a `Sequential` history of N events
//! through the replay engine, for each N of `--replay-events` (default 10,000 and
//! 100,000). The median of 5 runs.

use super::app::orchestrations;
use super::report::{Goal, percentile, report, target_ratio};
use duroxide::history::{Event, EventKind};
use duroxide::replay::{OrchestrationHandler, ReplayEngine, TurnEnv};
use std::sync::Arc;
use std::time::Instant;

/// Round-two target for a cold replay of 100,000 events (milliseconds).
const TARGET_100K_MS: f64 = 300.0;

/// A history of `events` events (even, at least 2): the start, (scheduled, completed)
/// pairs, and a last activity scheduled and not yet completed.
fn history(events: usize) -> Vec<Event> {
    let pairs = (events - 2) / 2;
    let mut history = vec![Event {
        event_id: 1,
        timestamp_ms: 0,
        kind: EventKind::OrchestrationStarted {
            name: "Sequential".into(),
            version: "1.0.0".into(),
            input: (pairs + 1).to_string(),
            parent: None,
            duroxide_version: "0.1.0".into(),
        },
    }];
    let scheduled = |i: usize| EventKind::ActivityScheduled {
        name: "Work".into(),
        input: i.to_string(),
        call_site: None,
        session_id: None,
        tag: None,
    };
    for i in 0..pairs {
        let id = history.len() as u64 + 1;
        history.push(Event { event_id: id, timestamp_ms: 0, kind: scheduled(i) });
        history.push(Event {
            event_id: id + 1,
            timestamp_ms: 0,
            kind: EventKind::ActivityCompleted { source_event_id: id, result: i.to_string() },
        });
    }
    history.push(Event { event_id: history.len() as u64 + 1, timestamp_ms: 0, kind: scheduled(pairs) });
    history
}

pub fn replay(sizes: &[usize]) {
    let handler: Arc<dyn OrchestrationHandler> = orchestrations()
        .resolve("Sequential", Some("1.0.0"))
        .map(|(_, h)| h)
        .expect("Sequential is registered");
    for &events in sizes {
        assert!(events >= 2 && events % 2 == 0, "--replay-events: even sizes of at least 2");
        let history = history(events);
        // The history-length limit guards an execution's growth; a replay of a history
        // that an instance with a raised limit wrote must not trip it.
        let env = TurnEnv { max_history_events: usize::MAX, ..TurnEnv::default() };
        let mut runs = Vec::new();
        for _ in 0..5 {
            let h = history.clone();
            let n = h.len();
            let t = Instant::now();
            let mut engine = ReplayEngine::new(handler.clone(), "replay", 1, h, n).expect("a valid history");
            let r = engine.run_turn(Vec::new(), env.clone());
            runs.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(r.new_events.is_empty(), "replay must not add events");
        }
        runs.sort_by(f64::total_cmp);
        let median = percentile(&runs, 0.5);
        report("replay", "none", &[("events", events as f64), ("cold_replay_ms_median", median)]);
        if events == 100_000 {
            target_ratio("replay", "none", "cold_replay_100000_ms", median, Goal::AtMost, TARGET_100K_MS);
        }
    }
}
