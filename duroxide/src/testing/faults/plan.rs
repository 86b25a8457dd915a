//! What can go wrong and when: the operations the fault injector counts ([`ProviderOp`]),
//! the faults it injects ([`Fault`]), the probabilities that choose them ([`FaultConfig`]),
//! and the seeded schedule ([`FaultPlan`]) that makes a run's faults a pure function of the
//! seed, the operation and the call number. The wrapper that applies them is in the parent
//! module.

use std::fmt;
use std::time::Duration;

// Named by the docs' links only.
#[cfg(doc)]
use super::FaultyProvider;
#[cfg(doc)]
use crate::{Provider, ProviderError};

/// One method of the [`Provider`] trait, as the fault injector counts and names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProviderOp {
    /// [`Provider::create_instance`].
    CreateInstance,
    /// [`Provider::enqueue_message`].
    EnqueueMessage,
    /// [`Provider::fetch_orchestration_item`].
    FetchOrchestrationItem,
    /// [`Provider::fetch_orchestration_item_cached`].
    FetchOrchestrationItemCached,
    /// [`Provider::fetch_orchestration_items_cached`].
    FetchOrchestrationItemsCached,
    /// [`Provider::commit_turn`].
    CommitTurn,
    /// [`Provider::abandon_orchestration_item`].
    AbandonOrchestrationItem,
    /// [`Provider::renew_orchestration_lock`].
    RenewOrchestrationLock,
    /// [`Provider::fetch_work_item`].
    FetchWorkItem,
    /// [`Provider::fetch_work_items`].
    FetchWorkItems,
    /// [`Provider::renew_sessions`].
    RenewSessions,
    /// [`Provider::renew_work_item`].
    RenewWorkItem,
    /// [`Provider::complete_work_item`].
    CompleteWorkItem,
    /// [`Provider::complete_work_items`].
    CompleteWorkItems,
    /// [`Provider::complete_work_items_and_lock`].
    CompleteWorkItemsAndLock,
    /// [`Provider::abandon_work_item`].
    AbandonWorkItem,
    /// [`Provider::get_instance`].
    GetInstance,
    /// [`Provider::read_history`].
    ReadHistory,
    /// [`Provider::list_executions`].
    ListExecutions,
    /// [`Provider::list_instances`].
    ListInstances,
    /// [`Provider::list_blocked_instances`].
    ListBlockedInstances,
    /// [`Provider::count_instances_by_version`].
    CountInstancesByVersion,
    /// [`Provider::list_instances_page`].
    ListInstancesPage,
    /// [`Provider::count_instances`].
    CountInstances,
    /// [`Provider::count_instances_by_state`].
    CountInstancesByState,
    /// [`Provider::describe_instance`].
    DescribeInstance,
    /// [`Provider::read_history_page`].
    ReadHistoryPage,
    /// [`Provider::delete_instance`].
    DeleteInstance,
    /// [`Provider::delete_instances`].
    DeleteInstances,
    /// [`Provider::prune_executions`].
    PruneExecutions,
    /// [`Provider::terminate_instance`].
    TerminateInstance,
    /// [`Provider::store_summary`].
    StoreSummary,
    /// [`Provider::export_instance`].
    ExportInstance,
    /// [`Provider::import_instance`].
    ImportInstance,
    /// [`Provider::set_status_note`].
    SetStatusNote,
    /// [`Provider::get_value`].
    GetValue,
    /// [`Provider::get_values`].
    GetValues,
    /// [`Provider::record_worker`].
    RecordWorker,
    /// [`Provider::remove_worker`].
    RemoveWorker,
    /// [`Provider::list_workers`].
    ListWorkers,
}

/// Which lock a call works under, for [`Fault::SleptPastLock`] and [`Fault::LockLost`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum LockKind {
    Orchestration,
    Activity,
}

impl ProviderOp {
    /// Every operation, in declaration order.
    pub const ALL: [ProviderOp; 40] = [
        ProviderOp::CreateInstance,
        ProviderOp::EnqueueMessage,
        ProviderOp::FetchOrchestrationItem,
        ProviderOp::FetchOrchestrationItemCached,
        ProviderOp::FetchOrchestrationItemsCached,
        ProviderOp::CommitTurn,
        ProviderOp::AbandonOrchestrationItem,
        ProviderOp::RenewOrchestrationLock,
        ProviderOp::FetchWorkItem,
        ProviderOp::FetchWorkItems,
        ProviderOp::RenewSessions,
        ProviderOp::RenewWorkItem,
        ProviderOp::CompleteWorkItem,
        ProviderOp::CompleteWorkItems,
        ProviderOp::CompleteWorkItemsAndLock,
        ProviderOp::AbandonWorkItem,
        ProviderOp::GetInstance,
        ProviderOp::ReadHistory,
        ProviderOp::ListExecutions,
        ProviderOp::ListInstances,
        ProviderOp::ListBlockedInstances,
        ProviderOp::CountInstancesByVersion,
        ProviderOp::ListInstancesPage,
        ProviderOp::CountInstances,
        ProviderOp::CountInstancesByState,
        ProviderOp::DescribeInstance,
        ProviderOp::ReadHistoryPage,
        ProviderOp::DeleteInstance,
        ProviderOp::DeleteInstances,
        ProviderOp::PruneExecutions,
        ProviderOp::TerminateInstance,
        ProviderOp::StoreSummary,
        ProviderOp::ExportInstance,
        ProviderOp::ImportInstance,
        ProviderOp::SetStatusNote,
        ProviderOp::GetValue,
        ProviderOp::GetValues,
        ProviderOp::RecordWorker,
        ProviderOp::RemoveWorker,
        ProviderOp::ListWorkers,
    ];

