//! Durable key-value state per instance: what orchestration code reads and writes with
//! [`OrchestrationContext::set_value`] and its siblings, the limits on it ([`ValueLimits`])
//! and the typed error a refused write returns ([`ValueError`]).
//!
//! Every write is a decision recorded in history (`ValueSet`, `ValueCleared`,
//! `ValuesCleared`), so a replay rebuilds exactly the state the code saw; the store keeps
//! a copy of the current values beside the history, written in the same commit as the
//! turn's events, which clients read without touching the history. Reading another
//! instance's value is a durable task (`ValueReadScheduled` / `ValueReadCompleted`): the
//! runtime reads it between turns and records what it read. Not here: the store's values
//! table (`provider`) and the client calls (`client::values`).

use super::context::{OrchestrationContext, call_site};
use super::futures::{DurableFuture, TaskFuture};
use super::state::{CompletionValue, ExecutionState, lock};
use super::turn::Action;
use crate::history::{ErrorDetails, EventKind, TaskKind};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Default most keys one instance may hold: 100.
pub const DEFAULT_MAX_VALUE_KEYS: usize = 100;
/// Default longest key, in bytes (UTF-8): 256.
pub const DEFAULT_MAX_VALUE_KEY_BYTES: usize = 256;
/// Default largest value, in bytes: 64 KiB.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 64 * 1024;

/// Limits on an instance's durable values, set per runtime in
/// [`RuntimeOptions::value_limits`](crate::RuntimeOptions::value_limits).
///
/// Values travel with the instance: all of them are copied into the next execution's
/// history on continue-as-new, so the defaults keep that copy to a few megabytes at most
/// (100 keys of 64 KiB). A write past a limit is refused with a [`ValueError`] the code can
/// handle; writes already in history replay whatever the limits are now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueLimits {
    /// Most keys one instance may hold at once.
    pub max_keys: usize,
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Largest value, in bytes.
    pub max_value_bytes: usize,
}

