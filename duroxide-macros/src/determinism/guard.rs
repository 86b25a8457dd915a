//! The type half of the determinism guard: checks that depend on a receiver's type, which
//! the path scan cannot see, are left to the compiler.
//!
//! The body is rewritten in place (user tokens keep their spans):
//! - `m.iter()` (and the other iteration methods), `t.elapsed()`, `input.read_line(..)`, when
//!   the receiver is a place (a variable, a field, a dereference or an index by a literal or
//!   a variable, so evaluating it twice changes nothing), become
//!   `({ probe of &m }, m.iter()).1`;
//! - `for pat in expr` becomes `for pat in match expr { it => { probe of &it; it } }` (a
//!   `match` keeps `expr`'s temporaries alive for the whole loop, as the loop itself does),
//!   except when `expr` is already a probed method call.
//!
//! The probes live in `duroxide::__private::guard`: they fail to compile, with a message
//! naming the replacement, exactly when the concrete type is a `HashMap`/`HashSet` (or one of
//! their iterators), a clock reading, or standard input. Calls inside macro invocations are
//! plain tokens and are not rewritten; the clippy net covers them.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, ExprForLoop, ExprMethodCall, UnOp};

/// Rewrites every guarded call and `for` loop of `body`.
pub(crate) fn guard_types(body: &mut Block) {
    Guard.visit_block_mut(body);
}

/// Which probe a method name needs.
#[derive(Clone, Copy)]
enum Probe {
    Order,
    Clock,
    Console,
}

fn probe_for(method: &str) -> Option<Probe> {
    match method {
        "iter"
        | "iter_mut"
        | "into_iter"
        | "keys"
        | "values"
        | "values_mut"
        | "into_keys"
        | "into_values"
        | "drain"
        | "union"
        | "intersection"
        | "difference"
        | "symmetric_difference" => Some(Probe::Order),
        "elapsed" => Some(Probe::Clock),
        "read_line" | "lines" | "read_to_string" | "read_to_end" => Some(Probe::Console),
        _ => None,
    }
}

/// The statement that fails to compile when `value` (an expression of a reference to the
/// value under test) has a rejected type. Spanned at `span`, so the error points at the
/// user's call.
fn check(probe: Probe, value: TokenStream, span: Span) -> TokenStream {
    let guard = quote_spanned!(span=> ::duroxide::__private::guard);
    let (traits, method, check) = match probe {
        Probe::Order => {
            (quote!(HashOrderProbe as _, OrderProbe as _), quote!(__duroxide_order), quote!(check_order))
        }
        Probe::Clock => {
            (quote!(ClockProbe as _, NotClockProbe as _), quote!(__duroxide_clock), quote!(check_clock))
        }
        Probe::Console => (
            quote!(ConsoleProbe as _, NotConsoleProbe as _),
            quote!(__duroxide_console),
            quote!(check_console),
        ),
    };
    quote_spanned! {span=>
        {
            #[allow(unused_imports)]
            use #guard::{#traits};
            #guard::#check((&#guard::Probe(#value)).#method())
        }
    }
}

/// An expression that names a place: evaluating it again reads the same value and runs no
/// user code beyond indexing.
fn is_place(expr: &Expr) -> bool {
    match expr {
        Expr::Path(path) => path.qself.is_none(),
        Expr::Field(field) => is_place(&field.base),
        Expr::Paren(paren) => is_place(&paren.expr),
        Expr::Reference(reference) => is_place(&reference.expr),
        Expr::Unary(unary) => matches!(unary.op, UnOp::Deref(_)) && is_place(&unary.expr),
        Expr::Index(index) => is_place(&index.expr) && matches!(&*index.index, Expr::Lit(_) | Expr::Path(_)),
        _ => false,
    }
}

fn probed_call(call: &ExprMethodCall) -> Option<Probe> {
    probe_for(&call.method.to_string()).filter(|_| is_place(&call.receiver))
}

struct Guard;

impl VisitMut for Guard {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        // Decided before the head is rewritten: a head that is itself a probed call needs no
        // second probe.
        let loop_head_probed = match &*expr {
            Expr::ForLoop(for_loop) => {
                matches!(&*for_loop.expr, Expr::MethodCall(call) if probed_call(call).is_some())
            }
            _ => false,
        };
        visit_mut::visit_expr_mut(self, expr);
        match expr {
            Expr::MethodCall(call) => {
                if let Some(probe) = probed_call(call) {
                    let span = call.method.span();
                    let receiver = &call.receiver;
                    let check = check(probe, quote!(&#receiver), span);
                    let rewritten = quote_spanned!(span=> (#check, #call).1);
                    *expr = syn::parse2(rewritten).expect("the guarded call is an expression");
                }
            }
            Expr::ForLoop(for_loop) if !loop_head_probed => guard_for(for_loop),
            _ => {}
        }
    }
}

fn guard_for(for_loop: &mut ExprForLoop) {
    let head = &for_loop.expr;
    let span = head.span();
    let it = syn::Ident::new("__duroxide_iterable", Span::mixed_site());
    let check = check(Probe::Order, quote!(&#it), span);
    let rewritten = quote_spanned! {span=>
        match #head {
            #it => {
                #check;
                #it
            }
        }
    };
    *for_loop.expr = syn::parse2(rewritten).expect("the guarded loop head is an expression");
}