    /// The trait method's name (`"commit_turn"`).
    pub fn name(self) -> &'static str {
        match self {
            ProviderOp::CreateInstance => "create_instance",
            ProviderOp::EnqueueMessage => "enqueue_message",
            ProviderOp::FetchOrchestrationItem => "fetch_orchestration_item",
            ProviderOp::FetchOrchestrationItemCached => "fetch_orchestration_item_cached",
            ProviderOp::FetchOrchestrationItemsCached => "fetch_orchestration_items_cached",
            ProviderOp::CommitTurn => "commit_turn",
            ProviderOp::AbandonOrchestrationItem => "abandon_orchestration_item",
            ProviderOp::RenewOrchestrationLock => "renew_orchestration_lock",
            ProviderOp::FetchWorkItem => "fetch_work_item",
            ProviderOp::FetchWorkItems => "fetch_work_items",
            ProviderOp::RenewSessions => "renew_sessions",
            ProviderOp::RenewWorkItem => "renew_work_item",
            ProviderOp::CompleteWorkItem => "complete_work_item",
            ProviderOp::CompleteWorkItems => "complete_work_items",
            ProviderOp::CompleteWorkItemsAndLock => "complete_work_items_and_lock",
            ProviderOp::AbandonWorkItem => "abandon_work_item",
            ProviderOp::GetInstance => "get_instance",
            ProviderOp::ReadHistory => "read_history",
            ProviderOp::ListExecutions => "list_executions",
            ProviderOp::ListInstances => "list_instances",
            ProviderOp::ListBlockedInstances => "list_blocked_instances",
            ProviderOp::CountInstancesByVersion => "count_instances_by_version",
            ProviderOp::ListInstancesPage => "list_instances_page",
            ProviderOp::CountInstances => "count_instances",
            ProviderOp::CountInstancesByState => "count_instances_by_state",
            ProviderOp::DescribeInstance => "describe_instance",
            ProviderOp::ReadHistoryPage => "read_history_page",
            ProviderOp::DeleteInstance => "delete_instance",
            ProviderOp::DeleteInstances => "delete_instances",
            ProviderOp::PruneExecutions => "prune_executions",
            ProviderOp::TerminateInstance => "terminate_instance",
            ProviderOp::StoreSummary => "store_summary",
            ProviderOp::ExportInstance => "export_instance",
            ProviderOp::ImportInstance => "import_instance",
            ProviderOp::SetStatusNote => "set_status_note",
            ProviderOp::GetValue => "get_value",
            ProviderOp::GetValues => "get_values",
            ProviderOp::RecordWorker => "record_worker",
            ProviderOp::RemoveWorker => "remove_worker",
            ProviderOp::ListWorkers => "list_workers",
        }
    }

    /// True for calls that only read (instance records, histories, listings, exports).
    pub fn is_read(self) -> bool {
        matches!(
            self,
            ProviderOp::GetInstance
                | ProviderOp::ListInstancesPage
                | ProviderOp::CountInstances
                | ProviderOp::CountInstancesByState
                | ProviderOp::DescribeInstance
                | ProviderOp::ReadHistoryPage
                | ProviderOp::StoreSummary
                | ProviderOp::ReadHistory
                | ProviderOp::ListExecutions
                | ProviderOp::ListInstances
                | ProviderOp::ListBlockedInstances
                | ProviderOp::CountInstancesByVersion
                | ProviderOp::ExportInstance
                | ProviderOp::GetValue
                | ProviderOp::GetValues
                | ProviderOp::ListWorkers
        )
    }

    /// The lock a call needs to hold, if any.
    pub(super) fn lock(self) -> Option<LockKind> {
        match self {
            ProviderOp::CommitTurn
            | ProviderOp::AbandonOrchestrationItem
            | ProviderOp::RenewOrchestrationLock => Some(LockKind::Orchestration),
            ProviderOp::RenewWorkItem
            | ProviderOp::CompleteWorkItem
            | ProviderOp::CompleteWorkItems
            | ProviderOp::CompleteWorkItemsAndLock
            | ProviderOp::AbandonWorkItem => Some(LockKind::Activity),
            _ => None,
        }
    }

    /// True for lock renewals (where [`Fault::LockLost`] applies).
    pub(super) fn is_renewal(self) -> bool {
        matches!(self, ProviderOp::RenewOrchestrationLock | ProviderOp::RenewWorkItem)
    }

    pub(super) fn index(self) -> usize {
        ProviderOp::ALL.iter().position(|op| *op == self).unwrap_or(0)
    }
}

