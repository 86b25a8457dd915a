//! The replay engine driven with hand-built histories: no store, no runtime.

use duroxide::history::{ErrorCategory, ErrorDetails, Event, EventKind};
use duroxide::replay::{Action, OrchestrationHandler, ReplayEngine, TurnEnv, TurnOutcome, TurnResult};
use duroxide::{Either2, OrchestrationContext, OrchestrationError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

fn ev(id: u64, kind: EventKind) -> Event {
    Event { event_id: id, timestamp_ms: 0, kind }
}

fn started(input: &str) -> EventKind {
    EventKind::OrchestrationStarted {
        name: "Test".into(),
        version: "1.0.0".into(),
        input: input.into(),
        parent: None,
        duroxide_version: "0.1.0".into(),
    }
}

fn sched(name: &str, input: &str) -> EventKind {
    EventKind::ActivityScheduled {
        name: name.into(),
        input: input.into(),
        call_site: Some("orig.rs:1:1".into()),
        session_id: None,
        tag: None,
    }
}

fn done(id: u64, result: &str) -> EventKind {
    EventKind::ActivityCompleted { source_event_id: id, result: result.into() }
}

fn history(kinds: Vec<EventKind>) -> Vec<Event> {
    kinds.into_iter().enumerate().map(|(i, k)| ev(i as u64 + 1, k)).collect()
}

/// Chain: A(input) then B(A's result).
fn chain() -> Arc<dyn OrchestrationHandler> {
    handler(|ctx: OrchestrationContext, input: String| async move {
        let a = ctx.schedule_activity("A", input).await?;
        let b = ctx.schedule_activity("B", a).await?;
        Ok(b)
    })
}

fn run(h: Arc<dyn OrchestrationHandler>, hist: Vec<Event>, msgs: Vec<EventKind>) -> TurnResult {
    let n = hist.len();
    let mut engine = ReplayEngine::new(h, "i1", 1, hist, n).expect("valid history");
    engine.run_turn(msgs, env())
}

fn failure(r: &TurnResult) -> ErrorDetails {
    match &r.outcome {
        TurnOutcome::Failed(d) => d.clone(),
        other => panic!("expected failure, got {other:?}"),
    }
}

#[test]
fn fresh_run_schedules_first_activity() {
    let mut engine = ReplayEngine::new(chain(), "i1", 1, history(vec![started("x")]), 0).unwrap();
    let r = engine.run_turn(vec![], env());
    assert_eq!(r.outcome, TurnOutcome::Pending);
    assert_eq!(r.new_events.len(), 2, "start event and ActivityScheduled are new");
    assert!(
        matches!(&r.new_events[1].kind, EventKind::ActivityScheduled { name, input, call_site: Some(site), session_id: None, tag: None }
        if name == "A" && input == "x" && site.contains("replay_engine.rs"))
    );
    assert_eq!(
        r.actions,
        vec![Action::ScheduleActivity {
            event_id: 2,
            name: "A".into(),
            input: "x".into(),
            session_id: None,
            tag: None
        }]
    );
}

#[test]
fn full_replay_completes_without_new_actions() {
    let h = history(vec![started("x"), sched("A", "x"), done(2, "a"), sched("B", "a"), done(4, "b")]);
    let r = run(chain(), h, vec![]);
    assert_eq!(r.outcome, TurnOutcome::Completed("b".into()));
    assert!(r.actions.is_empty());
    assert_eq!(r.new_events.len(), 1);
    assert!(matches!(r.new_events[0].kind, EventKind::OrchestrationCompleted { .. }));
    assert_eq!(r.new_events[0].event_id, 6);
}

#[test]
fn partial_history_resumes_with_new_completion() {
    let h = history(vec![started("x"), sched("A", "x"), done(2, "a"), sched("B", "a")]);
    let r = run(chain(), h.clone(), vec![]);
    assert_eq!(r.outcome, TurnOutcome::Pending);
    assert!(r.actions.is_empty(), "B was scheduled before; it must not be scheduled again");
    let r = run(chain(), h, vec![done(4, "b")]);
    assert_eq!(r.outcome, TurnOutcome::Completed("b".into()));
    assert_eq!(r.new_events.len(), 2, "the completion and the terminal event");
}

#[test]
fn duplicate_and_unknown_completions_are_dropped() {
    let h = history(vec![started("x"), sched("A", "x"), done(2, "a"), sched("B", "a")]);
    let r = run(chain(), h, vec![done(2, "again"), done(99, "??"), done(4, "b"), done(4, "b2")]);
    assert_eq!(r.outcome, TurnOutcome::Completed("b".into()));
    assert_eq!(r.dropped.len(), 3, "{:?}", r.dropped);
    let completions =
        r.new_events.iter().filter(|e| matches!(e.kind, EventKind::ActivityCompleted { .. })).count();
    assert_eq!(completions, 1);
}

#[test]
fn completion_of_wrong_kind_is_dropped() {
    let h = history(vec![started("x"), sched("A", "x")]);
    let fired = EventKind::TimerFired { source_event_id: 2, fire_at_ms: 5 };
    let r = run(chain(), h, vec![fired]);
    assert_eq!(r.outcome, TurnOutcome::Pending);
    assert_eq!(r.dropped.len(), 1);
}

#[test]
fn changed_activity_name_is_nondeterminism_naming_both_calls() {
    let h = history(vec![started("x"), sched("Z", "x")]);
    let r = run(chain(), h, vec![]);
    let d = failure(&r);
    assert_eq!(d.category, ErrorCategory::Nondeterminism);
    assert!(d.message.contains("nondeterministic"), "{}", d.message);
    assert!(d.message.contains("schedule_activity(\"Z\""), "expected call named: {}", d.message);
    assert!(d.message.contains("orig.rs:1:1"), "expected call site: {}", d.message);
    assert!(d.message.contains("recorded by version 1.0.0"), "{}", d.message);
    assert!(d.message.contains("schedule_activity(\"A\""), "actual call named: {}", d.message);
    assert!(d.message.contains("replay_engine.rs"), "actual call site: {}", d.message);
    assert!(matches!(r.new_events.last().unwrap().kind, EventKind::OrchestrationFailed { .. }));
}

#[test]
fn changed_activity_input_is_nondeterminism_with_digest() {
    let h = history(vec![started("x"), sched("A", "other")]);
    let d = failure(&run(chain(), h, vec![]));
    assert!(d.message.contains(&format!("#{}", duroxide::history::digest("other"))), "{}", d.message);
    assert!(d.message.contains(&format!("#{}", duroxide::history::digest("x"))), "{}", d.message);
}

#[test]
fn changed_kind_is_nondeterminism() {
    let h = history(vec![
        started("x"),
        EventKind::TimerCreated { delay_ms: 10, fire_at_ms: 10, call_site: None },
    ]);
    let d = failure(&run(chain(), h, vec![]));
    assert!(d.message.contains("schedule_timer(10 ms)"), "{}", d.message);
}

#[test]
fn changed_timer_delay_is_nondeterminism() {
    let h =
        history(vec![started(""), EventKind::TimerCreated { delay_ms: 10, fire_at_ms: 10, call_site: None }]);
    let code = handler(|ctx: OrchestrationContext, _| async move {
        ctx.schedule_timer(Duration::from_millis(20)).await;
        Ok(String::new())
    });
    assert!(failure(&run(code, h, vec![])).message.contains("schedule_timer(20 ms)"));
}

#[test]
fn changed_event_name_is_nondeterminism() {
    let h =
        history(vec![started(""), EventKind::ExternalSubscribed { name: "Approve".into(), call_site: None }]);
    let code = handler(|ctx: OrchestrationContext, _| async move { Ok(ctx.schedule_wait("Reject").await) });
    let d = failure(&run(code, h, vec![]));
    assert!(
        d.message.contains("schedule_wait(\"Approve\")") && d.message.contains("schedule_wait(\"Reject\")")
    );
}

#[test]
fn changed_sub_orchestration_is_nondeterminism() {
    let h = history(vec![
        started(""),
        EventKind::SubOrchestrationScheduled {
            name: "Child".into(),
            version: None,
            instance: "i1::sub::1.2".into(),
            input: "1".into(),
            call_site: None,
        },
    ]);
    let code = handler(|ctx: OrchestrationContext, _| async move {
        Ok(ctx.schedule_sub_orchestration("Child", "2").await?)
    });
    assert!(failure(&run(code, h, vec![])).message.contains("schedule_sub_orchestration(\"Child\""));
}

#[test]
fn changed_system_call_is_nondeterminism() {
    let h = history(vec![
        started(""),
        EventKind::SystemCall { op: "utc_now".into(), value: "5".into(), call_site: None },
    ]);
    let code = handler(|ctx: OrchestrationContext, _| async move { Ok(ctx.system_new_guid().await) });
    assert!(failure(&run(code, h, vec![])).message.contains("system call utc_now"));
}

#[test]
fn missing_decision_is_nondeterminism() {
    // History has A and B scheduled concurrently; the new code only schedules A.
    let h = history(vec![started("x"), sched("A", "x"), sched("B", "x")]);
    let code = handler(|ctx: OrchestrationContext, input: String| async move {
        Ok(ctx.schedule_activity("A", input).await?)
    });
    let d = failure(&run(code, h, vec![]));
    assert!(d.message.contains("did not make it"), "{}", d.message);
    assert!(d.message.contains("schedule_activity(\"B\""), "{}", d.message);
}

#[test]
fn code_that_finishes_early_is_nondeterminism() {
    let h = history(vec![started("x"), sched("A", "x"), done(2, "a"), sched("B", "a")]);
    let code = handler(|ctx: OrchestrationContext, input: String| async move {
        Ok(ctx.schedule_activity("A", input).await?)
    });
    let r = run(code, h, vec![]);
    failure(&r);
    let terminals = r.new_events.iter().filter(|e| e.kind.is_terminal()).count();
    assert_eq!(terminals, 1, "exactly one terminal event: {:?}", r.new_events);
}

#[test]
fn corrupt_histories_are_rejected() {
    let cases: Vec<Vec<Event>> = vec![
        vec![],
        history(vec![sched("A", "x")]),
        vec![ev(1, started("x")), ev(3, sched("A", "x"))],
        history(vec![started("x"), started("y")]),
    ];
    for h in cases {
        let n = h.len();
        assert!(ReplayEngine::new(chain(), "i1", 1, h.clone(), n).is_err(), "accepted {h:?}");
    }
}

#[test]
fn dangling_or_duplicate_completion_in_history_fails_the_instance() {
    let dangling = history(vec![started("x"), sched("A", "x"), done(7, "a")]);
    let d = failure(&run(chain(), dangling, vec![]));
    assert!(d.message.contains("corrupt history"), "{}", d.message);
    let dup = history(vec![started("x"), sched("A", "x"), done(2, "a"), done(2, "a")]);
    let d = failure(&run(chain(), dup, vec![]));
    assert!(d.message.contains("already completed"), "{}", d.message);
}

#[test]
fn panicking_orchestration_fails_with_the_panic_message() {
    let code = handler(|_ctx: OrchestrationContext, _input: String| async move {
        if true {
            panic!("boom at step 3");
        }
        Ok(String::new())
    });
    let d = failure(&run(code, history(vec![started("x")]), vec![]));
    assert_eq!(d.category, ErrorCategory::Application);
    assert!(d.message.contains("panicked: boom at step 3"), "{}", d.message);
}

#[test]
fn activity_failure_reaches_the_code_as_err() {
    let code = handler(|ctx: OrchestrationContext, input: String| async move {
        match ctx.schedule_activity("A", input).await {
            Ok(_) => Ok("ok".into()),
            Err(e) => Ok(format!("handled: {}", e.message)),
        }
    });
    let failed =
        EventKind::ActivityFailed { source_event_id: 2, details: ErrorDetails::application("declined") };
    let r = run(code, history(vec![started("x"), sched("A", "x")]), vec![failed]);
    assert_eq!(r.outcome, TurnOutcome::Completed("handled: declined".into()));
}

#[test]
fn question_mark_propagates_activity_failure() {
    let failed =
        EventKind::ActivityFailed { source_event_id: 2, details: ErrorDetails::application("declined") };
    let r = run(chain(), history(vec![started("x"), sched("A", "x")]), vec![failed]);
    let d = failure(&r);
    assert_eq!(d.message, "declined");
}

fn race() -> Arc<dyn OrchestrationHandler> {
    handler(|ctx: OrchestrationContext, _input: String| async move {
        let act = ctx.schedule_activity("Slow", "");
        let timer = ctx.schedule_timer(Duration::from_secs(5));
        Ok(match ctx.select2(act, timer).await {
            Either2::First(r) => format!("activity:{}", r?),
            Either2::Second(()) => "timeout".to_string(),
        })
    })
}

#[test]
fn select_resolves_by_history_order_and_cancels_the_loser() {
    let base = vec![
        started(""),
        sched("Slow", ""),
        EventKind::TimerCreated { delay_ms: 5000, fire_at_ms: 6000, call_site: None },
    ];
    // Both completions arrive in one turn; the one first in history wins.
    let fired = EventKind::TimerFired { source_event_id: 3, fire_at_ms: 6000 };
    let r = run(race(), history(base.clone()), vec![fired.clone(), done(2, "late")]);
    assert_eq!(r.outcome, TurnOutcome::Completed("timeout".into()));
    assert!(r.actions.contains(&Action::CancelActivity { event_id: 2 }), "{:?}", r.actions);
    assert!(
        r.new_events
            .iter()
            .any(|e| matches!(e.kind, EventKind::ActivityCancelRequested { source_event_id: 2 }))
    );

    let r = run(race(), history(base.clone()), vec![done(2, "fast"), fired.clone()]);
    assert_eq!(r.outcome, TurnOutcome::Completed("activity:fast".into()));

    // Replaying a history where both completions are recorded gives the recorded winner.
    let mut recorded = base;
    recorded.push(fired);
    recorded.push(done(2, "late"));
    let r = run(race(), history(recorded), vec![]);
    assert_eq!(r.outcome, TurnOutcome::Completed("timeout".into()));
}

#[test]
fn select_over_already_completed_futures_picks_the_earliest_in_history() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        let a = ctx.schedule_activity("A", "");
        let b = ctx.schedule_activity("B", "");
        ctx.schedule_timer(Duration::from_secs(1)).await;
        let (i, r) = ctx.select(vec![a, b]).await;
        Ok(format!("{i}:{}", r?))
    });
    let h = history(vec![
        started(""),
        sched("A", ""),
        sched("B", ""),
        EventKind::TimerCreated { delay_ms: 1000, fire_at_ms: 2000, call_site: None },
        done(3, "b"),
        done(2, "a"),
        EventKind::TimerFired { source_event_id: 4, fire_at_ms: 2000 },
    ]);
    assert_eq!(run(code, h, vec![]).outcome, TurnOutcome::Completed("1:b".into()));
}

