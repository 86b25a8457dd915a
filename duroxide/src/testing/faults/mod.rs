//! Seeded fault injection for stores: [`FaultyProvider`] wraps any [`Provider`] and, from a
//! seed and a [`FaultConfig`], makes its calls fail, stall or lose their locks, the way a
//! real database and network do now and then.
//!
//! It is meant for tests of the runtime and of third-party providers: run a workload through
//! a [`crate::Runtime`] on a wrapped store, turn the faults off
//! ([`FaultyProvider::set_enabled`]), let the work drain, and check that every instance ended
//! as it should. What it can inject:
//!
//! - **failure before the call** ([`Fault::FailedBefore`]): the store is not touched and the
//!   caller sees [`ProviderError::Storage`], as for a connection that dropped before the
//!   statement was sent;
//! - **failure after the call** ([`Fault::FailedAfter`]): the store did the work (a commit is
//!   durable, a fetched item is locked) but the caller sees [`ProviderError::Storage`], as for
//!   a connection that dropped before the reply arrived. This is the hard case: the caller
//!   must not assume the call did nothing;
//! - **delay** ([`Fault::Delayed`]): the call waits before it reaches the store;
//! - **lost lock** ([`Fault::LockLost`]): a lock renewal fails with
//!   [`ProviderError::LockLost`] without reaching the store, as if the lock had expired;
//! - **expired lock** ([`Fault::SleptPastLock`]): a call that needs a lock (commit, complete,
//!   abandon, renew) first sleeps past the lock timeout the caller last fetched with, so the
//!   lock really expires and another dispatcher may take the work meanwhile.
//!
//! Faults are chosen by a pure function of the seed, the operation and how many calls of
//! that operation came before ([`FaultyProvider::plan`]): the n-th `commit_turn` of a run
//! gets the same fault for the same seed whatever the other operations do. Concurrent
//! callers of one operation still race for the numbers, so a run with several dispatchers is
//! not replayed exactly; the seed reproduces the fault pattern, and the log
//! ([`FaultyProvider::faults`], [`FaultyProvider::fault_report`]) says what was injected.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use duroxide::testing::faults::{FaultConfig, FaultyProvider};
//! use duroxide::{Provider, SqliteProvider};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new("sqlite::memory:", None).await.unwrap());
//! let config = FaultConfig::new()
//!     .fail_before(0.05)
//!     .fail_after(0.05)
//!     .delay(0.1, Duration::from_millis(20));
//! let faulty = Arc::new(FaultyProvider::new(store, 42, config));
//! // ... run a Runtime on `faulty.clone()`, then:
//! faulty.set_enabled(false);
//! println!("{}", faulty.fault_report());
//! # }
//! ```

mod plan;
mod provider;

pub use plan::{Fault, FaultConfig, FaultPlan, InjectedFault, ProviderOp};
use plan::{LockKind, splitmix64, unit};

use crate::history::Event;
use crate::provider::{
    ActivityWorkItem, Attempt, BlockedInstance, CachedLookup, DeleteBatch, ExecutionRecord, FetchFilter,
    HistoryPage, InstanceCursor, InstanceDescription, InstanceFilter, InstancePage, InstanceRecord,
    InstanceSnapshot, LockAfterComplete, Notifiers, OrchestrationItem, OutboundMessage, PageRequest,
    Provider, ProviderError, PruneOptions, StateCount, StoreSummary, TerminateOutcome, TurnCommit,
    VersionCount, WorkerIdentity, WorkerRecord,
};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A [`Provider`] that injects seeded faults into the calls it passes to another one.
///
/// See the [module docs](self) for the kinds of fault. Faults are on from the start; turn
/// them off with [`set_enabled(false)`](Self::set_enabled) to let the work drain.
/// [`Provider::notifiers`] passes through, so in-process wake-ups keep working.
pub struct FaultyProvider {
    inner: Arc<dyn Provider>,
    seed: u64,
    config: FaultConfig,
    enabled: AtomicBool,
    calls: [AtomicU64; ProviderOp::ALL.len()],
    next_seq: AtomicU64,
    log: Mutex<Vec<InjectedFault>>,
    /// Last lock timeouts callers fetched with (ms), for sleeping past a lock.
    orchestration_lock_ms: AtomicU64,
    activity_lock_ms: AtomicU64,
}

