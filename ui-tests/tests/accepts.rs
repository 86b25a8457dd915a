//! `#[orchestration(accepts(..))]` at run time: the compatibility enum decodes the current
//! shape first, upgrades older shapes, and fails with every shape named when none matches.
//! Also pins the two classic `#[serde(untagged)]` traps, so their behaviour is a decision
//! and not a surprise (see `docs/macros.md`, "Input compatibility").

use std::sync::Arc;
use std::time::Duration;

use duroxide::prelude::*;
use duroxide::{OrchestrationDefinition, TypedClientError};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderV1 {
    pub sku: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderV2 {
    pub sku: String,
    pub qty: u32,
}

fn upgrade_order(old: OrderV1) -> OrderV2 {
    OrderV2 { sku: old.sku, qty: 1 }
}

#[orchestration(name = "ProcessOrder", version = "2.0.0", accepts(OrderV1 => upgrade_order))]
async fn process_order_v2(_ctx: OrchestrationContext, order: OrderV2) -> Result<String, OrchestrationError> {
    Ok(format!("{} x{}", order.sku, order.qty))
}

fn decode(raw: &str) -> Result<OrderV2, OrchestrationError> {
    <process_order_v2 as OrchestrationDefinition>::decode_input(raw)
}

#[test]
fn current_shape_is_tried_first() {
    // OrderV1 is a subset of OrderV2: if the old shape were tried first it would swallow
    // this input (serde ignores the unknown `qty`) and the upgrade would reset qty to 1.
    assert_eq!(decode(r#"{"sku":"a","qty":5}"#).unwrap(), OrderV2 { sku: "a".into(), qty: 5 });
}

#[test]
fn old_shape_is_upgraded() {
    assert_eq!(decode(r#"{"sku":"a"}"#).unwrap(), OrderV2 { sku: "a".into(), qty: 1 });
}

#[test]
fn no_matching_shape_names_orchestration_version_and_every_shape() {
    let error = decode(r#"{"item":"a"}"#).unwrap_err().to_string();
    assert!(
        error.contains("orchestration `ProcessOrder` version 2.0.0 could not decode its input"),
        "{error}"
    );
    assert!(error.contains("tried 2 shapes"), "{error}");
    assert!(error.contains("`accepts::OrderV2` (current input): missing field `sku`"), "{error}");
    assert!(error.contains("`accepts::OrderV1` (accepted older input): missing field `sku`"), "{error}");
}

#[test]
fn invalid_json_fails_cleanly() {
    let error = decode("not json").unwrap_err().to_string();
    assert!(error.contains("ProcessOrder"), "{error}");
    assert!(error.contains("expected ident") || error.contains("expected value"), "{error}");
}

/// Trap 1: a field added as optional (or `#[serde(default)]`) makes the old shape decode as
/// the new one, so the upgrade function never runs and the default wins.
mod optional_field_trap {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    pub struct OrderV3 {
        pub sku: String,
        #[serde(default)]
        pub qty: Option<u32>,
    }

    fn upgrade(old: OrderV1) -> OrderV3 {
        OrderV3 { sku: old.sku, qty: Some(1) }
    }

    #[orchestration(name = "ProcessOrder", version = "3.0.0", accepts(OrderV1 => upgrade))]
    async fn process_order_v3(
        _ctx: OrchestrationContext,
        order: OrderV3,
    ) -> Result<String, OrchestrationError> {
        Ok(order.sku)
    }

    #[test]
    fn old_input_decodes_as_the_new_shape_without_upgrade() {
        let decoded = <process_order_v3 as OrchestrationDefinition>::decode_input(r#"{"sku":"a"}"#).unwrap();
        assert_eq!(decoded, OrderV3 { sku: "a".into(), qty: None });
    }
}

/// Trap 2: when the *new* shape is a subset of the old one (a field was removed), old input
/// decodes as the new shape and the extra field is silently dropped, unless the current
/// type denies unknown fields, which sends old input to the upgrade function.
mod subset_trap {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    pub struct Lenient {
        pub sku: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Strict {
        pub sku: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    pub struct WithNote {
        pub sku: String,
        pub note: String,
    }

    fn to_lenient(old: WithNote) -> Lenient {
        Lenient { sku: format!("{} ({})", old.sku, old.note) }
    }

    fn to_strict(old: WithNote) -> Strict {
        Strict { sku: format!("{} ({})", old.sku, old.note) }
    }

    #[orchestration(name = "Lenient", accepts(WithNote => to_lenient))]
    async fn lenient(_ctx: OrchestrationContext, order: Lenient) -> Result<String, OrchestrationError> {
        Ok(order.sku)
    }

    #[orchestration(name = "Strict", accepts(WithNote => to_strict))]
    async fn strict(_ctx: OrchestrationContext, order: Strict) -> Result<String, OrchestrationError> {
        Ok(order.sku)
    }

    const OLD: &str = r#"{"sku":"a","note":"gift"}"#;

    #[test]
    fn lenient_current_type_swallows_old_input() {
        let decoded = <lenient as OrchestrationDefinition>::decode_input(OLD).unwrap();
        assert_eq!(decoded, Lenient { sku: "a".into() });
    }

    #[test]
    fn deny_unknown_fields_routes_old_input_to_the_upgrade() {
        let decoded = <strict as OrchestrationDefinition>::decode_input(OLD).unwrap();
        assert_eq!(decoded, Strict { sku: "a (gift)".into() });
    }
}

#[activity(name = "Describe")]
async fn describe(_ctx: ActivityContext, order: OrderV2) -> Result<String, ActivityError> {
    Ok(format!("{}:{}", order.sku, order.qty))
}

#[orchestration(name = "Describe", version = "2.0.0", accepts(OrderV1 => upgrade_order))]
async fn describe_order(ctx: OrchestrationContext, order: OrderV2) -> Result<String, OrchestrationError> {
    Ok(ctx.call(describe, order).await?)
}

/// End to end on the real runtime: instances started with the v1 shape (as an old client
/// would, through the string API) and with the v2 shape (typed) both complete; garbage input
/// fails the instance with the shapes named.
#[tokio::test]
async fn runtime_upgrades_old_inputs_and_fails_bad_ones() {
    let store = Arc::new(SqliteProvider::new("sqlite::memory:", None).await.unwrap());
    let activities = ActivityRegistry::builder().register_typed(describe).build();
    let orchestrations = OrchestrationRegistry::builder().register_typed(describe_order).build();
    let runtime = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store);
    let timeout = Duration::from_secs(20);

    client.start_orchestration_versioned("old", "Describe", "2.0.0", r#"{"sku":"a"}"#).await.unwrap();
    client.start_typed(describe_order, "new", &OrderV2 { sku: "b".into(), qty: 3 }).await.unwrap();
    client.start_orchestration_versioned("bad", "Describe", "2.0.0", r#"{"item":1}"#).await.unwrap();

    assert_eq!(client.wait_for_typed(describe_order, "old", timeout).await.unwrap(), "a:1");
    assert_eq!(client.wait_for_typed(describe_order, "new", timeout).await.unwrap(), "b:3");
    match client.wait_for_typed(describe_order, "bad", timeout).await {
        Err(TypedClientError::Failed { details, .. }) => {
            assert!(details.message.contains("version 2.0.0 could not decode its input"), "{details}");
            assert!(details.message.contains("OrderV1"), "{details}");
        }
        other => panic!("expected a failed instance, got {other:?}"),
    }
    runtime.shutdown(None).await;
}

/// An activity whose input does not decode fails (no panic) with the activity, the expected
/// type and serde's message.
#[tokio::test]
async fn activity_input_decode_failure_names_activity_and_type() {
    #[orchestration(name = "Raw")]
    async fn raw(ctx: OrchestrationContext, input: String) -> Result<String, OrchestrationError> {
        Ok(ctx.schedule_activity("Describe", input).await?)
    }

    let store = Arc::new(SqliteProvider::new("sqlite::memory:", None).await.unwrap());
    let activities = ActivityRegistry::builder().register_typed(describe).build();
    let orchestrations = OrchestrationRegistry::builder().register_typed(raw).build();
    let runtime = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store);
    client.start_typed(raw, "raw-1", &"{\"sku\":1}".to_string()).await.unwrap();
    match client.wait_for_typed(raw, "raw-1", Duration::from_secs(20)).await {
        Err(TypedClientError::Failed { details, .. }) => {
            let message = details.message;
            assert!(
                message.contains("activity `Describe` could not decode its input as `accepts::OrderV2`"),
                "{message}"
            );
            assert!(message.contains("invalid type"), "{message}");
        }
        other => panic!("expected a failed instance, got {other:?}"),
    }
    runtime.shutdown(None).await;
}
