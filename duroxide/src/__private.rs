//! Items the macros expand to. Not public API: no stability promise.
//!
//! Generated code names only `::duroxide::__private::..` (and `::core`/`::std`), so a crate
//! using `#[activity]`/`#[orchestration]` needs no direct dependency on serde or serde_json.

pub mod guard;

pub use async_trait::async_trait;
pub use serde;
pub use serde_json;

use crate::error::OrchestrationError;
use crate::history::ErrorDetails;

/// The boxed, sendable future every generated handle returns.
pub type BoxFuture<T> = futures::future::BoxFuture<'static, T>;

/// One input shape an orchestration tried, with serde's verdict, for the "matches none of
/// the accepted shapes" error.
#[derive(Debug)]
pub struct ShapeAttempt {
    type_name: &'static str,
    role: &'static str,
    error: Option<String>,
}

impl ShapeAttempt {
    /// Decodes `raw` as `T` on its own and keeps serde's message if that fails.
    pub fn of<T: serde::de::DeserializeOwned>(raw: &str, role: &'static str) -> Self {
        ShapeAttempt {
            type_name: std::any::type_name::<T>(),
            role,
            error: serde_json::from_str::<T>(raw).err().map(|e| e.to_string()),
        }
    }
}

/// The error for an orchestration input that matches none of its shapes: names the
/// orchestration, its version and every shape tried with serde's message for each.
pub fn undecodable_orchestration_input(
    name: &str,
    version: &str,
    attempts: &[ShapeAttempt],
) -> OrchestrationError {
    let tried: Vec<String> = attempts
        .iter()
        .map(|a| match &a.error {
            Some(error) => format!("`{}` ({}): {error}", a.type_name, a.role),
            None => format!(
                "`{}` ({}): decodes on its own but not through the compatibility enum",
                a.type_name, a.role
            ),
        })
        .collect();
    OrchestrationError::from(ErrorDetails::configuration(format!(
        "orchestration `{name}` version {version} could not decode its input; tried {} shape{}: {}",
        attempts.len(),
        if attempts.len() == 1 { "" } else { "s" },
        tried.join("; ")
    )))
}