impl fmt::Debug for FaultyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyProvider")
            .field("seed", &self.seed)
            .field("config", &self.config)
            .field("enabled", &self.is_enabled())
            .field("faults", &self.log().len())
            .finish_non_exhaustive()
    }
}

impl FaultyProvider {
    /// Wraps `inner`; faults follow from `seed` and `config`.
    pub fn new(inner: Arc<dyn Provider>, seed: u64, config: FaultConfig) -> Self {
        Self {
            inner,
            seed,
            config,
            enabled: AtomicBool::new(true),
            calls: std::array::from_fn(|_| AtomicU64::new(0)),
            next_seq: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            orchestration_lock_ms: AtomicU64::new(0),
            activity_lock_ms: AtomicU64::new(0),
        }
    }

    /// The wrapped store (to read or check it without faults).
    pub fn inner(&self) -> &Arc<dyn Provider> {
        &self.inner
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The configuration.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Turns fault injection on or off. Calls are counted either way, so turning faults
    /// back on continues the same schedule.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::SeqCst);
    }

    /// Whether faults are being injected.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// How many calls of `op` were made so far.
    pub fn calls(&self, op: ProviderOp) -> u64 {
        self.calls[op.index()].load(Ordering::SeqCst)
    }

    /// Every fault injected so far, in order.
    pub fn faults(&self) -> Vec<InjectedFault> {
        self.log().clone()
    }

    /// The seed, the number of faults and one line per fault, for a failing test to print.
    pub fn fault_report(&self) -> String {
        let log = self.log();
        let mut out = format!("seed {}: {} faults injected\n", self.seed, log.len());
        for fault in log.iter() {
            out.push_str(&format!("  {fault}\n"));
        }
        out
    }

