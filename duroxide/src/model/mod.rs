//! Durable formats: what duroxide writes to a store and must read back years later.
//!
//! [`history`] holds the events of the history log, [`error`] the failure details recorded
//! in them. Everything here is serde-stable (names never change, added fields are
//! `#[serde(default)]`), so histories written by older versions always load. No behaviour
//! lives here: the replay rules are in [`crate::replay`].

pub mod error;
pub mod history;
