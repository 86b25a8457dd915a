//! What activity code sees: [`ActivityContext`] (who called it, which attempt this is,
//! cancellation, logging) and the in-memory [`SessionState`] of session activities.
//!
//! Running activities (peek-lock, lock renewal, at-least-once delivery) is the runtime's
//! job, not this module's; registering them is the registry's.

use std::sync::{Arc, Mutex};

pub(crate) mod cancellation;

use cancellation::CancellationToken;

/// What an activity sees: who called it, which attempt this is, and a cancellation signal.
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
        }
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

    /// The runtime (worker process) running this activity.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
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
