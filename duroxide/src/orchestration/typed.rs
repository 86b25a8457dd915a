//! The typed layer under the `#[activity]` and `#[orchestration]` macros.
//!
//! The macros turn a function into a *handle*: a unit struct that implements
//! [`ActivityDefinition`] or [`OrchestrationDefinition`] (its registered name, version, input
//! and output types). Everything typed takes such a handle and does the JSON work that the
//! string-typed API leaves to the caller:
//! - registration: [`ActivityRegistryBuilder::register_typed`],
//!   [`OrchestrationRegistryBuilder::register_typed`];
//! - calls from an orchestration: [`OrchestrationContext::call`] (activities),
//!   [`OrchestrationContext::call_sub_orchestration`];
//! - the client: [`Client::start_typed`], [`Client::wait_for_typed`].
//!
//! Input types are associated types of the handle, so passing the wrong input is a compile
//! error. Decoding failures never panic: they fail the activity, the instance or the call with
//! a message that names the activity or orchestration, the expected Rust type and serde's
//! message. The string API stays available beside all this for dynamic cases.

use std::any::type_name;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ActivityFuture, DurableFuture, OrchestrationContext, SubOrchestrationFuture};
use crate::activity::ActivityContext;
use crate::client::{Client, ClientError, OrchestrationStatus};
use crate::error::{ActivityError, OrchestrationError};
use crate::history::ErrorDetails;
use crate::registry::{ActivityRegistryBuilder, OrchestrationRegistryBuilder};

/// A typed activity: what `#[activity]` implements for its handle.
///
/// Implement it by hand only when the macro does not fit; the handle must be a cheap `Copy`
/// value (the macro uses a unit struct).
pub trait ActivityDefinition: Copy + Send + Sync + 'static {
    /// The name the activity is registered and scheduled under.
    const NAME: &'static str;
    /// The input, decoded from the JSON the orchestration sent.
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// The output, encoded to JSON for the orchestration's history.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Runs the activity on a decoded input.
    fn invoke(
        self,
        ctx: ActivityContext,
        input: Self::Input,
    ) -> BoxFuture<'static, Result<Self::Output, ActivityError>>;

    /// The default retry policy of this activity (`#[activity(retry(..))]`), used by
    /// [`OrchestrationContext::call_with_retry`] when no policy is given.
    fn retry_policy() -> Option<crate::RetryPolicy> {
        None
    }

    /// The worker tag calls of this activity are routed to (`#[activity(tag = "gpu")]`;
    /// `None`: untagged). [`TypedFuture::with_tag`] overrides it for one call.
    const TAG: Option<&'static str> = None;
}

/// A typed, versioned orchestration: what `#[orchestration]` implements for its handle.
pub trait OrchestrationDefinition: Copy + Send + Sync + 'static {
    /// The name the orchestration is registered and started under.
    const NAME: &'static str;
    /// Its semver version (`"1.0.0"` unless the attribute says otherwise).
    const VERSION: &'static str;
    /// The current input shape.
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// The output, recorded as the instance's JSON result.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Runs the orchestration on a decoded input.
    fn invoke(
        self,
        ctx: OrchestrationContext,
        input: Self::Input,
    ) -> BoxFuture<'static, Result<Self::Output, OrchestrationError>>;

    /// Decodes the raw input. The default accepts the current shape only;
    /// `#[orchestration(accepts(..))]` overrides it to also accept older shapes.
    fn decode_input(raw: &str) -> Result<Self::Input, OrchestrationError> {
        serde_json::from_str(raw).map_err(|_| {
            crate::__private::undecodable_orchestration_input(
                Self::NAME,
                Self::VERSION,
                &[crate::__private::ShapeAttempt::of::<Self::Input>(raw, "current input")],
            )
        })
    }
}

/// Decodes, runs and encodes one activity attempt: the string-typed handler behind
/// [`ActivityRegistryBuilder::register_typed`].
fn run_activity<A: ActivityDefinition>(
    activity: A,
    ctx: ActivityContext,
    raw: String,
) -> BoxFuture<'static, Result<String, ActivityError>> {
    Box::pin(async move {
        let input: A::Input = serde_json::from_str(&raw).map_err(|e| {
            // Retrying cannot make the same input decode.
            ActivityError::non_retryable(format!(
                "activity `{}` could not decode its input as `{}`: {e}",
                A::NAME,
                type_name::<A::Input>()
            ))
        })?;
        let output = activity.invoke(ctx, input).await?;
        serde_json::to_string(&output).map_err(|e| {
            ActivityError::non_retryable(format!(
                "activity `{}` could not encode its output `{}`: {e}",
                A::NAME,
                type_name::<A::Output>()
            ))
        })
    })
}

