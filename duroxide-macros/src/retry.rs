//! `retry(max_attempts = 5, backoff = "exponential", initial = "100ms", max = "30s",
//! timeout = "10s")` of `#[activity]`: the activity's default retry policy.
//!
//! Every key lives in [`RetryKey`], so the parser, the "valid keys are" messages and the docs
//! agree. Values are checked here, at compile time, each error spanning the literal at fault;
//! durations are string literals (`"250ms"`, `"10s"`, `"2m"`, `"1h"`, `"1m30s"`) turned into
//! milliseconds. `expand.rs` turns the result into `ActivityDefinition::retry_policy`.

use std::fmt;

use syn::parse::ParseStream;
use syn::{Ident, LitInt, LitStr, Token};

use crate::args::{parenthesized, skip_entry};
use crate::ctxt::Errors;

/// The keys of `retry(..)`, in documentation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetryKey {
    MaxAttempts,
    Backoff,
    Initial,
    Max,
    Timeout,
}

impl RetryKey {
    const ALL: [RetryKey; 5] =
        [RetryKey::MaxAttempts, RetryKey::Backoff, RetryKey::Initial, RetryKey::Max, RetryKey::Timeout];

    fn as_str(self) -> &'static str {
        match self {
            RetryKey::MaxAttempts => "max_attempts",
            RetryKey::Backoff => "backoff",
            RetryKey::Initial => "initial",
            RetryKey::Max => "max",
            RetryKey::Timeout => "timeout",
        }
    }

    fn from_ident(ident: &Ident) -> Option<RetryKey> {
        RetryKey::ALL.into_iter().find(|key| ident == key.as_str())
    }

    fn example(self) -> &'static str {
        match self {
            RetryKey::MaxAttempts => "max_attempts = 5",
            RetryKey::Backoff => "backoff = \"exponential\"",
            RetryKey::Initial => "initial = \"100ms\"",
            RetryKey::Max => "max = \"30s\"",
            RetryKey::Timeout => "timeout = \"10s\"",
        }
    }

    fn valid_list() -> String {
        RetryKey::ALL.iter().map(|key| format!("`{key}`")).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for RetryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The backoff kinds, as written in `backoff = ".."`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BackoffKind {
    None,
    Fixed,
    Linear,
    Exponential,
}

impl BackoffKind {
    const ALL: [BackoffKind; 4] =
        [BackoffKind::None, BackoffKind::Fixed, BackoffKind::Linear, BackoffKind::Exponential];

    fn as_str(self) -> &'static str {
        match self {
            BackoffKind::None => "none",
            BackoffKind::Fixed => "fixed",
            BackoffKind::Linear => "linear",
            BackoffKind::Exponential => "exponential",
        }
    }

    fn valid_list() -> String {
        BackoffKind::ALL.iter().map(|kind| format!("\"{}\"", kind.as_str())).collect::<Vec<_>>().join(", ")
    }
}

/// The backoff when `backoff = ".."` is absent.
pub(crate) const DEFAULT_BACKOFF: BackoffKind = BackoffKind::Exponential;
/// The wait before the second attempt when `initial = ".."` is absent (as `RetryPolicy::default()`).
pub(crate) const DEFAULT_INITIAL_MS: u64 = 1_000;
/// The longest wait when `max = ".."` is absent (as `RetryPolicy::default()`), raised to
/// `initial` when that is longer.
pub(crate) const DEFAULT_MAX_MS: u64 = 60_000;

/// A checked retry policy; durations in milliseconds. Mirrors `duroxide::RetryPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Retry {
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) timeout_ms: Option<u64>,
}

/// Mirrors `duroxide::Backoff`; durations in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backoff {
    None,
    Fixed(u64),
    Linear { initial_ms: u64, max_ms: u64 },
    Exponential { initial_ms: u64, max_ms: u64 },
}