    /// What the wrapper does to call number `call` (from 0) of `op`: a pure function of the
    /// seed, the configuration, `op` and `call`.
    pub fn plan(&self, op: ProviderOp, call: u64) -> FaultPlan {
        let c = &self.config;
        if !c.applies_to(op) {
            return FaultPlan::default();
        }
        let mut state = self.seed ^ (op.index() as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let mut call_state = call;
        state ^= splitmix64(&mut call_state);
        // Draw every number whatever the outcome, so one probability does not shift the
        // draws of another.
        let (d_delay, d_len, d_expire, d_fail) =
            (unit(&mut state), unit(&mut state), unit(&mut state), unit(&mut state));
        let mut plan = FaultPlan::default();
        if d_delay < c.delay && !c.max_delay.is_zero() {
            plan.delay = Some(c.max_delay.mul_f64(d_len));
        }
        plan.expire_lock = op.lock().is_some() && d_expire < c.expire_lock;
        let lose = if op.is_renewal() { c.lose_lock } else { 0.0 };
        if d_fail < c.fail_before {
            plan.fail_before = true;
        } else if d_fail < c.fail_before + lose {
            plan.lose_lock = true;
        } else if d_fail < c.fail_before + lose + c.fail_after {
            plan.fail_after = true;
        }
        plan
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Vec<InjectedFault>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, op: ProviderOp, call: u64, fault: Fault) {
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(seed = self.seed, op = op.name(), call, "injected fault: {fault}");
        self.log().push(InjectedFault { seq, op, call, fault });
    }

    fn error(&self, op: ProviderOp, call: u64, when: &str) -> ProviderError {
        ProviderError::Storage(format!(
            "injected fault: {op} failed {when} the store call (seed {}, call {call})",
            self.seed
        ))
    }

    fn remember_lock(&self, kind: LockKind, timeout: Duration) {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        match kind {
            LockKind::Orchestration => self.orchestration_lock_ms.store(ms, Ordering::SeqCst),
            LockKind::Activity => self.activity_lock_ms.store(ms, Ordering::SeqCst),
        }
    }

    /// Counts the call, applies delays and lock expiry, and says what to do around it:
    /// `Err` to return at once, `Ok(Some(call))` to fail after the store call.
    async fn before(&self, op: ProviderOp) -> Result<Option<u64>, ProviderError> {
        let call = self.calls[op.index()].fetch_add(1, Ordering::SeqCst);
        if !self.is_enabled() {
            return Ok(None);
        }
        let plan = self.plan(op, call);
        if let Some(delay) = plan.delay {
            self.record(op, call, Fault::Delayed(delay));
            tokio::time::sleep(delay).await;
        }
        if plan.expire_lock {
            let lock_ms = match op.lock() {
                Some(LockKind::Orchestration) => self.orchestration_lock_ms.load(Ordering::SeqCst),
                Some(LockKind::Activity) => self.activity_lock_ms.load(Ordering::SeqCst),
                None => 0,
            };
            // No fetch seen yet: there is no lock to sleep past.
            if lock_ms > 0 {
                let sleep = Duration::from_millis(lock_ms) + self.config.lock_margin;
                self.record(op, call, Fault::SleptPastLock(sleep));
                tokio::time::sleep(sleep).await;
            }
        }
        if plan.fail_before {
            self.record(op, call, Fault::FailedBefore);
            return Err(self.error(op, call, "before"));
        }
        if plan.lose_lock {
            self.record(op, call, Fault::LockLost);
            return Err(ProviderError::LockLost(format!(
                "injected fault: {op} lost its lock (seed {}, call {call})",
                self.seed
            )));
        }
        Ok(plan.fail_after.then_some(call))
    }

    /// Runs one call through the fault schedule.
    async fn wrap<T>(
        &self,
        op: ProviderOp,
        call: impl std::future::Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let fail_after = self.before(op).await?;
        let result = call.await;
        match fail_after {
            Some(n) => {
                self.record(op, n, Fault::FailedAfter);
                Err(self.error(op, n, "after"))
            }
            None => result,
        }
    }

    /// Runs a batch call whose results are per item through the fault schedule: a failure
    /// fails every item.
    async fn wrap_batch(
        &self,
        op: ProviderOp,
        items: usize,
        call: impl std::future::Future<Output = Vec<Result<(), ProviderError>>>,
    ) -> Vec<Result<(), ProviderError>> {
        match self.before(op).await {
            Err(e) => vec![Err(e); items],
            Ok(fail_after) => {
                let results = call.await;
                match fail_after {
                    Some(n) => {
                        self.record(op, n, Fault::FailedAfter);
                        vec![Err(self.error(op, n, "after")); results.len()]
                    }
                    None => results,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wrapper over a store that accepts everything and holds nothing.
    fn plan_only(seed: u64, config: FaultConfig) -> FaultyProvider {
        struct Inert;
        #[async_trait::async_trait]
        impl Provider for Inert {
            async fn create_instance(
                &self,
                _: &str,
                _: &str,
                _: Option<&str>,
                _: &str,
            ) -> Result<(), ProviderError> {
                Ok(())
            }
            async fn enqueue_message(&self, _: OutboundMessage) -> Result<(), ProviderError> {
                Ok(())
            }
            async fn fetch_orchestration_item(
                &self,
                _: Duration,
                _: &FetchFilter,
            ) -> Result<Option<OrchestrationItem>, ProviderError> {
                Ok(None)
            }
            async fn commit_turn(&self, _: &str, _: TurnCommit) -> Result<(), ProviderError> {
                Ok(())
            }
            async fn abandon_orchestration_item(
                &self,
                _: &str,
                _: Option<Duration>,
                _: Option<String>,
                _: Attempt,
            ) -> Result<(), ProviderError> {
                Ok(())
            }
            async fn renew_orchestration_lock(&self, _: &str, _: Duration) -> Result<(), ProviderError> {
                Ok(())
            }
            async fn fetch_work_item(
                &self,
                _: Duration,
                _: &WorkerIdentity,
            ) -> Result<Option<ActivityWorkItem>, ProviderError> {
                Ok(None)
            }
            async fn renew_sessions(
                &self,
                _: &WorkerIdentity,
                _: Duration,
            ) -> Result<Vec<String>, ProviderError> {
                Ok(Vec::new())
            }
            async fn renew_work_item(&self, _: &str, _: Duration) -> Result<(), ProviderError> {
                Ok(())
            }
            async fn complete_work_item(&self, _: &str, _: OutboundMessage) -> Result<(), ProviderError> {
                Ok(())
            }
            async fn abandon_work_item(&self, _: &str, _: Option<Duration>) -> Result<(), ProviderError> {
                Ok(())
            }
            async fn get_instance(&self, _: &str) -> Result<Option<InstanceRecord>, ProviderError> {
                Ok(None)
            }
            async fn read_history(&self, _: &str, _: Option<u64>) -> Result<Vec<Event>, ProviderError> {
                Ok(Vec::new())
            }
            async fn list_executions(&self, _: &str) -> Result<Vec<ExecutionRecord>, ProviderError> {
                Ok(Vec::new())
            }
            async fn list_instances(&self) -> Result<Vec<String>, ProviderError> {
                Ok(Vec::new())
            }
            async fn list_blocked_instances(
                &self,
                _: &FetchFilter,
                _: u32,
            ) -> Result<Vec<BlockedInstance>, ProviderError> {
                Ok(Vec::new())
            }
            async fn count_instances_by_version(&self) -> Result<Vec<VersionCount>, ProviderError> {
                Ok(Vec::new())
            }
            async fn list_instances_page(
                &self,
                _: &InstanceFilter,
                _: &PageRequest,
            ) -> Result<InstancePage, ProviderError> {
                Ok(InstancePage { instances: Vec::new(), next_cursor: None })
            }
            async fn count_instances(&self, _: &InstanceFilter) -> Result<u64, ProviderError> {
                Ok(0)
            }
            async fn count_instances_by_state(
                &self,
                _: &InstanceFilter,
            ) -> Result<Vec<StateCount>, ProviderError> {
                Ok(Vec::new())
            }
            async fn describe_instance(&self, _: &str) -> Result<Option<InstanceDescription>, ProviderError> {
                Ok(None)
            }
            async fn read_history_page(
                &self,
                i: &str,
                _: Option<u64>,
                _: u64,
                _: u32,
            ) -> Result<HistoryPage, ProviderError> {
                Err(ProviderError::InstanceNotFound(i.to_string()))
            }
            async fn delete_instance(&self, i: &str, _: bool) -> Result<Vec<String>, ProviderError> {
                Err(ProviderError::InstanceNotFound(i.to_string()))
            }
            async fn delete_instances(
                &self,
                _: &InstanceFilter,
                _: Option<&InstanceCursor>,
                _: u32,
            ) -> Result<DeleteBatch, ProviderError> {
                Ok(DeleteBatch { deleted: 0, skipped: 0, next: None })
            }
            async fn prune_executions(&self, i: &str, _: &PruneOptions) -> Result<u64, ProviderError> {
                Err(ProviderError::InstanceNotFound(i.to_string()))
            }
            async fn terminate_instance(&self, i: &str, _: &str) -> Result<TerminateOutcome, ProviderError> {
                Err(ProviderError::InstanceNotFound(i.to_string()))
            }
            async fn store_summary(&self) -> Result<StoreSummary, ProviderError> {
                Err(ProviderError::Storage("inert".into()))
            }
            async fn export_instance(&self, i: &str) -> Result<InstanceSnapshot, ProviderError> {
                Err(ProviderError::InstanceNotFound(i.into()))
            }
            async fn import_instance(&self, _: InstanceSnapshot) -> Result<(), ProviderError> {
                Ok(())
            }
            async fn get_value(&self, _: &str, _: &str) -> Result<Option<String>, ProviderError> {
                Ok(None)
            }
            async fn get_values(
                &self,
                _: &str,
            ) -> Result<std::collections::BTreeMap<String, String>, ProviderError> {
                Ok(Default::default())
            }
            async fn set_status_note(&self, _: &str, _: &str) -> Result<(), ProviderError> {
                Ok(())
            }
            async fn record_worker(&self, _: &WorkerRecord) -> Result<(), ProviderError> {
                Ok(())
            }
            async fn remove_worker(&self, _: &str) -> Result<bool, ProviderError> {
                Ok(false)
            }
            async fn list_workers(&self) -> Result<Vec<WorkerRecord>, ProviderError> {
                Ok(Vec::new())
            }
        }
        FaultyProvider::new(Arc::new(Inert), seed, config)
    }

    fn busy() -> FaultConfig {
        FaultConfig::new()
            .fail_before(0.2)
            .fail_after(0.2)
            .lose_locks(0.2)
            .expire_locks(0.1)
            .delay(0.3, Duration::from_millis(50))
    }

    fn schedule(p: &FaultyProvider) -> Vec<FaultPlan> {
        ProviderOp::ALL.iter().flat_map(|&op| (0..200).map(move |n| p.plan(op, n))).collect()
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let a = schedule(&plan_only(7, busy()));
        assert_eq!(a, schedule(&plan_only(7, busy())));
        assert_ne!(a, schedule(&plan_only(8, busy())));
    }

    #[test]
    fn no_probabilities_no_faults() {
        assert!(schedule(&plan_only(7, FaultConfig::new())).iter().all(FaultPlan::is_clean));
    }

    #[test]
    fn rates_follow_the_probabilities() {
        let p = plan_only(99, busy());
        let n = 20_000;
        let plans: Vec<FaultPlan> = (0..n).map(|i| p.plan(ProviderOp::RenewWorkItem, i)).collect();
        let rate = |f: fn(&FaultPlan) -> bool| plans.iter().filter(|p| f(p)).count() as f64 / n as f64;
        for (name, got, want) in [
            ("fail_before", rate(|p| p.fail_before), 0.2),
            ("lose_lock", rate(|p| p.lose_lock), 0.2),
            ("fail_after", rate(|p| p.fail_after), 0.2),
            ("expire_lock", rate(|p| p.expire_lock), 0.1),
            ("delay", rate(|p| p.delay.is_some()), 0.3),
        ] {
            assert!((got - want).abs() < 0.02, "{name}: rate {got}, expected about {want}");
        }
        // Lost locks and expiry only apply where there is a lock.
        assert!((0..1000).all(|i| !p.plan(ProviderOp::CreateInstance, i).lose_lock));
        assert!((0..1000).all(|i| !p.plan(ProviderOp::CommitTurn, i).lose_lock));
        assert!((0..1000).all(|i| !p.plan(ProviderOp::ReadHistory, i).expire_lock));
    }

    #[test]
    fn excluded_operations_are_left_alone() {
        let p = plan_only(3, busy().except_reads().except([ProviderOp::CommitTurn]));
        assert!((0..500).all(|i| p.plan(ProviderOp::CommitTurn, i).is_clean()));
        assert!((0..500).all(|i| p.plan(ProviderOp::GetInstance, i).is_clean()));
        assert!((0..500).any(|i| !p.plan(ProviderOp::CreateInstance, i).is_clean()));
    }

    #[test]
    fn probabilities_are_clamped() {
        let c = FaultConfig::new().fail_before(f64::NAN).fail_after(7.0).lose_locks(-1.0);
        assert_eq!((c.fail_before, c.fail_after, c.lose_lock), (0.0, 1.0, 0.0));
    }

    #[tokio::test]
    async fn injected_faults_are_logged_and_disabling_stops_them() {
        let p = plan_only(5, FaultConfig::new().fail_before(1.0));
        let err = p.list_instances().await.unwrap_err();
        assert!(err.is_retryable(), "an injected failure is a transient storage error: {err:?}");
        assert!(err.to_string().contains("seed 5"), "{err}");
        p.set_enabled(false);
        assert!(p.list_instances().await.is_ok());
        assert_eq!(p.calls(ProviderOp::ListInstances), 2);
        assert_eq!(
            p.faults(),
            vec![InjectedFault {
                seq: 0,
                op: ProviderOp::ListInstances,
                call: 0,
                fault: Fault::FailedBefore
            }]
        );
        assert!(p.fault_report().contains("list_instances call 0: failed before the store call"));
    }

    #[tokio::test]
    async fn lock_loss_is_reported_as_lock_lost() {
        let p = plan_only(5, FaultConfig::new().lose_locks(1.0));
        assert!(matches!(
            p.renew_work_item("t", Duration::from_secs(1)).await,
            Err(ProviderError::LockLost(_))
        ));
        assert!(p.complete_work_item("t", dummy_message()).await.is_ok(), "no lock loss outside renewals");
    }

    fn dummy_message() -> OutboundMessage {
        OutboundMessage {
            instance: "i".into(),
            message: crate::provider::OrchestratorMessage::ExternalRaised {
                name: "e".into(),
                data: String::new(),
            },
            visible_at_ms: None,
        }
    }
}
