//! What activity code sees: [`ActivityContext`] (who called it, which attempt this is,
//! which orchestration and tag, cancellation, a client for the same store, logging) and
//! the in-memory [`SessionState`] of session activities.
//!
//! Running activities (peek-lock, lock renewal, at-least-once delivery) is the runtime's
//! job, not this module's; registering them is the registry's.

use std::sync::{Arc, Mutex};

pub(crate) mod cancellation;

use cancellation::CancellationToken;

/// What an activity sees: who called it (instance, execution, orchestration name and
/// version), which attempt this is, its tag, the worker running it, a cancellation signal,
/// and a [`Client`](crate::Client) for the same store.
#[derive(Clone, Debug)]
pub struct ActivityContext {
    pub(crate) instance: String,
    pub(crate) execution_id: u64,
    pub(crate) event_id: u64,
    pub(crate) name: String,
    pub(crate) attempt: u32,
    pub(crate) cancel: CancellationToken,
    pub(crate) session_id: Option<String>,
    pub(crate) session_new: bool,
    pub(crate) session_state: Option<Arc<SessionState>>,
    pub(crate) worker_id: String,
    pub(crate) orchestration_name: String,
    pub(crate) orchestration_version: String,
    pub(crate) tag: Option<String>,
    /// `None` only in contexts built for tests without a store.
    pub(crate) client: Option<crate::Client>,
}

/// Per-session state kept in memory by the worker that holds the session.
#[derive(Default)]
pub struct SessionState {
    slot: Mutex<Option<Arc<dyn std::any::Any + Send + Sync>>>,
}

impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState").finish_non_exhaustive()
    }
}

impl ActivityContext {
    /// Builds a context for calling an activity function directly, e.g. in unit tests.
    pub fn for_test(name: impl Into<String>) -> Self {
        Self {
            instance: "test-instance".into(),
            execution_id: 1,
            event_id: 1,
            name: name.into(),
            attempt: 1,
            cancel: CancellationToken::new(),
            session_id: None,
            session_new: false,
            session_state: None,
            worker_id: "test-worker".into(),
            orchestration_name: "TestOrchestration".into(),
            orchestration_version: "1.0.0".into(),
            tag: None,
            client: None,
        }
    }

    /// Like [`for_test`](Self::for_test), with a [`Client`](crate::Client) over `store`, so
    /// an activity that starts or signals other instances can be tested.
    pub fn for_test_with_store(name: impl Into<String>, store: std::sync::Arc<dyn crate::Provider>) -> Self {
        Self { client: Some(crate::Client::new(store)), ..Self::for_test(name) }
    }

    /// Like [`for_test`](Self::for_test), as if scheduled with `tag`.
    pub fn for_test_with_tag(name: impl Into<String>, tag: impl Into<String>) -> Self {
        Self { tag: Some(tag.into()), ..Self::for_test(name) }
    }

    /// Like [`for_test`](Self::for_test), on a session (with fresh session state).
    pub fn for_test_on_session(name: impl Into<String>, session_id: impl Into<String>) -> Self {
        Self {
            session_id: Some(session_id.into()),
            session_new: true,
            session_state: Some(Arc::default()),
            ..Self::for_test(name)
        }
    }

    /// The session this activity runs on, if it was scheduled on one.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// True when this worker has just claimed the session: the first activity of the
    /// session here, or a takeover after the previous holder's lease expired. In-memory
    /// session state starts empty then.
    pub fn is_new_session(&self) -> bool {
        self.session_new
    }

    /// The node (runtime) running this activity: `RuntimeOptions::worker_node_id` when
    /// set, otherwise the id the runtime generated when it started.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The name of the orchestration that scheduled this activity (empty for work queued
    /// by a duroxide version that did not record it).
    pub fn orchestration_name(&self) -> &str {
        &self.orchestration_name
    }

