//! Sub-orchestrations: a parent runs one child per region, handles a child's failure, and
//! cancelling the parent cancels the children still running.

use duroxide::prelude::*;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let activities = ActivityRegistry::builder()
        .register("Deploy", |_ctx: ActivityContext, region: String| async move {
            if region == "mars" {
                return Err(ActivityError::non_retryable("no data centre on mars"));
            }
            Ok(format!("deployed to {region}"))
        })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("DeployRegion", |ctx: OrchestrationContext, region: String| async move {
            if region == "slow" {
                // Waits for an approval that never comes; cancelled with its parent.
                return Ok(ctx.schedule_wait("Approval").await);
            }
            Ok(ctx.schedule_activity("Deploy", region).await?)
        })
        .register("DeployAll", |ctx: OrchestrationContext, regions: String| async move {
            let children: Vec<_> =
                regions.split(',').map(|r| ctx.schedule_sub_orchestration("DeployRegion", r)).collect();
            let mut report = Vec::new();
            for result in ctx.join(children).await {
                report.push(match result {
                    Ok(done) => done,
                    Err(e) => format!("failed: {}", e.message),
                });
            }
            Ok(report.join("; "))
        })
        .build();

    let store = Arc::new(SqliteProvider::new("sqlite:./sub_orchestrations.db", None).await?);
    let rt = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store);
    let pid = std::process::id();

    let ok = format!("deploy-{pid}");
    client.start_orchestration(&ok, "DeployAll", "eu,us,mars").await?;
    println!("{ok}: {:?}", client.wait_for_orchestration(&ok, Duration::from_secs(10)).await?);

    let stuck = format!("deploy-stuck-{pid}");
    client.start_orchestration(&stuck, "DeployAll", "eu,slow").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.cancel_instance(&stuck, "release cancelled").await?;
    println!("{stuck}: {:?}", client.wait_for_orchestration(&stuck, Duration::from_secs(10)).await?);
    let child = format!("{stuck}::sub::1.3");
    println!("{child}: {:?}", client.wait_for_orchestration(&child, Duration::from_secs(10)).await?);
    rt.shutdown(None).await;
    Ok(())
}
