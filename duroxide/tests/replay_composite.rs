//! Composite futures and the three-way combinators in the replay engine: a multi-step
//! `async` block racing a timer is decided by history order, the loser's pending work is
//! cancelled and recorded, and replay without the cache gives the same result.

#[path = "replay_support/mod.rs"]
mod support;

use duroxide::history::EventKind;
use duroxide::replay::{Action, OrchestrationHandler, TurnOutcome};
use duroxide::{DurableFuture, Either2, Either3, OrchestrationContext, OrchestrationError};
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// Two activities in sequence against a deadline timer. The timer is event 2 (made when
/// `select2` is called), A event 3, B event 5 (made once A's result is in).
fn steps_against_deadline() -> Arc<dyn OrchestrationHandler> {
    handler(|ctx: OrchestrationContext, _in: String| async move {
        let steps = ctx.composite(async {
            let a = ctx.schedule_activity("A", "x").await?;
            ctx.schedule_activity("B", a).await
        });
        let deadline = ctx.schedule_timer(Duration::from_secs(30));
        Ok(match ctx.select2(steps, deadline).await {
            Either2::First(r) => format!("done:{}", r?),
            Either2::Second(()) => "deadline".to_string(),
        })
    })
}

fn is_cancel_of(id: u64) -> impl Fn(&EventKind) -> bool {
    move |k| matches!(k, EventKind::ActivityCancelRequested { source_event_id } if *source_event_id == id)
}

#[test]
fn composite_wins_when_its_last_step_completes_first() {
    let mut live = Live::start(steps_against_deadline(), "");
    assert!(matches!(live.history[1].kind, EventKind::TimerCreated { .. }), "{:?}", live.history);
    assert!(matches!(live.history[2].kind, EventKind::ActivityScheduled { .. }));
    let r = live.turn(vec![completed(3, "a")]);
    assert!(matches!(&r.actions[..], [Action::ScheduleActivity { event_id: 5, name, .. }] if name == "B"));
    live.turn(vec![completed(5, "b")]);
    assert_eq!(live.outcome(), TurnOutcome::Completed("done:b".into()));
    assert_eq!(live.count(|k| matches!(k, EventKind::ActivityCancelRequested { .. })), 0);
    live.assert_replays_identically();
}

#[test]
fn deadline_wins_and_the_pending_step_is_cancelled() {
    let mut live = Live::start(steps_against_deadline(), "");
    live.turn(vec![completed(3, "a")]);
    let r = live.turn(vec![fired(2)]);
    assert!(r.actions.contains(&Action::CancelActivity { event_id: 5 }), "{:?}", r.actions);
    assert_eq!(live.outcome(), TurnOutcome::Completed("deadline".into()));
    assert_eq!(live.count(is_cancel_of(5)), 1);
    live.assert_replays_identically();
}

#[test]
fn history_order_decides_within_one_batch() {
    // The timer fires after A's result but before B's, all in one turn.
    let mut live = Live::start(steps_against_deadline(), "");
    let r = live.turn(vec![completed(3, "a"), fired(2), completed(5, "b")]);
    assert_eq!(r.outcome, TurnOutcome::Completed("deadline".into()));
    assert_eq!(live.count(is_cancel_of(5)), 1);
    live.assert_replays_identically();

    // B's result before the timer: the steps win.
    let mut live = Live::start(steps_against_deadline(), "");
    let r = live.turn(vec![completed(3, "a"), completed(5, "b"), fired(2)]);
    assert_eq!(r.outcome, TurnOutcome::Completed("done:b".into()));
    live.assert_replays_identically();
}

#[test]
fn first_step_pending_when_the_deadline_fires_is_cancelled() {
    let mut live = Live::start(steps_against_deadline(), "");
    live.turn(vec![fired(2)]);
    assert_eq!(live.outcome(), TurnOutcome::Completed("deadline".into()));
    assert_eq!(live.count(is_cancel_of(3)), 1);
    assert_eq!(live.count(|k| matches!(k, EventKind::ActivityScheduled { name, .. } if name == "B")), 0);
    live.assert_replays_identically();
}

