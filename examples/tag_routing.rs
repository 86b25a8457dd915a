//! Activity routing by tag: one process runs a general pool (untagged work, and all the
//! orchestrations) and a GPU pool that only takes activities tagged `gpu`. Each activity
//! reports the node that ran it, so the output shows where the work went.

use duroxide::prelude::*;
use duroxide::provider::TagFilter;
use std::sync::Arc;
use std::time::Duration;

/// Runs on the GPU pool: `#[activity(tag = ..)]` routes every typed call of it there.
#[activity(name = "Upscale", tag = "gpu")]
async fn upscale(ctx: ActivityContext, frame: u32) -> Result<String, ActivityError> {
    Ok(format!("frame {frame} upscaled on {} (tag {:?})", ctx.worker_id(), ctx.tag()))
}

/// Untagged: runs on the general pool.
#[activity(name = "Publish")]
async fn publish(ctx: ActivityContext, frames: Vec<String>) -> Result<String, ActivityError> {
    Ok(format!(
        "{} frames published by {} for {} {}",
        frames.len(),
        ctx.worker_id(),
        ctx.orchestration_name(),
        ctx.orchestration_version()
    ))
}

#[orchestration(name = "RenderClip")]
async fn render_clip(ctx: OrchestrationContext, frames: u32) -> Result<String, OrchestrationError> {
    let mut upscaled = Vec::new();
    for frame in 0..frames {
        upscaled.push(ctx.call(upscale, frame).await?);
    }
    for line in &upscaled {
        ctx.trace_info(line.clone());
    }
    Ok(ctx.call(publish, upscaled).await?)
}

fn registries() -> (ActivityRegistry, OrchestrationRegistry) {
    let activities = ActivityRegistry::builder().register_typed(upscale).register_typed(publish).build();
    let orchestrations = OrchestrationRegistry::builder().register_typed(render_clip).build();
    (activities, orchestrations)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store: Arc<dyn duroxide::Provider> = Arc::new(SqliteProvider::in_memory().await?);

    // The general pool: untagged activities (the default filter) and the orchestrations.
    let (activities, orchestrations) = registries();
    let general = RuntimeOptions { worker_node_id: Some("general-1".into()), ..Default::default() };
    let general = Runtime::start_with_options(store.clone(), activities, orchestrations, general).await;

    // The GPU pool: only `gpu` work. (It also runs turns; `orchestration_concurrency` and
    // the registries decide that, independently of tags.)
    let (activities, orchestrations) = registries();
    let gpu = RuntimeOptions {
        worker_node_id: Some("gpu-1".into()),
        activity_tags: TagFilter::tags(["gpu"]),
        worker_concurrency: 2,
        ..Default::default()
    };
    let gpu = Runtime::start_with_options(store.clone(), activities, orchestrations, gpu).await;

    let client = Client::new(store.clone());
    client.start_typed(render_clip, "clip-1", &3).await?;
    let done = client.wait_for_typed(render_clip, "clip-1", Duration::from_secs(30)).await?;
    println!("{done}");
    for event in client.read_execution_history("clip-1", None).await? {
        if let duroxide::history::EventKind::ActivityScheduled { name, tag, .. } = event.kind {
            println!("  scheduled {name:<8} tag {}", tag.as_deref().unwrap_or("-"));
        }
    }
    general.shutdown(None).await;
    gpu.shutdown(None).await;
    Ok(())
}
