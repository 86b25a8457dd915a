//! Spans, read by a capturing `tracing_subscriber` layer: their names, their fields and who
//! is whose parent, after a real orchestration (turns, activities handed over by the turns
//! that scheduled them, store calls, client calls, `ctx.trace_*` events).
//!
//! The scenario runs on a current-thread tokio runtime with the capturing subscriber as the
//! thread's default, so it sees this test's spans only.

mod common;

use duroxide::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One span as captured: its name, its fields as text, its parent and the messages of the
/// events inside it.
#[derive(Debug, Clone)]
struct SpanRecord {
    serial: u64,
    name: &'static str,
    fields: HashMap<String, String>,
    parent: Option<u64>,
    events: Vec<String>,
}

impl SpanRecord {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// A span's number in the capture (the subscriber reuses span ids once spans close).
struct Serial(u64);

#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<SpanRecord>>>,
    next: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let serial = self.next.fetch_add(1, Ordering::SeqCst);
        let parent = span.parent().and_then(|p| p.extensions().get::<Serial>().map(|s| s.0));
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        span.extensions_mut().insert(Serial(serial));
        let record = SpanRecord { serial, name: attrs.metadata().name(), fields, parent, events: Vec::new() };
        self.spans.lock().unwrap().push(record);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(serial) = ctx.span(id).and_then(|s| s.extensions().get::<Serial>().map(|s| s.0)) else {
            return;
        };
        let mut spans = self.spans.lock().unwrap();
        values.record(&mut Fields(&mut spans[serial as usize].fields));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(serial) = ctx.event_span(event).and_then(|s| s.extensions().get::<Serial>().map(|s| s.0))
        else {
            return;
        };
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        self.spans.lock().unwrap()[serial as usize].events.push(message);
    }
}

/// Runs the scenario with the capturing layer as this thread's subscriber.
fn captured(scenario: impl std::future::Future<Output = ()>) -> Vec<SpanRecord> {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    tracing::subscriber::with_default(subscriber, || rt.block_on(scenario));
    drop(rt);
    capture.spans.lock().unwrap().clone()
}

fn registries() -> (ActivityRegistry, OrchestrationRegistry) {
    let activities = ActivityRegistry::builder()
        .register("Greet", |ctx: ActivityContext, input: String| async move {
            ctx.trace_info(format!("greeting {input}"));
            Ok(format!("hi {input}"))
        })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("Hello", |ctx: OrchestrationContext, input: String| async move {
            ctx.trace_info("starting");
            let a = ctx.schedule_activity("Greet", input).await?;
            // The workers are idle when the timer fires: the next turn hands its activity
            // over to one of them.
            ctx.schedule_timer(Duration::from_millis(30)).await;
            let b = ctx.schedule_activity("Greet", a).await?;
            ctx.trace_info("done");
            Ok(b)
        })
        .build();
    (activities, orchestrations)
}

fn hello_spans(cached: bool) -> Vec<SpanRecord> {
    captured(async move {
        let ts = common::memory_store().await;
        let (activities, orchestrations) = registries();
        let options = RuntimeOptions {
            instance_cache_size: if cached { 64 } else { 0 },
            queue_metrics_interval: None,
            ..common::fast_options()
        };
        let rt = Runtime::start_with_options(ts.store.clone(), activities, orchestrations, options).await;
        let client = Client::new(ts.store.clone());
        client.start_orchestration("h", "Hello", "you").await.unwrap();
        assert_eq!(common::completed(&client, "h").await, "hi hi you");
        rt.shutdown(None).await;
    })
}

