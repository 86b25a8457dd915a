//! trybuild UI tests for the duroxide macros live in `tests/`.