impl fmt::Display for Retry {
    /// "5 attempts, exponential backoff 100ms..30s, 10s per attempt", for the handle's docs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.max_attempts == 1 { "" } else { "s" };
        write!(f, "{} attempt{plural}", self.max_attempts)?;
        match self.backoff {
            Backoff::None => f.write_str(", no backoff")?,
            Backoff::Fixed(ms) => write!(f, ", fixed backoff {}", format_ms(ms))?,
            Backoff::Linear { initial_ms, max_ms } => {
                write!(f, ", linear backoff {}..{}", format_ms(initial_ms), format_ms(max_ms))?
            }
            Backoff::Exponential { initial_ms, max_ms } => {
                write!(f, ", exponential backoff {}..{}", format_ms(initial_ms), format_ms(max_ms))?
            }
        }
        if let Some(ms) = self.timeout_ms {
            write!(f, ", {} per attempt", format_ms(ms))?;
        }
        Ok(())
    }
}

/// Milliseconds in the largest unit that divides them, as a duration literal reads.
pub(crate) fn format_ms(ms: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(3_600_000, "h"), (60_000, "m"), (1_000, "s")];
    for (size, unit) in UNITS {
        if ms != 0 && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

const DURATION_HINT: &str = "expected a whole number followed by `ms`, `s`, `m` or `h`, such as \"250ms\", \"10s\", \"2m\", \"1h\" or \"1m30s\"";

/// Parses a duration literal's text into milliseconds: one or more `<digits><unit>` parts,
/// units `ms`, `s`, `m`, `h`, no spaces (`"250ms"`, `"1m30s"`). The error says what is wrong
/// and what is expected.
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err(format!("the duration is empty; {DURATION_HINT}"));
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            let found = rest.chars().next().unwrap_or_default();
            return Err(format!("expected a number where `{found}` is; {DURATION_HINT}"));
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            let next = after.chars().next();
            return Err(match next {
                None => format!("`{number}` is missing its unit; {DURATION_HINT}"),
                Some('.') => {
                    format!("fractions are not supported (write \"1500ms\", not \"1.5s\"); {DURATION_HINT}")
                }
                Some(c) => format!("unexpected `{c}` after `{number}`; {DURATION_HINT}"),
            });
        }
        let unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            other => return Err(format!("unknown unit `{other}`; {DURATION_HINT}")),
        };
        let too_long = || format!("the duration is too long (at most {} milliseconds)", u64::MAX);
        let value: u64 = number.parse().map_err(|_| too_long())?;
        let part = value.checked_mul(unit_ms).ok_or_else(too_long)?;
        total = total.checked_add(part).ok_or_else(too_long)?;
        rest = after;
    }
    Ok(total)
}

/// What was written for one key, kept with its spans for the cross-key checks.
struct Written<T> {
    key: Ident,
    lit: LitStr,
    value: T,
}

/// The keys as read; `Err(())` marks a key whose value was already reported as bad, so no
/// follow-on error is raised for it.
#[derive(Default)]
struct Raw {
    max_attempts: Option<Result<u32, ()>>,
    backoff: Option<Result<Written<BackoffKind>, ()>>,
    initial: Option<Result<Written<u64>, ()>>,
    max: Option<Result<Written<u64>, ()>>,
    timeout: Option<Result<Written<u64>, ()>>,
}

const EXAMPLE: &str =
    "retry(max_attempts = 5, backoff = \"exponential\", initial = \"100ms\", max = \"30s\")";

/// Parses `retry(..)` (the input is at the parentheses, `ident` is `retry`). Records every
/// problem in `errors`; returns the policy only when all of it is valid.
pub(crate) fn parse(ident: &Ident, input: ParseStream<'_>, errors: &Errors) -> Option<Retry> {
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
    let mut raw = Raw::default();
    let mut ok = true;
    let mut seen: Vec<RetryKey> = Vec::new();
    while !content.is_empty() {
        ok &= parse_entry(&content, errors, &mut raw, &mut seen);
        if content.is_empty() {
            break;
        }
        if content.parse::<Token![,]>().is_err() {
            let bad = skip_entry(&content);
            errors.error_spanned_by(bad, "expected `,` between the keys of `retry(..)`");
            ok = false;
            let _ = content.parse::<Token![,]>();
        }
    }
    let retry = resolve(ident, raw, errors);
    retry.filter(|_| ok)
}

