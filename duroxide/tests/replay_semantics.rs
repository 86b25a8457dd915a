//! Replay semantics that are easy to get wrong: which wait receives which external event,
//! a cancellation that is already queued when a turn starts, and the limits on history
//! length and custom status size.
//!
//! Engine-level tests drive every scenario twice, with one engine kept across turns (the
//! runtime's instance cache) and with a cold replay from the stored history each turn; both
//! must write identical histories. End-to-end tests use a runtime on the SQLite memory store.

mod common;

use duroxide::history::{ErrorCategory, ErrorDetails, Event, EventKind};
use duroxide::replay::{Action, OrchestrationHandler, ReplayEngine, TurnEnv, TurnOutcome, TurnResult};
use duroxide::{
    ActivityRegistry, Client, Either2, OrchestrationContext, OrchestrationError, OrchestrationRegistry,
    OrchestrationStatus, Runtime, RuntimeOptions,
};
use std::sync::Arc;
use std::time::Duration;

fn env() -> TurnEnv {
    TurnEnv { now_ms: 1_000, ..Default::default() }
}

fn handler<F, Fut>(f: F) -> Arc<dyn OrchestrationHandler>
where
    F: Fn(OrchestrationContext, String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<String, OrchestrationError>> + Send + 'static,
{
    Arc::new(f)
}

fn started() -> Event {
    Event {
        event_id: 1,
        timestamp_ms: 0,
        kind: EventKind::OrchestrationStarted {
            name: "Test".into(),
            version: "1.0.0".into(),
            input: String::new(),
            parent: None,
            duroxide_version: "0.1.0".into(),
        },
    }
}

fn history(kinds: Vec<EventKind>) -> Vec<Event> {
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Event { event_id: i as u64 + 1, timestamp_ms: 0, kind })
        .collect()
}

fn raised(name: &str, data: &str) -> EventKind {
    EventKind::ExternalRaised { name: name.into(), data: data.into() }
}

fn fired(timer: u64) -> EventKind {
    EventKind::TimerFired { source_event_id: timer, fire_at_ms: 0 }
}

fn subscribed(name: &str) -> EventKind {
    EventKind::ExternalSubscribed { name: name.into(), call_site: None }
}

fn timer(delay_ms: u64) -> EventKind {
    EventKind::TimerCreated { delay_ms, fire_at_ms: 1_000 + delay_ms, call_site: None }
}

