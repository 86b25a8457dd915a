//! Parsing of the attribute arguments: `#[activity(name = "..", retry(..))]` and
//! `#[orchestration(name = "..", version = "x.y.z", accepts(Old => upgrade, ..))]`.
//!
//! Every key lives in [`Key`], so the parser, the "valid keys are" messages and the docs
//! agree. Unknown and duplicate keys are reported (all of them, in one compile) and parsing
//! goes on with the next key. Validation that needs the function signature (for example
//! "an accepted shape equals the current input type") lives in `validate.rs`; the keys and
//! values inside `retry(..)` are parsed and checked in `retry.rs`.

use std::fmt;

use proc_macro2::{TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser};
use syn::{Expr, Ident, LitStr, Token, Type};

use crate::ctxt::Errors;
use crate::retry::{self, Retry};

/// Which macro is being expanded; decides which keys are valid and how messages read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MacroKind {
    Activity,
    Orchestration,
}

impl MacroKind {
    /// The keys this macro accepts, in documentation order.
    pub(crate) fn valid_keys(self) -> &'static [Key] {
        match self {
            MacroKind::Activity => &[Key::Name, Key::Retry, Key::Tag],
            MacroKind::Orchestration => &[Key::Name, Key::Version, Key::Accepts],
        }
    }

    /// The attribute as the user writes it, for messages.
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            MacroKind::Activity => "#[activity]",
            MacroKind::Orchestration => "#[orchestration]",
        }
    }

    /// The context type the first parameter must have.
    pub(crate) fn context_type(self) -> &'static str {
        match self {
            MacroKind::Activity => "ActivityContext",
            MacroKind::Orchestration => "OrchestrationContext",
        }
    }

    /// The error type the function's error must convert into.
    pub(crate) fn error_type(self) -> &'static str {
        match self {
            MacroKind::Activity => "ActivityError",
            MacroKind::Orchestration => "OrchestrationError",
        }
    }

    fn valid_keys_list(self) -> String {
        self.valid_keys().iter().map(|key| format!("`{key}`")).collect::<Vec<_>>().join(", ")
    }
}

/// Every attribute key of both macros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Name,
    Version,
    Accepts,
    Retry,
    Tag,
}

impl Key {
    const ALL: [Key; 5] = [Key::Name, Key::Version, Key::Accepts, Key::Retry, Key::Tag];

    fn as_str(self) -> &'static str {
        match self {
            Key::Name => "name",
            Key::Version => "version",
            Key::Accepts => "accepts",
            Key::Retry => "retry",
            Key::Tag => "tag",
        }
    }

    fn from_ident(ident: &Ident) -> Option<Key> {
        Key::ALL.into_iter().find(|key| ident == key.as_str())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The default version of an orchestration without `version = ".."`.
pub(crate) const DEFAULT_VERSION: &str = "1.0.0";

/// Parsed attribute arguments. Absent keys are `None`/empty; defaults are applied in
/// `expand.rs`, where the function name is known.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    pub(crate) version: Option<LitStr>,
    pub(crate) accepts: Vec<Accept>,
    /// `retry(..)` of an activity, checked; `None` when absent or invalid.
    pub(crate) retry: Option<Retry>,
    /// `tag = ".."` of an activity: the worker tag its calls are routed to by default.
    pub(crate) tag: Option<LitStr>,
}

/// One `OldType => upgrade_fn` entry of `accepts(..)`.
pub(crate) struct Accept {
    pub(crate) old: Type,
    pub(crate) upgrade: Expr,
}

/// Parses the attribute arguments, recording every problem in `errors`. Always returns the
/// keys it could read, so expansion can go on and report signature errors too.
pub(crate) fn parse(kind: MacroKind, tokens: TokenStream, errors: &Errors) -> Args {
    let mut args = Args::default();
    let parser = |input: ParseStream<'_>| {
        parse_entries(kind, input, errors, &mut args);
        Ok(())
    };
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
    args
}

fn parse_entries(kind: MacroKind, input: ParseStream<'_>, errors: &Errors, args: &mut Args) {
    let mut seen: Vec<Key> = Vec::new();
    while !input.is_empty() {
        parse_entry(kind, input, errors, args, &mut seen);
        if input.is_empty() {
            break;
        }
        if input.parse::<Token![,]>().is_err() {
            let bad = skip_entry(input);
            errors.error_spanned_by(bad, "expected `,` between attribute keys");
            let _ = input.parse::<Token![,]>();
        }
    }
}

