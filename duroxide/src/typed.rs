//! The typed layer under the `#[activity]` and `#[orchestration]` macros.