#[test]
fn join_returns_outputs_in_given_order() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        let futures = (0..3).map(|i| ctx.schedule_activity("A", i.to_string())).collect();
        let results: Result<Vec<String>, _> = ctx.join(futures).await.into_iter().collect();
        Ok(results?.join(","))
    });
    let h = history(vec![started(""), sched("A", "0"), sched("A", "1"), sched("A", "2")]);
    let r = run(code, h, vec![done(4, "c"), done(2, "a"), done(3, "b")]);
    assert_eq!(r.outcome, TurnOutcome::Completed("a,b,c".into()));
}

#[test]
fn external_event_raised_before_the_wait_is_kept() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        ctx.schedule_timer(Duration::from_secs(1)).await;
        let a = ctx.schedule_wait("Go").await;
        let b = ctx.schedule_wait("Go").await;
        Ok(format!("{a}{b}"))
    });
    let mut engine = ReplayEngine::new(code.clone(), "i1", 1, history(vec![started("")]), 0).unwrap();
    let r1 = engine.run_turn(vec![EventKind::ExternalRaised { name: "Go".into(), data: "1".into() }], env());
    assert_eq!(r1.outcome, TurnOutcome::Pending);
    let r2 = engine.run_turn(vec![EventKind::TimerFired { source_event_id: 2, fire_at_ms: 2000 }], env());
    assert_eq!(r2.outcome, TurnOutcome::Pending);
    let r3 = engine.run_turn(vec![EventKind::ExternalRaised { name: "Go".into(), data: "2".into() }], env());
    assert_eq!(r3.outcome, TurnOutcome::Completed("12".into()));

    // A cold replay of the full history gives the same result and no new decisions.
    let mut full: Vec<Event> = Vec::new();
    for r in [&r1, &r2, &r3] {
        full.extend(r.new_events.iter().cloned());
    }
    full.pop(); // drop the terminal event to replay into it
    let n = full.len();
    let mut cold = ReplayEngine::new(code, "i1", 1, full, n).unwrap();
    let r = cold.run_turn(vec![], env());
    assert_eq!(r.outcome, TurnOutcome::Completed("12".into()));
    assert_eq!(r.new_events.len(), 1);
}