impl Default for ValueLimits {
    fn default() -> Self {
        Self {
            max_keys: DEFAULT_MAX_VALUE_KEYS,
            max_key_bytes: DEFAULT_MAX_VALUE_KEY_BYTES,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

/// Why a value could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The key is empty, only whitespace, or contains a control character.
    #[error("value key {key:?} {problem}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The key is longer than [`ValueLimits::max_key_bytes`].
    #[error("value key is {length} bytes; the limit is {limit} bytes")]
    KeyTooLong {
        /// Its length in bytes.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// The value is larger than [`ValueLimits::max_value_bytes`].
    #[error("value of key '{key}' is {size} bytes; the limit is {limit} bytes")]
    ValueTooLarge {
        /// The key.
        key: String,
        /// The value's size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A new key would take the instance past [`ValueLimits::max_keys`].
    #[error("cannot add key '{key}': the instance already holds {limit} keys, the limit")]
    TooManyKeys {
        /// The key that did not fit.
        key: String,
        /// The limit.
        limit: usize,
    },
    /// A typed value could not be serialized.
    #[error("cannot serialize the value of key '{key}': {message}")]
    Serialize {
        /// The key.
        key: String,
        /// The serializer's message.
        message: String,
    },
    /// `get_value_from` named an instance id no store could hold.
    #[error("instance id {instance:?} {problem}")]
    InvalidInstance {
        /// The id as given.
        instance: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A stored value is not valid JSON of the requested type.
    #[error("the value of key '{key}' is not the requested type: {message}")]
    Deserialize {
        /// The key.
        key: String,
        /// The deserializer's message.
        message: String,
    },
}

impl From<ValueError> for crate::OrchestrationError {
    fn from(e: ValueError) -> Self {
        match e {
            ValueError::Serialize { .. } | ValueError::Deserialize { .. } => {
                crate::OrchestrationError::Serialization(e.to_string())
            }
            other => crate::OrchestrationError::Task(ErrorDetails::configuration(other.to_string())),
        }
    }
}

/// Checks a key against `limits` (the checks the client's reads apply too).
pub(crate) fn check_key(key: &str, limits: &ValueLimits) -> Result<(), ValueError> {
    use crate::provider::IdentifierProblem;
    match crate::provider::check_identifier(key, limits.max_key_bytes) {
        Ok(()) => Ok(()),
        Err(IdentifierProblem::TooLong { length, limit }) => Err(ValueError::KeyTooLong { length, limit }),
        Err(problem) => Err(ValueError::InvalidKey { key: key.to_string(), problem: problem.to_string() }),
    }
}

/// One write of the code, as the decision it records.
enum Write<'a> {
    Set(&'a str, &'a str),
    Clear(&'a str),
    ClearAll,
}

impl Write<'_> {
    fn event(&self, call_site: Option<String>) -> EventKind {
        match *self {
            Write::Set(key, value) => {
                EventKind::ValueSet { key: key.to_string(), value: value.to_string(), call_site }
            }
            Write::Clear(key) => EventKind::ValueCleared { key: key.to_string(), call_site },
            Write::ClearAll => EventKind::ValuesCleared { call_site },
        }
    }

    /// Whether the limits allow this write on top of `st`'s values.
    fn check(&self, st: &ExecutionState) -> Result<(), ValueError> {
        let limits = &st.env().value_limits;
        match *self {
            Write::Set(key, value) => {
                check_key(key, limits)?;
                if value.len() > limits.max_value_bytes {
                    return Err(ValueError::ValueTooLarge {
                        key: key.to_string(),
                        size: value.len(),
                        limit: limits.max_value_bytes,
                    });
                }
                if !st.values.contains_key(key) && st.values.len() >= limits.max_keys {
                    return Err(ValueError::TooManyKeys { key: key.to_string(), limit: limits.max_keys });
                }
                Ok(())
            }
            Write::Clear(key) => check_key(key, limits),
            Write::ClearAll => Ok(()),
        }
    }

    fn apply(&self, st: &mut ExecutionState) {
        match *self {
            Write::Set(key, value) => {
                st.values.insert(key.to_string(), value.to_string());
            }
            Write::Clear(key) => {
                st.values.remove(key);
            }
            Write::ClearAll => st.values.clear(),
        }
    }
}

/// Records `write`: a write history holds replays as recorded (whatever the limits are
/// now); a new one is checked against the limits first, and a refused write records
/// nothing. A replayed write that history does not hold and the limits allow is a
/// divergence (`decide` reports it).
fn record(
    st: &mut ExecutionState,
    write: Write<'_>,
    loc: &std::panic::Location<'_>,
) -> Result<(), ValueError> {
    let recorded = st.next_recorded_decision().is_some_and(|next| next.is_same_decision(&write.event(None)));
    if !recorded {
        write.check(st)?;
    }
    if st.decide(|_| write.event(call_site(loc)), |_, _| None).is_some() {
        write.apply(st);
    }
    Ok(())
}

impl OrchestrationContext {
    /// Sets a durable value of this instance. The write is recorded in history (so replay
    /// sees it), is visible to clients once the turn commits
    /// ([`Client::get_value`](crate::Client::get_value)) and survives continue-as-new.
    ///
    /// Refused, with nothing recorded, when the key is empty or too long, the value too
    /// large, or a new key would pass the instance's key limit (see [`ValueLimits`]).
    ///
    /// ```no_run
    /// # use duroxide::{OrchestrationContext, OrchestrationError};
    /// async fn counter(ctx: OrchestrationContext, _input: String) -> Result<String, OrchestrationError> {
    ///     let n: u64 = ctx.get_value("count").and_then(|v| v.parse().ok()).unwrap_or(0);
    ///     ctx.set_value("count", (n + 1).to_string())?;
    ///     Ok(n.to_string())
    /// }
    /// ```
    #[track_caller]
    pub fn set_value(&self, key: impl AsRef<str>, value: impl AsRef<str>) -> Result<(), ValueError> {
        let loc = std::panic::Location::caller();
        record(&mut lock(&self.state), Write::Set(key.as_ref(), value.as_ref()), loc)
    }

    /// This instance's value of `key` (`None`: not set). Reads the state the code built,
    /// never the store, so it is deterministic and free.
    pub fn get_value(&self, key: &str) -> Option<String> {
        lock(&self.state).values.get(key).cloned()
    }

    /// Removes a value of this instance (recorded in history; clearing a key that is not
    /// set is allowed and recorded too, so replay sees the same calls).
    #[track_caller]
    pub fn clear_value(&self, key: impl AsRef<str>) -> Result<(), ValueError> {
        let loc = std::panic::Location::caller();
        record(&mut lock(&self.state), Write::Clear(key.as_ref()), loc)
    }

    /// Removes every value of this instance (one history event).
    #[track_caller]
    pub fn clear_all(&self) {
        let loc = std::panic::Location::caller();
        // Clearing everything passes every limit.
        let _ = record(&mut lock(&self.state), Write::ClearAll, loc);
    }

    /// The keys this instance holds, sorted (byte order), never in hash order.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.state).values.keys().cloned().collect()
    }

    /// Every value this instance holds, sorted by key.
    pub fn values(&self) -> std::collections::BTreeMap<String, String> {
        lock(&self.state).values.clone()
    }

    /// Sets a value serialized as JSON (see [`set_value`](Self::set_value)).
    #[track_caller]
    pub fn set_typed<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<str>,
        value: &T,
    ) -> Result<(), ValueError> {
        let loc = std::panic::Location::caller();
        let key = key.as_ref();
        let json = serde_json::to_string(value)
            .map_err(|e| ValueError::Serialize { key: key.to_string(), message: e.to_string() })?;
        record(&mut lock(&self.state), Write::Set(key, &json), loc)
    }

    /// A value written by [`set_typed`](Self::set_typed) (or any JSON of type `T`);
    /// `Ok(None)` when not set, [`ValueError::Deserialize`] when it is not a `T`.
    pub fn get_typed<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ValueError> {
        self.get_value(key).map(|v| parse_typed(key, &v)).transpose()
    }

    /// Reads a value of another instance. The runtime reads it from the store after this
    /// turn commits and records what it read (`ValueReadCompleted`), so a replay sees the
    /// value the code saw, not today's. Resolves to `None` when the instance does not
    /// exist or holds no such key.
    #[track_caller]
    pub fn get_value_from(&self, instance: impl Into<String>, key: impl Into<String>) -> ValueReadFuture {
        let loc = std::panic::Location::caller();
        let (instance, key) = (instance.into(), key.into());
        let bad = crate::provider::check_identifier(&instance, crate::provider::MAX_INSTANCE_ID_BYTES)
            .map_err(|p| ValueError::InvalidInstance { instance: instance.clone(), problem: p.to_string() })
            .and_then(|()| check_key(&key, &lock(&self.state).env().value_limits));
        if let Err(e) = bad {
            return ValueReadFuture { task: None, refused: Some(e) };
        }
        let id = lock(&self.state).decide(
            |_| EventKind::ValueReadScheduled {
                instance: instance.clone(),
                key: key.clone(),
                call_site: call_site(loc),
            },
            |id, _| Some(Action::ReadValue { event_id: id, instance: instance.clone(), key: key.clone() }),
        );
        ValueReadFuture {
            task: Some(TaskFuture::new(self.state.clone(), id, TaskKind::ValueRead)),
            refused: None,
        }
    }

    /// [`get_value_from`](Self::get_value_from), parsed as JSON of type `T`.
    #[track_caller]
    pub fn get_typed_from<T: DeserializeOwned>(
        &self,
        instance: &str,
        key: &str,
    ) -> impl std::future::Future<Output = Result<Option<T>, ValueError>> + Send + use<T> {
        let key = key.to_string();
        let read = self.get_value_from(instance, key.clone());
        async move { read.await?.map(|v| parse_typed(&key, &v)).transpose() }
    }
}

fn parse_typed<T: DeserializeOwned>(key: &str, json: &str) -> Result<T, ValueError> {
    serde_json::from_str(json)
        .map_err(|e| ValueError::Deserialize { key: key.to_string(), message: e.to_string() })
}

/// A value of another instance, as it was when the runtime read it (`Ok(None)`: no such
/// key or instance). Refused at once with a [`ValueError`] for an unusable instance id or
/// key. Usable in `select`/`join` like any durable future.
#[must_use = "durable futures do nothing useful unless awaited"]
pub struct ValueReadFuture {
    task: Option<TaskFuture>,
    refused: Option<ValueError>,
}

impl Future for ValueReadFuture {
    type Output = Result<Option<String>, ValueError>;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(e) = this.refused.take() {
            return Poll::Ready(Err(e));
        }
        let Some(task) = this.task.as_mut() else { return Poll::Pending };
        task.poll_value().map(|v| match v {
            CompletionValue::Ok(s) => Ok(Some(s)),
            _ => Ok(None),
        })
    }
}

impl DurableFuture for ValueReadFuture {
    fn completion_seq(&self) -> Option<u64> {
        if self.refused.is_some() {
            return Some(0);
        }
        self.task.as_ref().and_then(TaskFuture::seq)
    }
}

impl std::fmt::Debug for ValueReadFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueReadFuture").field("refused", &self.refused).finish_non_exhaustive()
    }
}
