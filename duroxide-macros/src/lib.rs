//! Procedural macros for `duroxide`. Use them through `duroxide::prelude`.
#![forbid(unsafe_code)]
