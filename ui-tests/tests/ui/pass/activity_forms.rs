// Every accepted form of #[activity]: default and custom names, a plain `pub` and a private
// function, unit input, error types that convert into ActivityError, docs and attributes
// kept, and the function still callable directly.
use duroxide::ActivityDefinition;
use duroxide::prelude::*;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub sku: String,
    pub qty: u32,
}

/// Reserves stock. (This doc moves to the handle.)
#[activity]
pub async fn reserve_stock(_ctx: ActivityContext, order: Order) -> Result<u32, ActivityError> {
    Ok(order.qty)
}

#[activity(name = "Greet")]
async fn greet(_ctx: ActivityContext, name: String) -> Result<String, String> {
    Ok(format!("Hello, {name}!"))
}

#[activity(name = "Tick",)]
#[allow(clippy::unused_async)] // other attributes stay on the function
async fn tick(_: ActivityContext, (): ()) -> std::result::Result<(), &'static str> {
    Ok(())
}

mod nested {
    use duroxide::{ActivityContext, ActivityError};

    #[duroxide::activity]
    pub(crate) async fn r#loop(_ctx: duroxide::ActivityContext, n: u64) -> Result<u64, ActivityError> {
        let _: Option<ActivityContext> = None;
        Ok(n + 1)
    }
}

fn main() {
    assert_eq!(<reserve_stock as ActivityDefinition>::NAME, "reserve_stock");
    assert_eq!(<greet as ActivityDefinition>::NAME, "Greet");
    assert_eq!(<tick as ActivityDefinition>::NAME, "Tick");
    assert_eq!(<nested::r#loop as ActivityDefinition>::NAME, "loop");

    let _registry = ActivityRegistry::builder()
        .register_typed(reserve_stock)
        .register_typed(greet)
        .register_typed(tick)
        .register_typed(nested::r#loop)
        .register("Untyped", |_ctx: ActivityContext, input: String| async move { Ok(input) })
        .build();

    // Still an ordinary async fn for unit tests.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let ctx = ActivityContext::for_test("reserve_stock");
    let qty = rt
        .block_on(reserve_stock(ctx.clone(), Order { sku: "a".into(), qty: 3 }))
        .unwrap();
    assert_eq!(qty, 3);
    assert_eq!(rt.block_on(greet(ctx.clone(), "Ann".into())).unwrap(), "Hello, Ann!");
    rt.block_on(tick(ctx.clone(), ())).unwrap();
    assert_eq!(rt.block_on(nested::r#loop(ctx, 1)).unwrap(), 2);
}