impl fmt::Display for ProviderOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How often [`FaultyProvider`] injects each kind of fault, and into which operations.
///
/// Probabilities are per call, from 0.0 (never, the default) to 1.0 (always); values out of
/// range are clamped and NaN counts as 0. A call gets at most one of the failures (before,
/// after, lost lock); a delay and an expired lock may come on top.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    pub(super) fail_before: f64,
    pub(super) fail_after: f64,
    pub(super) delay: f64,
    pub(super) max_delay: Duration,
    pub(super) lose_lock: f64,
    pub(super) expire_lock: f64,
    pub(super) lock_margin: Duration,
    pub(super) excluded: Vec<ProviderOp>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            fail_before: 0.0,
            fail_after: 0.0,
            delay: 0.0,
            max_delay: Duration::ZERO,
            lose_lock: 0.0,
            expire_lock: 0.0,
            lock_margin: Duration::from_millis(100),
            excluded: Vec::new(),
        }
    }
}

pub(super) fn probability(p: f64) -> f64 {
    if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) }
}

impl FaultConfig {
    /// No faults (add them with the builder methods).
    pub fn new() -> Self {
        Self::default()
    }

    /// Fail calls before they reach the store, with probability `p`.
    pub fn fail_before(mut self, p: f64) -> Self {
        self.fail_before = probability(p);
        self
    }

    /// Fail calls after the store did the work, with probability `p`.
    pub fn fail_after(mut self, p: f64) -> Self {
        self.fail_after = probability(p);
        self
    }

    /// Delay calls, with probability `p`, by up to `max`.
    pub fn delay(mut self, p: f64, max: Duration) -> Self {
        self.delay = probability(p);
        self.max_delay = max;
        self
    }

    /// Make lock renewals fail with [`ProviderError::LockLost`], with probability `p`.
    pub fn lose_locks(mut self, p: f64) -> Self {
        self.lose_lock = probability(p);
        self
    }

    /// Make calls that need a lock sleep past the lock timeout first, with probability `p`.
    /// They sleep for the timeout the caller last fetched with plus a margin (100 ms unless
    /// set with [`lock_margin`](Self::lock_margin)).
    pub fn expire_locks(mut self, p: f64) -> Self {
        self.expire_lock = probability(p);
        self
    }

    /// How far past the lock timeout an expired-lock fault sleeps.
    pub fn lock_margin(mut self, margin: Duration) -> Self {
        self.lock_margin = margin;
        self
    }

    /// Never inject faults into `ops` (they still count calls).
    pub fn except(mut self, ops: impl IntoIterator<Item = ProviderOp>) -> Self {
        self.excluded.extend(ops);
        self
    }

    /// Never inject faults into read-only calls ([`ProviderOp::is_read`]), e.g. so a client
    /// on the same wrapped store can watch instances without retrying.
    pub fn except_reads(self) -> Self {
        self.except(ProviderOp::ALL.into_iter().filter(|op| op.is_read()))
    }

    /// Whether faults may be injected into `op`.
    pub fn applies_to(&self, op: ProviderOp) -> bool {
        !self.excluded.contains(&op)
    }
}

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The call failed before it reached the store (the store is untouched).
    FailedBefore,
    /// The call reached the store, which did the work, but the caller got an error.
    FailedAfter,
    /// The call waited this long before reaching the store.
    Delayed(Duration),
    /// A lock renewal reported a lost lock without reaching the store.
    LockLost,
    /// The call slept this long (past the lock timeout) before reaching the store.
    SleptPastLock(Duration),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::FailedBefore => f.write_str("failed before the store call"),
            Fault::FailedAfter => f.write_str("failed after the store call"),
            Fault::Delayed(d) => write!(f, "delayed {d:?}"),
            Fault::LockLost => f.write_str("reported the lock lost"),
            Fault::SleptPastLock(d) => write!(f, "slept {d:?} past the lock"),
        }
    }
}

/// A fault in the log of a [`FaultyProvider`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFault {
    /// Order of injection across all operations, from 0.
    pub seq: u64,
    /// The operation.
    pub op: ProviderOp,
    /// Which call of that operation it was, from 0.
    pub call: u64,
    /// What was injected.
    pub fault: Fault,
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} call {}: {}", self.seq, self.op, self.call, self.fault)
    }
}

/// What a [`FaultyProvider`] does to one call (see [`FaultyProvider::plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultPlan {
    /// Wait this long before the call.
    pub delay: Option<Duration>,
    /// Sleep past the lock before the call.
    pub expire_lock: bool,
    /// Fail without reaching the store.
    pub fail_before: bool,
    /// Report a lost lock without reaching the store (renewals only).
    pub lose_lock: bool,
    /// Reach the store, then fail.
    pub fail_after: bool,
}

impl FaultPlan {
    /// True when the call is left alone.
    pub fn is_clean(&self) -> bool {
        *self == FaultPlan::default()
    }
}

/// The splitmix64 step: a small, well-mixed generator, enough to spread seeds over calls.
pub(super) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform draw in [0, 1).
pub(super) fn unit(state: &mut u64) -> f64 {
    (splitmix64(state) >> 11) as f64 / (1u64 << 53) as f64
}
