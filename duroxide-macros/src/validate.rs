//! Signature checks for annotated functions and checks of attribute arguments that need the
//! signature. Every problem is recorded (not just the first) with the span of the piece at
//! fault: the `fn` token for a missing `async`, the parameter for a wrong context, the return
//! type for a non-`Result`, and so on.

use quote::ToTokens;
use syn::{FnArg, GenericArgument, ItemFn, Pat, PathArguments, ReturnType, Type};

use crate::args::{Args, MacroKind};
use crate::ast::Function;
use crate::ctxt::Errors;

/// Checks `item` against `async fn name(ctx: Ctx, input: In) -> Result<Out, E>`. Returns the
/// validated function when the signature is usable for expansion (errors are still recorded
/// for anything else wrong, such as a missing `async`).
pub(crate) fn function(kind: MacroKind, item: &ItemFn, errors: &Errors) -> Option<Function> {
    let attr = kind.attribute();
    let sig = &item.sig;
    let expected =
        format!("`async fn {}(ctx: {}, input: T) -> Result<Output, E>`", sig.ident, kind.context_type());
    let mut usable = true;

    // Each of these makes the generated code meaningless, so the function is handed back
    // untouched rather than expanded into follow-on errors.
    if sig.asyncness.is_none() {
        errors.error_spanned_by(sig.fn_token, format!("{attr} requires an `async fn`: {expected}"));
        usable = false;
    }
    if let Some(constness) = &sig.constness {
        errors.error_spanned_by(constness, format!("{attr} functions cannot be `const`"));
        usable = false;
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.error_spanned_by(unsafety, format!("{attr} functions cannot be `unsafe`"));
        usable = false;
    }
    if let Some(abi) = &sig.abi {
        errors.error_spanned_by(abi, format!("{attr} functions cannot declare an ABI"));
        usable = false;
    }
    if let Some(variadic) = &sig.variadic {
        errors.error_spanned_by(variadic, format!("{attr} functions cannot be variadic"));
        usable = false;
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.error_spanned_by(
            &sig.generics,
            format!(
                "{attr} functions cannot be generic: the registered handle needs concrete input and output types"
            ),
        );
        usable = false;
    }

    let mut params = sig.inputs.iter();
    let context = params.next();
    let input = params.next();
    for extra in params {
        errors.error_spanned_by(
            extra,
            format!(
                "unexpected extra parameter: {attr} functions take exactly two parameters, {expected}; put several values into one input struct"
            ),
        );
        usable = false;
    }

    let mut context_name = String::from("ctx");
    match context {
        None => {
            errors.error_at(
                sig.paren_token.span.join(),
                format!("{attr} function has no parameters; expected {expected}"),
            );
            usable = false;
        }
        Some(FnArg::Receiver(receiver)) => {
            errors.error_spanned_by(
                receiver,
                format!("{attr} must be a free function, not a method; expected {expected}"),
            );
            usable = false;
        }
        Some(FnArg::Typed(typed)) => {
            if let Pat::Ident(pat) = &*typed.pat {
                context_name = pat.ident.to_string();
            }
            if !is_context(kind, &typed.ty) {
                errors.error_spanned_by(
                    &typed.ty,
                    format!(
                        "the first parameter of {attr} must be the context, `{}` taken by value; found `{}`",
                        kind.context_type(),
                        display(&typed.ty)
                    ),
                );
                usable = false;
            }
        }
    }

    let input_ty = match (context, input) {
        (Some(FnArg::Typed(_)), None) => {
            errors.error_at(
                sig.paren_token.span.join(),
                format!(
                    "{attr} function is missing its input parameter; expected {expected} (use `input: ()` when there is nothing to pass)"
                ),
            );
            usable = false;
            None
        }
        (_, Some(FnArg::Typed(typed))) => {
            if check_input_type(kind, &typed.ty, errors) {
                Some((*typed.ty).clone())
            } else {
                usable = false;
                None
            }
        }
        _ => None,
    };

    let result = match &sig.output {
        ReturnType::Default => {
            errors.error_spanned_by(
                &sig.ident,
                format!(
                    "{attr} functions must return `Result<Output, E>` where `E: Into<{}>`; this one returns `()`",
                    kind.error_type()
                ),
            );
            None
        }
        ReturnType::Type(_, ty) => result_arguments(ty).or_else(|| {
            errors.error_spanned_by(
                ty,
                format!(
                    "{attr} functions must return `Result<Output, E>` where `E: Into<{}>`; found `{}`",
                    kind.error_type(),
                    display(ty)
                ),
            );
            None
        }),
    };

    let (output, error) = result?;
    let input = input_ty?;
    usable.then(|| Function { item: item.clone(), context_name, input, output, error })
}

