//! `#[deterministic]`: the orchestration guard for code factored out of an orchestration.
//!
//! A proc macro sees only the item it is attached to, so the scan of an `#[orchestration]`
//! stops at its own body: a helper function it calls is not checked. Marking the helper (a
//! free function, sync or async, or an `impl` block, whose every method is then checked)
//! gives it the same path scan, the same type checks and the same clippy net as an
//! orchestration body. The item is otherwise emitted unchanged.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Block, FnArg, Item, Signature, Type};

use crate::ctxt::Errors;
use crate::determinism;

/// Expands `#[deterministic]` on `item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let errors = Errors::new();
    if !args.is_empty() {
        errors.error_spanned_by(&args, "`#[deterministic]` takes no arguments");
    }
    let output = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(mut function)) => {
            guard(&function.sig, &mut function.block, &errors);
            let mut tokens = determinism::clippy_net();
            tokens.extend(function.into_token_stream());
            tokens
        }
        Ok(Item::Impl(mut block)) => {
            for member in &mut block.items {
                if let syn::ImplItem::Fn(method) = member {
                    guard(&method.sig, &mut method.block, &errors);
                    method.attrs.extend(determinism::clippy_net_attributes());
                }
            }
            block.into_token_stream()
        }
        _ => {
            errors.error_spanned_by(
                &item,
                "`#[deterministic]` applies to a function or an `impl` block (each method is checked)",
            );
            item
        }
    };
    match errors.check() {
        Ok(()) => output,
        Err(error) => {
            let mut tokens = error.to_compile_error();
            tokens.extend(output);
            tokens
        }
    }
}

/// Scans and rewrites one function body; messages name the function's context parameter
/// when it has one.
fn guard(signature: &Signature, body: &mut Block, errors: &Errors) {
    let context = context_name(signature).unwrap_or_else(|| "ctx".to_string());
    determinism::scan(body, &context, errors);
    determinism::guard_types(body);
}

/// The name of a parameter typed `OrchestrationContext` (by value or reference).
fn context_name(signature: &Signature) -> Option<String> {
    signature.inputs.iter().find_map(|input| {
        let FnArg::Typed(typed) = input else { return None };
        let mut ty = &*typed.ty;
        while let Type::Reference(reference) = ty {
            ty = &reference.elem;
        }
        let Type::Path(path) = ty else { return None };
        let last = path.path.segments.last()?;
        if last.ident != "OrchestrationContext" {
            return None;
        }
        match &*typed.pat {
            syn::Pat::Ident(ident) => Some(ident.ident.to_string()),
            _ => None,
        }
    })
}