/// One `key = value` of `retry(..)`; returns false when it was reported as bad.
fn parse_entry(input: ParseStream<'_>, errors: &Errors, raw: &mut Raw, seen: &mut Vec<RetryKey>) -> bool {
    let ident: Ident = match input.call(syn::ext::IdentExt::parse_any) {
        Ok(ident) => ident,
        Err(_) => {
            let bad = skip_entry(input);
            let message = format!("expected a key of `retry(..)`; valid keys are {}", RetryKey::valid_list());
            if bad.is_empty() {
                errors.error_at(input.span(), message);
            } else {
                errors.error_spanned_by(bad, message);
            }
            return false;
        }
    };
    let Some(key) = RetryKey::from_ident(&ident) else {
        errors.error_spanned_by(
            &ident,
            format!("unknown key `{ident}` in `retry(..)`; valid keys are {}", RetryKey::valid_list()),
        );
        skip_entry(input);
        return false;
    };
    if seen.contains(&key) {
        errors.error_spanned_by(
            &ident,
            format!("duplicate key `{key}` in `retry(..)`: each key may appear once"),
        );
        skip_entry(input);
        return false;
    }
    seen.push(key);
    if input.parse::<Token![=]>().is_err() {
        errors.error_spanned_by(&ident, format!("expected `{}`", key.example()));
        skip_entry(input);
        match key {
            RetryKey::MaxAttempts => raw.max_attempts = Some(Err(())),
            RetryKey::Backoff => raw.backoff = Some(Err(())),
            RetryKey::Initial => raw.initial = Some(Err(())),
            RetryKey::Max => raw.max = Some(Err(())),
            RetryKey::Timeout => raw.timeout = Some(Err(())),
        }
        return false;
    }
    match key {
        RetryKey::MaxAttempts => {
            let value = max_attempts(input, errors);
            raw.max_attempts = Some(value);
            value.is_ok()
        }
        RetryKey::Backoff => {
            let value = string(key, input, errors).and_then(|lit| backoff(ident, lit, errors));
            let good = value.is_ok();
            raw.backoff = Some(value);
            good
        }
        RetryKey::Initial | RetryKey::Max | RetryKey::Timeout => {
            let value = string(key, input, errors).and_then(|lit| duration(ident, lit, errors));
            let good = value.is_ok();
            match key {
                RetryKey::Initial => raw.initial = Some(value),
                RetryKey::Max => raw.max = Some(value),
                _ => raw.timeout = Some(value),
            }
            good
        }
    }
}

/// `max_attempts = N`, `N` a `u32` of at least 1.
fn max_attempts(input: ParseStream<'_>, errors: &Errors) -> Result<u32, ()> {
    const EXPECTED: &str =
        "expected a whole number of at least 1: `max_attempts = 5` (the first attempt included)";
    if !input.peek(LitInt) {
        let bad = skip_entry(input);
        errors.error_spanned_by(bad, EXPECTED);
        return Err(());
    }
    let lit: LitInt = input.parse().map_err(|error| errors.push(error))?;
    if !matches!(lit.suffix(), "" | "u32") {
        errors.error_spanned_by(
            &lit,
            format!("`max_attempts` is a `u32`; remove the `{}` suffix", lit.suffix()),
        );
        return Err(());
    }
    match lit.base10_parse::<u32>() {
        Ok(0) => {
            errors.error_spanned_by(
                &lit,
                "`max_attempts` must be at least 1 (it counts every attempt, the first included)",
            );
            Err(())
        }
        Ok(attempts) => Ok(attempts),
        Err(_) => {
            errors.error_spanned_by(&lit, format!("`max_attempts` is too large (at most {})", u32::MAX));
            Err(())
        }
    }
}

/// `key = "..."`.
fn string(key: RetryKey, input: ParseStream<'_>, errors: &Errors) -> Result<LitStr, ()> {
    if input.peek(LitStr) {
        return input.parse::<LitStr>().map_err(|error| errors.push(error));
    }
    let bad = skip_entry(input);
    let hint = match key {
        RetryKey::Backoff => String::new(),
        _ => " (durations are strings with a unit)".to_owned(),
    };
    errors.error_spanned_by(bad, format!("expected a string literal: `{}`{hint}", key.example()));
    Err(())
}