/// `accepts(..)` entries must differ from the current input and from each other, or the
/// untagged decoding would never reach them.
pub(crate) fn accepts(function: &Function, args: &Args, errors: &Errors) {
    let current = display(&function.input);
    let mut seen: Vec<String> = Vec::new();
    for accept in &args.accepts {
        let old = display(&accept.old);
        if old == current {
            errors.error_spanned_by(
                &accept.old,
                format!("`{old}` is already the current input type; `accepts` lists older input shapes only"),
            );
        } else if seen.contains(&old) {
            errors.error_spanned_by(&accept.old, format!("`{old}` is listed twice in `accepts`"));
        }
        seen.push(old);
    }
}

/// Checks a `name = ".."` literal: registry names must be non-empty and trimmed.
pub(crate) fn name(args: &Args, errors: &Errors) {
    if let Some(lit) = &args.name {
        let value = lit.value();
        if value.trim().is_empty() {
            errors.error_spanned_by(lit, "the name cannot be empty");
        } else if value.trim() != value {
            errors.error_spanned_by(lit, "the name cannot start or end with whitespace");
        }
    }
}

/// Longest activity tag in bytes (duroxide's `provider::MAX_TAG_BYTES`).
const MAX_TAG_BYTES: usize = 128;

/// Checks a `tag = ".."` literal as the stores will: not empty, trimmed, no control
/// characters, at most `MAX_TAG_BYTES`.
pub(crate) fn tag(args: &Args, errors: &Errors) {
    let Some(lit) = &args.tag else { return };
    let value = lit.value();
    if value.trim().is_empty() {
        errors.error_spanned_by(lit, "the tag cannot be empty (leave `tag` out for untagged activities)");
    } else if value.trim() != value {
        errors.error_spanned_by(lit, "the tag cannot start or end with whitespace");
    } else if let Some(c) = value.chars().find(|c| c.is_control()) {
        errors.error_spanned_by(lit, format!("the tag cannot contain the control character {c:?}"));
    } else if value.len() > MAX_TAG_BYTES {
        errors.error_spanned_by(
            lit,
            format!("the tag is {} bytes; the limit is {MAX_TAG_BYTES} bytes", value.len()),
        );
    }
}

/// A type as the user would write it (`&Ctx`, `Outcome<u64>`), for messages.
/// `TokenStream::to_string` spaces every token apart.
fn display(ty: &Type) -> String {
    let spaced = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(spaced.len());
    let mut chars = spaced.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' ' {
            let prev = out.chars().last();
            let next = chars.peek().copied();
            let glue_after = matches!(prev, Some('&' | '<' | '(' | '[' | ':'));
            let glue_before = matches!(next, Some('<' | '>' | ',' | ')' | ']' | ':'));
            if glue_after || glue_before {
                continue;
            }
        }
        out.push(c);
    }
    out
}

fn is_context(kind: MacroKind, ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == kind.context_type() && last.arguments.is_none()),
        Type::Paren(inner) => is_context(kind, &inner.elem),
        Type::Group(inner) => is_context(kind, &inner.elem),
        _ => false,
    }
}

fn check_input_type(kind: MacroKind, ty: &Type, errors: &Errors) -> bool {
    let attr = kind.attribute();
    match ty {
        Type::ImplTrait(_) | Type::Infer(_) => {
            errors.error_spanned_by(
                ty,
                format!("the input of {attr} must be a concrete type that implements `Deserialize`"),
            );
            false
        }
        Type::Reference(_) => {
            errors.error_spanned_by(
                ty,
                format!(
                    "the input of {attr} must be owned (it is decoded from the JSON input); take `{}` by value",
                    match ty {
                        Type::Reference(reference) => display(&reference.elem),
                        _ => unreachable!(),
                    }
                ),
            );
            false
        }
        _ if is_context(MacroKind::Activity, ty) || is_context(MacroKind::Orchestration, ty) => {
            errors
                .error_spanned_by(ty, format!("the second parameter of {attr} is the input, not a context"));
            false
        }
        _ => true,
    }
}

