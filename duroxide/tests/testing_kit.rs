//! The test kit (`duroxide::testing`): virtual time, activity mocks, events and
//! cancellation at chosen virtual times, and what a test can inspect. On the in-memory
//! store, with the instance cache on and off.

use duroxide::prelude::*;
use duroxide::testing::{ActivityMock, HarnessError, TestHarness, TypedActivityMock};
use duroxide::{Either2, EventKind, OrchestrationStatus};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
/// 2026-01-01T00:00:00Z: a fixed start, so histories of two runs compare equal.
const START_MS: u64 = 1_767_225_600_000;

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn no_activities() -> ActivityRegistry {
    ActivityRegistry::builder().build()
}

/// Waits `days` (timer), then returns the virtual time before and after, in ms.
fn sleeper() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Sleep", |ctx: OrchestrationContext, days: String| async move {
            let days: u64 = days.parse().map_err(|_| OrchestrationError::from("days"))?;
            let before = ctx.utc_now().await;
            ctx.schedule_timer(DAY * days as u32).await;
            let after = ctx.utc_now().await;
            Ok(format!("{} {}", ms(before), ms(after)))
        })
        .build()
}

/// Approval: wait for `Approve` or give up after 7 days; custom status while waiting.
fn approval() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Approval", |ctx: OrchestrationContext, _input: String| async move {
            ctx.set_custom_status("waiting");
            let decision = ctx.schedule_wait("Approve");
            let deadline = ctx.schedule_timer(7 * DAY);
            Ok(match ctx.select2(decision, deadline).await {
                Either2::First(by) => format!("approved by {by}"),
                Either2::Second(()) => "expired".to_string(),
            })
        })
        .build()
}