/// Decodes, runs and encodes an orchestration: the handler behind
/// [`OrchestrationRegistryBuilder::register_typed`].
fn run_orchestration<O: OrchestrationDefinition>(
    orchestration: O,
    ctx: OrchestrationContext,
    raw: String,
) -> BoxFuture<'static, Result<String, OrchestrationError>> {
    Box::pin(async move {
        let input = O::decode_input(&raw)?;
        let output = orchestration.invoke(ctx, input).await?;
        serde_json::to_string(&output).map_err(|e| {
            OrchestrationError::from(ErrorDetails::configuration(format!(
                "orchestration `{}` version {} could not encode its output `{}`: {e}",
                O::NAME,
                O::VERSION,
                type_name::<O::Output>()
            )))
        })
    })
}

impl ActivityRegistryBuilder {
    /// Registers an `#[activity]` under its name, decoding input and encoding output:
    /// `.register_typed(reserve_stock)`.
    pub fn register_typed<A: ActivityDefinition>(self, activity: A) -> Self {
        self.register(A::NAME, move |ctx: ActivityContext, input: String| run_activity(activity, ctx, input))
    }
}

impl OrchestrationRegistryBuilder {
    /// Registers an `#[orchestration]` under its name and version:
    /// `.register_typed(process_order)`.
    pub fn register_typed<O: OrchestrationDefinition>(self, orchestration: O) -> Self {
        self.register_versioned(O::NAME, O::VERSION, move |ctx: OrchestrationContext, input: String| {
            run_orchestration(orchestration, ctx, input)
        })
    }
}

/// A durable future with a typed output: the JSON result of the wrapped activity or
/// sub-orchestration decoded as `T`. Returned by [`OrchestrationContext::call`] and
/// [`OrchestrationContext::call_sub_orchestration`]; usable with `select2`/`select`/`join`
/// like the future it wraps.
#[must_use = "durable futures do nothing useful unless awaited; dropping one cancels its work"]
pub struct TypedFuture<F, T> {
    state: TypedState<F>,
    /// `activity `X`` or `sub-orchestration `Y` version Z`, for decode errors.
    what: &'static str,
    name: &'static str,
    _output: PhantomData<fn() -> T>,
}

enum TypedState<F> {
    Scheduled(F),
    /// The input could not be encoded, so nothing was scheduled; the error is reported once.
    Failed(Option<ErrorDetails>),
}

impl<F, T> TypedFuture<F, T> {
    fn new(state: TypedState<F>, what: &'static str, name: &'static str) -> Self {
        TypedFuture { state, what, name, _output: PhantomData }
    }
}

impl<T> TypedFuture<ActivityFuture, T> {
    /// Routes this typed activity call to the runtimes that serve `tag`, overriding the
    /// activity's default (`#[activity(tag = ..)]`); see [`ActivityFuture::with_tag`].
    pub fn with_tag(self, tag: impl Into<String>) -> Self {
        let state = match self.state {
            TypedState::Scheduled(inner) => TypedState::Scheduled(inner.with_tag(tag)),
            failed => failed,
        };
        TypedFuture { state, ..self }
    }
}

impl<F, T> std::fmt::Debug for TypedFuture<F, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedFuture")
            .field("what", &self.what)
            .field("name", &self.name)
            .field("output", &type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<F, T> Future for TypedFuture<F, T>
where
    F: Future<Output = Result<String, ErrorDetails>> + Unpin,
    T: DeserializeOwned,
{
    type Output = Result<T, ErrorDetails>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            TypedState::Failed(error) => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| ErrorDetails::configuration("typed future polled after completion")))),
            TypedState::Scheduled(inner) => match Pin::new(inner).poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(details)) => Poll::Ready(Err(details)),
                Poll::Ready(Ok(raw)) => Poll::Ready(serde_json::from_str(&raw).map_err(|e| {
                    ErrorDetails::configuration(format!(
                        "the output of {} `{}` does not decode as `{}`: {e}",
                        this.what,
                        this.name,
                        type_name::<T>()
                    ))
                })),
            },
        }
    }
}

impl<F, T> DurableFuture for TypedFuture<F, T>
where
    F: DurableFuture<Output = Result<String, ErrorDetails>>,
    T: DeserializeOwned,
{
    fn completion_seq(&self) -> Option<u64> {
        match &self.state {
            TypedState::Scheduled(inner) => inner.completion_seq(),
            // Like any error known at scheduling time: ready at once, first in history order.
            TypedState::Failed(_) => Some(0),
        }
    }
}

fn encode_input<T: Serialize>(what: &str, name: &str, input: &T) -> Result<String, ErrorDetails> {
    serde_json::to_string(input).map_err(|e| {
        ErrorDetails::configuration(format!(
            "could not encode the input of {what} `{name}` (`{}`): {e}",
            type_name::<T>()
        ))
    })
}

