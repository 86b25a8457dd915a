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

mod guard;
mod rules;

pub(crate) use guard::guard_types;
use rules::{MACRO_RULES, PATH_RULES, Rule, find};

/// The lints every orchestration and `#[deterministic]` function is compiled under: the
/// workspace `clippy.toml`'s banned methods (what the path scan cannot see: aliases,
/// imports, methods resolved through types) and `for` loops over hash types.
pub(crate) fn clippy_net() -> TokenStream {
    quote::quote!(#[deny(clippy::disallowed_methods, clippy::iter_over_hash_type)])
}

/// [`clippy_net`] as attributes, for items built as syntax trees.
pub(crate) fn clippy_net_attributes() -> Vec<syn::Attribute> {
    vec![syn::parse_quote!(#[deny(clippy::disallowed_methods, clippy::iter_over_hash_type)])]
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
mod tests;
