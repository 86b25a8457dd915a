//! Metrics in Prometheus text on `http://127.0.0.1:9000/metrics`: install the Prometheus
//! exporter as the `metrics` recorder, start a runtime, and every `duroxide_*` metric is
//! there (the table of `docs/observability.md` lists them).
//!
//! ```sh
//! cargo run -p duroxide-examples --example metrics_prometheus            # serves until Ctrl-C
//! cargo run -p duroxide-examples --example metrics_prometheus -- --once  # one round, print, exit
//! DUROXIDE_METRICS_ADDR=127.0.0.1:9100 cargo run -p duroxide-examples --example metrics_prometheus
//! ```
//!
//! It runs a small orchestration every second and, after the first one, reads its own
//! `/metrics` page and prints the orchestration counters from it.

use duroxide::prelude::*;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn registries() -> (ActivityRegistry, OrchestrationRegistry) {
    let activities = ActivityRegistry::builder()
        .register("Weigh", |_ctx: ActivityContext, parcel: String| async move { Ok(format!("{parcel}:2kg")) })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("ShipParcel", |ctx: OrchestrationContext, parcel: String| async move {
            let weighed = ctx.schedule_activity("Weigh", parcel).await?;
            ctx.schedule_timer(Duration::from_millis(20)).await;
            Ok(format!("shipped {weighed}"))
        })
        .build();
    (activities, orchestrations)
}

/// Reads `http://{addr}/metrics` with a bare HTTP/1.0 request (no client library needed).
async fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").await?;
    let mut page = String::new();
    stream.read_to_string(&mut page).await?;
    Ok(page)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let once = std::env::args().any(|a| a == "--once");
    let addr: SocketAddr = std::env::var("DUROXIDE_METRICS_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:9000".into())
        .parse()
        .map_err(|e| format!("DUROXIDE_METRICS_ADDR must be an address such as 127.0.0.1:9000: {e}"))?;
    // The exporter is the recorder of the `metrics` facade, serving its own /metrics page.
    // Durations as Prometheus histograms (buckets from 0.5 ms to 10 s) rather than summaries,
    // so they can be aggregated across nodes.
    let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
    let builder = PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)?;
    if let Err(e) = builder.install() {
        eprintln!("could not serve metrics on {addr}: {e}");
        eprintln!("is the port taken? choose another with DUROXIDE_METRICS_ADDR=127.0.0.1:PORT");
        std::process::exit(1);
    }
    println!("serving Prometheus metrics on http://{addr}/metrics");

    let store = Arc::new(SqliteProvider::new("sqlite::memory:", None).await?);
    let (activities, orchestrations) = registries();
    let options =
        RuntimeOptions { queue_metrics_interval: Some(Duration::from_secs(1)), ..Default::default() };
    let rt = Runtime::start_with_options(store.clone(), activities, orchestrations, options).await;
    let client = Client::new(store);

    let mut round = 0u64;
    loop {
        round += 1;
        let instance = format!("parcel-{round}");
        client.start_orchestration(&instance, "ShipParcel", format!("box-{round}")).await?;
        client.wait_for_orchestration(&instance, Duration::from_secs(10)).await?;
        if round == 1 {
            // The listener starts in the background; the first scrape may have to wait for it.
            let mut page = scrape(addr).await;
            for _ in 0..50 {
                if page.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                page = scrape(addr).await;
            }
            let page = page.map_err(|e| format!("could not read http://{addr}/metrics: {e}"))?;
            println!("from http://{addr}/metrics:");
            let counters = |l: &&str| l.starts_with("duroxide_orchestration_") && l.contains("_total");
            for line in page.lines().filter(counters) {
                println!("  {line}");
            }
        }
        if once {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    rt.shutdown(None).await;
    Ok(())
}
