//! The compile-time determinism guard of `#[orchestration]`.
//!
//! An orchestration is replayed from its history many times, so everything it does must come
//! out the same on every replay. This module walks the body with [`syn::visit::Visit`] and
//! rejects calls whose result differs between runs (wall clock, randomness, real sleeps,
//! spawned tasks, I/O) with an error at the offending path naming the deterministic
//! replacement. It sees every expression path: calls, paths passed as values
//! (`.map(Instant::now)`), closures, async blocks, nested items, and the tokens of macro
//! invocations (`println!`, `format!`, ...), which syn leaves unparsed.
//!
//! Matching is by trailing path segments (`SystemTime::now` matches
//! `std::time::SystemTime::now`), or by leading crate (`rand::...`). What this scan cannot
//! see is documented in `docs/macros.md` (aliases, `use` imports of a bare function, calls
//! hidden in helper functions); the `clippy::disallowed_methods` net closes those.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use quote::ToTokens;
use syn::visit::{self, Visit};
use syn::{Block, ExprPath, Macro};

use crate::ctxt::Errors;

/// Why a family of calls breaks replay, and what to use instead. `{ctx}` is replaced by the
/// name of the function's context parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Clock,
    Random,
    Guid,
    Sleep,
    Spawn,
    Io,
    Select,
}

impl Family {
    fn explain(self, ctx: &str) -> String {
        match self {
            Family::Clock => format!(
                "it reads the wall clock, which differs when the orchestration replays; use `{ctx}.utc_now().await` instead"
            ),
            Family::Random => format!(
                "it is random, so a replay would take a different path; use `{ctx}.system_new_guid().await` or draw the value in an activity"
            ),
            Family::Guid => format!(
                "it returns a different id on every replay; use `{ctx}.system_new_guid().await` instead"
            ),
            Family::Sleep => format!(
                "it waits on the real clock and is not recorded in history; use `{ctx}.schedule_timer(duration).await` instead"
            ),
            Family::Spawn => format!(
                "it starts work that replay cannot see or record; run concurrent durable work with `{ctx}.join(..)`, or move the work into an activity"
            ),
            Family::Io => format!(
                "it performs I/O whose result is not recorded in history; do it in an activity and call that with `{ctx}.call(..)`"
            ),
            Family::Select => format!(
                "it picks a branch by polling order, which differs on replay; use `{ctx}.select2(..)` or `{ctx}.select(..)`, which resolve in history order"
            ),
        }
    }
}

/// How a rule matches a path's segments.
enum Pattern {
    /// The path ends with these segments.
    Suffix(&'static [&'static str]),
    /// The path starts with this crate (after an optional `::`) and goes further.
    Crate(&'static str),
    /// After an optional leading `std`, `core`, `tokio` or `async_std`, the path starts with
    /// this module and goes further (`std::fs::read`, `fs::read` after `use std::fs`).
    Module(&'static str),
}

struct Rule {
    pattern: Pattern,
    family: Family,
}

const fn suffix(segments: &'static [&'static str], family: Family) -> Rule {
    Rule { pattern: Pattern::Suffix(segments), family }
}

/// Function and value paths banned in orchestration bodies.
const PATH_RULES: &[Rule] = &[
    suffix(&["SystemTime", "now"], Family::Clock),
    suffix(&["Instant", "now"], Family::Clock),
    suffix(&["Utc", "now"], Family::Clock),
    suffix(&["Utc", "today"], Family::Clock),
    suffix(&["Local", "now"], Family::Clock),
    suffix(&["Local", "today"], Family::Clock),
    Rule { pattern: Pattern::Crate("rand"), family: Family::Random },
    Rule { pattern: Pattern::Crate("fastrand"), family: Family::Random },
    Rule { pattern: Pattern::Crate("getrandom"), family: Family::Random },
    suffix(&["thread_rng"], Family::Random),
    suffix(&["Uuid", "new_v4"], Family::Guid),
    suffix(&["Uuid", "now_v1"], Family::Guid),
    suffix(&["Uuid", "now_v6"], Family::Guid),
    suffix(&["Uuid", "now_v7"], Family::Guid),
    suffix(&["Uuid", "new_v7"], Family::Guid),
    suffix(&["time", "sleep"], Family::Sleep),
    suffix(&["time", "sleep_until"], Family::Sleep),
    suffix(&["time", "interval"], Family::Sleep),
    suffix(&["time", "interval_at"], Family::Sleep),
    suffix(&["time", "timeout"], Family::Sleep),
    suffix(&["time", "timeout_at"], Family::Sleep),
    suffix(&["thread", "sleep"], Family::Sleep),
    suffix(&["tokio", "spawn"], Family::Spawn),
    suffix(&["task", "spawn"], Family::Spawn),
    suffix(&["task", "spawn_local"], Family::Spawn),
    suffix(&["spawn_blocking"], Family::Spawn),
    suffix(&["thread", "spawn"], Family::Spawn),
    suffix(&["thread", "scope"], Family::Spawn),
    suffix(&["env", "var"], Family::Io),
    suffix(&["env", "var_os"], Family::Io),
    suffix(&["env", "vars"], Family::Io),
    suffix(&["env", "vars_os"], Family::Io),
    suffix(&["env", "args"], Family::Io),
    Rule { pattern: Pattern::Module("fs"), family: Family::Io },
    Rule { pattern: Pattern::Module("net"), family: Family::Io },
    Rule { pattern: Pattern::Module("process"), family: Family::Io },
    suffix(&["File", "open"], Family::Io),
    suffix(&["File", "create"], Family::Io),
    suffix(&["TcpStream", "connect"], Family::Io),
    suffix(&["TcpListener", "bind"], Family::Io),
    suffix(&["UdpSocket", "bind"], Family::Io),
    Rule { pattern: Pattern::Crate("reqwest"), family: Family::Io },
];

