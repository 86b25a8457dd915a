//! Event queues in the replay engine: FIFO per queue, separate from raised events, a losing
//! dequeue keeps its message, unread messages carried at continue-as-new, and replay
//! without the cache giving the same result.

#[path = "replay_support/mod.rs"]
mod support;

use duroxide::history::EventKind;
use duroxide::replay::TurnOutcome;
use duroxide::{DurableFuture, Either2, OrchestrationContext};
use std::time::Duration;
use support::*;

#[test]
fn queue_is_fifo_and_separate_from_raised_events() {
    let h = handler(|ctx: OrchestrationContext, _in: String| async move {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(ctx.dequeue_event("q").await);
        }
        // A raised event of the same name is a different thing.
        got.push(ctx.schedule_wait("q").await);
        Ok(got.join(","))
    });
    let mut live = Live::start(h, "");
    live.turn(vec![queued("q", "1"), raised("q", "e"), queued("other", "x")]);
    live.turn(vec![queued("q", "2"), queued("q", "3")]);
    assert_eq!(live.outcome(), TurnOutcome::Completed("1,2,3,e".into()));
    assert_eq!(live.count(|k| matches!(k, EventKind::QueueSubscribed { .. })), 3);
    live.assert_replays_identically();
}

#[test]
fn typed_dequeue_decodes_and_reports_bad_payloads() {
    let h = handler(|ctx: OrchestrationContext, _in: String| async move {
        let n: u32 = ctx.dequeue_event_typed("nums").await?;
        let bad = ctx.dequeue_event_typed::<u32>("nums").await;
        let err = bad.expect_err("not a number");
        Ok(format!("{n}|{}", err.message))
    });
    let mut live = Live::start(h, "");
    live.turn(vec![queued("nums", "7"), queued("nums", "\"seven\"")]);
    let TurnOutcome::Completed(out) = live.outcome() else { panic!("{:?}", live.outcome()) };
    assert!(out.starts_with("7|the payload of queue 'nums' does not decode as `u32`"), "{out}");
}

#[test]
fn a_dequeue_that_loses_a_select_keeps_its_message() {
    let h = handler(|ctx: OrchestrationContext, _in: String| async move {
        let dequeue = ctx.dequeue_event("q");
        let timer = ctx.schedule_timer(Duration::from_secs(1));
        // Both complete before the select is made: history order decides.
        ctx.schedule_wait("go").await;
        let first = match ctx.select2(timer, dequeue).await {
            Either2::First(()) => "timer".to_string(),
            Either2::Second(m) => format!("message {m}"),
        };
        let next = ctx.dequeue_event("q").await;
        Ok(format!("{first}, then {next}"))
    });
    let mut live = Live::start(h, "");
    // Event 2 is the subscription, 3 the timer.
    live.turn(vec![fired(3), queued("q", "a"), raised("go", "")]);
    assert_eq!(live.outcome(), TurnOutcome::Completed("timer, then a".into()));
    assert_eq!(live.count(|k| matches!(k, EventKind::ExternalUnsubscribed { source_event_id: 2 })), 1);
    live.assert_replays_identically();
}

#[test]
fn continue_as_new_carries_unread_messages_in_order() {
    let h = handler(|ctx: OrchestrationContext, _in: String| async move {
        // Holds a message it never reads; the next one is buffered; more arrive after.
        let _held = ctx.dequeue_event("q");
        ctx.schedule_wait("go").await;
        ctx.continue_as_new("next");
        Ok(String::new())
    });
    let mut live = Live::start(h, "");
    let r = live.turn(vec![
        queued("q", "1"),
        queued("other", "x"),
        queued("q", "2"),
        raised("go", ""),
        queued("q", "3"),
    ]);
    assert_eq!(r.outcome, TurnOutcome::ContinuedAsNew { input: "next".into(), version: "1.0.0".into() });
    let carried: Vec<(&str, &str)> =
        r.carried_queue_messages.iter().map(|(q, d)| (q.as_str(), d.as_str())).collect();
    assert_eq!(carried, vec![("q", "1"), ("other", "x"), ("q", "2"), ("q", "3")]);
    // Raised events are not carried: only queue messages.
    live.assert_replays_identically();
}

#[test]
fn received_messages_are_not_carried() {
    let h = handler(|ctx: OrchestrationContext, _in: String| async move {
        let first = ctx.dequeue_event("q").await;
        ctx.continue_as_new(first);
        Ok(String::new())
    });
    let mut live = Live::start(h, "");
    let r = live.turn(vec![queued("q", "a"), queued("q", "b")]);
    assert_eq!(r.outcome, TurnOutcome::ContinuedAsNew { input: "a".into(), version: "1.0.0".into() });
    assert_eq!(r.carried_queue_messages, vec![("q".to_string(), "b".to_string())]);
}

#[test]
fn changing_the_queue_name_is_nondeterminism() {
    let stored = {
        let h =
            handler(|ctx: OrchestrationContext, _in: String| async move { Ok(ctx.dequeue_event("a").await) });
        Live::start(h, "").history
    };
    let h = handler(|ctx: OrchestrationContext, _in: String| async move { Ok(ctx.dequeue_event("b").await) });
    let n = stored.len();
    let mut engine = duroxide::replay::ReplayEngine::new(h, "i1", 1, stored, n).unwrap();
    let r = engine.run_turn(vec![], env());
    let TurnOutcome::Failed(d) = r.outcome else { panic!("{:?}", r.outcome) };
    assert_eq!(d.category, duroxide::ErrorCategory::Nondeterminism, "{d}");
}

#[test]
fn mapped_dequeue_keeps_history_order() {
    let h = handler(|ctx: OrchestrationContext, _in: String| async move {
        let a = ctx.dequeue_event("a").map(|m| m.len());
        let b = ctx.dequeue_event("b").map(|m| m.len() * 100);
        Ok(match ctx.select2(a, b).await {
            Either2::First(n) | Either2::Second(n) => n.to_string(),
        })
    });
    let mut live = Live::start(h, "");
    live.turn(vec![queued("b", "xy"), queued("a", "xyz")]);
    assert_eq!(live.outcome(), TurnOutcome::Completed("200".into()));
    live.assert_replays_identically();
}