/// One `key = value` or `key(..)` entry; leaves the input at the following comma (if any).
fn parse_entry(
    kind: MacroKind,
    input: ParseStream<'_>,
    errors: &Errors,
    args: &mut Args,
    seen: &mut Vec<Key>,
) {
    let ident: Ident = match input.call(syn::ext::IdentExt::parse_any) {
        Ok(ident) => ident,
        Err(_) => {
            let bad = skip_entry(input);
            let message = format!(
                "expected an attribute key; valid keys of {} are {}",
                kind.attribute(),
                kind.valid_keys_list()
            );
            if bad.is_empty() {
                errors.error_at(input.span(), message);
            } else {
                errors.error_spanned_by(bad, message);
            }
            return;
        }
    };
    let key = Key::from_ident(&ident).filter(|key| kind.valid_keys().contains(key));
    let Some(key) = key else {
        let hint = match (kind, Key::from_ident(&ident)) {
            (MacroKind::Activity, Some(Key::Version)) => {
                " (activities are not versioned: register a new activity name instead)"
            }
            (MacroKind::Activity, Some(Key::Accepts)) => " (input compatibility is an orchestration feature)",
            (MacroKind::Orchestration, Some(Key::Retry)) => {
                " (retry policies belong to activities: put `retry(..)` on the `#[activity]`)"
            }
            (MacroKind::Orchestration, Some(Key::Tag)) => {
                " (tags route activities: put `tag = ..` on the `#[activity]`, or call `.with_tag(..)` on the call)"
            }
            _ => "",
        };
        errors.error_spanned_by(
            &ident,
            format!(
                "unknown key `{ident}` for {}{hint}; valid keys are {}",
                kind.attribute(),
                kind.valid_keys_list()
            ),
        );
        skip_entry(input);
        return;
    };
    let duplicate = seen.contains(&key);
    if duplicate {
        errors.error_spanned_by(&ident, format!("duplicate key `{key}`: each key may appear once"));
    }
    seen.push(key);
    let parsed = match key {
        Key::Name | Key::Version | Key::Tag => parse_string_value(key, &ident, input, errors),
        Key::Accepts => parse_accepts(&ident, input, errors).map(Value::Accepts),
        Key::Retry => retry::parse(&ident, input, errors).map(Value::Retry),
    };
    if let Some(value) = parsed
        && !duplicate
    {
        match (key, value) {
            (Key::Name, Value::Str(lit)) => args.name = Some(lit),
            (Key::Version, Value::Str(lit)) => args.version = Some(lit),
            (Key::Accepts, Value::Accepts(list)) => args.accepts = list,
            (Key::Retry, Value::Retry(policy)) => args.retry = Some(policy),
            (Key::Tag, Value::Str(lit)) => args.tag = Some(lit),
            _ => unreachable!("value kind follows the key"),
        }
    }
}

enum Value {
    Str(LitStr),
    Accepts(Vec<Accept>),
    Retry(Retry),
}

/// `key = "literal"`.
fn parse_string_value(key: Key, ident: &Ident, input: ParseStream<'_>, errors: &Errors) -> Option<Value> {
    let example = match key {
        Key::Version => "version = \"1.0.0\"",
        Key::Tag => "tag = \"gpu\"",
        _ => "name = \"MyName\"",
    };
    if input.parse::<Token![=]>().is_err() {
        errors.error_spanned_by(ident, format!("expected `{example}`"));
        skip_entry(input);
        return None;
    }
    if input.peek(LitStr) {
        let lit: LitStr = input.parse().ok()?;
        return Some(Value::Str(lit));
    }
    let bad = skip_entry(input);
    if bad.is_empty() {
        errors.error_spanned_by(ident, format!("expected a string literal: `{example}`"));
    } else {
        errors.error_spanned_by(bad, format!("expected a string literal: `{example}`"));
    }
    None
}

/// `accepts(OldType => upgrade_fn, ...)`.
fn parse_accepts(ident: &Ident, input: ParseStream<'_>, errors: &Errors) -> Option<Vec<Accept>> {
    const EXAMPLE: &str = "accepts(OldInput => upgrade_fn, ...)";
    if !input.peek(syn::token::Paren) {
        errors.error_spanned_by(ident, format!("expected `{EXAMPLE}`"));
        skip_entry(input);
        return None;
    }
    let content = match parenthesized(input) {
        Ok(content) => content,
        Err(error) => {
            errors.push(error);
            return None;
        }
    };
    let mut list = Vec::new();
    let mut ok = true;
    while !content.is_empty() {
        let parsed = (|| -> syn::Result<Accept> {
            let old: Type = content.parse()?;
            content.parse::<Token![=>]>()?;
            let upgrade: Expr = content.parse()?;
            Ok(Accept { old, upgrade })
        })();
        match parsed {
            Ok(accept) => list.push(accept),
            Err(error) => {
                errors.push(syn::Error::new(error.span(), format!("{error}; expected `{EXAMPLE}`")));
                ok = false;
                skip_entry(&content);
            }
        }
        if content.is_empty() {
            break;
        }
        if content.parse::<Token![,]>().is_err() {
            let bad = skip_entry(&content);
            errors.error_spanned_by(bad, "expected `,` between `OldType => upgrade_fn` entries");
            ok = false;
        }
    }
    if list.is_empty() && ok {
        errors.error_spanned_by(ident, format!("`accepts` needs at least one entry: `{EXAMPLE}`"));
        return None;
    }
    ok.then_some(list)
}

