//! Traces to an OpenTelemetry collector (Jaeger, Tempo, an OpenTelemetry Collector) over
//! OTLP/gRPC: `tracing-opentelemetry` turns duroxide's spans (`duroxide.turn`,
//! `duroxide.activity`, `duroxide.store`, `duroxide.client`) into OpenTelemetry spans.
//!
//! ```sh
//! # a collector on loopback, e.g. Jaeger's all-in-one image (UI on http://127.0.0.1:16686):
//! #   docker run --rm -p 127.0.0.1:4317:4317 -p 127.0.0.1:16686:16686 jaegertracing/all-in-one
//! cargo run -p duroxide-examples --example tracing_otlp
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 cargo run -p duroxide-examples --example tracing_otlp
//! ```
//!
//! The endpoint defaults to `http://127.0.0.1:4317`. Without a collector there the example
//! says so and exits with status 1, before running anything.

use duroxide::prelude::*;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4317";

fn registries() -> (ActivityRegistry, OrchestrationRegistry) {
    let activities = ActivityRegistry::builder()
        .register("Pack", |ctx: ActivityContext, item: String| async move {
            ctx.trace_info(format!("packing {item}"));
            tokio::time::sleep(Duration::from_millis(15)).await;
            Ok(format!("packed {item}"))
        })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("PackOrder", |ctx: OrchestrationContext, order: String| async move {
            ctx.trace_info(format!("packing order {order}"));
            let a = ctx.schedule_activity("Pack", format!("{order}/1"));
            let b = ctx.schedule_activity("Pack", format!("{order}/2"));
            let packed = ctx.join(vec![a, b]).await;
            ctx.schedule_timer(Duration::from_millis(10)).await;
            Ok(packed.into_iter().collect::<Result<Vec<_>, _>>()?.join(", "))
        })
        .build();
    (activities, orchestrations)
}

/// `host:port` of an `http://host:port[/path]` endpoint.
fn host_and_port(endpoint: &str) -> Option<&str> {
    let rest = endpoint.strip_prefix("http://").or_else(|| endpoint.strip_prefix("https://"))?;
    rest.split('/').next().filter(|hp| hp.contains(':'))
}

/// Fails with a message saying what to do when nothing listens at `endpoint`.
async fn check_collector(endpoint: &str) -> Result<(), String> {
    let Some(addr) = host_and_port(endpoint) else {
        return Err(format!(
            "OTEL_EXPORTER_OTLP_ENDPOINT must look like {DEFAULT_ENDPOINT}, not '{endpoint}'"
        ));
    };
    let connect = tokio::net::TcpStream::connect(addr);
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "no OpenTelemetry collector at {endpoint} ({e}).\n\
             Start one that accepts OTLP/gRPC on that address (for example Jaeger:\n\
             docker run --rm -p 127.0.0.1:4317:4317 -p 127.0.0.1:16686:16686 jaegertracing/all-in-one)\n\
             or point OTEL_EXPORTER_OTLP_ENDPOINT at yours."
        )),
        Err(_) => Err(format!("the collector at {endpoint} did not answer within 2 s")),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_else(|_| DEFAULT_ENDPOINT.into());
    if let Err(why) = check_collector(&endpoint).await {
        eprintln!("{why}");
        std::process::exit(1);
    }

    let exporter =
        opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(&endpoint).build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("duroxide-example").build())
        .build();
    // duroxide's turn, activity and client spans are INFO; store calls are DEBUG.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,duroxide=debug"));
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("duroxide-example")))
        .with(tracing_subscriber::fmt::layer())
        .init();

    let store = Arc::new(SqliteProvider::new("sqlite::memory:", None).await?);
    let (activities, orchestrations) = registries();
    let rt = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store);
    for n in 1..=3 {
        let instance = format!("order-{n}");
        client.start_orchestration(&instance, "PackOrder", format!("#{n}")).await?;
        let status = client.wait_for_orchestration(&instance, Duration::from_secs(10)).await?;
        println!("{instance}: {status:?}");
    }
    rt.shutdown(None).await;

    // Sends the spans still batched; reports a collector that went away meanwhile.
    if let Err(e) = provider.shutdown() {
        eprintln!("sending the last spans to {endpoint} failed: {e}");
        std::process::exit(1);
    }
    println!("traces sent to {endpoint}: look for service 'duroxide-example'");
    Ok(())
}
