// Every accepted form of #[orchestration]: defaults, name and version, accepts with a path
// and with a closure, custom error types, registration next to the string API.
use duroxide::OrchestrationDefinition;
use duroxide::prelude::*;

#[derive(Serialize, Deserialize)]
pub struct OrderV1 {
    pub sku: String,
}

#[derive(Serialize, Deserialize)]
pub struct OrderV2 {
    pub sku: String,
    pub qty: u32,
}

#[derive(Serialize, Deserialize)]
pub struct OrderV0(pub String);

fn upgrade_v1(old: OrderV1) -> OrderV2 {
    OrderV2 { sku: old.sku, qty: 1 }
}

/// Defaults: name "hello", version "1.0.0".
#[orchestration]
pub async fn hello(_ctx: OrchestrationContext, name: String) -> Result<String, OrchestrationError> {
    Ok(format!("Hello, {name}!"))
}

#[orchestration(name = "ProcessOrder", version = "1.0.0")]
async fn process_order_v1(_ctx: OrchestrationContext, order: OrderV1) -> Result<String, OrchestrationError> {
    Ok(order.sku)
}

#[orchestration(
    name = "ProcessOrder",
    version = "2.0.0",
    accepts(OrderV1 => upgrade_v1, OrderV0 => |old: OrderV0| OrderV2 { sku: old.0, qty: 0 }),
)]
async fn process_order_v2(_ctx: OrchestrationContext, order: OrderV2) -> Result<u32, String> {
    Ok(order.qty)
}

#[orchestration(version = "3.1.4-beta.1+build.5")]
async fn prerelease(_ctx: duroxide::OrchestrationContext, (): ()) -> std::result::Result<(), &'static str> {
    Ok(())
}

fn main() {
    assert_eq!(<hello as OrchestrationDefinition>::NAME, "hello");
    assert_eq!(<hello as OrchestrationDefinition>::VERSION, "1.0.0");
    assert_eq!(<process_order_v1 as OrchestrationDefinition>::NAME, "ProcessOrder");
    assert_eq!(<process_order_v2 as OrchestrationDefinition>::VERSION, "2.0.0");
    assert_eq!(<prerelease as OrchestrationDefinition>::VERSION, "3.1.4-beta.1+build.5");

    let v1 = <process_order_v2 as OrchestrationDefinition>::decode_input(r#"{"sku":"a"}"#).unwrap();
    assert_eq!((v1.sku.as_str(), v1.qty), ("a", 1));
    let v0 = <process_order_v2 as OrchestrationDefinition>::decode_input(r#""b""#).unwrap();
    assert_eq!((v0.sku.as_str(), v0.qty), ("b", 0));

    let _registry = OrchestrationRegistry::builder()
        .register_typed(hello)
        .register_typed(process_order_v1)
        .register_typed(process_order_v2)
        .register_typed(prerelease)
        .register("Untyped", |_ctx: OrchestrationContext, input: String| async move { Ok(input) })
        .build();
}
