//! Code generation for `#[activity]` and `#[orchestration]`.
//!
//! For `async fn name(ctx, input: In) -> Result<Out, E>` the output is:
//! - `pub struct name;`, a unit struct with the function's visibility and docs. It lives in
//!   the type and value namespaces, so the same word is the handle passed to
//!   `register_typed`/`ctx.call` and, through `Deref` to a function pointer, still callable
//!   as `name(ctx, input).await` (call expressions auto-deref their callee).
//! - inside `const _: () = { .. };` (so nothing else leaks into the user's module): the
//!   user's function renamed to `__duroxide_name`, spans untouched (an orchestration's body
//!   gets the determinism guard's type checks around iteration, `elapsed` and reads, see
//!   `determinism::guard`); the `Deref`
//!   impl; the `ActivityDefinition`/`OrchestrationDefinition` impl (with `retry_policy` for
//!   an activity's `retry(..)`); for `accepts(..)` the `#[serde(untagged)]` compatibility enum.
//!
//! All paths are absolute (`::duroxide::..`, `::core::..`) and generated locals are prefixed
//! `__duroxide_`. What the user wrote keeps its span, so type errors point at their code.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, ItemFn, LitStr, Visibility};

use crate::args::{self, Args, DEFAULT_VERSION, MacroKind};
use crate::ast::Function;
use crate::ctxt::Errors;
use crate::retry::{Backoff, Retry};
use crate::{determinism, validate};

/// Parses the arguments, validates, scans (orchestrations) and generates. Errors come out as
/// `compile_error!`s next to the best code we can still generate: the full expansion when
/// the signature is usable, otherwise the user's function unchanged, so one mistake does not
/// turn into a cascade of "cannot find" errors.
pub(crate) fn expand(kind: MacroKind, args: TokenStream, item: ItemFn) -> TokenStream {
    let errors = Errors::new();
    let args = args::parse(kind, args, &errors);
    // A bad version is reported and replaced by the default, so the rest still expands.
    let version = match (&args.version, kind) {
        (Some(lit), MacroKind::Orchestration) => args::parse_version(lit, &errors)
            .map(|v| LitStr::new(&v.to_string(), lit.span()))
            .unwrap_or_else(|| LitStr::new(DEFAULT_VERSION, lit.span())),
        _ => LitStr::new(DEFAULT_VERSION, Span::call_site()),
    };
    validate::name(&args, &errors);
    validate::tag(&args, &errors);
    let function = validate::function(kind, &item, &errors);
    if kind == MacroKind::Orchestration {
        // Scanned even when the signature is unusable, so one compile reports everything.
        let context_name = function.as_ref().map_or("ctx", |f| f.context_name.as_str());
        determinism::scan(&item.block, context_name, &errors);
    }
    let generated = match &function {
        Some(function) => {
            if kind == MacroKind::Orchestration {
                validate::accepts(function, &args, &errors);
            }
            generate(kind, &args, &version, function)
        }
        None => fallback(&item),
    };
    match errors.check() {
        Ok(()) => generated,
        Err(error) => {
            let mut tokens = error.to_compile_error();
            tokens.extend(generated);
            tokens
        }
    }
}

/// The user's function exactly as written, emitted when the signature is unusable.
fn fallback(item: &ItemFn) -> TokenStream {
    quote!(#item)
}

fn is_doc(attr: &Attribute) -> bool {
    attr.path().is_ident("doc")
}

fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg")
}

