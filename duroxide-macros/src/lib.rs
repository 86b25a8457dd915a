//! Procedural macros for `duroxide`: `#[activity]`, `#[orchestration]` and `#[deterministic]`.
//!
//! Use them through `duroxide::prelude` (or `duroxide::{activity, orchestration}`); the
//! generated code names `::duroxide` paths only. `docs/macros.md` in the repository is the
//! full guide. Internals: `args` parses the attribute (`retry` the `retry(..)` of an
//! activity), `validate` checks the signature, `determinism` scans orchestration bodies and
//! wraps type checks around calls whose safety depends on a type, `expand` generates,
//! `helper` is `#[deterministic]`, `ctxt` collects errors so one compile reports all of them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod args;
mod ast;
mod ctxt;
mod determinism;
mod expand;
mod helper;
mod retry;
mod validate;

use proc_macro::TokenStream;

use crate::args::MacroKind;

/// Turns `async fn name(ctx: ActivityContext, input: In) -> Result<Out, E>` into a typed
/// activity.
///
/// `In: DeserializeOwned + Serialize`, `Out: Serialize + DeserializeOwned`,
/// `E: Into<ActivityError>`. Keys:
/// - `name = ".."`: the registered name (default: the function's name);
/// - `retry(max_attempts = N, backoff = "..", initial = "..", max = "..", timeout = "..")`:
///   the default retry policy, used by `ctx.call_with_retry(handle, input, None)`.
///   `max_attempts` (at least 1) is required; `backoff` is `"none"`, `"fixed"`, `"linear"` or
///   `"exponential"` (default); durations are literals such as `"250ms"`, `"10s"`, `"2m"`,
///   `"1h"` (`initial` defaults to `"1s"`, `max` to `"60s"`, `timeout` per attempt to none).
///   Every value is checked at compile time, each error underlining the bad literal.
///
/// ```ignore
/// #[activity(name = "ReserveStock")]
/// async fn reserve_stock(ctx: ActivityContext, order: Order) -> Result<Reservation, ActivityError> {
///     ..
/// }
///
/// let activities = ActivityRegistry::builder().register_typed(reserve_stock).build();
/// let reservation = ctx.call(reserve_stock, order).await?;   // in an orchestration
/// let reservation = reserve_stock(activity_ctx, order).await; // in a unit test
/// ```
///
/// is equivalent to (without the macro):
///
/// ```ignore
/// /// (the function's docs)
/// #[derive(Clone, Copy, Debug, Default)]
/// struct reserve_stock;
///
/// const _: () = {
///     async fn __duroxide_reserve_stock(ctx: ActivityContext, order: Order)
///         -> Result<Reservation, ActivityError> { .. }
///
///     // Keeps `reserve_stock(ctx, order).await` working: calls auto-deref the callee.
///     impl Deref for reserve_stock {
///         type Target = fn(ActivityContext, Order) -> BoxFuture<Result<Reservation, ActivityError>>;
///         fn deref(&self) -> &Self::Target { /* Box::pin(__duroxide_reserve_stock(..)) */ }
///     }
///
///     impl ActivityDefinition for reserve_stock {
///         const NAME: &'static str = "ReserveStock";
///         type Input = Order;
///         type Output = Reservation;
///         fn invoke(self, ctx: ActivityContext, input: Order)
///             -> BoxFuture<Result<Reservation, ActivityError>> {
///             Box::pin(async move {
///                 __duroxide_reserve_stock(ctx, input).await.map_err(Into::into)
///             })
///         }
///
///         // Only with `retry(..)`; for `retry(max_attempts = 5, initial = "100ms", max = "30s")`:
///         fn retry_policy() -> Option<RetryPolicy> {
///             Some(RetryPolicy {
///                 max_attempts: 5,
///                 backoff: Backoff::Exponential {
///                     initial: Duration::from_millis(100),
///                     max: Duration::from_millis(30000),
///                 },
///                 timeout: None,
///             })
///         }
///     }
/// };
///
/// // which `register_typed` turns into the string-typed registration:
/// ActivityRegistry::builder().register("ReserveStock", |ctx: ActivityContext, input: String| async move {
///     let order: Order = serde_json::from_str(&input)
///         .map_err(|e| ActivityError::non_retryable(format!("activity `ReserveStock` ...: {e}")))?;
///     let reservation = reserve_stock(ctx, order).await?;
///     Ok(serde_json::to_string(&reservation)?)
/// });
/// ```
#[proc_macro_attribute]
pub fn activity(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(MacroKind::Activity, args, item)
}

