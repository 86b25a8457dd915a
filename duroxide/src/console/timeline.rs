//! An execution's history as a timeline, drawn on the server as inline SVG: time runs left
//! to right in ms from the execution's first event; activities, timers and
//! sub-orchestrations are bars from their scheduling event to their completion (still open
//! ones reach "now", a timer not fired yet reaches its fire time); every other event is a
//! mark on the top row. Hovering shows the details (SVG `<title>`), no script needed.

use super::html::{duration, esc, time, truncate};
use crate::history::{Event, EventKind};
use std::collections::HashMap;
use std::fmt::Write as _;

/// The most bars drawn; the rest are counted below the chart.
const MAX_BARS: usize = 200;

const WIDTH: u64 = 960;
const LABEL_WIDTH: u64 = 230;
const RIGHT_MARGIN: u64 = 40;
const MARK_ROW_Y: u64 = 46;
const FIRST_BAR_Y: u64 = 66;
const ROW_HEIGHT: u64 = 20;

/// What a bar stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BarKind {
    Activity,
    Timer,
    SubOrchestration,
}

impl BarKind {
    fn name(self) -> &'static str {
        match self {
            BarKind::Activity => "activity",
            BarKind::Timer => "timer",
            BarKind::SubOrchestration => "sub-orchestration",
        }
    }
}

/// How a bar's work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Completed (a timer: fired).
    Completed,
    /// Failed.
    Failed,
    /// The orchestration stopped waiting for it.
    Cancelled,
    /// Still running: the bar reaches now.
    Open,
    /// A timer that has not fired: the bar reaches its fire time.
    Planned,
    /// Never completed, and the execution has ended.
    Abandoned,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Open => "open",
            Outcome::Planned => "planned",
            Outcome::Abandoned => "abandoned",
        }
    }
}

/// One piece of scheduled work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bar {
    pub(crate) kind: BarKind,
    /// The scheduling event's id.
    pub(crate) event_id: u64,
    pub(crate) label: String,
    pub(crate) start_ms: u64,
    pub(crate) end_ms: u64,
    pub(crate) outcome: Outcome,
    /// Input, result or error, for the tooltip.
    pub(crate) detail: String,
}

/// One event shown as a point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) event_id: u64,
    pub(crate) at_ms: u64,
    /// The event type, as a CSS class.
    pub(crate) class: &'static str,
    pub(crate) label: String,
}

/// The timeline of one execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Timeline {
    pub(crate) start_ms: u64,
    pub(crate) end_ms: u64,
    pub(crate) bars: Vec<Bar>,
    pub(crate) marks: Vec<Mark>,
}

/// The timeline of `events` (one execution, in order). `open` says whether the execution
/// still runs: unfinished work then reaches `now_ms`.
pub(crate) fn build(events: &[Event], now_ms: u64, open: bool) -> Timeline {
    let start_ms = events.first().map_or(0, |e| e.timestamp_ms);
    let last_ms = events.iter().map(|e| e.timestamp_ms).max().unwrap_or(start_ms);
    let mut b = Builder::default();
    for e in events {
        b.add(e);
    }
    let Builder { mut bars, marks, .. } = b;
    for b in bars.iter_mut().filter(|b| b.outcome == Outcome::Open) {
        match (b.kind, open) {
            // A timer that has not fired keeps its fire time as its end.
            (BarKind::Timer, true) => b.outcome = Outcome::Planned,
            (_, true) => b.end_ms = now_ms.max(b.start_ms),
            (_, false) => {
                b.end_ms = last_ms.max(b.start_ms);
                b.outcome = Outcome::Abandoned;
            }
        }
    }
    let end_ms = bars.iter().map(|b| b.end_ms).chain([last_ms]).max().unwrap_or(start_ms);
    Timeline { start_ms, end_ms: end_ms.max(start_ms + 1), bars, marks }
}

/// Bars and marks collected event by event.
#[derive(Default)]
struct Builder {
    bars: Vec<Bar>,
    /// Bar index by scheduling event id.
    by_id: HashMap<u64, usize>,
    marks: Vec<Mark>,
}

