//! A rolling upgrade: `ProcessOrder` 1.0.0 is deployed and has running instances; 2.0.0 is
//! deployed next to it. Running instances finish on 1.0.0 (they are pinned), new ones get
//! 2.0.0, and the operator sees when 1.0.0 can be retired.

use duroxide::prelude::*;
use duroxide_examples::orders;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = "sqlite:./versioning.db";
    let pid = std::process::id();
    let (old_order, new_order) = (format!("order-{pid}-a"), format!("order-{pid}-b"));

    println!("== deploy 1: ProcessOrder 1.0.0 only");
    let store = Arc::new(SqliteProvider::new(db, None).await?);
    let rt = Runtime::start_with_store(store.clone(), orders::activities(), orders::v1_registry()).await;
    let client = Client::new(store.clone());
    client.start_orchestration(&old_order, "ProcessOrder", "2 x widget").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let info = client.get_instance_info(&old_order).await?.ok_or("instance vanished")?;
    println!("{old_order} runs version {:?}, waiting for payment", info.version);
    rt.shutdown(None).await;

    println!("== deploy 2: ProcessOrder 1.0.0 and 2.0.0, policy Latest");
    let rt = Runtime::start_with_store(store.clone(), orders::activities(), orders::v1_v2_registry()).await;
    client.start_orchestration(&new_order, "ProcessOrder", "1 x gadget").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in [&old_order, &new_order] {
        let info = client.get_instance_info(id).await?.ok_or("instance vanished")?;
        println!("{id}: version {:?}", info.version);
    }
    println!("running per version: {:?}", client.list_running_versions().await?);

    for id in [&old_order, &new_order] {
        client.raise_event(id, "PaymentConfirmed", "paid").await?;
        println!("{id}: {:?}", client.wait_for_orchestration(id, Duration::from_secs(10)).await?);
    }
    let still_on_v1 = client
        .list_running_versions()
        .await?
        .into_iter()
        .filter(|r| r.name == "ProcessOrder" && r.version.as_deref() == Some("1.0.0"))
        .map(|r| r.instances)
        .sum::<u64>();
    println!("instances still running 1.0.0: {still_on_v1} -> 1.0.0 can be retired: {}", still_on_v1 == 0);
    rt.shutdown(None).await;
    Ok(())
}