/// `Result<Out, E>` (any path ending in `Result` with two type arguments).
fn result_arguments(ty: &Type) -> Option<(Type, Type)> {
    let Type::Path(path) = ty else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    let mut types = arguments.args.iter().filter_map(|argument| match argument {
        GenericArgument::Type(ty) => Some(ty.clone()),
        _ => None,
    });
    let output = types.next()?;
    let error = types.next()?;
    if types.next().is_some() || arguments.args.len() != 2 {
        return None;
    }
    Some((output, error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn check(kind: MacroKind, item: ItemFn) -> (bool, Vec<String>) {
        let errors = Errors::new();
        let function = function(kind, &item, &errors);
        let messages = match errors.check() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        };
        (function.is_some(), messages)
    }

    #[test]
    fn accepts_the_canonical_forms() {
        let (ok, errors) = check(
            MacroKind::Activity,
            parse_quote!(
                async fn a(ctx: ActivityContext, input: String) -> Result<String, ActivityError> {}
            ),
        );
        assert!(ok && errors.is_empty(), "{errors:?}");
        let (ok, errors) = check(
            MacroKind::Orchestration,
            parse_quote!(
                pub async fn o(
                    _: duroxide::OrchestrationContext,
                    Order { sku, .. }: Order,
                ) -> std::result::Result<(), MyError> {
                }
            ),
        );
        assert!(ok && errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn reports_every_signature_error_at_once() {
        let (ok, errors) = check(
            MacroKind::Activity,
            parse_quote!(
                fn a<T>(ctx: OrchestrationContext, input: &str, extra: u8) -> String {}
            ),
        );
        assert!(!ok);
        assert_eq!(errors.len(), 6, "{errors:?}");
        assert!(errors[0].starts_with("#[activity] requires an `async fn`"));
        assert!(errors[1].contains("cannot be generic"));
        assert!(errors[2].starts_with("unexpected extra parameter"));
        assert!(errors[3].contains("found `OrchestrationContext`"));
        assert!(errors[4].contains("must be owned"));
        assert!(errors[5].contains("must return `Result<Output, E>`"));
    }

    #[test]
    fn missing_parameters() {
        let (_, errors) = check(
            MacroKind::Orchestration,
            parse_quote!(
                async fn o() -> Result<(), E> {}
            ),
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("has no parameters"));
        let (_, errors) = check(
            MacroKind::Orchestration,
            parse_quote!(
                async fn o(ctx: OrchestrationContext) -> Result<(), E> {}
            ),
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("missing its input parameter"));
    }

    #[test]
    fn types_display_as_written() {
        assert_eq!(display(&parse_quote!(&OrchestrationContext)), "&OrchestrationContext");
        assert_eq!(display(&parse_quote!(Outcome<u64>)), "Outcome<u64>");
        assert_eq!(display(&parse_quote!(std::vec::Vec<(u8, String)>)), "std::vec::Vec<(u8, String)>");
        assert_eq!(display(&parse_quote!(&'a mut [u8])), "&'a mut [u8]");
    }

    #[test]
    fn result_needs_two_arguments() {
        assert!(result_arguments(&parse_quote!(Result<u8, E>)).is_some());
        assert!(result_arguments(&parse_quote!(anyhow::Result<u8>)).is_none());
        assert!(result_arguments(&parse_quote!(Option<u8>)).is_none());
    }

    #[test]
    fn accepted_shapes_must_be_new() {
        let errors = Errors::new();
        let item: ItemFn = parse_quote!(
            async fn o(ctx: OrchestrationContext, input: V2) -> Result<(), E> {}
        );
        let function = super::function(MacroKind::Orchestration, &item, &errors).unwrap();
        let args = Args {
            accepts: vec![
                crate::args::Accept { old: parse_quote!(V2), upgrade: parse_quote!(f) },
                crate::args::Accept { old: parse_quote!(V1), upgrade: parse_quote!(f) },
                crate::args::Accept { old: parse_quote!(V1), upgrade: parse_quote!(g) },
            ],
            ..Args::default()
        };
        accepts(&function, &args, &errors);
        let messages: Vec<String> = errors.check().unwrap_err().into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 2);
        assert!(messages[0].contains("already the current input type"));
        assert!(messages[1].contains("listed twice"));
    }
}