impl Builder {
    fn bar(&mut self, e: &Event, kind: BarKind, label: String, end_ms: u64, detail: String) {
        self.by_id.insert(e.event_id, self.bars.len());
        self.bars.push(Bar {
            kind,
            event_id: e.event_id,
            label,
            start_ms: e.timestamp_ms,
            end_ms,
            outcome: Outcome::Open,
            detail,
        });
    }

    /// Ends the bar of `source` at `e`, if it is still open.
    fn close(&mut self, e: &Event, source: u64, outcome: Outcome, detail: Option<String>) {
        if let Some(b) = self.by_id.get(&source).and_then(|&i| self.bars.get_mut(i))
            && b.outcome == Outcome::Open
        {
            b.end_ms = e.timestamp_ms.max(b.start_ms);
            b.outcome = outcome;
            if let Some(d) = detail {
                b.detail = format!("{}\n{d}", b.detail);
            }
        }
    }

    fn mark(&mut self, e: &Event, class: &'static str, label: String) {
        self.marks.push(Mark { event_id: e.event_id, at_ms: e.timestamp_ms, class, label });
    }

    fn add(&mut self, e: &Event) {
        let t = e.timestamp_ms;
        match &e.kind {
            EventKind::ActivityScheduled { name, input, .. } => {
                self.bar(e, BarKind::Activity, name.clone(), t, format!("input: {}", truncate(input, 200)))
            }
            EventKind::TimerCreated { delay_ms, fire_at_ms, .. } => self.bar(
                e,
                BarKind::Timer,
                format!("{} timer", duration(*delay_ms)),
                (*fire_at_ms).max(t),
                format!("fires at {}", time(*fire_at_ms)),
            ),
            EventKind::SubOrchestrationScheduled { name, instance, .. } => self.bar(
                e,
                BarKind::SubOrchestration,
                format!("{name} ({instance})"),
                t,
                format!("instance: {instance}"),
            ),
            EventKind::ActivityCompleted { source_event_id, result }
            | EventKind::SubOrchestrationCompleted { source_event_id, result } => self.close(
                e,
                *source_event_id,
                Outcome::Completed,
                Some(format!("result: {}", truncate(result, 200))),
            ),
            EventKind::ActivityFailed { source_event_id, details }
            | EventKind::SubOrchestrationFailed { source_event_id, details } => self.close(
                e,
                *source_event_id,
                Outcome::Failed,
                Some(format!("error: {}", truncate(&details.message, 200))),
            ),
            EventKind::ActivityCancelRequested { source_event_id }
            | EventKind::SubOrchestrationCancelRequested { source_event_id } => {
                self.close(e, *source_event_id, Outcome::Cancelled, None)
            }
            EventKind::TimerFired { source_event_id, .. } => {
                self.close(e, *source_event_id, Outcome::Completed, None)
            }
            EventKind::OrchestrationStarted { name, version, .. } => {
                self.mark(e, "started", format!("started {name} {version}"))
            }
            EventKind::OrchestrationCompleted { output } => {
                self.mark(e, "completed", format!("completed: {}", truncate(output, 200)))
            }
            EventKind::OrchestrationFailed { details } => {
                self.mark(e, "failed", format!("failed: {}", truncate(&details.message, 200)))
            }
            EventKind::OrchestrationContinuedAsNew { version, .. } => {
                self.mark(e, "continued", format!("continued as new ({version})"))
            }
            EventKind::OrchestrationCancelRequested { reason } => {
                self.mark(e, "cancel", format!("cancel requested: {reason}"))
            }
            EventKind::ExternalSubscribed { name, .. } => {
                self.mark(e, "wait", format!("waits for event {name}"))
            }
            EventKind::ExternalUnsubscribed { .. } => {
                self.mark(e, "wait", "stopped waiting for an event".into())
            }
            EventKind::ExternalRaised { name, data } => {
                self.mark(e, "event", format!("event {name} raised: {}", truncate(data, 200)))
            }
            EventKind::OrchestrationChained { name, instance, .. } => {
                self.mark(e, "chained", format!("started {name} ({instance}), detached"))
            }
            EventKind::SystemCall { op, value, .. } => self.mark(e, "system", format!("{op}: {value}")),
            EventKind::CustomStatusSet { status } => {
                self.mark(e, "status", format!("custom status: {}", status.as_deref().unwrap_or("(cleared)")))
            }
        }
    }
}