#[test]
fn guid_and_time_are_recorded_and_replayed() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        let g = ctx.system_new_guid().await;
        let t = ctx.utc_now().await.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        ctx.schedule_timer(Duration::from_millis(1)).await;
        Ok(format!("{g}/{t}"))
    });
    let mut engine = ReplayEngine::new(code.clone(), "i1", 1, history(vec![started("")]), 0).unwrap();
    let r1 = engine.run_turn(vec![], TurnEnv { now_ms: 42, ..Default::default() });
    let mut h = r1.new_events.clone();
    h.push(ev(h.len() as u64 + 1, EventKind::TimerFired { source_event_id: 4, fire_at_ms: 43 }));
    let n = h.len();
    let out1 = ReplayEngine::new(code.clone(), "i1", 1, h.clone(), n)
        .unwrap()
        .run_turn(vec![], TurnEnv { now_ms: 9_999, ..Default::default() })
        .outcome;
    let out2 = ReplayEngine::new(code, "i1", 1, h, n)
        .unwrap()
        .run_turn(vec![], TurnEnv { now_ms: 77_777, ..Default::default() })
        .outcome;
    assert_eq!(out1, out2);
    match out1 {
        TurnOutcome::Completed(s) => assert!(s.ends_with("/42"), "{s}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn traces_and_custom_status_are_not_repeated_on_replay() {
    static REPLAYING_SEEN: AtomicUsize = AtomicUsize::new(0);
    let code = handler(|ctx: OrchestrationContext, _| async move {
        ctx.set_custom_status("step-1");
        if ctx.is_replaying() {
            REPLAYING_SEEN.fetch_add(1, Ordering::SeqCst);
        }
        ctx.schedule_activity("A", "").await?;
        ctx.set_custom_status("step-2");
        Ok(String::new())
    });
    let mut e = ReplayEngine::new(code.clone(), "i1", 1, history(vec![started("")]), 0).unwrap();
    let r1 = e.run_turn(vec![], env());
    assert_eq!(r1.custom_status, Some(Some("step-1".into())));
    assert!(r1.new_events.iter().any(|e| matches!(e.kind, EventKind::CustomStatusSet { .. })));
    let n = r1.new_events.len();
    let r2 = ReplayEngine::new(code, "i1", 1, r1.new_events.clone(), n)
        .unwrap()
        .run_turn(vec![done(3, "")], env());
    assert_eq!(REPLAYING_SEEN.load(Ordering::SeqCst), 1, "the replayed prefix saw is_replaying() = true");
    let statuses =
        r2.new_events.iter().filter(|e| matches!(e.kind, EventKind::CustomStatusSet { .. })).count();
    assert_eq!(statuses, 1, "only step-2 is new: {:?}", r2.new_events);
    assert_eq!(r2.custom_status, Some(Some("step-2".into())));
}

#[test]
fn continue_as_new_ends_the_execution() {
    let code = handler(|ctx: OrchestrationContext, input: String| async move {
        let n: u32 = input.parse().unwrap_or(0);
        ctx.continue_as_new((n + 1).to_string());
        Ok(String::new())
    });
    let r = run(code, history(vec![started("3")]), vec![]);
    assert_eq!(r.outcome, TurnOutcome::ContinuedAsNew { input: "4".into(), version: "1.0.0".into() });
    assert!(matches!(r.new_events.last().unwrap().kind, EventKind::OrchestrationContinuedAsNew { .. }));
}

#[test]
fn cancellation_cancels_open_work_and_fails_as_cancelled() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        let a = ctx.schedule_activity("A", "");
        let c = ctx.schedule_sub_orchestration("Child", "");
        let (a, c) = ctx.join2(a, c).await;
        Ok(format!("{a:?}{c:?}"))
    });
    let mut e = ReplayEngine::new(code, "i1", 1, history(vec![started("")]), 0).unwrap();
    e.run_turn(vec![], env());
    let r = e.run_turn(vec![EventKind::OrchestrationCancelRequested { reason: "user".into() }], env());
    let d = failure(&r);
    assert_eq!(d.category, ErrorCategory::Cancelled);
    assert_eq!(d.message, "user");
    assert!(r.actions.contains(&Action::CancelActivity { event_id: 2 }));
    assert!(
        r.actions.iter().any(
            |a| matches!(a, Action::CancelSubOrchestration { instance, .. } if instance == "i1::sub::1.3")
        )
    );
}

