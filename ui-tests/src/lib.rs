//! trybuild UI tests and runtime-level tests for the duroxide macros live in `tests/`:
//! `tests/ui/pass` (every accepted form), `tests/ui/fail` (every rejected form, with the
//! pinned compiler output beside it), `tests/accepts.rs` (input compatibility at run time),
//! `tests/typed_calls.rs` (typed calls end to end), `tests/retry_attr.rs`
//! (`#[activity(retry(..))]` end to end) and `tests/clippy_net.rs` (the
//! `clippy::disallowed_methods` second net, run on `clippy-fixture/`).
