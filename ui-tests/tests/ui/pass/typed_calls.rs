// Typed calls: activities and sub-orchestrations from an orchestration, the client's typed
// start and wait, and typed futures inside the deterministic select/join.
use std::time::Duration;

use duroxide::TypedClientError;
use duroxide::prelude::*;

#[derive(Serialize, Deserialize)]
pub struct Order {
    pub sku: String,
}

#[derive(Serialize, Deserialize)]
pub struct Receipt {
    pub reservation: u64,
    pub shipped: bool,
}

#[activity]
async fn reserve(_ctx: ActivityContext, order: Order) -> Result<u64, ActivityError> {
    Ok(order.sku.len() as u64)
}

#[orchestration(name = "Ship")]
async fn ship(_ctx: OrchestrationContext, reservation: u64) -> Result<bool, OrchestrationError> {
    Ok(reservation > 0)
}

#[orchestration(name = "ProcessOrder", version = "2.0.0")]
async fn process_order(ctx: OrchestrationContext, order: Order) -> Result<Receipt, OrchestrationError> {
    let reservation: u64 = ctx.call(reserve, order).await?;
    let shipped = ctx.call_sub_orchestration(ship, reservation).await?;
    let _again = ctx
        .call_sub_orchestration_with_id(ship, "ship-1", reservation)
        .await?;
    let first = ctx.call(reserve, Order { sku: "a".into() });
    let second = ctx.call(reserve, Order { sku: "bb".into() });
    let _either = ctx.select2(first, second).await;
    let all = ctx.join(vec![
        ctx.call(reserve, Order { sku: "c".into() }),
        ctx.call(reserve, Order { sku: "d".into() }),
    ]);
    let _all: Vec<Result<u64, ErrorDetails>> = all.await;
    let _now = ctx.utc_now().await;
    ctx.schedule_timer(Duration::from_millis(1)).await;
    Ok(Receipt { reservation, shipped })
}

async fn client_side(client: Client) -> Result<Receipt, TypedClientError> {
    client
        .start_typed(process_order, "order-42", &Order { sku: "a".into() })
        .await?;
    client
        .wait_for_typed(process_order, "order-42", Duration::from_secs(5))
        .await
}

fn main() {
    let _ = client_side;
    let _activities = ActivityRegistry::builder().register_typed(reserve).build();
    let _orchestrations = OrchestrationRegistry::builder()
        .register_typed(process_order)
        .register_typed(ship)
        .build();
}
