//! The validated shape of an annotated function: `async fn name(ctx: Ctx, input: In) ->
//! Result<Out, E>`, with the pieces expansion needs pulled out.
//!
//! Built by `validate.rs`; nothing here checks anything.

use syn::{Ident, ItemFn, Type};

/// An `#[activity]` or `#[orchestration]` function whose signature passed validation.
pub(crate) struct Function {
    /// The user's function, untouched. Expansion renames it and keeps its body and spans.
    pub(crate) item: ItemFn,
    /// The context parameter's name when it is a plain identifier (`ctx`), used in the
    /// determinism messages so they read `ctx.utc_now()` with the user's own name.
    pub(crate) context_name: String,
    /// The input type `In` (decoded from JSON).
    pub(crate) input: Type,
    /// `Out` of `Result<Out, E>`.
    pub(crate) output: Type,
    /// `E` of `Result<Out, E>`; must convert into the macro's error type.
    pub(crate) error: Type,
}

impl Function {
    /// The function's name, which becomes the handle's name.
    pub(crate) fn ident(&self) -> &Ident {
        &self.item.sig.ident
    }
}
