//! The timeline's unit tests: bars and marks from histories, ticks, the SVG.

use super::svg::{MAX_BARS, tick_label, tick_step};
use super::*;
use crate::ErrorDetails;

fn ev(event_id: u64, timestamp_ms: u64, kind: EventKind) -> Event {
    Event { event_id, timestamp_ms, kind }
}

fn history() -> Vec<Event> {
    vec![
        ev(
            1,
            1_000,
            EventKind::OrchestrationStarted {
                name: "Order".into(),
                version: "1.0.0".into(),
                input: "{}".into(),
                parent: None,
                duroxide_version: "0.1.0".into(),
            },
        ),
        ev(
            2,
            1_010,
            EventKind::ActivityScheduled {
                name: "Reserve<x>".into(),
                input: "1".into(),
                call_site: None,
                session_id: None,
                tag: None,
            },
        ),
        ev(3, 1_010, EventKind::TimerCreated { delay_ms: 500, fire_at_ms: 1_510, call_site: None }),
        ev(
            4,
            1_010,
            EventKind::ActivityScheduled {
                name: "Charge".into(),
                input: "2".into(),
                call_site: None,
                session_id: None,
                tag: None,
            },
        ),
        ev(5, 1_100, EventKind::ActivityCompleted { source_event_id: 2, result: "ok".into() }),
        ev(
            6,
            1_200,
            EventKind::ActivityFailed {
                source_event_id: 4,
                details: ErrorDetails::application("card declined"),
            },
        ),
        ev(7, 1_300, EventKind::ExternalSubscribed { name: "Approve".into(), call_site: None }),
        ev(8, 1_512, EventKind::TimerFired { source_event_id: 3, fire_at_ms: 1_510 }),
        ev(9, 1_600, EventKind::ExternalRaised { name: "Approve".into(), data: "yes".into() }),
        ev(
            10,
            1_600,
            EventKind::ActivityScheduled {
                name: "Ship".into(),
                input: "3".into(),
                call_site: None,
                session_id: None,
                tag: None,
            },
        ),
    ]
}

#[test]
fn work_becomes_bars_and_events_marks() {
    let t = build(&history(), 5_000, true);
    assert_eq!(t.start_ms, 1_000);
    let summary: Vec<(BarKind, u64, u64, Outcome)> =
        t.bars.iter().map(|b| (b.kind, b.start_ms, b.end_ms, b.outcome)).collect();
    assert_eq!(
        summary,
        [
            (BarKind::Activity, 1_010, 1_100, Outcome::Completed),
            (BarKind::Timer, 1_010, 1_512, Outcome::Completed),
            (BarKind::Activity, 1_010, 1_200, Outcome::Failed),
            (BarKind::Activity, 1_600, 5_000, Outcome::Open),
        ]
    );
    assert!(t.bars[2].detail.contains("card declined"));
    let marks: Vec<&str> = t.marks.iter().map(|m| m.class).collect();
    assert_eq!(marks, ["started", "wait", "event"]);
    assert_eq!(t.end_ms, 5_000);
}

#[test]
fn unfinished_work_of_an_ended_execution_stops_at_its_last_event() {
    let mut events = history();
    events.push(ev(11, 1_700, EventKind::OrchestrationCompleted { output: "done".into() }));
    let t = build(&events, 9_999, false);
    let ship = &t.bars[3];
    assert_eq!((ship.end_ms, ship.outcome), (1_700, Outcome::Abandoned));
    assert_eq!(t.end_ms, 1_700);
    assert_eq!(t.marks.last().map(|m| m.class), Some("completed"));
}

#[test]
fn a_timer_not_fired_reaches_its_fire_time() {
    let events = &history()[..3];
    let t = build(events, 1_020, true);
    assert_eq!((t.bars[1].end_ms, t.bars[1].outcome), (1_510, Outcome::Planned));
    assert_eq!(t.end_ms, 1_510);
}

#[test]
fn the_svg_has_an_axis_bars_and_marks_and_escapes_names() {
    let svg = render(&build(&history(), 2_000, true));
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    assert_eq!(svg.matches("<rect class=\"bar ").count(), 4);
    assert_eq!(svg.matches("<path class=\"mark ").count(), 3);
    assert!(svg.contains("class=\"bar activity failed\""));
    assert!(svg.contains(">0 ms</text>") && svg.contains(">200 ms</text>"), "{svg}");
    assert!(svg.contains("Reserve&lt;x&gt;") && !svg.contains("Reserve<x>"));
}

#[test]
fn ticks_are_round_and_few() {
    assert_eq!(tick_step(1), 1);
    assert_eq!(tick_step(1_000), 200);
    assert_eq!(tick_step(3_600_000), 600_000);
    assert_eq!(tick_step(3 * 86_400_000), 43_200_000);
    assert_eq!(tick_step(30 * 86_400_000), 5 * 86_400_000);
    assert_eq!(tick_label(1_500, 500), "1500 ms");
    assert_eq!(tick_label(2_000, 1_000), "2 s");
    assert_eq!(tick_label(1_200_000, 600_000), "20 min");
    assert_eq!(tick_label(7_200_000, 3_600_000), "2 h");
    assert_eq!(tick_label(2 * 86_400_000, 86_400_000), "2 d");
}

#[test]
fn an_empty_history_draws_an_empty_chart() {
    let t = build(&[], 0, true);
    assert!(t.bars.is_empty() && t.marks.is_empty());
    assert!(render(&t).contains("0 bars, 0 events"));
}

#[test]
fn long_histories_draw_the_first_bars_and_say_so() {
    let events: Vec<Event> = (1..=250)
        .map(|i| ev(i, i, EventKind::TimerCreated { delay_ms: 1, fire_at_ms: i + 1, call_site: None }))
        .collect();
    let svg = render(&build(&events, 300, true));
    assert_eq!(svg.matches("<rect class=\"bar ").count(), MAX_BARS);
    assert!(svg.contains("The first 200 of 250"));
}
