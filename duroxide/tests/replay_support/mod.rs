//! Helpers for driving the replay engine by hand: a live engine taking turns (as a node
//! with the instance cache does) and a fresh engine over the stored history (as a node
//! without it does), so each test can check both give the same result.
#![allow(dead_code)] // each test binary uses a different subset

use duroxide::history::{Event, EventKind};
use duroxide::replay::{OrchestrationHandler, ReplayEngine, TurnEnv, TurnOutcome, TurnResult};
use duroxide::{OrchestrationContext, OrchestrationError};
use std::sync::Arc;

pub fn env() -> TurnEnv {
    TurnEnv { now_ms: 1_000, ..Default::default() }
}

pub fn handler<F, Fut>(f: F) -> Arc<dyn OrchestrationHandler>
where
    F: Fn(OrchestrationContext, String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<String, OrchestrationError>> + Send + 'static,
{
    Arc::new(f)
}

pub fn started(input: &str) -> Event {
    Event {
        event_id: 1,
        timestamp_ms: 0,
        kind: EventKind::OrchestrationStarted {
            name: "Test".into(),
            version: "1.0.0".into(),
            input: input.into(),
            parent: None,
            duroxide_version: "0.1.0".into(),
        },
    }
}

pub fn queued(queue: &str, data: &str) -> EventKind {
    EventKind::QueueMessageReceived { queue: queue.into(), data: data.into() }
}

pub fn raised(name: &str, data: &str) -> EventKind {
    EventKind::ExternalRaised { name: name.into(), data: data.into() }
}

pub fn completed(id: u64, result: &str) -> EventKind {
    EventKind::ActivityCompleted { source_event_id: id, result: result.into() }
}

pub fn fired(id: u64) -> EventKind {
    EventKind::TimerFired { source_event_id: id, fire_at_ms: 0 }
}

/// A live engine over a new execution, and the history its turns stored.
pub struct Live {
    pub engine: ReplayEngine,
    pub history: Vec<Event>,
    pub last: Option<TurnResult>,
    h: Arc<dyn OrchestrationHandler>,
}

impl Live {
    /// Starts an execution with `input` and runs its first turn.
    pub fn start(h: Arc<dyn OrchestrationHandler>, input: &str) -> Self {
        let engine = ReplayEngine::new(h.clone(), "i1", 1, vec![started(input)], 0).expect("valid history");
        let mut live = Live { engine, history: Vec::new(), last: None, h };
        live.turn(vec![]);
        live
    }

    /// One turn with `messages`; returns its result (also kept as `last`).
    pub fn turn(&mut self, messages: Vec<EventKind>) -> &TurnResult {
        let r = self.engine.run_turn(messages, env());
        self.history.extend(r.new_events.iter().cloned());
        self.last = Some(r);
        self.last.as_ref().expect("just set")
    }

    pub fn outcome(&self) -> TurnOutcome {
        self.last.as_ref().map(|r| r.outcome.clone()).unwrap_or(TurnOutcome::Pending)
    }

    /// Replays the stored history without its terminal event in a fresh engine (a node
    /// without the cache) and checks it ends the same way, recording nothing but the same
    /// terminal event.
    pub fn assert_replays_identically(&self) {
        let terminal = self.history.iter().position(|e| e.kind.is_terminal());
        let stored: Vec<Event> = self.history[..terminal.unwrap_or(self.history.len())].to_vec();
        let n = stored.len();
        let mut fresh = ReplayEngine::new(self.h.clone(), "i1", 1, stored, n).expect("valid history");
        let r = fresh.run_turn(vec![], env());
        assert!(r.actions.is_empty(), "replay made new decisions: {:?}", r.actions);
        assert_eq!(r.outcome, self.outcome(), "replay ended differently");
        match terminal {
            Some(t) => assert_eq!(r.new_events, self.history[t..].to_vec(), "replay recorded other events"),
            None => assert!(r.new_events.is_empty(), "replay recorded events: {:?}", r.new_events),
        }
    }

    pub fn count(&self, pred: impl Fn(&EventKind) -> bool) -> usize {
        self.history.iter().filter(|e| pred(&e.kind)).count()
    }
}