fn generate(kind: MacroKind, args: &Args, version: &LitStr, function: &Function) -> TokenStream {
    let item = &function.item;
    let ident = function.ident();
    let vis: &Visibility = &item.vis;
    let hidden = format_ident!("__duroxide_{}", ident.unraw());
    let name = args.name.clone().unwrap_or_else(|| LitStr::new(&ident.unraw().to_string(), ident.span()));

    let docs: Vec<&Attribute> = item.attrs.iter().filter(|a| is_doc(a)).collect();
    let cfgs: Vec<&Attribute> = item.attrs.iter().filter(|a| is_cfg(a)).collect();
    let mut inner = item.clone();
    if kind == MacroKind::Orchestration {
        determinism::guard_types(&mut inner.block);
    }
    inner.attrs.retain(|a| !is_doc(a));
    inner.sig.ident = hidden.clone();
    inner.vis = Visibility::Inherited;

    let input = &function.input;
    let output = &function.output;
    let error = &function.error;
    let (context, error_ty, definition) = match kind {
        MacroKind::Activity => (
            quote!(::duroxide::ActivityContext),
            quote!(::duroxide::ActivityError),
            quote!(::duroxide::ActivityDefinition),
        ),
        MacroKind::Orchestration => (
            quote!(::duroxide::OrchestrationContext),
            quote!(::duroxide::OrchestrationError),
            quote!(::duroxide::OrchestrationDefinition),
        ),
    };
    let boxed_result = quote! {
        ::duroxide::__private::BoxFuture<::core::result::Result<#output, #error>>
    };
    let callable = quote!(fn(#context, #input) -> #boxed_result);

    let handle_doc = handle_doc(kind, &name, version, args.retry.as_ref(), function, !docs.is_empty());
    let clippy_net = match kind {
        // The second net behind the token scan: with the shipped clippy.toml, clippy rejects
        // banned calls that the scan cannot see (aliases, imports) inside this function.
        MacroKind::Orchestration => determinism::clippy_net(),
        MacroKind::Activity => quote!(),
    };

    let send_span = ident.span();
    let boxed_call = quote_spanned! {send_span=>
        ::std::boxed::Box::pin(#hidden(__duroxide_context, __duroxide_input))
    };
    let into_error = quote_spanned! {error.span()=>
        ::core::convert::Into::<#error_ty>::into(__duroxide_error)
    };
    let input_item = quote_spanned! {input.span()=> type Input = #input; };
    let output_item = quote_spanned! {output.span()=> type Output = #output; };
    let version_item = match kind {
        MacroKind::Orchestration => quote!(const VERSION: &'static str = #version;),
        MacroKind::Activity => quote!(),
    };
    let decode_item = match kind {
        MacroKind::Orchestration if !args.accepts.is_empty() => accepts_decoder(args, function),
        _ => quote!(),
    };
    let tag_item = match (kind, &args.tag) {
        (MacroKind::Activity, Some(tag)) => quote! {
            const TAG: ::core::option::Option<&'static str> = ::core::option::Option::Some(#tag);
        },
        _ => TokenStream::new(),
    };
    let retry_item = match (kind, &args.retry) {
        (MacroKind::Activity, Some(retry)) => retry_policy(retry),
        _ => quote!(),
    };

    quote! {
        #(#cfgs)*
        #(#docs)*
        #handle_doc
        #[allow(non_camel_case_types)]
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug, ::core::default::Default)]
        #vis struct #ident;

        #(#cfgs)*
        const _: () = {
            #clippy_net
            #inner

            // The one place the user's future is boxed (and checked to be `Send`); both the
            // direct call and `invoke` go through it, so a non-`Send` body errs once.
            fn __duroxide_boxed(
                __duroxide_context: #context,
                __duroxide_input: #input,
            ) -> #boxed_result {
                #boxed_call
            }

            impl ::core::ops::Deref for #ident {
                type Target = #callable;

                fn deref(&self) -> &Self::Target {
                    static __DUROXIDE_CALLABLE: #callable = __duroxide_boxed;
                    &__DUROXIDE_CALLABLE
                }
            }

            impl #definition for #ident {
                const NAME: &'static str = #name;
                #version_item
                #input_item
                #output_item

                fn invoke(
                    self,
                    __duroxide_context: #context,
                    __duroxide_input: Self::Input,
                ) -> ::duroxide::__private::BoxFuture<::core::result::Result<Self::Output, #error_ty>> {
                    ::std::boxed::Box::pin(async move {
                        match __duroxide_boxed(__duroxide_context, __duroxide_input).await {
                            ::core::result::Result::Ok(__duroxide_output) => {
                                ::core::result::Result::Ok(__duroxide_output)
                            }
                            ::core::result::Result::Err(__duroxide_error) => {
                                ::core::result::Result::Err(#into_error)
                            }
                        }
                    })
                }

                #decode_item
                #retry_item
                #tag_item
            }
        };
    }
}

/// `decode_input` through a `#[serde(untagged)]` enum: the current shape first (so an old
/// shape that is a subset of the new one never captures new input), then each accepted
/// shape in the order written. When nothing matches, each shape is tried again on its own to
/// report serde's message for every one of them.
fn accepts_decoder(args: &Args, function: &Function) -> TokenStream {
    let input = &function.input;
    let variants: Vec<_> = (0..args.accepts.len()).map(|i| format_ident!("Accepted{}", i)).collect();
    let olds: Vec<_> = args.accepts.iter().map(|a| &a.old).collect();
    let arms = args.accepts.iter().zip(&variants).map(|(accept, variant)| {
        let upgrade = &accept.upgrade;
        let call = quote_spanned! {upgrade.span()=>
            let __duroxide_upgraded: #input = (#upgrade)(__duroxide_old);
        };
        quote! {
            ::core::result::Result::Ok(__DuroxideAcceptedInput::#variant(__duroxide_old)) => {
                #call
                ::core::result::Result::Ok(__duroxide_upgraded)
            }
        }
    });
    quote! {
        fn decode_input(
            __duroxide_raw: &str,
        ) -> ::core::result::Result<Self::Input, ::duroxide::OrchestrationError> {
            #[derive(::duroxide::__private::serde::Deserialize)]
            #[serde(crate = "::duroxide::__private::serde", untagged)]
            enum __DuroxideAcceptedInput {
                Current(#input),
                #(#variants(#olds),)*
            }

            match ::duroxide::__private::serde_json::from_str::<__DuroxideAcceptedInput>(__duroxide_raw) {
                ::core::result::Result::Ok(__DuroxideAcceptedInput::Current(__duroxide_input)) => {
                    ::core::result::Result::Ok(__duroxide_input)
                }
                #(#arms)*
                ::core::result::Result::Err(_) => ::core::result::Result::Err(
                    ::duroxide::__private::undecodable_orchestration_input(
                        <Self as ::duroxide::OrchestrationDefinition>::NAME,
                        <Self as ::duroxide::OrchestrationDefinition>::VERSION,
                        &[
                            ::duroxide::__private::ShapeAttempt::of::<#input>(__duroxide_raw, "current input"),
                            #(::duroxide::__private::ShapeAttempt::of::<#olds>(__duroxide_raw, "accepted older input"),)*
                        ],
                    ),
                ),
            }
        }
    }
}

/// `ActivityDefinition::retry_policy` for `retry(..)`: the checked policy, durations as
/// `Duration::from_millis` of the milliseconds computed at compile time.
fn retry_policy(retry: &Retry) -> TokenStream {
    let millis = |ms: u64| quote!(::core::time::Duration::from_millis(#ms));
    let max_attempts = retry.max_attempts;
    let backoff = match retry.backoff {
        Backoff::None => quote!(::duroxide::Backoff::None),
        Backoff::Fixed(ms) => {
            let delay = millis(ms);
            quote!(::duroxide::Backoff::Fixed(#delay))
        }
        Backoff::Linear { initial_ms, max_ms } => {
            let (initial, max) = (millis(initial_ms), millis(max_ms));
            quote!(::duroxide::Backoff::Linear { initial: #initial, max: #max })
        }
        Backoff::Exponential { initial_ms, max_ms } => {
            let (initial, max) = (millis(initial_ms), millis(max_ms));
            quote!(::duroxide::Backoff::Exponential { initial: #initial, max: #max })
        }
    };
    let timeout = match retry.timeout_ms {
        Some(ms) => {
            let limit = millis(ms);
            quote!(::core::option::Option::Some(#limit))
        }
        None => quote!(::core::option::Option::None),
    };
    quote! {
        fn retry_policy() -> ::core::option::Option<::duroxide::RetryPolicy> {
            ::core::option::Option::Some(::duroxide::RetryPolicy {
                max_attempts: #max_attempts,
                backoff: #backoff,
                timeout: #timeout,
            })
        }
    }
}

/// The doc paragraph added to the handle, with the registered name and how to use it.
fn handle_doc(
    kind: MacroKind,
    name: &LitStr,
    version: &LitStr,
    retry: Option<&Retry>,
    function: &Function,
    after_user_docs: bool,
) -> TokenStream {
    let ident = function.ident();
    let text = match kind {
        MacroKind::Activity => {
            let retry = retry.map_or_else(String::new, |retry| {
                format!(" Default retry policy (`ctx.call_with_retry({ident}, input, None)`): {retry}.")
            });
            format!(
                " Activity handle generated by `#[activity]`: registered as `{}`. Register it with `ActivityRegistry::builder().register_typed({ident})`, call it from an orchestration with `ctx.call({ident}, input)`, or call it directly like the function it was: `{ident}(ctx, input).await`.{retry}",
                name.value()
            )
        }
        MacroKind::Orchestration => format!(
            " Orchestration handle generated by `#[orchestration]`: registered as `{}` version `{}`. Register it with `OrchestrationRegistry::builder().register_typed({ident})`, start it with `client.start_typed({ident}, instance, &input)`, or call it as a sub-orchestration with `ctx.call_sub_orchestration({ident}, input)`.",
            name.value(),
            version.value()
        ),
    };
    // A blank line keeps this a paragraph of its own after the user's docs.
    let separator = after_user_docs.then(|| quote!(#[doc = ""]));
    quote! {
        #separator
        #[doc = #text]
    }
}

/// Expansion snapshots: what the main forms expand to, pretty-printed in
/// `duroxide-macros/expanded/*.rs` so reviewers see generated code change in diffs.
/// Regenerate with `DUROXIDE_BLESS=1 cargo test -p duroxide-macros snapshot`.
#[cfg(test)]
mod snapshot_tests {
    use super::*;
    use std::path::Path;

    fn check(file: &str, kind: MacroKind, args: TokenStream, item: TokenStream) {
        let item: ItemFn = syn::parse2(item).unwrap();
        let expanded = expand(kind, args, item);
        let pretty = prettyplease::unparse(&syn::parse2(expanded).unwrap());
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("expanded").join(file);
        if std::env::var_os("DUROXIDE_BLESS").is_some() {
            std::fs::write(&path, &pretty).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            expected == pretty,
            "expansion of {file} changed; rerun with DUROXIDE_BLESS=1 and review the diff:\n{pretty}"
        );
    }

    #[test]
    fn snapshot_activity() {
        check(
            "activity.rs",
            MacroKind::Activity,
            quote!(name = "ReserveStock"),
            quote! {
                /// Reserves stock.
                pub async fn reserve_stock(ctx: ActivityContext, order: Order) -> Result<Reservation, ActivityError> {
                    ctx.trace_info("reserving");
                    Ok(Reservation::for_order(order))
                }
            },
        );
    }

    #[test]
    fn snapshot_activity_with_retry() {
        check(
            "activity_retry.rs",
            MacroKind::Activity,
            quote!(retry(
                max_attempts = 5,
                backoff = "exponential",
                initial = "100ms",
                max = "30s",
                timeout = "1m"
            )),
            quote! {
                async fn charge_card(ctx: ActivityContext, payment: Payment) -> Result<Receipt, ActivityError> {
                    ctx.trace_info("charging");
                    Ok(Receipt::for_payment(payment))
                }
            },
        );
    }

    #[test]
    fn snapshot_orchestration_with_accepts() {
        check(
            "orchestration_accepts.rs",
            MacroKind::Orchestration,
            quote!(name = "ProcessOrder", version = "2.0.0", accepts(OrderV1 => upgrade_order)),
            quote! {
                pub async fn process_order(ctx: OrchestrationContext, order: OrderV2) -> Result<Receipt, OrchestrationError> {
                    let reservation = ctx.call(reserve_stock, order).await?;
                    Ok(Receipt { reservation })
                }
            },
        );
    }

    #[test]
    fn snapshot_orchestration_with_errors_keeps_expanding() {
        check(
            "orchestration_errors.rs",
            MacroKind::Orchestration,
            quote!(version = "2"),
            quote! {
                async fn timed(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
                    let _ = std::time::SystemTime::now();
                    Ok(input)
                }
            },
        );
    }
}
