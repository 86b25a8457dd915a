//! Drawing a [`Timeline`] as inline SVG: a time axis with round ticks, a row of marks, one
//! row per bar, and a `<title>` on each shape for its details.

use super::Timeline;
use crate::console::html::{duration, esc, truncate};
use std::fmt::Write as _;

/// The most bars drawn; the rest are counted below the chart.
pub(super) const MAX_BARS: usize = 200;

const WIDTH: u64 = 960;
const LABEL_WIDTH: u64 = 230;
/// Room for the last tick's label.
const RIGHT_MARGIN: u64 = 40;
const MARK_ROW_Y: u64 = 46;
const FIRST_BAR_Y: u64 = 66;
const ROW_HEIGHT: u64 = 20;

/// Tick steps that read as round numbers in the unit [`tick_label`] shows them in.
const TICK_STEPS: &[u64] = &[
    1, 2, 5, 10, 20, 50, 100, 200, 500, // ms
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000, // s
    60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, // min
    3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, // h
];
const DAY_MS: u64 = 86_400_000;

/// The smallest round step that cuts `span` into at most 8 parts.
pub(super) fn tick_step(span: u64) -> u64 {
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
pub(super) fn tick_label(ms: u64, step: u64) -> String {
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
