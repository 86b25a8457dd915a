//! Activity mocks: closures a [`TestHarness`](super::TestHarness) runs in place of
//! activities, by name ([`ActivityMock`]) or by `#[activity]` handle
//! ([`TypedActivityMock`]), recording every call's input.
//!
//! A mock takes no virtual time unless [`taking`](ActivityMock::taking) says otherwise;
//! then each call waits for the harness's clock to move that far, so a test can race a
//! slow activity against a timer.

use super::clock::VirtualClock;
use crate::context::ActivityContext;
use crate::error::ActivityError;
use crate::orchestration::typed::ActivityDefinition;
use crate::registry::ActivityHandler;
use futures::future::BoxFuture;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type MockFn = dyn Fn(String) -> BoxFuture<'static, Result<String, ActivityError>> + Send + Sync;

/// A closure that runs in place of the activity `name` in a harness, and the inputs it
/// was called with.
///
/// Clones share the record of calls: keep one to assert on, hand the other to
/// [`TestHarnessBuilder::mock`](super::TestHarnessBuilder::mock).
///
/// ```
/// use duroxide::testing::ActivityMock;
/// let email = ActivityMock::new("SendEmail", |to: String| async move { Ok(format!("sent to {to}")) });
/// assert_eq!(email.call_count(), 0);
/// ```
#[derive(Clone)]
pub struct ActivityMock {
    name: String,
    run: Arc<MockFn>,
    takes: Duration,
    calls: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for ActivityMock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityMock")
            .field("name", &self.name)
            .field("takes", &self.takes)
            .field("calls", &self.call_count())
            .finish()
    }
}

impl ActivityMock {
    /// A mock of the activity `name` that runs `f` on each call's raw input.
    pub fn new<F, Fut>(name: impl Into<String>, f: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, ActivityError>> + Send + 'static,
    {
        Self {
            name: name.into(),
            run: Arc::new(move |input| Box::pin(f(input))),
            takes: Duration::ZERO,
            calls: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// A mock of the activity `name` that always returns `output`.
    pub fn returning(name: impl Into<String>, output: impl Into<String>) -> Self {
        let output = output.into();
        Self::new(name, move |_| {
            let output = output.clone();
            async move { Ok(output) }
        })
    }

    /// Each call takes `duration` of virtual time: it completes only once the harness's
    /// clock has moved that far past the call (timers due earlier fire first).
    pub fn taking(mut self, duration: Duration) -> Self {
        self.takes = duration;
        self
    }

    /// The activity name it stands in for.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many times it was called (retries count).
    pub fn call_count(&self) -> usize {
        self.lock().len()
    }

    /// The raw input of every call, in call order.
    pub fn inputs(&self) -> Vec<String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The handler a harness registers, on its clock.
    pub(crate) fn handler(&self, clock: VirtualClock) -> Arc<dyn ActivityHandler> {
        let mock = self.clone();
        Arc::new(move |ctx: ActivityContext, input: String| {
            mock.lock().push(input.clone());
            let result = (mock.run)(input);
            let wait = (!mock.takes.is_zero()).then(|| clock.sleep(mock.takes));
            async move {
                if let Some(wait) = wait {
                    tokio::select! {
                        _ = wait => {}
                        _ = ctx.cancelled() => {
                            return Err(ActivityError::non_retryable("activity mock cancelled"));
                        }
                    }
                }
                result.await
            }
        })
    }
}

impl From<&ActivityMock> for ActivityMock {
    fn from(mock: &ActivityMock) -> Self {
        mock.clone()
    }
}

/// An [`ActivityMock`] for an `#[activity]` handle: the closure takes and returns the
/// activity's own types, and [`inputs`](Self::inputs) decodes them.
///
/// ```
/// use duroxide::prelude::*;
/// use duroxide::testing::TypedActivityMock;
///
/// #[activity]
/// async fn charge(_ctx: ActivityContext, cents: u64) -> Result<String, ActivityError> {
///     Ok(format!("charged {cents}"))
/// }
///
/// let mock = TypedActivityMock::new(charge, |cents: u64| async move { Ok(format!("fake {cents}")) });
/// assert_eq!(mock.call_count(), 0);
/// ```
pub struct TypedActivityMock<A: ActivityDefinition> {
    raw: ActivityMock,
    activity: PhantomData<A>,
}

impl<A: ActivityDefinition> Clone for TypedActivityMock<A> {
    fn clone(&self) -> Self {
        Self { raw: self.raw.clone(), activity: PhantomData }
    }
}

impl<A: ActivityDefinition> std::fmt::Debug for TypedActivityMock<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.raw.fmt(f)
    }
}

impl<A: ActivityDefinition> TypedActivityMock<A> {
    /// A mock of `activity` that runs `f` on each call's decoded input. An input that does
    /// not decode fails the call (not retried), as the real activity would.
    pub fn new<F, Fut>(activity: A, f: F) -> Self
    where
        F: Fn(A::Input) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<A::Output, ActivityError>> + Send + 'static,
    {
        let _ = activity;
        let f = Arc::new(f);
        let raw = ActivityMock::new(A::NAME, move |raw: String| {
            let f = f.clone();
            async move {
                let input: A::Input = serde_json::from_str(&raw).map_err(|e| {
                    ActivityError::non_retryable(format!(
                        "activity mock `{}` could not decode its input: {e}",
                        A::NAME
                    ))
                })?;
                let output = f(input).await?;
                serde_json::to_string(&output).map_err(|e| {
                    ActivityError::non_retryable(format!(
                        "activity mock `{}` could not encode its output: {e}",
                        A::NAME
                    ))
                })
            }
        });
        Self { raw, activity: PhantomData }
    }

    /// Each call takes `duration` of virtual time (see [`ActivityMock::taking`]).
    pub fn taking(self, duration: Duration) -> Self {
        Self { raw: self.raw.taking(duration), activity: PhantomData }
    }

    /// How many times it was called (retries count).
    pub fn call_count(&self) -> usize {
        self.raw.call_count()
    }

    /// The decoded input of every call, in call order (calls whose input did not decode are
    /// left out; [`raw`](Self::raw) has them all).
    pub fn inputs(&self) -> Vec<A::Input> {
        self.raw.inputs().iter().filter_map(|raw| serde_json::from_str(raw).ok()).collect()
    }

    /// The untyped mock underneath (raw inputs included).
    pub fn raw(&self) -> &ActivityMock {
        &self.raw
    }
}

impl<A: ActivityDefinition> From<&TypedActivityMock<A>> for ActivityMock {
    fn from(mock: &TypedActivityMock<A>) -> Self {
        mock.raw.clone()
    }
}