fn failure(outcome: &TurnOutcome) -> ErrorDetails {
    match outcome {
        TurnOutcome::Failed(d) => d.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// The result of running a sequence of turns (one message batch each).
struct Run {
    history: Vec<Event>,
    results: Vec<TurnResult>,
}

impl Run {
    fn outcome(&self) -> &TurnOutcome {
        &self.results.last().expect("at least one turn").outcome
    }
}

/// Runs `batches` as turns on one engine kept between turns (the cached path).
fn run_cached(code: &Arc<dyn OrchestrationHandler>, batches: &[Vec<EventKind>], env: &TurnEnv) -> Run {
    let mut engine = ReplayEngine::new(code.clone(), "i1", 1, vec![started()], 0).expect("valid history");
    let mut run = Run { history: Vec::new(), results: Vec::new() };
    for batch in batches {
        let r = engine.run_turn(batch.clone(), env.clone());
        run.history.extend(r.new_events.iter().cloned());
        let done = r.outcome.is_terminal();
        run.results.push(r);
        if done {
            break;
        }
    }
    run
}

/// Runs `batches` as turns, each on a new engine replaying the stored history (cache miss).
fn run_cold(code: &Arc<dyn OrchestrationHandler>, batches: &[Vec<EventKind>], env: &TurnEnv) -> Run {
    let mut run = Run { history: vec![started()], results: Vec::new() };
    let mut stored = 0;
    for batch in batches {
        let mut engine =
            ReplayEngine::new(code.clone(), "i1", 1, run.history.clone(), stored).expect("valid history");
        let r = engine.run_turn(batch.clone(), env.clone());
        run.history.truncate(stored);
        run.history.extend(r.new_events.iter().cloned());
        stored = run.history.len();
        let done = r.outcome.is_terminal();
        run.results.push(r);
        if done {
            break;
        }
    }
    run
}

/// Runs the turns both ways, checks they agree, and returns the cached run.
fn run_both(code: Arc<dyn OrchestrationHandler>, batches: Vec<Vec<EventKind>>) -> Run {
    run_both_with(code, batches, env())
}

fn run_both_with(code: Arc<dyn OrchestrationHandler>, batches: Vec<Vec<EventKind>>, env: TurnEnv) -> Run {
    let cached = run_cached(&code, &batches, &env);
    let cold = run_cold(&code, &batches, &env);
    assert_eq!(cached.history, cold.history, "cached and cold replay must write identical histories");
    assert_eq!(cached.outcome(), cold.outcome());
    for (a, b) in cached.results.iter().zip(&cold.results) {
        assert_eq!(a.actions, b.actions, "cached and cold replay must emit the same actions");
    }
    // Replaying the whole completed history once more reproduces the output without new
    // decisions. (A cancellation or a limit comes from outside the code: nothing to replay.)
    if matches!(cached.outcome(), TurnOutcome::Completed(_)) {
        let mut body = cached.history.clone();
        body.pop();
        let n = body.len();
        let r = ReplayEngine::new(code, "i1", 1, body, n).expect("valid history").run_turn(vec![], env);
        assert_eq!(&r.outcome, cached.outcome(), "full replay: {:?}", r.new_events);
        assert_eq!(r.new_events.len(), 1, "only the terminal event is new: {:?}", r.new_events);
    }
    cached
}

fn count(history: &[Event], pred: impl Fn(&EventKind) -> bool) -> usize {
    history.iter().filter(|e| pred(&e.kind)).count()
}

// ---------------------------------------------------------------------------------------
// 1. Which wait receives which external event
// ---------------------------------------------------------------------------------------

/// Races a wait for "Signal" against a 50 ms timer; if the timer wins, waits again.
fn signal_or_timeout_then_wait() -> Arc<dyn OrchestrationHandler> {
    handler(|ctx: OrchestrationContext, _| async move {
        let first =
            ctx.select2(ctx.schedule_wait("Signal"), ctx.schedule_timer(Duration::from_millis(50))).await;
        match first {
            Either2::First(data) => Ok(format!("in time: {data}")),
            Either2::Second(()) => Ok(format!("late: {}", ctx.schedule_wait("Signal").await)),
        }
    })
}

#[test]
fn a_wait_that_lost_a_select_does_not_swallow_the_next_event() {
    // Events: 2 wait, 3 timer, 4 timer fired, 5 unsubscribed, 6 second wait, 7 raised.
    let run =
        run_both(signal_or_timeout_then_wait(), vec![vec![], vec![fired(3)], vec![raised("Signal", "go")]]);
    assert_eq!(run.outcome(), &TurnOutcome::Completed("late: go".into()));
    assert_eq!(
        count(&run.history, |k| matches!(k, EventKind::ExternalUnsubscribed { source_event_id: 2 })),
        1,
        "the lost wait gave up its claim in history: {:?}",
        run.history
    );
}

#[test]
fn every_timed_out_round_of_an_approval_loop_leaves_the_next_event_alone() {
    // Up to five rounds of "approval or a 1 s deadline"; the approval comes after three
    // deadlines passed.
    let code = handler(|ctx: OrchestrationContext, _| async move {
        for round in 1..=5 {
            let wait = ctx.schedule_wait("Approval");
            let deadline = ctx.schedule_timer(Duration::from_secs(1));
            if let Either2::First(data) = ctx.select2(wait, deadline).await {
                return Ok(format!("{data} in round {round}"));
            }
        }
        Ok("no approval".into())
    });
    // Round n subscribes at 2 + 4(n-1) and creates its timer at 3 + 4(n-1).
    let run = run_both(
        code,
        vec![vec![], vec![fired(3)], vec![fired(7)], vec![fired(11)], vec![raised("Approval", "yes")]],
    );
    assert_eq!(run.outcome(), &TurnOutcome::Completed("yes in round 4".into()));
}

#[test]
fn an_event_raised_before_any_wait_goes_to_the_next_wait() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        ctx.schedule_timer(Duration::from_secs(1)).await;
        let first = ctx.select2(ctx.schedule_wait("Go"), ctx.schedule_timer(Duration::from_secs(1))).await;
        Ok(format!("{first:?}"))
    });
    let run = run_both(code, vec![vec![raised("Go", "early")], vec![fired(2)]]);
    assert_eq!(run.outcome(), &TurnOutcome::Completed(r#"First("early")"#.into()));
}

#[test]
fn two_concurrent_waits_on_one_name_receive_events_in_the_order_they_were_made() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        let (a, b) = ctx.join2(ctx.schedule_wait("E"), ctx.schedule_wait("E")).await;
        Ok(format!("{a},{b}"))
    });
    let run = run_both(code, vec![vec![], vec![raised("E", "1")], vec![raised("E", "2")]]);
    assert_eq!(run.outcome(), &TurnOutcome::Completed("1,2".into()));
}

