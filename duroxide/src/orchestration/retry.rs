//! Activity retry policies: durable, visible in history, deterministic.
//!
//! A retried activity is a loop in the orchestration: each attempt is its own
//! `ActivityScheduled` event, each wait between attempts a durable timer, and a per-attempt
//! timeout a race between the attempt and a timer (the losing attempt is cancelled). A
//! crash during a backoff therefore resumes the wait where it was, and the history shows
//! every attempt and why it failed.

use super::{Either2, OrchestrationContext};
use crate::history::ErrorDetails;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// How long to wait between attempts. No jitter: the schedule must replay identically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backoff {
    /// Retry at once.
    None,
    /// The same wait every time.
    Fixed(Duration),
    /// `initial * n` before attempt n+1, at most `max`.
    Linear {
        /// Wait before the second attempt.
        initial: Duration,
        /// Longest wait.
        max: Duration,
    },
    /// `initial * 2^(n-1)` before attempt n+1, at most `max`.
    Exponential {
        /// Wait before the second attempt.
        initial: Duration,
        /// Longest wait.
        max: Duration,
    },
}

impl Backoff {
    /// The wait after failed attempt `attempt` (1-based).
    ///
    /// ```
    /// use duroxide::Backoff;
    /// use std::time::Duration;
    /// let b = Backoff::Exponential { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
    /// assert_eq!(b.delay(1), Duration::from_millis(100));
    /// assert_eq!(b.delay(3), Duration::from_millis(400));
    /// assert_eq!(b.delay(10), Duration::from_secs(1));
    /// ```
    pub fn delay(&self, attempt: u32) -> Duration {
        let n = attempt.max(1);
        match *self {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed(d) => d,
            Backoff::Linear { initial, max } => initial.saturating_mul(n).min(max),
            Backoff::Exponential { initial, max } => {
                initial.saturating_mul(2u32.saturating_pow((n - 1).min(31))).min(max)
            }
        }
    }
}

/// How an activity is retried.
///
/// ```
/// use duroxide::{Backoff, RetryPolicy};
/// use std::time::Duration;
/// let policy = RetryPolicy {
///     max_attempts: 5,
///     backoff: Backoff::Exponential { initial: Duration::from_millis(100), max: Duration::from_secs(30) },
///     timeout: Some(Duration::from_secs(10)),
/// };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait between attempts.
    pub backoff: Backoff,
    /// Longest time one attempt may take; a slower attempt is cancelled and counts as a
    /// retryable failure. `None`: no limit.
    pub timeout: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Backoff::Exponential { initial: Duration::from_secs(1), max: Duration::from_secs(60) },
            timeout: None,
        }
    }
}

/// Where each attempt of a retried activity runs: its session and its tag.
#[derive(Clone, Default)]
pub(crate) struct Placement {
    pub(crate) session_id: Option<String>,
    pub(crate) tag: Option<String>,
}

/// Decides whether a failure may be retried.
pub type RetryPredicate = Arc<dyn Fn(&ErrorDetails) -> bool + Send + Sync>;

impl OrchestrationContext {
    /// Schedules an activity and retries it per `policy`. Failures marked not retryable
    /// (`ActivityError::non_retryable`) end the retries at once. Resolves to the first
    /// success, or to the last failure with the number of attempts in its message.
    /// [`RetryFuture::with_tag`] routes every attempt to the workers serving a tag.
    ///
    /// ```
    /// # use duroxide::prelude::*;
    /// # use std::time::Duration;
    /// async fn transcode(ctx: OrchestrationContext, clip: String) -> Result<String, OrchestrationError> {
    ///     let backoff = Backoff::Exponential { initial: Duration::from_secs(1), max: Duration::from_secs(30) };
    ///     let policy = RetryPolicy { max_attempts: 4, backoff, timeout: None };
    ///     Ok(ctx.schedule_activity_with_retry("Transcode", clip, policy).with_tag("gpu").await?)
    /// }
    /// ```
    #[track_caller]
    pub fn schedule_activity_with_retry(
        &self,
        name: impl Into<String>,
        input: impl Into<String>,
        policy: RetryPolicy,
    ) -> RetryFuture {
        let loc = std::panic::Location::caller();
        let retryable: RetryPredicate = Arc::new(|e: &ErrorDetails| e.retryable);
        self.retry_future(loc, name.into(), input.into(), Placement::default(), policy, retryable)
    }

    /// Like [`schedule_activity_with_retry`](Self::schedule_activity_with_retry), retrying
    /// only failures for which `retryable` returns true.
    #[track_caller]
    pub fn schedule_activity_with_retry_when(
        &self,
        name: impl Into<String>,
        input: impl Into<String>,
        policy: RetryPolicy,
        retryable: impl Fn(&ErrorDetails) -> bool + Send + Sync + 'static,
    ) -> RetryFuture {
        let loc = std::panic::Location::caller();
        self.retry_future(loc, name.into(), input.into(), Placement::default(), policy, Arc::new(retryable))
    }