fn backoff(key: Ident, lit: LitStr, errors: &Errors) -> Result<Written<BackoffKind>, ()> {
    let text = lit.value();
    match BackoffKind::ALL.into_iter().find(|kind| kind.as_str() == text) {
        Some(value) => Ok(Written { key, lit, value }),
        None => {
            errors.error_spanned_by(
                &lit,
                format!("unknown backoff {text:?}; expected one of {}", BackoffKind::valid_list()),
            );
            Err(())
        }
    }
}

fn duration(key: Ident, lit: LitStr, errors: &Errors) -> Result<Written<u64>, ()> {
    let text = lit.value();
    match parse_duration(&text) {
        Ok(value) => Ok(Written { key, lit, value }),
        Err(message) => {
            errors.error_spanned_by(&lit, format!("invalid duration {text:?} for `{key}`: {message}"));
            Err(())
        }
    }
}

/// The cross-key checks and the defaults. Reports only what the per-key checks could not
/// see, so one mistake gives one error.
fn resolve(ident: &Ident, raw: Raw, errors: &Errors) -> Option<Retry> {
    let mut ok = true;
    let max_attempts = match raw.max_attempts {
        Some(Ok(attempts)) => Some(attempts),
        Some(Err(())) => None,
        None => {
            errors.error_spanned_by(
                ident,
                "`retry(..)` needs `max_attempts = N`: the number of attempts, the first included (at least 1)",
            );
            None
        }
    };
    let kind = match &raw.backoff {
        Some(Ok(written)) => written.value,
        Some(Err(())) => return None,
        None => DEFAULT_BACKOFF,
    };
    let initial = raw.initial.transpose().ok()?;
    let max = raw.max.transpose().ok()?;
    let timeout = raw.timeout.transpose().ok()?;

    let backoff = match kind {
        BackoffKind::None => {
            for written in [&initial, &max].into_iter().flatten() {
                errors.error_spanned_by(
                    &written.key,
                    format!(
                        "`{}` has no effect with `backoff = \"none\"`: remove it, or choose a backoff",
                        written.key
                    ),
                );
                ok = false;
            }
            Backoff::None
        }
        BackoffKind::Fixed => {
            if let Some(max) = &max {
                errors.error_spanned_by(
                    &max.key,
                    "`max` has no effect with `backoff = \"fixed\"`: the wait is always `initial`",
                );
                ok = false;
            }
            Backoff::Fixed(initial_ms(&initial, kind, errors, &mut ok))
        }
        BackoffKind::Linear | BackoffKind::Exponential => {
            let initial_ms = initial_ms(&initial, kind, errors, &mut ok);
            let max_ms = match &max {
                Some(max) => {
                    if initial_ms > max.value {
                        match &initial {
                            Some(initial) => errors.error_spanned_by(
                                &initial.lit,
                                format!(
                                    "`initial` ({}) is longer than `max` ({}); the first wait cannot exceed the longest",
                                    format_ms(initial.value),
                                    format_ms(max.value)
                                ),
                            ),
                            None => errors.error_spanned_by(
                                &max.lit,
                                format!(
                                    "`max` ({}) is shorter than the default `initial` ({}); set `initial` too",
                                    format_ms(max.value),
                                    format_ms(DEFAULT_INITIAL_MS)
                                ),
                            ),
                        }
                        ok = false;
                    }
                    max.value
                }
                None => DEFAULT_MAX_MS.max(initial_ms),
            };
            match kind {
                BackoffKind::Linear => Backoff::Linear { initial_ms, max_ms },
                _ => Backoff::Exponential { initial_ms, max_ms },
            }
        }
    };
    if let Some(timeout) = &timeout
        && timeout.value == 0
    {
        errors.error_spanned_by(&timeout.lit, "the per-attempt `timeout` must be longer than zero");
        ok = false;
    }
    let max_attempts = max_attempts?;
    ok.then_some(Retry { max_attempts, backoff, timeout_ms: timeout.map(|t| t.value) })
}

