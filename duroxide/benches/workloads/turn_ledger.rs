//! The turn ledger of a worker node: a `tracing` layer that watches the runtime's
//! `duroxide.turn` spans and counts, per instance, the turns this process committed and
//! the events they appended. A turn whose span saw a warning or an error (a commit that
//! lost its lock or failed) counts as discarded instead; a turn that ended another way
//! (late messages, an unreadable history) as other. Only turn spans and warnings are
//! enabled, so the runtime creates no other spans in the node.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

const TURN_SPAN: &str = "duroxide.turn";

/// What one node did to one instance.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceTurns {
    pub committed: u64,
    /// Events appended by the committed turns.
    pub events: u64,
    pub discarded: u64,
    pub other: u64,
}

/// Per-instance counts, shared by the layer and the node that writes them out.
#[derive(Clone, Default)]
pub struct TurnLedger {
    turns: Arc<Mutex<HashMap<String, InstanceTurns>>>,
    /// Warnings and errors outside any turn.
    warnings: Arc<Mutex<u64>>,
}

/// The fields of a turn span, kept in the span's extensions until it closes.
#[derive(Default)]
struct TurnFields {
    instance: String,
    new_events: Option<u64>,
    outcome: Option<String>,
    warned: bool,
}

impl Visit for TurnFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            // Recorded with `%`: the Debug of a display value is its Display.
            "instance" => {
                self.instance.clear();
                let _ = write!(self.instance, "{value:?}");
            }
            "outcome" => self.outcome = Some(format!("{value:?}")),
            _ => {}
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "instance" => self.instance = value.to_string(),
            "outcome" => self.outcome = Some(value.to_string()),
            _ => {}
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "new_events" {
            self.new_events = Some(value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "new_events" {
            self.new_events = u64::try_from(value).ok();
        }
    }
}

impl TurnLedger {
    /// The counts so far, one line per instance: `instance committed events discarded other`.
    pub fn to_text(&self) -> String {
        let turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (instance, t) in turns.iter() {
            let _ = writeln!(out, "{instance}\t{}\t{}\t{}\t{}", t.committed, t.events, t.discarded, t.other);
        }
        out
    }

    /// Warnings and errors logged outside any turn.
    pub fn warnings(&self) -> u64 {
        *self.warnings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads what [`to_text`](Self::to_text) wrote (lines starting with `#` are notes),
    /// adding to `into`.
    pub fn add_text(text: &str, into: &mut HashMap<String, InstanceTurns>) {
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.split('\t');
            let instance = parts.next().expect("a ledger line starts with the instance").to_string();
            let n: Vec<u64> = parts.map(|p| p.parse().expect("ledger counts are numbers")).collect();
            let [committed, events, discarded, other] = n[..] else {
                panic!("a ledger line has four counts: {line}")
            };
            let t = into.entry(instance).or_default();
            t.committed += committed;
            t.events += events;
            t.discarded += discarded;
            t.other += other;
        }
    }
}

fn is_turn(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.name() == TURN_SPAN
}

fn is_warning(meta: &Metadata<'_>) -> bool {
    meta.is_event() && *meta.level() <= Level::WARN
}

impl<S> Layer<S> for TurnLedger
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_turn(meta) || is_warning(meta) { Interest::always() } else { Interest::never() }
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        is_turn(meta) || is_warning(meta)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !is_turn(attrs.metadata()) {
            return;
        }
        let mut fields = TurnFields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<TurnFields>()
        {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if !is_warning(event.metadata()) {
            return;
        }
        let in_turn = ctx.event_scope(event).into_iter().flatten().find_map(|span| {
            let mut ext = span.extensions_mut();
            ext.get_mut::<TurnFields>().map(|f| f.warned = true)
        });
        if in_turn.is_none() {
            *self.warnings.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(fields) = span.extensions_mut().remove::<TurnFields>() else { return };
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        let t = turns.entry(fields.instance).or_default();
        match (fields.warned, fields.new_events, fields.outcome.as_deref()) {
            (true, _, _) => t.discarded += 1,
            (false, Some(events), Some(_)) => {
                t.committed += 1;
                t.events += events;
            }
            _ => t.other += 1,
        }
    }
}