impl OrchestrationContext {
    /// Schedules a typed activity: `ctx.call(reserve_stock, order).await?`. The input type is
    /// checked by the compiler; the output is decoded from the activity's JSON result.
    #[track_caller]
    pub fn call<A: ActivityDefinition>(
        &self,
        activity: A,
        input: A::Input,
    ) -> TypedFuture<ActivityFuture, A::Output> {
        let _ = activity;
        let loc = std::panic::Location::caller();
        let tag = A::TAG.map(str::to_string);
        let state = match encode_input("activity", A::NAME, &input) {
            Ok(json) => TypedState::Scheduled(self.activity_at(loc, A::NAME.to_string(), json, None, tag)),
            Err(error) => TypedState::Failed(Some(error)),
        };
        TypedFuture::new(state, "activity", A::NAME)
    }

    /// Starts a typed sub-orchestration pinned to the handle's version (the input type
    /// belongs to that version) and waits for its typed output.
    #[track_caller]
    pub fn call_sub_orchestration<O: OrchestrationDefinition>(
        &self,
        orchestration: O,
        input: O::Input,
    ) -> TypedFuture<SubOrchestrationFuture, O::Output> {
        self.typed_sub_orchestration(orchestration, None, input)
    }

    /// Like [`call_sub_orchestration`](Self::call_sub_orchestration) with an explicit child
    /// instance id.
    #[track_caller]
    pub fn call_sub_orchestration_with_id<O: OrchestrationDefinition>(
        &self,
        orchestration: O,
        instance: impl Into<String>,
        input: O::Input,
    ) -> TypedFuture<SubOrchestrationFuture, O::Output> {
        self.typed_sub_orchestration(orchestration, Some(instance.into()), input)
    }

    #[track_caller]
    fn typed_sub_orchestration<O: OrchestrationDefinition>(
        &self,
        orchestration: O,
        instance: Option<String>,
        input: O::Input,
    ) -> TypedFuture<SubOrchestrationFuture, O::Output> {
        let _ = orchestration;
        let state = match encode_input("sub-orchestration", O::NAME, &input) {
            Ok(json) => TypedState::Scheduled(self.schedule_sub_orchestration_versioned(
                O::NAME,
                Some(O::VERSION.to_string()),
                instance,
                json,
            )),
            Err(error) => TypedState::Failed(Some(error)),
        };
        TypedFuture::new(state, "sub-orchestration", O::NAME)
    }

    /// A typed activity on a session (see
    /// [`schedule_activity_on_session`](Self::schedule_activity_on_session)).
    #[track_caller]
    pub fn call_on_session<A: ActivityDefinition>(
        &self,
        activity: A,
        input: A::Input,
        session_id: impl Into<String>,
    ) -> TypedFuture<ActivityFuture, A::Output> {
        let _ = activity;
        let loc = std::panic::Location::caller();
        let tag = A::TAG.map(str::to_string);
        let state = match encode_input("activity", A::NAME, &input) {
            Ok(json) => TypedState::Scheduled(self.activity_at(
                loc,
                A::NAME.to_string(),
                json,
                Some(session_id.into()),
                tag,
            )),
            Err(error) => TypedState::Failed(Some(error)),
        };
        TypedFuture::new(state, "activity", A::NAME)
    }

    /// A typed activity retried per `policy` (see
    /// [`schedule_activity_with_retry`](Self::schedule_activity_with_retry)); with `None`,
    /// the activity's default policy from `#[activity(retry(..))]`, or a single attempt.
    /// Every attempt goes to the activity's default tag unless
    /// [`TypedRetryFuture::with_tag`] routes it elsewhere.
    #[track_caller]
    pub fn call_with_retry<A: ActivityDefinition>(
        &self,
        activity: A,
        input: A::Input,
        policy: impl Into<Option<crate::RetryPolicy>>,
    ) -> TypedRetryFuture<A::Output> {
        let _ = activity;
        let policy = policy.into().or_else(A::retry_policy).unwrap_or(crate::RetryPolicy {
            max_attempts: 1,
            backoff: crate::Backoff::None,
            timeout: None,
        });
        let state = match encode_input("activity", A::NAME, &input) {
            Ok(json) => {
                let loc = std::panic::Location::caller();
                let retryable: crate::orchestration::retry::RetryPredicate =
                    std::sync::Arc::new(|e: &ErrorDetails| e.retryable);
                let tag = A::TAG.map(str::to_string);
                let placement = crate::orchestration::retry::Placement { session_id: None, tag };
                TypedState::Scheduled(self.retry_future(
                    loc,
                    A::NAME.to_string(),
                    json,
                    placement,
                    policy,
                    retryable,
                ))
            }
            Err(error) => TypedState::Failed(Some(error)),
        };
        TypedRetryFuture { inner: TypedFuture::new(state, "activity", A::NAME) }
    }
}