async fn harness(
    activities: ActivityRegistry,
    orchestrations: OrchestrationRegistry,
    cache: usize,
) -> TestHarness {
    TestHarness::builder(activities, orchestrations)
        .start_at(UNIX_EPOCH + Duration::from_millis(START_MS))
        .instance_cache_size(cache)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_day_timer_completes_in_under_a_second_and_utc_now_follows_the_clock() {
    for cache in [1024, 0] {
        let h = harness(no_activities(), sleeper(), cache).await;
        let real = Instant::now();
        let out = h.run("Sleep", "30").await.unwrap();
        assert!(real.elapsed() < Duration::from_secs(1), "took {:?} of real time", real.elapsed());
        let (before, after) = out.split_once(' ').unwrap();
        assert_eq!(before.parse::<u64>().unwrap(), START_MS, "utc_now reads the virtual clock");
        assert_eq!(after.parse::<u64>().unwrap(), START_MS + 30 * 24 * 3_600_000);
        assert_eq!(h.now_ms(), START_MS + 30 * 24 * 3_600_000, "the clock stopped at the timer");
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advance_fires_only_what_is_due_and_leaves_the_clock_exactly_there() {
    let h = harness(no_activities(), sleeper(), 1024).await;
    h.start("s", "Sleep", "3").await.unwrap();
    h.advance(2 * DAY).await.unwrap();
    assert_eq!(h.now_ms(), START_MS + 2 * 24 * 3_600_000);
    assert!(matches!(h.status("s").await.unwrap(), OrchestrationStatus::Running { .. }));
    let timers = h.pending_timers();
    assert_eq!(timers.len(), 1);
    assert_eq!((timers[0].instance.as_str(), timers[0].fire_at_ms), ("s", START_MS + 3 * 24 * 3_600_000));
    h.advance(DAY).await.unwrap();
    assert!(matches!(h.status("s").await.unwrap(), OrchestrationStatus::Completed { .. }));
    assert!(h.pending_timers().is_empty());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_raised_at_a_chosen_virtual_time_beats_a_seven_day_timeout() {
    let mut histories = Vec::new();
    for cache in [1024, 0] {
        let h = harness(no_activities(), approval(), cache).await;
        h.start("req-1", "Approval", "").await.unwrap();
        h.settle().await.unwrap();
        assert_eq!(h.custom_status("req-1").await.unwrap().as_deref(), Some("waiting"));
        h.advance(2 * DAY).await.unwrap();
        h.raise_event("req-1", "Approve", "ada").await.unwrap();
        assert_eq!(h.wait_for_output("req-1").await.unwrap(), "approved by ada");
        assert_eq!(h.now_ms(), START_MS + 2 * 24 * 3_600_000, "the 7-day timer never had to fire");
        let history = h.history("req-1").await.unwrap();
        let raised = history.iter().find(|e| matches!(e.kind, EventKind::ExternalRaised { .. })).unwrap();
        assert_eq!(raised.timestamp_ms, START_MS + 2 * 24 * 3_600_000, "recorded at the virtual time");
        assert!(!history.iter().any(|e| matches!(e.kind, EventKind::TimerFired { .. })));
        histories.push(history);
        h.shutdown().await;
    }
    assert_eq!(histories[0], histories[1], "cached and uncached histories are identical");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_event_the_timeout_fires_after_exactly_seven_virtual_days() {
    let h = harness(no_activities(), approval(), 1024).await;
    h.start("req-2", "Approval", "").await.unwrap();
    assert_eq!(h.wait_for_output("req-2").await.unwrap(), "expired");
    assert_eq!(h.now_ms(), START_MS + 7 * 24 * 3_600_000);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_at_a_chosen_virtual_time_ends_the_instance_then() {
    let h = harness(no_activities(), approval(), 1024).await;
    h.start("req-3", "Approval", "").await.unwrap();
    h.advance(DAY).await.unwrap();
    h.cancel("req-3", "withdrawn").await.unwrap();
    match h.wait_for("req-3").await.unwrap() {
        OrchestrationStatus::Cancelled { reason } => assert!(reason.contains("withdrawn"), "{reason}"),
        other => panic!("expected cancelled, got {other:?}"),
    }
    let last = h.history("req-3").await.unwrap().pop().unwrap();
    assert_eq!(last.timestamp_ms, START_MS + 24 * 3_600_000);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_an_event_nobody_raises_is_reported_at_once() {
    let orchestrations = OrchestrationRegistry::builder()
        .register("Wait", |ctx: OrchestrationContext, _: String| async move {
            Ok(ctx.schedule_wait("Never").await)
        })
        .build();
    let h = harness(no_activities(), orchestrations, 1024).await;
    h.start("w", "Wait", "").await.unwrap();
    let real = Instant::now();
    let err = h.wait_for("w").await.unwrap_err();
    assert!(matches!(err, HarnessError::Stuck { ref instance, .. } if instance == "w"), "{err}");
    assert!(real.elapsed() < Duration::from_secs(1));
    assert!(
        matches!(h.wait_for("nobody").await.unwrap_err(), HarnessError::Setup(m) if m.contains("nobody"))
    );
    h.shutdown().await;
}

/// An activity raced against a one-hour timer.
fn race() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Race", |ctx: OrchestrationContext, input: String| async move {
            let work = ctx.schedule_activity("Work", input);
            let timeout = ctx.schedule_timer(HOUR);
            Ok(match ctx.select2(work, timeout).await {
                Either2::First(r) => format!("activity: {}", r?),
                Either2::Second(()) => "timer".to_string(),
            })
        })
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_that_completes_first_in_virtual_time_wins_the_race_with_a_timer() {
    // Slow in real time, but activities take no virtual time: the timer cannot fire first.
    let slow = ActivityMock::new("Work", |x: String| async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(format!("did {x}"))
    });
    let h = TestHarness::builder(no_activities(), race()).mock(&slow).build().await.unwrap();
    assert_eq!(h.run("Race", "a").await.unwrap(), "activity: did a");
    // Modelled as taking 30 virtual minutes: still before the 1-hour timer.
    let thirty_min = ActivityMock::returning("Work", "ok").taking(HOUR / 2);
    let h2 = TestHarness::builder(no_activities(), race()).mock(&thirty_min).build().await.unwrap();
    let start = h2.now_ms();
    assert_eq!(h2.run("Race", "b").await.unwrap(), "activity: ok");
    assert_eq!(h2.now_ms() - start, 30 * 60_000);
    h.shutdown().await;
    h2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_due_before_a_slow_activity_wins_the_race() {
    let two_hours = ActivityMock::returning("Work", "late").taking(2 * HOUR);
    let h = TestHarness::builder(no_activities(), race()).mock(&two_hours).build().await.unwrap();
    let start = h.now_ms();
    assert_eq!(h.run("Race", "c").await.unwrap(), "timer");
    assert_eq!(h.now_ms() - start, 3_600_000, "finished when the timer fired");
    assert_eq!(two_hours.call_count(), 1);
    h.shutdown().await;
}

#[activity]
async fn charge(_ctx: ActivityContext, cents: u64) -> Result<String, ActivityError> {
    Err(ActivityError::non_retryable(format!("the real payment service was called for {cents}")))
}

#[orchestration(name = "Checkout")]
async fn checkout(ctx: OrchestrationContext, items: Vec<u64>) -> Result<Vec<String>, OrchestrationError> {
    let mut receipts = Vec::new();
    for cents in items {
        receipts.push(ctx.call(charge, cents).await?);
    }
    let note = ctx.schedule_activity("Notify", format!("{} charges", receipts.len())).await?;
    receipts.push(note);
    Ok(receipts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mocks_by_typed_handle_and_by_name_replace_activities_and_record_calls() {
    let activities = ActivityRegistry::builder()
        .register_typed(charge)
        .register("Notify", |_ctx: ActivityContext, _: String| async move {
            Err(ActivityError::non_retryable("the real notifier was called"))
        })
        .build();
    let orchestrations = OrchestrationRegistry::builder().register_typed(checkout).build();
    let charges = TypedActivityMock::new(charge, |cents: u64| async move { Ok(format!("charged {cents}")) });
    let notify = ActivityMock::returning("Notify", "notified");
    let h =
        TestHarness::builder(activities, orchestrations).mock(&charges).mock(&notify).build().await.unwrap();
    h.start_typed(checkout, "order-1", &vec![250, 100]).await.unwrap();
    let receipts = h.wait_for_typed(checkout, "order-1").await.unwrap();
    assert_eq!(receipts, ["charged 250", "charged 100", "notified"]);
    assert_eq!(charges.call_count(), 2);
    assert_eq!(charges.inputs(), vec![250u64, 100]);
    assert_eq!(charges.raw().inputs(), ["250", "100"]);
    assert_eq!(notify.call_count(), 1);
    assert_eq!(notify.inputs(), ["2 charges"]);
    h.shutdown().await;
}