/// Macro paths banned in orchestration bodies. `select!` covers `tokio::select!` and the
/// non-biased `futures::select!`; `futures::select_biased!` polls in written order and is
/// allowed.
const MACRO_RULES: &[Rule] = &[suffix(&["select"], Family::Select)];

const STD_LIKE: &[&str] = &["std", "core", "tokio", "async_std"];

impl Pattern {
    fn matches(&self, segments: &[String]) -> bool {
        match self {
            Pattern::Suffix(suffix) => {
                segments.len() >= suffix.len()
                    && segments[segments.len() - suffix.len()..]
                        .iter()
                        .zip(suffix.iter())
                        .all(|(a, b)| a == b)
            }
            Pattern::Crate(name) => segments.len() >= 2 && segments[0] == *name,
            Pattern::Module(module) => {
                let rest = match segments.first() {
                    Some(first) if STD_LIKE.contains(&first.as_str()) => &segments[1..],
                    _ => segments,
                };
                rest.len() >= 2 && rest[0] == *module
            }
        }
    }
}

fn find(rules: &[Rule], segments: &[String]) -> Option<Family> {
    rules.iter().find(|rule| rule.pattern.matches(segments)).map(|rule| rule.family)
}

/// Scans an orchestration body, recording one error per banned path.
pub(crate) fn scan(body: &Block, context_name: &str, errors: &Errors) {
    let mut scanner = Scanner { context_name, errors };
    scanner.visit_block(body);
}

struct Scanner<'a> {
    context_name: &'a str,
    errors: &'a Errors,
}

impl Scanner<'_> {
    fn check(&self, rules: &[Rule], segments: &[String], tokens: TokenStream, bang: bool) {
        if let Some(family) = find(rules, segments) {
            let written = segments.join("::");
            let bang = if bang { "!" } else { "" };
            self.errors.error_spanned_by(
                tokens,
                format!(
                    "`{written}{bang}` is not allowed in an orchestration: {}",
                    family.explain(self.context_name)
                ),
            );
        }
    }

    /// Macro bodies are plain tokens to syn; find `a::b::c` runs in them (and nested macro
    /// invocations `a::b!`) and check them like parsed paths.
    fn scan_tokens(&self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(group) => {
                    self.scan_tokens(group.stream());
                    i += 1;
                }
                TokenTree::Ident(_) if !is_after_dot(&trees, i) => {
                    let start = i;
                    let mut segments = Vec::new();
                    let mut end = i;
                    while let TokenTree::Ident(ident) = &trees[end] {
                        segments.push(ident.to_string());
                        if is_path_sep(&trees, end + 1)
                            && matches!(trees.get(end + 3), Some(TokenTree::Ident(_)))
                        {
                            end += 3;
                        } else {
                            break;
                        }
                    }
                    let spanned: TokenStream = trees[start..=end].iter().cloned().collect();
                    let is_macro = matches!(trees.get(end + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!')
                        && matches!(trees.get(end + 2), Some(TokenTree::Group(g)) if g.delimiter() != Delimiter::None);
                    if is_macro {
                        self.check(MACRO_RULES, &segments, spanned, true);
                    } else {
                        self.check(PATH_RULES, &segments, spanned, false);
                    }
                    i = end + 1;
                }
                _ => i += 1,
            }
        }
    }
}

fn is_after_dot(trees: &[TokenTree], i: usize) -> bool {
    i > 0 && matches!(&trees[i - 1], TokenTree::Punct(p) if p.as_char() == '.')
}