#[test]
fn a_dropped_wait_hands_its_turn_to_a_concurrent_wait_on_the_same_name() {
    // `a` races a short timer and loses; `b`, made before the event, then receives it.
    let code = handler(|ctx: OrchestrationContext, _| async move {
        let a = ctx.schedule_wait("E");
        let b = ctx.schedule_wait("E");
        let lost = ctx.select2(a, ctx.schedule_timer(Duration::from_millis(10))).await;
        let got = b.await;
        Ok(format!("{lost:?} then {got}"))
    });
    // 2 a, 3 b, 4 timer.
    let run = run_both(code, vec![vec![], vec![fired(4)], vec![raised("E", "x")]]);
    assert_eq!(run.outcome(), &TurnOutcome::Completed("Second(()) then x".into()));
}

#[test]
fn an_event_handed_to_a_wait_that_is_dropped_unread_goes_to_the_next_wait() {
    // The timer fires and the event arrives in the same batch, timer first: the timer wins
    // the select, and the event (already handed to the losing wait) is not lost.
    let run =
        run_both(signal_or_timeout_then_wait(), vec![vec![], vec![fired(3), raised("Signal", "just late")]]);
    assert_eq!(run.outcome(), &TurnOutcome::Completed("late: just late".into()));
}

#[test]
fn an_event_the_code_received_is_consumed() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        let a = ctx.schedule_wait("E").await;
        let second = ctx.select2(ctx.schedule_wait("E"), ctx.schedule_timer(Duration::from_secs(1))).await;
        Ok(format!("{a} {second:?}"))
    });
    // 2 first wait; after "1": 4 second wait, 5 timer.
    let run = run_both(code, vec![vec![], vec![raised("E", "1")], vec![fired(5)]]);
    assert_eq!(run.outcome(), &TurnOutcome::Completed("1 Second(())".into()));
}

#[test]
fn a_history_written_before_waits_gave_up_their_claim_replays_as_written() {
    // Recorded by an earlier version: the wait that lost the select (2) kept its claim, so
    // "a" went to it, and the second wait (5) received "b".
    let old = history(vec![
        started().kind,
        subscribed("Signal"),
        timer(50),
        fired(3),
        subscribed("Signal"),
        raised("Signal", "a"),
        raised("Signal", "b"),
    ]);
    let n = old.len();
    let r =
        ReplayEngine::new(signal_or_timeout_then_wait(), "i1", 1, old, n).unwrap().run_turn(vec![], env());
    assert_eq!(r.outcome, TurnOutcome::Completed("late: b".into()));
    assert_eq!(r.new_events.len(), 1, "nothing but the terminal event is new: {:?}", r.new_events);
}

#[test]
fn external_unsubscribed_event_has_a_stable_json_form() {
    let e =
        Event { event_id: 5, timestamp_ms: 0, kind: EventKind::ExternalUnsubscribed { source_event_id: 2 } };
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(json, r#"{"event_id":5,"timestamp_ms":0,"type":"ExternalUnsubscribed","source_event_id":2}"#);
    assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
}

// ---------------------------------------------------------------------------------------
// 2. A cancellation already queued wins before any code runs in the turn
// ---------------------------------------------------------------------------------------

fn cancel(reason: &str) -> EventKind {
    EventKind::OrchestrationCancelRequested { reason: reason.into() }
}

#[test]
fn a_cancel_in_the_first_batch_runs_no_code() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        ctx.schedule_orchestration("Other", "detached-1", "");
        ctx.schedule_activity("A", "").await?;
        Ok("done".into())
    });
    let run = run_both(code, vec![vec![cancel("stop")]]);
    assert_eq!(failure(run.outcome()).category, ErrorCategory::Cancelled);
    assert!(run.results[0].actions.is_empty(), "{:?}", run.results[0].actions);
    assert!(run.history.iter().all(|e| !e.kind.is_decision()), "{:?}", run.history);
}