/// Turns `async fn name(ctx: OrchestrationContext, input: In) -> Result<Out, E>` into a typed,
/// versioned orchestration, and rejects nondeterministic calls in its body.
///
/// `In: Serialize + DeserializeOwned`, `Out: Serialize + DeserializeOwned`,
/// `E: Into<OrchestrationError>`. Keys:
/// - `name = ".."`: the registered name (default: the function's name);
/// - `version = "x.y.z"`: semver, checked at compile time (default `"1.0.0"`);
/// - `accepts(OldInput => upgrade_fn, ..)`: older input shapes this version still accepts;
///   `upgrade_fn: fn(OldInput) -> In` (a path or a closure).
///
/// The body may not call `SystemTime::now`, `Instant::now`, `elapsed()` on a clock reading,
/// `rand::*`, `Uuid::new_v4`, `tokio::time::sleep`, `tokio::spawn`, `std::thread::*`,
/// `std::env::var`, file or network I/O, standard input or output, iterate a `HashMap` or
/// `HashSet`, or use `tokio::select!`; each error names the replacement (`ctx.utc_now()`,
/// `ctx.system_new_guid()`, `ctx.schedule_timer()`, `ctx.select2()`, a `BTreeMap`, an
/// activity). The function also gets
/// `#[deny(clippy::disallowed_methods, clippy::iter_over_hash_type)]`, so the workspace
/// `clippy.toml` catches what the macro cannot see (aliases, imports). Helpers called from
/// the body are checked when marked [`macro@deterministic`]. `docs/macros.md` lists every
/// rule and where each net stops.
///
/// ```ignore
/// #[orchestration(name = "ProcessOrder", version = "2.0.0", accepts(OrderV1 => upgrade))]
/// async fn process_order(ctx: OrchestrationContext, order: OrderV2) -> Result<Receipt, OrchestrationError> {
///     let reservation = ctx.call(reserve_stock, order).await?;
///     ..
/// }
/// ```
///
/// is equivalent to (without the macro):
///
/// ```ignore
/// #[derive(Clone, Copy, Debug, Default)]
/// struct process_order;
///
/// const _: () = {
///     #[deny(clippy::disallowed_methods, clippy::iter_over_hash_type)]
///     async fn __duroxide_process_order(ctx: OrchestrationContext, order: OrderV2)
///         -> Result<Receipt, OrchestrationError> { .. }
///
///     impl Deref for process_order { /* as for activities */ }
///
///     impl OrchestrationDefinition for process_order {
///         const NAME: &'static str = "ProcessOrder";
///         const VERSION: &'static str = "2.0.0";
///         type Input = OrderV2;
///         type Output = Receipt;
///         fn invoke(self, ctx: OrchestrationContext, input: OrderV2)
///             -> BoxFuture<Result<Receipt, OrchestrationError>> { /* as for activities */ }
///
///         // Only with `accepts(..)`; otherwise the default decodes `OrderV2` alone.
///         fn decode_input(raw: &str) -> Result<OrderV2, OrchestrationError> {
///             #[derive(Deserialize)]
///             #[serde(untagged)]
///             enum Accepted { Current(OrderV2), Accepted0(OrderV1) }
///             match serde_json::from_str::<Accepted>(raw) {
///                 Ok(Accepted::Current(input)) => Ok(input),
///                 Ok(Accepted::Accepted0(old)) => Ok(upgrade(old)),
///                 Err(_) => Err(/* names the orchestration, version and each shape tried */),
///             }
///         }
///     }
/// };
///
/// // `register_typed(process_order)` is
/// // `register_versioned("ProcessOrder", "2.0.0", |ctx, input: String| /* decode_input, invoke, encode */)`.
/// ```
#[proc_macro_attribute]
pub fn orchestration(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(MacroKind::Orchestration, args, item)
}

/// Gives a helper function (sync or async) or every method of an `impl` block the same
/// determinism guard as an `#[orchestration]` body: the path scan, the type checks on
/// iteration, `elapsed()` and reads, and the clippy net. Use it on code you factor out of an
/// orchestration; the orchestration's own scan cannot follow a call into another function.
///
/// ```ignore
/// #[deterministic]
/// fn pick_region(regions: &BTreeMap<String, u32>) -> Option<String> {
///     // A HashMap here would not compile: its order differs between processes.
///     regions.iter().max_by_key(|(_, load)| **load).map(|(name, _)| name.clone())
/// }
///
/// #[deterministic]
/// async fn reserve_all(ctx: &OrchestrationContext, skus: &[String]) -> Result<(), OrchestrationError> {
///     for sku in skus {
///         ctx.schedule_activity("Reserve", sku.clone()).await?;
///     }
///     Ok(())
/// }
/// ```
///
/// Errors name the replacement with the function's `OrchestrationContext` parameter when it
/// has one (otherwise `ctx`). The item is emitted otherwise unchanged.
#[proc_macro_attribute]
pub fn deterministic(args: TokenStream, item: TokenStream) -> TokenStream {
    helper::expand(args.into(), item.into()).into()
}

fn entry(kind: MacroKind, args: TokenStream, item: TokenStream) -> TokenStream {
    match syn::parse::<syn::ItemFn>(item.clone()) {
        Ok(function) => expand::expand(kind, args.into(), function).into(),
        Err(error) => {
            // Not a function at all: say so, and hand the item back untouched.
            let message = format!("{} applies to an `async fn` only", kind.attribute());
            let mut tokens = syn::Error::new(error.span(), message).to_compile_error();
            tokens.extend(proc_macro2::TokenStream::from(item));
            tokens.into()
        }
    }
}