#[test]
fn oversized_activity_input_fails_at_the_call() {
    let code = handler(|ctx: OrchestrationContext, _| async move {
        match ctx.schedule_activity("A", "x".repeat(100)).await {
            Err(e) if e.message.contains("100 bytes; the limit is 10 bytes") => Ok("rejected".into()),
            Err(e) => Ok(format!("wrong error: {e}")),
            Ok(_) => Ok("scheduled".into()),
        }
    });
    let mut e = ReplayEngine::new(code, "i1", 1, history(vec![started("")]), 0).unwrap();
    let r = e.run_turn(vec![], TurnEnv { now_ms: 0, max_payload_bytes: 10, ..Default::default() });
    assert!(r.actions.is_empty());
    assert_eq!(r.outcome, TurnOutcome::Completed("rejected".into()));
}

#[test]
fn cached_engine_and_cold_replay_write_identical_histories() {
    let code = race();
    // Cached: one engine, three turns.
    let mut cached = ReplayEngine::new(code.clone(), "i1", 1, history(vec![started("")]), 0).unwrap();
    let mut cached_events = cached.run_turn(vec![], env()).new_events;
    cached_events.extend(cached.run_turn(vec![done(2, "r")], env()).new_events);
    // Cold: a new engine per turn from the stored history.
    let mut stored: Vec<Event> = Vec::new();
    let mut e = ReplayEngine::new(code.clone(), "i1", 1, history(vec![started("")]), 0).unwrap();
    stored.extend(e.run_turn(vec![], env()).new_events);
    let n = stored.len();
    let mut e = ReplayEngine::new(code, "i1", 1, stored.clone(), n).unwrap();
    stored.extend(e.run_turn(vec![done(2, "r")], env()).new_events);
    assert_eq!(cached_events, stored);
}

#[test]
fn nondeterminism_names_the_recording_and_replaying_versions_and_the_fix() {
    let h = history(vec![started("x"), sched("Z", "x")]);
    let d = failure(&run(chain(), h, vec![]));
    let this = duroxide::history::DUROXIDE_VERSION;
    assert!(
        d.message.contains("The history was recorded by 'Test' version 1.0.0 (duroxide 0.1.0)"),
        "recorded versions: {}",
        d.message
    );
    assert!(
        d.message.contains(&format!(
            "replayed by the code now registered as 'Test' version 1.0.0 (duroxide {this})"
        )),
        "replaying versions: {}",
        d.message
    );
    assert!(
        d.message.contains("register the code that recorded it as version 1.0.0 again"),
        "fix: {}",
        d.message
    );
    assert!(d.message.contains("continue_as_new_versioned"), "fix: {}", d.message);
}