    /// The version of the orchestration execution that scheduled this activity (empty when
    /// not recorded, as above).
    pub fn orchestration_version(&self) -> &str {
        &self.orchestration_version
    }

    /// The tag this activity was scheduled with (`None`: untagged).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// A client for the store this activity's runtime uses, so the activity can start,
    /// signal or query other instances: `ctx.client()?.raise_event(..)`. Everything it
    /// does is an effect of the activity (at least once), not of the orchestration: use
    /// instance ids derived from [`instance_id`](Self::instance_id) and
    /// [`event_id`](Self::event_id) to make starts idempotent across retries.
    ///
    /// Fails only in a context built by [`for_test`](Self::for_test), which has no store
    /// (use [`for_test_with_store`](Self::for_test_with_store)).
    pub fn client(&self) -> Result<&crate::Client, crate::ActivityError> {
        self.client.as_ref().ok_or_else(|| {
            crate::ActivityError::non_retryable("this ActivityContext was built for a test without a store")
        })
    }

    /// State shared by all activities of this session on this worker, created with
    /// `T::default()` on first use (or when a different `T` is asked for). `None` outside
    /// a session. Use interior mutability (`T = Mutex<..>`) to change it.
    ///
    /// ```
    /// use duroxide::ActivityContext;
    /// use std::sync::Mutex;
    /// let ctx = ActivityContext::for_test_on_session("Chat", "conversation-7");
    /// let turns = ctx.session_state::<Mutex<Vec<String>>>().unwrap();
    /// turns.lock().unwrap().push("hello".into());
    /// assert_eq!(ctx.session_state::<Mutex<Vec<String>>>().unwrap().lock().unwrap().len(), 1);
    /// ```
    pub fn session_state<T: Default + Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let state = self.session_state.as_ref()?;
        let mut slot = state.slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = slot.as_ref().and_then(|v| v.clone().downcast::<T>().ok()) {
            return Some(existing);
        }
        let fresh = Arc::new(T::default());
        *slot = Some(fresh.clone());
        Some(fresh)
    }
    /// Instance that scheduled this activity.
    pub fn instance_id(&self) -> &str {
        &self.instance
    }
    /// Execution that scheduled this activity.
    pub fn execution_id(&self) -> u64 {
        self.execution_id
    }
    /// Id of the `ActivityScheduled` event; stable across attempts, useful as an
    /// idempotency key together with the instance id.
    pub fn event_id(&self) -> u64 {
        self.event_id
    }
    /// The activity's registered name.
    pub fn activity_name(&self) -> &str {
        &self.name
    }
    /// Which delivery of this work item this is (1 for the first). Activities run at least
    /// once: an attempt above 1 means an earlier run may have had effects.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
    /// True once the orchestration stopped waiting for this activity, or its lock was lost.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
    /// Completes when the activity is cancelled; use in `tokio::select!` to stop early.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }
    /// Logs at INFO with the activity's identity.
    pub fn trace_info(&self, message: impl AsRef<str>) {
        tracing::info!(target: "duroxide::activity", instance = %self.instance, activity = %self.name, attempt = self.attempt, "{}", message.as_ref());
    }
    /// Logs at WARN.
    pub fn trace_warn(&self, message: impl AsRef<str>) {
        tracing::warn!(target: "duroxide::activity", instance = %self.instance, activity = %self.name, attempt = self.attempt, "{}", message.as_ref());
    }
    /// Logs at ERROR.
    pub fn trace_error(&self, message: impl AsRef<str>) {
        tracing::error!(target: "duroxide::activity", instance = %self.instance, activity = %self.name, attempt = self.attempt, "{}", message.as_ref());
    }
    /// Logs at DEBUG.
    pub fn trace_debug(&self, message: impl AsRef<str>) {
        tracing::debug!(target: "duroxide::activity", instance = %self.instance, activity = %self.name, attempt = self.attempt, "{}", message.as_ref());
    }
}