fn check_spans(cached: bool) {
    let spans = hello_spans(cached);
    let named = |name: &str| spans.iter().filter(move |s| s.name == name).collect::<Vec<_>>();
    let by_serial = |serial: u64| &spans[serial as usize];

    // Turns: identity fields, how the engine was obtained, and what each turn did.
    let turns = named("duroxide.turn");
    assert!(turns.len() >= 4, "{turns:#?}");
    for t in &turns {
        assert_eq!(t.field("instance"), Some("h"), "{t:?}");
        assert_eq!(t.field("execution"), Some("1"), "{t:?}");
        assert_eq!(t.field("orchestration"), Some("Hello"), "{t:?}");
        assert_eq!(t.field("version"), Some("1.0.0"), "{t:?}");
        assert!(t.field("messages").is_some_and(|m| m != "0"), "{t:?}");
        assert!(t.field("new_events").is_some(), "{t:?}");
        assert_eq!(t.parent, None, "a turn is a root span");
    }
    let sources: Vec<_> = turns.iter().map(|t| t.field("source").unwrap_or("?")).collect();
    assert_eq!(sources[0], "new", "{sources:?}");
    let later = if cached { ["cached", "replayed"].as_slice() } else { ["replayed"].as_slice() };
    assert!(sources[1..].iter().all(|s| later.contains(s)), "{sources:?}");
    if !cached {
        assert!(sources[1..].iter().all(|s| *s == "replayed"), "{sources:?}");
    }
    let outcomes: Vec<_> = turns.iter().map(|t| t.field("outcome").unwrap_or("?")).collect();
    assert_eq!(outcomes.last(), Some(&"completed"), "{outcomes:?}");
    assert!(outcomes[..outcomes.len() - 1].iter().all(|o| *o == "pending"), "{outcomes:?}");
    // ctx.trace_* records into the turn that runs the code, once (not again on replay).
    let traced: Vec<&String> =
        turns.iter().flat_map(|t| &t.events).filter(|e| *e == "starting" || *e == "done").collect();
    assert_eq!(traced, ["starting", "done"], "{turns:#?}");
    assert!(turns[0].events.contains(&"starting".to_string()));

    // Activities: one span per attempt; one handed over by a turn is that turn's child.
    let activities = named("duroxide.activity");
    assert_eq!(activities.len(), 2, "{activities:#?}");
    for a in &activities {
        assert_eq!(a.field("activity"), Some("Greet"), "{a:?}");
        assert_eq!(a.field("attempt"), Some("1"), "{a:?}");
        assert_eq!(a.field("instance"), Some("h"), "{a:?}");
        assert_eq!(a.field("execution"), Some("1"), "{a:?}");
        assert_eq!(a.field("outcome"), Some("completed"), "{a:?}");
        assert!(
            a.events.iter().any(|e| e.starts_with("greeting")),
            "the activity's trace is in its span: {a:?}"
        );
        if let Some(parent) = a.parent {
            assert_eq!(by_serial(parent).name, "duroxide.turn", "{a:?}");
        }
    }
    let second = activities[1];
    let parent = by_serial(second.parent.expect("the activity after the timer was handed over"));
    assert_eq!(parent.field("instance"), Some("h"));
    assert!(parent.serial == turns[2].serial, "scheduled by the turn after the timer: {parent:?}");

    // Store calls: one span per call, labelled, inside the turn or client call that made it.
    let store = named("duroxide.store");
    assert!(store.iter().all(|s| s.field("store") == Some("sqlite")), "{store:#?}");
    let commits: Vec<_> = store.iter().filter(|s| s.field("operation") == Some("commit_turn")).collect();
    assert_eq!(commits.len(), turns.len(), "one commit per turn");
    for c in &commits {
        assert_eq!(c.parent.map(|p| by_serial(p).name), Some("duroxide.turn"), "{c:?}");
    }
    // Client calls: a span per call, and the store call it made inside it.
    let starts: Vec<_> = named("duroxide.client")
        .into_iter()
        .filter(|c| c.field("operation") == Some("start_orchestration"))
        .collect();
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].field("instance"), Some("h"));
    let create =
        store.iter().find(|s| s.field("operation") == Some("create_instance")).expect("create_instance");
    assert_eq!(create.parent, Some(starts[0].serial));
}

#[test]
fn turns_activities_store_and_client_calls_have_spans() {
    check_spans(true);
}

#[test]
fn spans_are_the_same_when_every_turn_replays() {
    check_spans(false);
}
