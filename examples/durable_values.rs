//! Durable values: a shopping cart that keeps its state as key-value pairs, continues as
//! new after every few commands without losing them, while a client watches the values
//! from outside and a second orchestration reads the cart's total.

use duroxide::prelude::*;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let orchestrations = OrchestrationRegistry::builder()
        // Each execution handles two commands, then continues as new; the values travel.
        .register("Cart", |ctx: OrchestrationContext, _input: String| async move {
            for _ in 0..2 {
                let command = ctx.schedule_wait("command").await;
                let mut total: u32 = ctx.get_typed("total")?.unwrap_or(0);
                match command.split_once(' ') {
                    Some(("add", item)) => {
                        ctx.set_value(format!("item:{item}"), "1")?;
                        total += 10;
                    }
                    Some(("remove", item)) => {
                        ctx.clear_value(format!("item:{item}"))?;
                        total = total.saturating_sub(10);
                    }
                    _ if command == "checkout" => {
                        let items: Vec<String> =
                            ctx.keys().into_iter().filter(|k| k.starts_with("item:")).collect();
                        ctx.set_value("status", "checked out")?;
                        return Ok(format!("{} for {total}", items.join(", ")));
                    }
                    _ => ctx.trace_warn(format!("unknown command {command:?}")),
                }
                ctx.set_typed("total", &total)?;
                let handled: u32 = ctx.get_typed("handled")?.unwrap_or(0);
                ctx.set_typed("handled", &(handled + 1))?;
            }
            ctx.continue_as_new("");
            Ok(String::new())
        })
        // Reads another instance's value; the read is recorded, so a replay sees the same.
        .register("Auditor", |ctx: OrchestrationContext, cart: String| async move {
            let total: Option<u32> = ctx.get_typed_from(&cart, "total").await?;
            Ok(format!("{cart} total seen by the auditor: {total:?}"))
        })
        .build();
    let store = std::sync::Arc::new(SqliteProvider::in_memory().await?);
    let rt =
        Runtime::start_with_store(store.clone(), ActivityRegistry::builder().build(), orchestrations).await;
    let client = Client::new(store);

    client.start_orchestration("cart-1", "Cart", "").await?;
    for command in ["add apples", "add pears", "add plums", "remove pears"] {
        client.raise_event("cart-1", "command", command).await?;
    }
    // Reads the values without loading the history: they live in their own table.
    client.wait_for_value("cart-1", "handled", Duration::from_secs(5)).await?;
    while client.get_typed_value::<u32>("cart-1", "handled").await? != Some(4) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = client.get_value("cart-1", "total").await?.unwrap_or_default();
    println!("cart-1 values: {:?}", client.values("cart-1").await?);
    client.start_orchestration("audit-1", "Auditor", "cart-1").await?;
    if let OrchestrationStatus::Completed { output } =
        client.wait_for_orchestration("audit-1", Duration::from_secs(10)).await?
    {
        println!("{output}");
    }
    client.raise_event("cart-1", "command", "checkout").await?;
    if let OrchestrationStatus::Completed { output } =
        client.wait_for_orchestration("cart-1", Duration::from_secs(10)).await?
    {
        println!("cart-1 checked out: {output} (total {total})");
    }
    println!("status: {:?}", client.get_value("cart-1", "status").await?);
    rt.shutdown(None).await;
    Ok(())
}
