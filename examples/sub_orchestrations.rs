//! Sub-orchestrations: a parent runs one child per region, handles a child's failure, and
//! cancelling the parent cancels the children still running.

use duroxide::prelude::*;
use std::sync::Arc;
use std::time::Duration;

#[activity]
async fn deploy(_ctx: ActivityContext, region: String) -> Result<String, ActivityError> {
    if region == "mars" {
        return Err(ActivityError::non_retryable("no data centre on mars"));
    }
    Ok(format!("deployed to {region}"))
}

#[orchestration(name = "DeployRegion")]
async fn deploy_region(ctx: OrchestrationContext, region: String) -> Result<String, OrchestrationError> {
    if region == "slow" {
        // Waits for an approval that never comes; cancelled with its parent.
        return Ok(ctx.schedule_wait("Approval").await);
    }
    Ok(ctx.call(deploy, region).await?)
}

#[orchestration(name = "DeployAll")]
async fn deploy_all(ctx: OrchestrationContext, regions: Vec<String>) -> Result<String, OrchestrationError> {
    let children = regions.into_iter().map(|r| ctx.call_sub_orchestration(deploy_region, r)).collect();
    let mut report = Vec::new();
    for result in ctx.join(children).await {
        report.push(match result {
            Ok(done) => done,
            Err(e) => format!("failed: {}", e.message),
        });
    }
    Ok(report.join("; "))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let activities = ActivityRegistry::builder().register_typed(deploy).build();
    let orchestrations =
        OrchestrationRegistry::builder().register_typed(deploy_region).register_typed(deploy_all).build();
    let store = Arc::new(SqliteProvider::new("sqlite:./sub_orchestrations.db", None).await?);
    let rt = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store);
    let pid = std::process::id();
    let regions = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let ok = format!("deploy-{pid}");
    client.start_typed(deploy_all, &ok, &regions(&["eu", "us", "mars"])).await?;
    println!("{ok}: {}", client.wait_for_typed(deploy_all, &ok, Duration::from_secs(10)).await?);

    let stuck = format!("deploy-stuck-{pid}");
    client.start_typed(deploy_all, &stuck, &regions(&["eu", "slow"])).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.cancel_instance(&stuck, "release cancelled").await?;
    println!("{stuck}: {:?}", client.wait_for_orchestration(&stuck, Duration::from_secs(10)).await?);
    for child in
        client.list_instances().await?.into_iter().filter(|i| i.starts_with(&format!("{stuck}::sub::")))
    {
        println!(
            "  child {child}: {:?}",
            client.wait_for_orchestration(&child, Duration::from_secs(10)).await?
        );
    }
    rt.shutdown(None).await;
    Ok(())
}