/// `initial` (or its default) for a backoff that waits; zero is rejected.
fn initial_ms(initial: &Option<Written<u64>>, kind: BackoffKind, errors: &Errors, ok: &mut bool) -> u64 {
    match initial {
        None => DEFAULT_INITIAL_MS,
        Some(written) => {
            if written.value == 0 {
                errors.error_spanned_by(
                    &written.lit,
                    format!(
                        "`initial` must be longer than zero for `backoff = \"{}\"`; use `backoff = \"none\"` to retry at once",
                        kind.as_str()
                    ),
                );
                *ok = false;
            }
            written.value
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::TokenStream;
    use quote::quote;
    use syn::parse::Parser;

    #[test]
    fn durations_parse_into_milliseconds() {
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("0ms"), Ok(0));
        assert_eq!(parse_duration("10s"), Ok(10_000));
        assert_eq!(parse_duration("2m"), Ok(120_000));
        assert_eq!(parse_duration("1h"), Ok(3_600_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000));
        assert_eq!(parse_duration("1h1m1s1ms"), Ok(3_661_001));
        assert_eq!(parse_duration("007s"), Ok(7_000));
    }

    #[test]
    fn bad_durations_say_why() {
        let error = |text: &str| parse_duration(text).unwrap_err();
        assert!(error("").starts_with("the duration is empty"));
        assert!(error("100").starts_with("`100` is missing its unit"));
        assert!(error("1.5s").starts_with("fractions are not supported"));
        assert!(error("5d").starts_with("unknown unit `d`"));
        assert!(error("10 s").starts_with("unexpected ` ` after `10`"));
        assert!(error("10sec").starts_with("unknown unit `sec`"));
        assert!(error("10S").starts_with("unknown unit `S`"));
        assert!(error("s").starts_with("expected a number where `s` is"));
        assert!(error("-1s").starts_with("expected a number where `-` is"));
        assert!(error("99999999999999999999ms").starts_with("the duration is too long"));
        assert!(error("18446744073709551615h").starts_with("the duration is too long"));
        assert!(error("5d").contains("such as \"250ms\""));
    }

    #[test]
    fn milliseconds_format_in_the_largest_unit() {
        assert_eq!(format_ms(0), "0ms");
        assert_eq!(format_ms(250), "250ms");
        assert_eq!(format_ms(1_500), "1500ms");
        assert_eq!(format_ms(30_000), "30s");
        assert_eq!(format_ms(120_000), "2m");
        assert_eq!(format_ms(7_200_000), "2h");
    }

    /// Parses `tokens` as the inside of `retry(..)`.
    fn retry(tokens: TokenStream) -> (Option<Retry>, Vec<String>) {
        let errors = Errors::new();
        let ident: Ident = syn::parse_quote!(retry);
        let parser = |input: ParseStream<'_>| Ok(parse(&ident, input, &errors));
        let retry = parser.parse2(quote!((#tokens))).unwrap();
        let messages = match errors.check() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        };
        (retry, messages)
    }

    #[test]
    fn the_issue_example_parses() {
        let (retry, errors) =
            retry(quote!(max_attempts = 5, backoff = "exponential", initial = "100ms", max = "30s"));
        assert!(errors.is_empty(), "{errors:?}");
        let retry = retry.unwrap();
        assert_eq!(
            retry,
            Retry {
                max_attempts: 5,
                backoff: Backoff::Exponential { initial_ms: 100, max_ms: 30_000 },
                timeout_ms: None
            }
        );
        assert_eq!(retry.to_string(), "5 attempts, exponential backoff 100ms..30s");
    }

    #[test]
    fn each_backoff_and_the_defaults() {
        let (retry_of, _) = retry(quote!(max_attempts = 3));
        assert_eq!(
            retry_of.unwrap().backoff,
            Backoff::Exponential { initial_ms: DEFAULT_INITIAL_MS, max_ms: DEFAULT_MAX_MS }
        );
        let (r, e) = retry(quote!(max_attempts = 2, backoff = "none", timeout = "5s",));
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(r.unwrap(), Retry { max_attempts: 2, backoff: Backoff::None, timeout_ms: Some(5_000) });
        let (r, _) = retry(quote!(backoff = "fixed", initial = "250ms", max_attempts = 4u32));
        assert_eq!(r.unwrap().backoff, Backoff::Fixed(250));
        let (r, _) = retry(quote!(max_attempts = 4, backoff = "fixed"));
        assert_eq!(r.unwrap().backoff, Backoff::Fixed(DEFAULT_INITIAL_MS));
        let (r, _) = retry(quote!(max_attempts = 4, backoff = "linear", initial = "1s", max = "1s"));
        assert_eq!(r.unwrap().backoff, Backoff::Linear { initial_ms: 1_000, max_ms: 1_000 });
        // A default `max` never undercuts an explicit `initial`.
        let (r, _) = retry(quote!(max_attempts = 4, initial = "2m"));
        assert_eq!(r.unwrap().backoff, Backoff::Exponential { initial_ms: 120_000, max_ms: 120_000 });
    }

    #[test]
    fn bad_values_are_reported_each_once() {
        let (r, e) = retry(quote!(max_attempts = 0, backoff = "random", initial = "1.5s", timeout = 10));
        assert!(r.is_none());
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].starts_with("`max_attempts` must be at least 1"));
        assert!(e[1].starts_with(
            "unknown backoff \"random\"; expected one of \"none\", \"fixed\", \"linear\", \"exponential\""
        ));
        assert!(e[2].starts_with("invalid duration \"1.5s\" for `initial`: fractions"));
        assert!(e[3].starts_with("expected a string literal: `timeout = \"10s\"`"));
        let (_, e) = retry(quote!(max_attempts = "5"));
        assert_eq!(
            e,
            ["expected a whole number of at least 1: `max_attempts = 5` (the first attempt included)"]
        );
        let (_, e) = retry(quote!(max_attempts = 5i64));
        assert_eq!(e, ["`max_attempts` is a `u32`; remove the `i64` suffix"]);
        let (_, e) = retry(quote!(max_attempts = 4294967296));
        assert_eq!(e, ["`max_attempts` is too large (at most 4294967295)"]);
        let (_, e) = retry(quote!(max_attempts = 3, timeout = "0s"));
        assert_eq!(e, ["the per-attempt `timeout` must be longer than zero"]);
        let (_, e) = retry(quote!(max_attempts = 3, backoff = "linear", initial = "0ms"));
        assert!(e[0].starts_with("`initial` must be longer than zero for `backoff = \"linear\"`"), "{e:?}");
    }

    #[test]
    fn unknown_duplicate_and_missing_keys() {
        let (r, e) = retry(quote!(max_attempts = 3, delay = "1s", max_attempts = 4));
        assert!(r.is_none());
        assert_eq!(
            e,
            [
                "unknown key `delay` in `retry(..)`; valid keys are `max_attempts`, `backoff`, `initial`, `max`, `timeout`",
                "duplicate key `max_attempts` in `retry(..)`: each key may appear once",
            ]
        );
        let (r, e) = retry(quote!(backoff = "none"));
        assert!(r.is_none());
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("`retry(..)` needs `max_attempts = N`"));
        let (_, e) = retry(quote!(max_attempts));
        assert_eq!(e, ["expected `max_attempts = 5`"]);
        let (_, e) = retry(quote!());
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("`retry(..)` needs `max_attempts = N`"));
    }

    #[test]
    fn keys_that_do_not_fit_the_backoff() {
        let (_, e) = retry(quote!(max_attempts = 3, initial = "1m", max = "30s"));
        assert_eq!(
            e,
            ["`initial` (1m) is longer than `max` (30s); the first wait cannot exceed the longest"]
        );
        let (_, e) = retry(quote!(max_attempts = 3, max = "500ms"));
        assert_eq!(e, ["`max` (500ms) is shorter than the default `initial` (1s); set `initial` too"]);
        let (_, e) = retry(quote!(max_attempts = 3, backoff = "none", initial = "1s", max = "2s"));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("`initial` has no effect with `backoff = \"none\"`"));
        assert!(e[1].starts_with("`max` has no effect with `backoff = \"none\"`"));
        let (_, e) = retry(quote!(max_attempts = 3, backoff = "fixed", max = "2s"));
        assert_eq!(e, ["`max` has no effect with `backoff = \"fixed\"`: the wait is always `initial`"]);
    }

    #[test]
    fn not_parenthesized() {
        let errors = Errors::new();
        let ident: Ident = syn::parse_quote!(retry);
        let parser = |input: ParseStream<'_>| Ok(parse(&ident, input, &errors));
        assert!(parser.parse2(quote!(= 5)).unwrap().is_none());
        let message = errors.check().unwrap_err().to_string();
        assert!(message.starts_with("expected `retry(max_attempts = 5"), "{message}");
    }
}
