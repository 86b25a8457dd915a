//! Error accumulation, so one compile reports every mistake in an annotated function.
//!
//! Validation and the determinism scan push into a [`Errors`] instead of returning at the
//! first problem. A context must be consumed with [`Errors::check`]; dropping one that was
//! never checked is a bug in this crate and panics (outside of an unwinding panic), so an
//! error can never be silently lost.

use std::cell::RefCell;
use std::fmt::Display;

use quote::ToTokens;

/// Collects `syn::Error`s; consume with [`Errors::check`].
pub(crate) struct Errors {
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Errors {
    pub(crate) fn new() -> Self {
        Errors { errors: RefCell::new(Some(Vec::new())) }
    }

    /// Records an error spanning all of `tokens`.
    pub(crate) fn error_spanned_by<T: ToTokens, M: Display>(&self, tokens: T, message: M) {
        self.push(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// Records an error at a single span.
    pub(crate) fn error_at<M: Display>(&self, span: proc_macro2::Span, message: M) {
        self.push(syn::Error::new(span, message));
    }

    /// Records an already-built error (for example one returned by a parser).
    pub(crate) fn push(&self, error: syn::Error) {
        self.errors.borrow_mut().as_mut().expect("Errors used after check").push(error);
    }

    /// Consumes the context: `Ok` when nothing was recorded, otherwise every error combined
    /// into one (each keeps its own span).
    pub(crate) fn check(self) -> Result<(), syn::Error> {
        let errors = self.errors.borrow_mut().take().expect("Errors checked twice");
        let mut iter = errors.into_iter();
        match iter.next() {
            None => Ok(()),
            Some(mut first) => {
                for rest in iter {
                    first.combine(rest);
                }
                Err(first)
            }
        }
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        if !std::thread::panicking() && self.errors.borrow().is_some() {
            panic!("duroxide-macros: an error context was dropped without being checked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    #[test]
    fn empty_context_checks_ok() {
        assert!(Errors::new().check().is_ok());
    }

    #[test]
    fn errors_are_combined_in_order() {
        let errors = Errors::new();
        errors.error_at(Span::call_site(), "first");
        errors.error_at(Span::call_site(), "second");
        let combined = errors.check().unwrap_err();
        let messages: Vec<String> = combined.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages, ["first", "second"]);
    }

    #[test]
    #[should_panic(expected = "dropped without being checked")]
    fn unchecked_context_panics() {
        let errors = Errors::new();
        errors.error_at(Span::call_site(), "lost");
    }
}