#[test]
fn composite_with_a_wait_gives_back_the_event_it_did_not_receive() {
    let h = handler(|ctx: OrchestrationContext, _in: String| async move {
        let steps = ctx.composite(async {
            let a = ctx.schedule_activity("A", "x").await?;
            let approval = ctx.schedule_wait("approve").await;
            Ok::<_, OrchestrationError>(format!("{a}+{approval}"))
        });
        let deadline = ctx.schedule_timer(Duration::from_secs(5));
        let first = match ctx.select2(steps, deadline).await {
            Either2::First(r) => r?,
            Either2::Second(()) => "deadline".to_string(),
        };
        // The wait inside the losing composite gave up its claim: a later wait gets it.
        let late = ctx.schedule_wait("approve").await;
        Ok(format!("{first}|{late}"))
    });
    let mut live = Live::start(h, "");
    live.turn(vec![completed(3, "a"), fired(2), raised("approve", "yes")]);
    assert_eq!(live.outcome(), TurnOutcome::Completed("deadline|yes".into()));
    live.assert_replays_identically();
}

#[test]
fn nested_composites_complete_at_their_last_inner_completion() {
    let h = handler(|ctx: OrchestrationContext, _in: String| async move {
        let inner = ctx.composite(async { ctx.schedule_activity("A", "1").await });
        let outer = ctx.composite(async {
            let a = inner.await?;
            ctx.schedule_activity("B", a).await
        });
        let other = ctx.schedule_activity("C", "3");
        Ok(match ctx.select2(outer, other).await {
            Either2::First(r) => format!("outer:{}", r?),
            Either2::Second(r) => format!("other:{}", r?),
        })
    });
    let mut live = Live::start(h, "");
    // C is event 2, A event 3, B event 5.
    live.turn(vec![completed(3, "a"), completed(2, "c")]);
    assert_eq!(live.outcome(), TurnOutcome::Completed("other:c".into()));
    assert_eq!(live.count(is_cancel_of(5)), 1);
    live.assert_replays_identically();
}

#[test]
fn select3_picks_the_earliest_in_history_and_cancels_the_rest() {
    let h = handler(|ctx: OrchestrationContext, _in: String| async move {
        let a = ctx.schedule_activity("A", "");
        let t = ctx.schedule_timer(Duration::from_secs(1));
        let e = ctx.schedule_wait("e");
        Ok(match ctx.select3(a, t, e).await {
            Either3::First(r) => format!("activity:{}", r?),
            Either3::Second(()) => "timer".into(),
            Either3::Third(d) => format!("event:{d}"),
        })
    });
    let mut live = Live::start(h, "");
    live.turn(vec![raised("e", "hi"), fired(3)]);
    assert_eq!(live.outcome(), TurnOutcome::Completed("event:hi".into()));
    assert_eq!(live.count(is_cancel_of(2)), 1);
    live.assert_replays_identically();
}

#[test]
fn join3_waits_for_all_three_of_different_types() {
    let h = handler(|ctx: OrchestrationContext, _in: String| async move {
        let a = ctx.schedule_activity("A", "").map(|r| r.map(|s| s.len()));
        let t = ctx.schedule_timer(Duration::from_secs(1));
        let e = ctx.schedule_wait_typed::<Vec<u8>>("e");
        let (a, (), e) = ctx.join3(a, t, e).await;
        Ok(format!("{}|{:?}", a?, e?))
    });
    let mut live = Live::start(h, "");
    live.turn(vec![raised("e", "[1,2]")]);
    assert_eq!(live.outcome(), TurnOutcome::Pending);
    live.turn(vec![fired(3), completed(2, "four")]);
    assert_eq!(live.outcome(), TurnOutcome::Completed("4|[1, 2]".into()));
    live.assert_replays_identically();
}

#[test]
fn typed_continue_as_new_encodes_its_input() {
    #[derive(serde::Serialize)]
    struct Next {
        round: u32,
    }
    let h = handler(|ctx: OrchestrationContext, _in: String| async move {
        ctx.continue_as_new_typed(&Next { round: 2 })?;
        Ok(String::new())
    });
    let live = Live::start(h, "");
    assert_eq!(
        live.outcome(),
        TurnOutcome::ContinuedAsNew { input: r#"{"round":2}"#.into(), version: "1.0.0".into() }
    );
}