#[test]
fn a_cancel_in_a_later_batch_wins_over_the_completions_before_it() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        ctx.schedule_activity("A", "").await?;
        ctx.schedule_orchestration("Other", "detached-1", "");
        ctx.schedule_activity("B", "").await?;
        Ok("done".into())
    });
    let done = EventKind::ActivityCompleted { source_event_id: 2, result: String::new() };
    let run = run_both(code, vec![vec![], vec![done, cancel("stop")]]);
    let d = failure(run.outcome());
    assert_eq!((d.category, d.message.as_str()), (ErrorCategory::Cancelled, "stop"));
    // Cancelling the still-open activity A is the only action of the turn.
    assert_eq!(run.results[1].actions, vec![Action::CancelActivity { event_id: 2 }]);
    assert_eq!(count(&run.history, |k| matches!(k, EventKind::ActivityCompleted { .. })), 0);
}

// ---------------------------------------------------------------------------------------
// 3. Limits: events per execution, custom status size
// ---------------------------------------------------------------------------------------

fn limited(max_history_events: usize) -> TurnEnv {
    TurnEnv { max_history_events, ..env() }
}

#[test]
fn an_execution_that_grows_past_max_history_events_fails_pointing_to_continue_as_new() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        for i in 0..100 {
            ctx.schedule_activity("Step", i.to_string()).await?;
        }
        Ok("done".into())
    });
    let batches: Vec<Vec<EventKind>> = std::iter::once(vec![])
        .chain((0..100).map(|i| {
            vec![EventKind::ActivityCompleted { source_event_id: 2 + 2 * i, result: String::new() }]
        }))
        .collect();
    let run = run_both_with(code, batches, limited(10));
    let d = failure(run.outcome());
    assert_eq!(d.category, ErrorCategory::HistoryLimit);
    assert!(d.message.contains("max_history_events = 10"), "{}", d.message);
    assert!(d.message.contains("continue_as_new"), "{}", d.message);
    // The completion that would be the 11th event is refused; only the events recording the
    // failure (cancelling the open activity, the terminal event) go past the limit.
    assert_eq!(run.history.len(), 12, "{:?}", run.history);
    assert!(matches!(run.history[10].kind, EventKind::ActivityCancelRequested { source_event_id: 10 }));
}

#[test]
fn a_runaway_turn_stops_at_max_history_events() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        for _ in 0..1_000 {
            ctx.utc_now().await;
        }
        Ok("done".into())
    });
    let run = run_both_with(code, vec![vec![]], limited(20));
    assert!(failure(run.outcome()).message.contains("max_history_events = 20"));
    assert_eq!(run.history.len(), 21);
}

#[test]
fn continue_as_new_starts_over_with_an_empty_history() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        for i in 0..4 {
            ctx.schedule_activity("Step", i.to_string()).await?;
        }
        ctx.continue_as_new("next");
        Ok(String::new())
    });
    let batches: Vec<Vec<EventKind>> = std::iter::once(vec![])
        .chain((0..4).map(|i| {
            vec![EventKind::ActivityCompleted { source_event_id: 2 + 2 * i, result: String::new() }]
        }))
        .collect();
    // 1 start + 8 activity events fit in 9; the terminal event may go past.
    let run = run_both_with(code, batches, limited(9));
    assert!(matches!(run.outcome(), TurnOutcome::ContinuedAsNew { .. }), "{:?}", run.outcome());
}

#[test]
fn an_oversized_custom_status_fails_the_execution_naming_size_and_limit() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        ctx.set_custom_status("small");
        ctx.schedule_timer(Duration::from_secs(1)).await;
        ctx.set_custom_status("x".repeat(100));
        ctx.schedule_activity("After", "").await?;
        Ok("done".into())
    });
    let env = TurnEnv { max_payload_bytes: 10, ..env() };
    let run = run_both_with(code, vec![vec![], vec![fired(3)]], env);
    let d = failure(run.outcome());
    assert_eq!(d.category, ErrorCategory::PayloadTooLarge);
    assert_eq!(d.message, "custom status is 100 bytes; the limit is 10 bytes");
    assert!(run.results[1].actions.is_empty(), "nothing after the failed call is scheduled");
    assert_eq!(run.results[1].custom_status, Some(Some("small".into())), "the stored status is kept");
}

// ---------------------------------------------------------------------------------------
// End to end, on a runtime over the SQLite memory store
// ---------------------------------------------------------------------------------------

async fn status_of(client: &Client, instance: &str) -> OrchestrationStatus {
    client.get_orchestration_status(instance).await.expect("status")
}