fn is_path_sep(trees: &[TokenTree], i: usize) -> bool {
    matches!(
        (trees.get(i), trees.get(i + 1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
    )
}

impl<'ast> Visit<'ast> for Scanner<'_> {
    fn visit_expr_path(&mut self, node: &'ast ExprPath) {
        let mut segments: Vec<String> = Vec::new();
        // `<SystemTime>::now` is `SystemTime::now` spelled through a qualified self type.
        if let Some(qself) = &node.qself
            && qself.position == 0
            && let syn::Type::Path(ty) = &*qself.ty
            && let Some(last) = ty.path.segments.last()
        {
            segments.push(last.ident.to_string());
        }
        segments.extend(node.path.segments.iter().map(|s| s.ident.to_string()));
        self.check(PATH_RULES, &segments, node.to_token_stream(), false);
        visit::visit_expr_path(self, node);
    }

    fn visit_macro(&mut self, node: &'ast Macro) {
        let segments: Vec<String> = node.path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.check(MACRO_RULES, &segments, node.path.to_token_stream(), true);
        self.scan_tokens(node.tokens.clone());
        visit::visit_macro(self, node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn violations(body: Block) -> Vec<String> {
        let errors = Errors::new();
        scan(&body, "ctx", &errors);
        match errors.check() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn banned(body: Block) -> Vec<String> {
        violations(body).into_iter().map(|message| message.split('`').nth(1).unwrap().to_string()).collect()
    }

    #[test]
    fn every_family_is_caught() {
        let found = banned(parse_quote!({
            let _ = std::time::SystemTime::now();
            let _ = Instant::now();
            let _ = chrono::Utc::now();
            let _ = Local::now();
            let _ = rand::random::<u8>();
            let _ = rand::thread_rng();
            let _ = rand::rng();
            let _ = uuid::Uuid::new_v4();
            let _ = Uuid::now_v7();
            tokio::time::sleep(d).await;
            let _ = time::interval(d);
            let _ = tokio::time::timeout(d, f).await;
            std::thread::sleep(d);
            tokio::spawn(f);
            std::thread::spawn(f);
            tokio::task::spawn_blocking(f);
            let _ = std::env::var("X");
            let _ = std::env::vars();
            let _ = std::fs::read_to_string("x");
            let _ = tokio::fs::read("x").await;
            let _ = fs::write("x", "y");
            let _ = std::net::TcpStream::connect("x");
            let _ = tokio::net::TcpStream::connect("x").await;
            let _ = std::process::Command::new("ls");
            let _ = reqwest::get("http://x").await;
        }));
        assert_eq!(
            found,
            [
                "std::time::SystemTime::now",
                "Instant::now",
                "chrono::Utc::now",
                "Local::now",
                "rand::random",
                "rand::thread_rng",
                "rand::rng",
                "uuid::Uuid::new_v4",
                "Uuid::now_v7",
                "tokio::time::sleep",
                "time::interval",
                "tokio::time::timeout",
                "std::thread::sleep",
                "tokio::spawn",
                "std::thread::spawn",
                "tokio::task::spawn_blocking",
                "std::env::var",
                "std::env::vars",
                "std::fs::read_to_string",
                "tokio::fs::read",
                "fs::write",
                "std::net::TcpStream::connect",
                "tokio::net::TcpStream::connect",
                "std::process::Command::new",
                "reqwest::get",
            ]
        );
    }

    #[test]
    fn paths_as_values_closures_async_blocks_and_nested_items() {
        let found = banned(parse_quote!({
            let _ = Some(1).map(|_| Instant::now);
            let f = async { SystemTime::now() };
            {
                {
                    let _ = Uuid::new_v4();
                }
            }
            fn helper() {
                std::thread::sleep(d)
            }
            let _ = <SystemTime>::now();
        }));
        assert_eq!(
            found,
            ["Instant::now", "SystemTime::now", "Uuid::new_v4", "std::thread::sleep", "SystemTime::now"]
        );
    }

    #[test]
    fn macro_tokens_are_scanned() {
        let found = banned(parse_quote!({
            println!("{:?}", SystemTime::now());
            let _ = format!("{}", vec![rand::random::<u8>()].len());
            tokio::select! { _ = a => {}, _ = b => {} }
            futures::select! { _ = a => {} }
            select! { _ = a => {} }
            futures::select_biased! { _ = a => {} }
            my_macro!(inner::tokio::select! {});
        }));
        assert_eq!(
            found,
            [
                "SystemTime::now",
                "rand::random",
                "tokio::select!",
                "futures::select!",
                "select!",
                "inner::tokio::select!",
            ]
        );
    }

    #[test]
    fn no_false_positives() {
        let found = violations(parse_quote!({
            let now = ctx.utc_now().await;
            let id = ctx.system_new_guid().await;
            let rand = 4;
            let x = rand + 1;
            println!("{rand} {}", rand);
            fn now() -> u8 {
                1
            }
            let _ = now();
            let _ = my_clock::now();
            let _ = x.now();
            let _ = ctx.schedule_timer(std::time::Duration::from_secs(1)).await;
            let _ = futures::join!(a, b);
            let _ = crate::net_utils::parse(x);
            let spawn = 1;
            let _ = Duration::from_secs(spawn);
            let _ = my.fs.read();
            let _ = format!("{}", input.time.sleep);
        }));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn message_names_the_replacement_with_the_users_context_name() {
        let errors = Errors::new();
        scan(
            &parse_quote!({
                Instant::now();
            }),
            "octx",
            &errors,
        );
        let message = errors.check().unwrap_err().to_string();
        assert_eq!(
            message,
            "`Instant::now` is not allowed in an orchestration: it reads the wall clock, which differs when the orchestration replays; use `octx.utc_now().await` instead"
        );
    }
}
