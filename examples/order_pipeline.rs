//! An order pipeline on the typed macro DSL: typed activities, a typed sub-orchestration,
//! an error path with compensation, and the deterministic replacements the compiler asks
//! for inside orchestrations (`ctx.utc_now()` for the clock, `ctx.system_new_guid()` for
//! ids, `ctx.schedule_timer()` for sleeps, `ctx.select2()` instead of `tokio::select!`,
//! `ctx.join()` instead of spawning).

use duroxide::prelude::*;
use duroxide::{Either2, TypedClientError};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    id: String,
    items: Vec<(String, u32)>,
    card: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Receipt {
    order: String,
    payment_id: String,
    shipment: String,
    placed_at_ms: u64,
}

#[activity]
async fn reserve_item(_ctx: ActivityContext, item: (String, u32)) -> Result<String, ActivityError> {
    if item.1 > 100 {
        return Err(ActivityError::non_retryable(format!("only 100 of {} in stock", item.0)));
    }
    Ok(format!("{}x{}", item.1, item.0))
}

#[activity]
async fn release_item(_ctx: ActivityContext, reservation: String) -> Result<(), ActivityError> {
    println!("  [compensation] released {reservation}");
    Ok(())
}

#[activity]
async fn charge_card(
    _ctx: ActivityContext,
    card_and_payment: (String, String),
) -> Result<String, ActivityError> {
    let (card, payment_id) = card_and_payment;
    if card.starts_with("0000") {
        return Err(ActivityError::non_retryable("card declined"));
    }
    Ok(payment_id)
}

#[activity]
async fn book_courier(_ctx: ActivityContext, order_id: String) -> Result<String, ActivityError> {
    Ok(format!("parcel-for-{order_id}"))
}

/// A child orchestration: waits up to a deadline for the warehouse's "Packed" event, then
/// books a courier.
#[orchestration(name = "Ship", version = "1.0.0")]
async fn ship(ctx: OrchestrationContext, order_id: String) -> Result<String, OrchestrationError> {
    let packed = ctx.schedule_wait("Packed");
    let deadline = ctx.schedule_timer(Duration::from_secs(1));
    match ctx.select2(packed, deadline).await {
        Either2::First(_) => {}
        // Not packed in time: ship anyway after a short durable pause.
        Either2::Second(()) => ctx.schedule_timer(Duration::from_millis(100)).await,
    }
    Ok(ctx.call(book_courier, order_id).await?)
}

#[orchestration(name = "ProcessOrder", version = "1.0.0")]
async fn process_order(ctx: OrchestrationContext, order: Order) -> Result<Receipt, OrchestrationError> {
    let placed_at = ctx.utc_now().await; // not SystemTime::now()
    let placed_at_ms =
        placed_at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);

    // Reserve all items in parallel; join returns results in order.
    let reservations =
        ctx.join(order.items.iter().cloned().map(|item| ctx.call(reserve_item, item)).collect()).await;
    let (ok, failed): (Vec<_>, Vec<_>) = reservations.into_iter().partition(Result::is_ok);
    let reserved: Vec<String> = ok.into_iter().filter_map(Result::ok).collect();
    if let Some(Err(e)) = failed.into_iter().next() {
        for r in reserved {
            ctx.call(release_item, r).await?;
        }
        return Err(OrchestrationError::application(format!("order {} rejected: {}", order.id, e.message)));
    }

    let payment_id = ctx.system_new_guid().await; // not Uuid::new_v4()
    if let Err(e) = ctx.call(charge_card, (order.card.clone(), payment_id.clone())).await {
        for r in reserved {
            ctx.call(release_item, r).await?;
        }
        return Err(OrchestrationError::application(format!(
            "payment for {} failed: {}",
            order.id, e.message
        )));
    }
    ctx.set_custom_status("paid; shipping");
    let shipment = ctx.call_sub_orchestration(ship, order.id.clone()).await?;
    Ok(Receipt { order: order.id, payment_id, shipment, placed_at_ms })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let activities = ActivityRegistry::builder()
        .register_typed(reserve_item)
        .register_typed(release_item)
        .register_typed(charge_card)
        .register_typed(book_courier)
        .build();
    let orchestrations =
        OrchestrationRegistry::builder().register_typed(process_order).register_typed(ship).build();
    let store = Arc::new(SqliteProvider::new("sqlite:./order_pipeline.db", None).await?);
    let rt = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store);
    let pid = std::process::id();

    let cases = [
        ("good", vec![("apple".to_string(), 3), ("pear".to_string(), 2)], "4242-4242"),
        ("too-many", vec![("apple".to_string(), 3), ("plum".to_string(), 500)], "4242-4242"),
        ("declined", vec![("apple".to_string(), 1)], "0000-1111"),
    ];
    for (name, items, card) in cases {
        let instance = format!("order-{name}-{pid}");
        let order = Order { id: instance.clone(), items, card: card.into() };
        client.start_typed(process_order, &instance, &order).await?;
        match client.wait_for_typed(process_order, &instance, Duration::from_secs(20)).await {
            Ok(receipt) => println!("{instance}: {receipt:?}"),
            Err(TypedClientError::Failed { details, .. }) => println!("{instance}: failed: {details}"),
            Err(other) => return Err(other.into()),
        }
    }
    rt.shutdown(None).await;
    Ok(())
}