    /// Retries an activity that runs on a session.
    #[track_caller]
    pub fn schedule_activity_on_session_with_retry(
        &self,
        name: impl Into<String>,
        input: impl Into<String>,
        session_id: impl Into<String>,
        policy: RetryPolicy,
    ) -> RetryFuture {
        let loc = std::panic::Location::caller();
        let pred: RetryPredicate = Arc::new(|e: &ErrorDetails| e.retryable);
        let placement = Placement { session_id: Some(session_id.into()), tag: None };
        self.retry_future(loc, name.into(), input.into(), placement, policy, pred)
    }

    pub(crate) fn retry_future(
        &self,
        loc: &'static std::panic::Location<'static>,
        name: String,
        input: String,
        placement: Placement,
        policy: RetryPolicy,
        retryable: RetryPredicate,
    ) -> RetryFuture {
        let plan = RetryPlan { ctx: self.clone(), loc, name, input, placement, policy, retryable };
        RetryFuture { plan: Some(plan), running: None }
    }
}

impl RetryPlan {
    /// The attempts, as one future: scheduled from its first poll.
    fn run(self) -> BoxFuture<'static, Result<String, ErrorDetails>> {
        let RetryPlan { ctx, loc, name, input, placement, policy, retryable } = self;
        Box::pin(async move {
            let max = policy.max_attempts.max(1);
            let mut attempt = 1;
            loop {
                let Placement { session_id, tag } = placement.clone();
                let work = ctx.activity_at(loc, name.clone(), input.clone(), session_id, tag);
                let result = match policy.timeout {
                    None => work.await,
                    Some(limit) => match ctx.select2(work, ctx.timer_at(loc, limit)).await {
                        Either2::First(r) => r,
                        Either2::Second(()) => Err(ErrorDetails::application(format!(
                            "activity '{name}' attempt {attempt} timed out after {limit:?}"
                        ))),
                    },
                };
                let err = match result {
                    Ok(v) => return Ok(v),
                    Err(e) => e,
                };
                if attempt >= max || !retryable(&err) {
                    let why = if attempt >= max { "attempts exhausted" } else { "not retryable" };
                    let mut last = err;
                    last.message = format!(
                        "activity '{name}' failed after {attempt} attempt(s) ({why}): {}",
                        last.message
                    );
                    return Err(last);
                }
                ctx.trace_warn(format!(
                    "activity '{name}' attempt {attempt} failed: {}; retrying",
                    err.message
                ));
                // Counted once, like the log line: not again when the decision is replayed.
                if !ctx.is_replaying() {
                    crate::runtime::metrics::activity_retried(
                        &name,
                        crate::runtime::metrics::RetryReason::Policy,
                    );
                }
                let wait = policy.backoff.delay(attempt);
                if !wait.is_zero() {
                    ctx.timer_at(loc, wait).await;
                }
                attempt += 1;
            }
        })
    }
}

/// What a [`RetryFuture`] will schedule once it is first polled.
struct RetryPlan {
    ctx: OrchestrationContext,
    loc: &'static std::panic::Location<'static>,
    name: String,
    input: String,
    placement: Placement,
    policy: RetryPolicy,
    retryable: RetryPredicate,
}

/// An activity retried per a [`RetryPolicy`], from
/// [`OrchestrationContext::schedule_activity_with_retry`] and its variants. Nothing is
/// scheduled until it is first polled, so [`with_tag`](Self::with_tag) can still route it;
/// resolves to the first success or to the last failure.
#[must_use = "a retried activity is scheduled only when it is awaited"]
pub struct RetryFuture {
    plan: Option<RetryPlan>,
    running: Option<BoxFuture<'static, Result<String, ErrorDetails>>>,
}

impl RetryFuture {
    /// Routes every attempt to the runtimes that serve `tag` (see
    /// [`ActivityFuture::with_tag`](super::ActivityFuture::with_tag)). Has no effect once
    /// the future has been polled.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        if let Some(plan) = self.plan.as_mut() {
            plan.placement.tag = Some(tag.into());
        }
        self
    }
}

impl std::fmt::Debug for RetryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RetryFuture");
        if let Some(plan) = &self.plan {
            d.field("name", &plan.name).field("tag", &plan.placement.tag).field("policy", &plan.policy);
        }
        d.field("started", &self.running.is_some()).finish()
    }
}

impl std::future::Future for RetryFuture {
    type Output = Result<String, ErrorDetails>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if let Some(plan) = self.plan.take() {
            self.running = Some(plan.run());
        }
        match self.running.as_mut() {
            Some(running) => running.as_mut().poll(cx),
            None => std::task::Poll::Pending,
        }
    }
}