/// Tick steps that read as round numbers in the unit [`tick_label`] shows them in.
const TICK_STEPS: &[u64] = &[
    1, 2, 5, 10, 20, 50, 100, 200, 500, // ms
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000, // s
    60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, // min
    3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, // h
];
const DAY_MS: u64 = 86_400_000;

/// The smallest round step that cuts `span` into at most 8 parts.
fn tick_step(span: u64) -> u64 {
    if let Some(step) = TICK_STEPS.iter().copied().find(|step| span / step <= 8) {
        return step;
    }
    let mut days = 1u64;
    loop {
        for m in [1, 2, 5] {
            let step = DAY_MS.saturating_mul(days).saturating_mul(m);
            if span / step <= 8 {
                return step;
            }
        }
        days = days.saturating_mul(10);
    }
}

/// A tick's label: the time from the start, in the unit of the step (ms below a second).
fn tick_label(ms: u64, step: u64) -> String {
    match step {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{} s", ms / 1_000),
        60_000..3_600_000 => format!("{} min", ms / 60_000),
        3_600_000..DAY_MS => format!("{} h", ms / 3_600_000),
        _ => format!("{} d", ms / DAY_MS),
    }
}

/// The timeline as an SVG element.
pub(crate) fn render(t: &Timeline) -> String {
    let shown = &t.bars[..t.bars.len().min(MAX_BARS)];
    let height = FIRST_BAR_Y + shown.len() as u64 * ROW_HEIGHT + 8;
    let plot = (WIDTH - LABEL_WIDTH - RIGHT_MARGIN) as f64;
    let span = t.end_ms - t.start_ms;
    let x = |ms: u64| LABEL_WIDTH as f64 + (ms.saturating_sub(t.start_ms)) as f64 / span as f64 * plot;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"timeline\" id=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"History timeline: {} bars, {} events\">",
        shown.len(),
        t.marks.len()
    );
    let step = tick_step(span);
    let mut tick = 0;
    while tick <= span {
        let tx = x(t.start_ms + tick);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{tx:.1}\" y1=\"22\" x2=\"{tx:.1}\" y2=\"{}\"/>\
             <text class=\"tick\" x=\"{tx:.1}\" y=\"16\">{}</text>",
            height - 4,
            tick_label(tick, step)
        );
        tick += step;
    }
    let _ = write!(out, "<text class=\"row-label\" x=\"4\" y=\"{}\">events</text>", MARK_ROW_Y + 4);
    for m in &t.marks {
        let mx = x(m.at_ms);
        let y = MARK_ROW_Y;
        let _ = write!(
            out,
            "<path class=\"mark {}\" data-event-id=\"{}\" d=\"M{mx:.1},{} L{:.1},{y} L{mx:.1},{} L{:.1},{y} Z\">\
             <title>#{} at +{}: {}</title></path>",
            m.class,
            m.event_id,
            y - 6,
            mx + 5.0,
            y + 6,
            mx - 5.0,
            m.event_id,
            duration(m.at_ms.saturating_sub(t.start_ms)),
            esc(&m.label)
        );
    }
    for (row, b) in shown.iter().enumerate() {
        let y = FIRST_BAR_Y + row as u64 * ROW_HEIGHT;
        let (x1, x2) = (x(b.start_ms), x(b.end_ms));
        let _ = write!(
            out,
            "<text class=\"row-label\" x=\"4\" y=\"{}\">{} {}</text>\
             <rect class=\"bar {} {}\" data-event-id=\"{}\" x=\"{x1:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"12\" rx=\"2\">\
             <title>{} {} (#{}): {}, {} from +{}\n{}</title></rect>",
            y + 10,
            b.kind.name(),
            esc(&truncate(&b.label, 28)),
            b.kind.name(),
            b.outcome.name(),
            b.event_id,
            (x2 - x1).max(2.0),
            b.kind.name(),
            esc(&b.label),
            b.event_id,
            b.outcome.name(),
            duration(b.end_ms - b.start_ms),
            duration(b.start_ms - t.start_ms),
            esc(&b.detail)
        );
    }
    out.push_str("</svg>");
    if t.bars.len() > shown.len() {
        let _ = write!(
            out,
            "<p class=\"note\">The first {} of {} activities, timers and sub-orchestrations are drawn.</p>",
            shown.len(),
            t.bars.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
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
}