fn cancel_test_orchestrations() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Quick", |ctx: OrchestrationContext, _: String| async move {
            ctx.schedule_orchestration("Quick", "quick-detached", "");
            Ok("done".to_string())
        })
        .register("Steps", |ctx: OrchestrationContext, _: String| async move {
            ctx.schedule_orchestration("Quick", "steps-detached", "");
            ctx.schedule_activity("Work", "1").await?;
            ctx.schedule_activity("Work", "2").await?;
            Ok("done".to_string())
        })
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_queued_with_the_start_wins_end_to_end() {
    let ts = common::memory_store().await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("quick", "Quick", "").await.unwrap();
    client.cancel_instance("quick", "changed my mind").await.unwrap();
    client.start_orchestration("steps", "Steps", "").await.unwrap();
    client.cancel_instance("steps", "changed my mind").await.unwrap();

    let activities = ActivityRegistry::builder()
        .register("Work", |_ctx: duroxide::ActivityContext, s: String| async move { Ok(s) })
        .build();
    let rt = Runtime::start_with_options(
        ts.store.clone(),
        activities,
        cancel_test_orchestrations(),
        ts.options.clone(),
    )
    .await;
    for instance in ["quick", "steps"] {
        match common::wait(&client, instance).await {
            OrchestrationStatus::Cancelled { reason } => assert_eq!(reason, "changed my mind"),
            other => panic!("{instance} should be cancelled, is {other:?}"),
        }
        let h = client.read_execution_history(instance, None).await.unwrap();
        assert!(h.iter().all(|e| !e.kind.is_decision()), "{instance} ran code: {h:?}");
    }
    // Both instances are settled; a detached start would have been enqueued in the same
    // commit, so it would already be visible.
    for detached in ["quick-detached", "steps-detached"] {
        assert_eq!(
            status_of(&client, detached).await,
            OrchestrationStatus::NotFound,
            "{detached} was started"
        );
    }
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_execution_fails_at_max_history_events_end_to_end() {
    let ts = common::memory_store().await;
    let orchestrations = OrchestrationRegistry::builder()
        .register("Forever", |ctx: OrchestrationContext, _: String| async move {
            loop {
                ctx.schedule_activity("Work", "").await?;
            }
        })
        .register("Rolling", |ctx: OrchestrationContext, input: String| async move {
            let round: u32 = input.parse().unwrap_or(0);
            for _ in 0..5 {
                ctx.schedule_activity("Work", "").await?;
            }
            if round < 3 {
                ctx.continue_as_new((round + 1).to_string());
                return Ok(String::new());
            }
            Ok(format!("rounds: {round}"))
        })
        .build();
    let activities = ActivityRegistry::builder()
        .register("Work", |_ctx: duroxide::ActivityContext, s: String| async move { Ok(s) })
        .build();
    let options = RuntimeOptions { max_history_events: 20, ..ts.options.clone() };
    let rt = Runtime::start_with_options(ts.store.clone(), activities, orchestrations, options).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("forever", "Forever", "").await.unwrap();
    client.start_orchestration("rolling", "Rolling", "0").await.unwrap();
    match common::wait(&client, "forever").await {
        OrchestrationStatus::Failed { details } => {
            assert_eq!(details.category, ErrorCategory::HistoryLimit);
            assert!(details.message.contains("max_history_events = 20"), "{}", details.message);
            assert!(details.message.contains("continue_as_new"), "{}", details.message);
        }
        other => panic!("expected the history limit failure, got {other:?}"),
    }
    // 11 events per execution, 4 executions: continue-as-new keeps each under the limit.
    assert_eq!(common::completed(&client, "rolling").await, "rounds: 3");
    rt.shutdown(None).await;
}

#[test]
fn a_status_set_after_the_last_decision_of_a_turn_is_not_recorded_again_on_replay() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        ctx.schedule_activity("A", "").await?;
        let wait = ctx.schedule_wait("Go");
        ctx.set_custom_status("waiting");
        let go = wait.await;
        Ok(go)
    });
    let done = EventKind::ActivityCompleted { source_event_id: 2, result: String::new() };
    let run = run_both(code, vec![vec![], vec![done], vec![raised("Go", "now")]]);
    assert_eq!(run.outcome(), &TurnOutcome::Completed("now".into()));
    assert_eq!(
        count(&run.history, |k| matches!(k, EventKind::CustomStatusSet { .. })),
        1,
        "{:?}",
        run.history
    );
}
