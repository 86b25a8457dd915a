//! Typed calls end to end on the SQLite provider: `ctx.call` to activities,
//! `ctx.call_sub_orchestration` pinned to the child's version, typed futures inside
//! `ctx.join`, typed client start/wait, and the errors when a result does not decode.

use std::sync::Arc;
use std::time::Duration;

use duroxide::TypedClientError;
use duroxide::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub sku: String,
    pub qty: u32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub reserved: Vec<u32>,
    pub shipment: String,
}

#[activity(name = "Reserve")]
async fn reserve(_ctx: ActivityContext, order: Order) -> Result<u32, ActivityError> {
    if order.qty == 0 {
        return Err(ActivityError::non_retryable(format!("nothing to reserve for {}", order.sku)));
    }
    Ok(order.qty * 10)
}

#[orchestration(name = "Ship", version = "2.0.0")]
async fn ship(ctx: OrchestrationContext, order: Order) -> Result<String, OrchestrationError> {
    Ok(format!("{}@{}", order.sku, ctx.orchestration_version()))
}

#[orchestration(name = "ProcessOrder")]
async fn process_order(ctx: OrchestrationContext, orders: Vec<Order>) -> Result<Receipt, OrchestrationError> {
    let calls = orders.iter().cloned().map(|order| ctx.call(reserve, order)).collect();
    let mut reserved = Vec::new();
    for result in ctx.join(calls).await {
        reserved.push(result?);
    }
    let shipment = ctx.call_sub_orchestration(ship, orders[0].clone()).await?;
    Ok(Receipt { reserved, shipment })
}

/// Calls "Reserve" through a handle whose output type does not match what the registered
/// (string-typed) activity returns.
#[derive(Clone, Copy)]
struct MisdeclaredReserve;

impl duroxide::ActivityDefinition for MisdeclaredReserve {
    const NAME: &'static str = "Reserve";
    type Input = Order;
    type Output = Vec<String>;

    fn invoke(
        self,
        _ctx: ActivityContext,
        _input: Order,
    ) -> futures::future::BoxFuture<'static, Result<Vec<String>, ActivityError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

#[orchestration(name = "Misdeclared")]
async fn misdeclared(ctx: OrchestrationContext, order: Order) -> Result<Vec<String>, OrchestrationError> {
    Ok(ctx.call(MisdeclaredReserve, order).await?)
}

async fn start() -> (Runtime, Client) {
    let store = Arc::new(SqliteProvider::new("sqlite::memory:", None).await.unwrap());
    let activities = ActivityRegistry::builder().register_typed(reserve).build();
    let orchestrations = OrchestrationRegistry::builder()
        .register_typed(process_order)
        .register_typed(ship)
        .register_typed(misdeclared)
        .build();
    let runtime = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    (runtime, Client::new(store))
}

const TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn typed_activities_sub_orchestrations_and_client() {
    let (runtime, client) = start().await;
    let orders = vec![Order { sku: "a".into(), qty: 1 }, Order { sku: "b".into(), qty: 2 }];
    client.start_typed(process_order, "order-1", &orders).await.unwrap();
    let receipt = client.wait_for_typed(process_order, "order-1", TIMEOUT).await.unwrap();
    assert_eq!(receipt, Receipt { reserved: vec![10, 20], shipment: "a@2.0.0".into() });
    runtime.shutdown(None).await;
}

#[tokio::test]
async fn activity_errors_surface_through_typed_calls() {
    let (runtime, client) = start().await;
    client.start_typed(process_order, "order-2", &vec![Order { sku: "z".into(), qty: 0 }]).await.unwrap();
    match client.wait_for_typed(process_order, "order-2", TIMEOUT).await {
        Err(TypedClientError::Failed { details, .. }) => {
            assert!(details.message.contains("nothing to reserve for z"), "{details}");
        }
        other => panic!("expected the instance to fail, got {other:?}"),
    }
    runtime.shutdown(None).await;
}

#[tokio::test]
async fn undecodable_activity_output_names_activity_and_type() {
    let (runtime, client) = start().await;
    client.start_typed(misdeclared, "m-1", &Order { sku: "a".into(), qty: 1 }).await.unwrap();
    match client.wait_for_typed(misdeclared, "m-1", TIMEOUT).await {
        Err(TypedClientError::Failed { details, .. }) => {
            let message = details.message;
            assert!(message.contains("the output of activity `Reserve` does not decode as"), "{message}");
            assert!(message.contains("alloc::vec::Vec<alloc::string::String>"), "{message}");
        }
        other => panic!("expected the instance to fail, got {other:?}"),
    }
    runtime.shutdown(None).await;
}

#[tokio::test]
async fn wait_for_typed_reports_output_of_another_shape() {
    let (runtime, client) = start().await;
    // Started through the string API with the "Ship" name: its output is a string, but
    // waiting through the `process_order` handle expects a `Receipt`.
    client.start_orchestration_versioned("s-1", "Ship", "2.0.0", r#"{"sku":"a","qty":1}"#).await.unwrap();
    match client.wait_for_typed(process_order, "s-1", TIMEOUT).await {
        Err(TypedClientError::DecodeOutput { expected, .. }) => {
            assert!(expected.ends_with("Receipt"), "{expected}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    runtime.shutdown(None).await;
}