pub(crate) fn parenthesized<'a>(input: ParseStream<'a>) -> syn::Result<syn::parse::ParseBuffer<'a>> {
    let content;
    syn::parenthesized!(content in input);
    Ok(content)
}

/// Consumes tokens up to (not including) the next top-level comma and returns them, so the
/// parser can resume at the next key.
pub(crate) fn skip_entry(input: ParseStream<'_>) -> TokenStream {
    let mut skipped = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        match input.parse::<TokenTree>() {
            Ok(tree) => skipped.extend([tree]),
            Err(_) => break,
        }
    }
    skipped
}

/// Parses a `version = ".."` literal with semver, underlining it on failure.
pub(crate) fn parse_version(lit: &LitStr, errors: &Errors) -> Option<semver::Version> {
    match semver::Version::parse(&lit.value()) {
        Ok(version) => Some(version),
        Err(error) => {
            errors.error_spanned_by(
                lit,
                format!(
                    "invalid orchestration version {:?}: {error}; expected a semver version such as \"1.0.0\"",
                    lit.value()
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn messages(kind: MacroKind, tokens: TokenStream) -> (Args, Vec<String>) {
        let errors = Errors::new();
        let args = parse(kind, tokens, &errors);
        let messages = match errors.check() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        };
        (args, messages)
    }

    #[test]
    fn empty_arguments_are_fine() {
        let (args, errors) = messages(MacroKind::Orchestration, quote!());
        assert!(errors.is_empty());
        assert!(args.name.is_none() && args.version.is_none() && args.accepts.is_empty());
    }

    #[test]
    fn all_orchestration_keys_parse() {
        let (args, errors) = messages(
            MacroKind::Orchestration,
            quote!(name = "ProcessOrder", version = "2.0.0", accepts(OrderV1 => upgrade, crate::Old => |o| o.into()),),
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(args.name.unwrap().value(), "ProcessOrder");
        assert_eq!(args.version.unwrap().value(), "2.0.0");
        assert_eq!(args.accepts.len(), 2);
    }

    #[test]
    fn unknown_keys_list_the_valid_ones() {
        let (_, errors) = messages(MacroKind::Activity, quote!(nme = "x", version = "1.0.0"));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0], "unknown key `nme` for #[activity]; valid keys are `name`, `retry`, `tag`");
        assert!(errors[1].contains("activities are not versioned"));
    }

    #[test]
    fn duplicate_keys_are_reported_and_the_first_wins() {
        let (args, errors) = messages(MacroKind::Orchestration, quote!(name = "A", name = "B"));
        assert_eq!(errors, ["duplicate key `name`: each key may appear once"]);
        assert_eq!(args.name.unwrap().value(), "A");
    }

    #[test]
    fn non_string_values_are_rejected() {
        let (_, errors) = messages(MacroKind::Orchestration, quote!(version = 2, name));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("expected a string literal"));
        assert!(errors[1].starts_with("expected `name = "));
    }

    #[test]
    fn retry_is_an_activity_key() {
        let (args, errors) = messages(
            MacroKind::Activity,
            quote!(name = "Flaky", retry(max_attempts = 3, backoff = "fixed", initial = "2s")),
        );
        assert!(errors.is_empty(), "{errors:?}");
        let policy = args.retry.unwrap();
        assert_eq!(policy.max_attempts, 3);
        assert_eq!(policy.backoff, retry::Backoff::Fixed(2_000));
        assert_eq!(args.name.unwrap().value(), "Flaky");

        // Errors inside `retry(..)` do not stop the keys after it.
        let (args, errors) = messages(MacroKind::Activity, quote!(retry(max_attempts = 0), name = "Flaky"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(args.retry.is_none());
        assert_eq!(args.name.unwrap().value(), "Flaky");

        let (_, errors) =
            messages(MacroKind::Activity, quote!(retry(max_attempts = 2), retry(max_attempts = 3)));
        assert_eq!(errors, ["duplicate key `retry`: each key may appear once"]);

        let (_, errors) = messages(MacroKind::Orchestration, quote!(retry(max_attempts = 2)));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("retry policies belong to activities"), "{errors:?}");
    }

    #[test]
    fn malformed_accepts_is_reported() {
        let (_, errors) = messages(MacroKind::Orchestration, quote!(accepts()));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("at least one entry"));
        let (_, errors) = messages(MacroKind::Orchestration, quote!(accepts(OrderV1)));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("expected `accepts("));
    }

    #[test]
    fn versions_are_parsed_with_semver() {
        let errors = Errors::new();
        let good: LitStr = syn::parse_quote!("2.1.0");
        assert_eq!(parse_version(&good, &errors), Some(semver::Version::new(2, 1, 0)));
        let bad: LitStr = syn::parse_quote!("1.0");
        assert_eq!(parse_version(&bad, &errors), None);
        let message = errors.check().unwrap_err().to_string();
        assert!(message.starts_with("invalid orchestration version \"1.0\""), "{message}");
    }
}