/// A typed activity retried per a policy, from
/// [`OrchestrationContext::call_with_retry`]: a [`RetryFuture`](crate::RetryFuture) whose
/// output is decoded as `T`.
#[must_use = "a retried activity is scheduled only when it is awaited"]
pub struct TypedRetryFuture<T> {
    inner: TypedFuture<crate::RetryFuture, T>,
}

impl<T> TypedRetryFuture<T> {
    /// Routes every attempt to the runtimes that serve `tag`, overriding the activity's
    /// default (`#[activity(tag = ..)]`).
    pub fn with_tag(self, tag: impl Into<String>) -> Self {
        let state = match self.inner.state {
            TypedState::Scheduled(inner) => TypedState::Scheduled(inner.with_tag(tag)),
            failed => failed,
        };
        TypedRetryFuture { inner: TypedFuture { state, ..self.inner } }
    }
}

impl<T> std::fmt::Debug for TypedRetryFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TypedRetryFuture").field(&self.inner).finish()
    }
}

impl<T: DeserializeOwned> Future for TypedRetryFuture<T> {
    type Output = Result<T, ErrorDetails>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// Why a typed client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TypedClientError {
    /// The underlying client call failed (store error, timeout, instance exists, ...).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The input could not be encoded as JSON.
    #[error("could not encode the input of orchestration `{orchestration}` (`{input_type}`): {message}")]
    EncodeInput {
        /// The orchestration's registered name.
        orchestration: &'static str,
        /// The Rust input type.
        input_type: &'static str,
        /// serde's message.
        message: String,
    },
    /// The instance failed.
    #[error("instance `{instance}` failed: {details}")]
    Failed {
        /// The instance id.
        instance: String,
        /// Why it failed, as recorded in history.
        details: ErrorDetails,
    },
    /// The instance was cancelled.
    #[error("instance `{instance}` was cancelled: {reason}")]
    Cancelled {
        /// The instance id.
        instance: String,
        /// The cancellation reason.
        reason: String,
    },
    /// The instance completed but its output is not the handle's output type (for example
    /// it ran another version of the orchestration).
    #[error("the output of instance `{instance}` does not decode as `{expected}`: {message}")]
    DecodeOutput {
        /// The instance id.
        instance: String,
        /// The Rust output type of the handle.
        expected: &'static str,
        /// serde's message.
        message: String,
    },
    /// The wait returned a status this version of the typed client does not know.
    #[error("instance `{instance}` ended with unexpected status {status:?}")]
    UnexpectedStatus {
        /// The instance id.
        instance: String,
        /// The status returned.
        status: OrchestrationStatus,
    },
}

impl Client {
    /// Starts `instance` of a typed orchestration, pinned to the handle's version:
    /// `client.start_typed(process_order, "order-42", &order).await?`.
    pub async fn start_typed<O: OrchestrationDefinition>(
        &self,
        orchestration: O,
        instance: &str,
        input: &O::Input,
    ) -> Result<(), TypedClientError> {
        let _ = orchestration;
        let json = serde_json::to_string(input).map_err(|e| TypedClientError::EncodeInput {
            orchestration: O::NAME,
            input_type: type_name::<O::Input>(),
            message: e.to_string(),
        })?;
        self.start_orchestration_versioned(instance, O::NAME, O::VERSION, json).await?;
        Ok(())
    }

    /// Waits for `instance` to finish and decodes its output as the handle's output type.
    /// Failure and cancellation are errors.
    pub async fn wait_for_typed<O: OrchestrationDefinition>(
        &self,
        orchestration: O,
        instance: &str,
        timeout: Duration,
    ) -> Result<O::Output, TypedClientError> {
        let _ = orchestration;
        match self.wait_for_orchestration(instance, timeout).await? {
            OrchestrationStatus::Completed { output } => {
                serde_json::from_str(&output).map_err(|e| TypedClientError::DecodeOutput {
                    instance: instance.to_string(),
                    expected: type_name::<O::Output>(),
                    message: e.to_string(),
                })
            }
            OrchestrationStatus::Failed { details } => {
                Err(TypedClientError::Failed { instance: instance.to_string(), details })
            }
            OrchestrationStatus::Cancelled { reason } => {
                Err(TypedClientError::Cancelled { instance: instance.to_string(), reason })
            }
            status => Err(TypedClientError::UnexpectedStatus { instance: instance.to_string(), status }),
        }
    }
}
