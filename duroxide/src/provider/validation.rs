//! The provider conformance suite: the contract of [`Provider`], as executable tests.
//!
//! Every store shipped with duroxide passes it, and a third-party store should too. Each
//! test is a public async function taking a [`ProviderFactory`] (something that makes a
//! fresh, empty store); [`provider_validation_tests!`](crate::provider_validation_tests)
//! turns the whole list into `#[tokio::test]`s, and [`run_all`] runs them in one call.
//!
//! ```no_run
//! use duroxide::provider::validation::ProviderFactory;
//! use duroxide::{Provider, SqliteProvider};
//! use std::sync::Arc;
//!
//! struct MyFactory;
//!
//! #[async_trait::async_trait]
//! impl ProviderFactory for MyFactory {
//!     async fn create_provider(&self) -> Arc<dyn Provider> {
//!         Arc::new(SqliteProvider::in_memory().await.unwrap())
//!     }
//! }
//!
//! // In a test file: one #[tokio::test] per conformance test.
//! // duroxide::provider_validation_tests!(MyFactory);
//! # async fn demo() {
//! // Or all at once, e.g. from a binary:
//! let failures = duroxide::provider::validation::run_all(Arc::new(MyFactory)).await;
//! assert!(failures.is_empty(), "{failures:?}");
//! # }
//! ```
//!
//! Tests use short lock timeouts (a few hundred milliseconds) and sleep past them, so a
//! store must honour lock expiry with millisecond precision. Some tests need to write data
//! that duroxide itself never writes (an unreadable history row); they call
//! [`ProviderFactory::insert_raw_history_event`] and pass trivially when the factory does
//! not implement it.

use super::*;
use crate::history::{DUROXIDE_VERSION, EventKind};
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::future::Future;

/// Makes fresh, empty stores for the conformance tests.
#[async_trait::async_trait]
pub trait ProviderFactory: Send + Sync + 'static {
    /// A new, empty store. Called once per test.
    async fn create_provider(&self) -> Arc<dyn Provider>;

    /// Stores `raw` verbatim as event `event_id` of `execution_id` of `instance`, bypassing
    /// serialization (to test how unreadable history is reported). Return `false` when the
    /// store cannot do this; the tests that need it then pass without checking.
    async fn insert_raw_history_event(
        &self,
        _instance: &str,
        _execution_id: u64,
        _event_id: u64,
        _raw: &str,
    ) -> bool {
        false
    }

    /// Overwrites the stored state string of `instance` with `state` verbatim (to test how
    /// a corrupt instance row is isolated). Return `false` when the store cannot do this;
    /// the tests that need it then pass without checking.
    async fn set_raw_instance_state(&self, _instance: &str, _state: &str) -> bool {
        false
    }

    /// Called after each test (also when it failed), e.g. to drop a database schema.
    async fn teardown(&self) {}

    /// When `Some`, the tests are skipped with this reason (e.g. no database server).
    fn skip_reason(&self) -> Option<String> {
        None
    }
}

#[async_trait::async_trait]
impl<F, Fut> ProviderFactory for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Arc<dyn Provider>> + Send,
{
    async fn create_provider(&self) -> Arc<dyn Provider> {
        (self)().await
    }
}

/// A shared factory, as the tests take it.
pub type Factory = Arc<dyn ProviderFactory>;

/// One conformance test.
#[derive(Clone, Copy)]
pub struct ValidationTest {
    /// Test (function) name.
    pub name: &'static str,
    /// Runs it.
    pub run: fn(Factory) -> BoxFuture<'static, ()>,
}

impl std::fmt::Debug for ValidationTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Runs one test on its own task, then the factory's teardown, then re-raises a failure.
pub async fn run_test<Fut>(factory: Factory, name: &str, test: fn(Factory) -> Fut)
where
    Fut: Future<Output = ()> + Send + 'static,
{
    if let Some(reason) = factory.skip_reason() {
        eprintln!("SKIPPED provider validation test {name}: {reason}");
        return;
    }
    let result = tokio::spawn(test(factory.clone())).await;
    factory.teardown().await;
    if let Err(e) = result {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("provider validation test {name} was cancelled");
    }
}

/// Runs every test in turn (a fresh store each) and returns the failures as
/// `(test name, panic message)`.
pub async fn run_all(factory: Factory) -> Vec<(&'static str, String)> {
    let mut failures = Vec::new();
    for t in all_tests() {
        if let Some(reason) = factory.skip_reason() {
            eprintln!("SKIPPED provider validation: {reason}");
            return failures;
        }
        let result = tokio::spawn((t.run)(factory.clone())).await;
        factory.teardown().await;
        if let Err(e) = result {
            let msg = if e.is_panic() {
                let p = e.into_panic();
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".to_string())
            } else {
                "cancelled".to_string()
            };
            failures.push((t.name, msg));
        }
    }
    failures
}

/// Generates one `#[tokio::test]` per conformance test, each with a fresh factory from
/// `$factory` (an expression evaluated per test, whose type implements
/// [`ProviderFactory`](crate::provider::validation::ProviderFactory)). Needs `tokio` (with
/// the `macros` and `rt-multi-thread` features) among the caller's dev-dependencies.
///
/// ```ignore
/// mod my_store_conformance {
///     duroxide::provider_validation_tests!(crate::MyFactory::new());
/// }
/// ```
#[macro_export]
macro_rules! provider_validation_tests {
    ($factory:expr) => {
        $crate::__duroxide_validation_list! { __duroxide_validation_gen { $factory } }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __duroxide_validation_gen {
    ({ $factory:expr } [ $($name:ident),* $(,)? ]) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let factory: $crate::provider::validation::Factory = ::std::sync::Arc::new($factory);
                $crate::provider::validation::run_test(
                    factory,
                    ::std::stringify!($name),
                    $crate::provider::validation::$name,
                )
                .await;
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __duroxide_validation_table {
    ({} [ $($name:ident),* $(,)? ]) => {
        ::std::vec![
            $(
                $crate::provider::validation::ValidationTest {
                    name: ::std::stringify!($name),
                    run: |f| ::std::boxed::Box::pin($crate::provider::validation::$name(f)),
                },
            )*
        ]
    };
}

/// Every conformance test, in a stable order.
pub fn all_tests() -> Vec<ValidationTest> {
    crate::__duroxide_validation_list! { __duroxide_validation_table {} }
}

/// The list of conformance tests (one place; the macros above expand it).
#[doc(hidden)]
#[macro_export]
macro_rules! __duroxide_validation_list {
    ($callback:ident { $($args:tt)* }) => {
        $crate::$callback! { { $($args)* } [
            // instances
            create_instance_enqueues_start,
            create_instance_duplicate_fails,
            create_instance_with_pinned_version,
            get_unknown_instance_is_none,
            instance_timestamps_are_set,
            list_instances_empty_store,
            list_instances_in_creation_order,
            enqueue_to_unknown_instance_fails,
            unusual_instance_ids_roundtrip,
            set_status_note_is_visible,
            // queue semantics
            fetch_empty_store_returns_none,
            messages_come_in_enqueue_order,
            fetched_instance_is_locked,
            other_instances_fetchable_while_one_is_locked,
            oldest_message_first_across_instances,
            batch_holds_only_its_instance,
            commit_deletes_consumed_messages,
            messages_arriving_during_turn_survive_commit,
            abandon_makes_messages_visible_again,
            abandon_with_delay_hides_messages,
            abandon_records_note,
            abandon_with_unknown_token_fails,
            commit_with_unknown_token_fails,
            commit_twice_fails,
            // delayed visibility
            delayed_message_invisible_until_due,
            delayed_message_does_not_hold_back_visible_ones,
            timer_committed_by_turn_is_delayed,
            past_visible_at_is_visible_now,
            delayed_instance_does_not_block_others,
            // locks
            expired_lock_can_be_taken_over,
            commit_after_takeover_fails,
            stale_commit_with_effects_writes_nothing,
            renew_extends_orchestration_lock,
            renew_with_unknown_token_fails,
            renew_after_commit_fails,
            abandon_after_takeover_fails,
            messages_arriving_after_expiry_join_next_batch,
            // cached fetches
            cached_fetch_with_current_length_keeps_history_len,
            cached_fetch_with_stale_length_reads_history,
            cached_fetch_of_other_execution_reads_history,
            // attempts
            first_fetch_is_attempt_one,
            abandon_counts_attempts,
            abandon_without_count_keeps_attempt,
            lock_expiry_counts_an_attempt,
            attempt_is_highest_of_batch,
            new_batch_after_commit_is_attempt_one,
            activity_attempts_count_up,
            activity_lock_expiry_counts_attempt,
            // atomic commit
            commit_appends_history,
            commit_updates_instance_record,
            commit_completed_sets_output,
            commit_failed_sets_error,
            duplicate_event_id_rolls_back_everything,
            failed_commit_keeps_lock_and_messages,
            custom_status_set_kept_and_cleared,
            commit_clears_status_note,
            commit_without_events_consumes_messages,
            history_grows_across_turns,
            commit_enqueues_activities,
            duplicate_activity_enqueue_is_ignored,
            // activities
            fetch_work_empty_returns_none,
            work_items_are_fifo,
            locked_work_item_is_not_refetched,
            complete_work_item_enqueues_completion,
            commit_enqueues_locked_activity,
            locked_activity_expires_for_others,
            complete_with_unknown_token_fails,
            complete_twice_fails,
            abandon_work_item_retries_now,
            abandon_work_item_with_delay,
            expired_work_lock_is_taken_over,
            renew_work_item_extends_lock,
            renew_work_item_unknown_token_fails,
            activity_failure_completion_roundtrips,
            // cancellation
            cancel_removes_queued_activity,
            cancel_flags_running_activity,
            cancelled_running_activity_dropped_after_expiry,
            cancel_touches_only_named_activity,
            cancel_of_unknown_activity_is_noop,
            // sessions
            session_work_claims_the_session,
            session_work_stays_with_its_worker,
            session_taken_over_after_lease_expiry,
            max_sessions_caps_claims,
            idle_sessions_do_not_count_against_the_cap,
            renew_sessions_extends_leases,
            renew_sessions_releases_idle_sessions,
            renew_sessions_keeps_busy_sessions,
            session_id_survives_queue_and_export,
            // batch fetches
            batch_fetch_takes_oldest_instances,
            batch_fetched_items_commit_independently,
            batch_fetch_honours_filter_and_locks,
            batch_fetch_uses_cached_history_lengths,
            batch_work_fetch_takes_oldest_activities,
            batch_work_locks_expire,
            batch_work_fetch_skips_locked_activities,
            batch_work_fetch_keeps_session_order,
            // executions
            continue_as_new_switches_execution,
            list_executions_after_continue_as_new,
            read_history_per_execution,
            new_execution_history_restarts_at_one,
            read_history_unknown_instance_fails,
            list_executions_unknown_instance_is_empty,
            // messages between instances
            start_message_creates_child_instance,
            start_to_existing_child_fails_parent,
            detached_start_to_existing_is_skipped,
            message_to_unknown_instance_is_dropped,
            message_to_other_instance_is_delivered,
            delayed_message_to_other_instance,
            // filters
            filter_by_name,
            filtered_out_instance_does_not_block_others,
            filter_by_pinned_version,
            unpinned_instance_passes_version_lists,
            empty_filter_list_fetches_nothing,
            filter_by_duroxide_version_range,
            instance_without_duroxide_version_passes_range,
            list_blocked_instances_reports_filtered,
            list_blocked_instances_respects_limit,
            count_instances_by_version_groups,
            // export and import
            export_unknown_instance_fails,
            export_import_roundtrip,
            import_existing_instance_fails,
            imported_instance_continues,
            // payloads and unreadable data
            large_input_roundtrips,
            large_event_roundtrips,
            large_activity_payloads_roundtrip,
            unicode_payloads_roundtrip,
            unreadable_history_sets_history_error,
            unreadable_history_read_is_corrupt,
            unknown_event_type_sets_history_error,
            corrupt_instance_state_is_isolated,
            identifiers_at_the_limits_work,
            // concurrency
            concurrent_fetches_lock_instance_once,
            concurrent_fetches_take_each_instance_once,
            concurrent_work_fetches_take_each_item_once,
            concurrent_commits_fail_alone,
            concurrent_creates_fail_alone,
            complete_and_lock_returns_the_instance,
            complete_and_lock_skips_held_instances,
            concurrent_commits_on_different_instances,
        ] }
    };
}

// ---------------------------------------------------------------------------------------
// Helpers

const LOCK: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(300);
const NAME: &str = "Orch";
const V1: &str = "1.0.0";

fn now() -> u64 {
    crate::now_ms()
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn ev(event_id: u64, kind: EventKind) -> Event {
    Event { event_id, timestamp_ms: now(), kind }
}

fn started_kind(input: &str) -> EventKind {
    EventKind::OrchestrationStarted {
        name: NAME.into(),
        version: V1.into(),
        input: input.into(),
        parent: None,
        duroxide_version: DUROXIDE_VERSION.into(),
    }
}

fn started(input: &str) -> Event {
    ev(1, started_kind(input))
}

fn scheduled(event_id: u64, name: &str, input: &str) -> Event {
    ev(
        event_id,
        EventKind::ActivityScheduled {
            name: name.into(),
            input: input.into(),
            call_site: None,
            session_id: None,
        },
    )
}

fn update(state: InstanceState) -> InstanceUpdate {
    InstanceUpdate {
        name: NAME.into(),
        version: V1.into(),
        state,
        output: None,
        error: None,
        custom_status: None,
    }
}

fn turn(execution_id: u64, new_events: Vec<Event>, state: InstanceState) -> TurnCommit {
    TurnCommit {
        execution_id,
        new_events,
        update: update(state),
        next_execution_id: None,
        activities: Vec::new(),
        activity_lock_timeout: Duration::ZERO,
        cancelled_activities: Vec::new(),
        messages: Vec::new(),
    }
}

fn work(instance: &str, execution_id: u64, event_id: u64, name: &str, input: &str) -> ActivityWorkItem {
    ActivityWorkItem {
        instance: instance.into(),
        execution_id,
        event_id,
        name: name.into(),
        input: input.into(),
        session_id: None,
        lock_token: String::new(),
        attempt: 0,
        session_claimed: false,
    }
}

fn worker(id: &str) -> WorkerIdentity {
    WorkerIdentity { worker_id: id.into(), session_lease: LOCK, max_sessions: 64 }
}

fn external(instance: &str, name: &str, data: &str) -> OutboundMessage {
    OutboundMessage {
        instance: instance.into(),
        message: OrchestratorMessage::ExternalRaised { name: name.into(), data: data.into() },
        visible_at_ms: None,
    }
}

fn delayed(instance: &str, name: &str, at: u64) -> OutboundMessage {
    OutboundMessage { visible_at_ms: Some(at), ..external(instance, name, "") }
}

fn completion(instance: &str, event_id: u64, result: &str) -> OutboundMessage {
    OutboundMessage {
        instance: instance.into(),
        message: OrchestratorMessage::ActivityCompleted { execution_id: 1, event_id, result: result.into() },
        visible_at_ms: None,
    }
}

fn all() -> FetchFilter {
    FetchFilter::default()
}

async fn create(p: &Arc<dyn Provider>, instance: &str) {
    p.create_instance(instance, NAME, None, "input").await.expect("create_instance");
}

async fn fetch(p: &Arc<dyn Provider>) -> Option<OrchestrationItem> {
    p.fetch_orchestration_item(LOCK, &all()).await.expect("fetch_orchestration_item")
}

async fn fetch_some(p: &Arc<dyn Provider>, instance: &str) -> OrchestrationItem {
    let item = fetch(p).await.unwrap_or_else(|| panic!("expected a batch for '{instance}', got none"));
    assert_eq!(item.instance, instance, "fetched the wrong instance");
    item
}

async fn fetch_none(p: &Arc<dyn Provider>) {
    if let Some(item) = fetch(p).await {
        panic!("expected no visible batch, got instance '{}' with {:?}", item.instance, item.messages);
    }
}

async fn fetch_filtered(p: &Arc<dyn Provider>, filter: &FetchFilter) -> Option<OrchestrationItem> {
    p.fetch_orchestration_item(LOCK, filter).await.expect("fetch_orchestration_item")
}

/// Creates `instance` and commits its first turn (OrchestrationStarted), state Running.
async fn started_instance(p: &Arc<dyn Provider>, instance: &str) {
    create(p, instance).await;
    let item = fetch_some(p, instance).await;
    p.commit_turn(&item.lock_token, turn(1, vec![started("input")], InstanceState::Running))
        .await
        .expect("commit first turn");
}

/// A started instance whose first turn scheduled activities with these event ids.
async fn with_activities(p: &Arc<dyn Provider>, instance: &str, event_ids: &[u64]) {
    create(p, instance).await;
    let item = fetch_some(p, instance).await;
    let mut events = vec![started("input")];
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    for &id in event_ids {
        events.push(scheduled(id, "Act", &format!("in-{id}")));
        c.activities.push(work(instance, 1, id, "Act", &format!("in-{id}")));
    }
    c.new_events = events;
    p.commit_turn(&item.lock_token, c).await.expect("commit turn with activities");
}

async fn fetch_work(p: &Arc<dyn Provider>, lock: Duration) -> Option<ActivityWorkItem> {
    p.fetch_work_item(lock, &worker("w-default")).await.expect("fetch_work_item")
}

fn names(messages: &[OrchestratorMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match m {
            OrchestratorMessage::ExternalRaised { name, .. } => name.clone(),
            other => other.type_name().to_string(),
        })
        .collect()
}

fn assert_lock_lost<T: std::fmt::Debug>(r: Result<T, ProviderError>, what: &str) {
    match r {
        Err(ProviderError::LockLost(_)) => {}
        other => panic!("{what}: expected ProviderError::LockLost, got {other:?}"),
    }
}

fn big(n: usize) -> String {
    // Varied content so compression or truncation bugs show.
    (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

// ---------------------------------------------------------------------------------------
// Instances

/// `create_instance` enqueues a StartOrchestration with the name, version and input.
pub async fn create_instance_enqueues_start(f: Factory) {
    let p = f.create_provider().await;
    p.create_instance("i1", NAME, None, "hello").await.unwrap();
    let item = fetch_some(&p, "i1").await;
    assert_eq!(
        item.messages,
        vec![OrchestratorMessage::StartOrchestration {
            name: NAME.into(),
            version: None,
            input: "hello".into(),
            parent: None
        }]
    );
    assert_eq!(item.record.state, InstanceState::Pending);
    assert_eq!(item.record.execution_id, 0);
    assert!(item.history.is_empty());
    assert_eq!(item.history_len, 0);
    assert!(item.history_error.is_none());
}

/// A second `create_instance` with the same id fails and enqueues nothing.
pub async fn create_instance_duplicate_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "dup").await;
    match p.create_instance("dup", "Other", None, "x").await {
        Err(ProviderError::InstanceExists(id)) => assert_eq!(id, "dup"),
        other => panic!("expected InstanceExists, got {other:?}"),
    }
    let item = fetch_some(&p, "dup").await;
    assert_eq!(item.messages.len(), 1, "the duplicate must not enqueue a start");
    assert_eq!(item.record.name, NAME);
}

/// A pinned version is stored on the record and in the start message.
pub async fn create_instance_with_pinned_version(f: Factory) {
    let p = f.create_provider().await;
    p.create_instance("pinned", NAME, Some("2.1.0"), "x").await.unwrap();
    let r = p.get_instance("pinned").await.unwrap().expect("record");
    assert_eq!(r.version.as_deref(), Some("2.1.0"));
    let item = fetch_some(&p, "pinned").await;
    assert!(matches!(
        &item.messages[0],
        OrchestratorMessage::StartOrchestration { version: Some(v), .. } if v == "2.1.0"
    ));
}

/// `get_instance` of an unknown id is `None`, not an error.
pub async fn get_unknown_instance_is_none(f: Factory) {
    let p = f.create_provider().await;
    assert_eq!(p.get_instance("nope").await.unwrap(), None);
}

/// Creation and update times are set, in ms since the epoch.
pub async fn instance_timestamps_are_set(f: Factory) {
    let p = f.create_provider().await;
    let before = now();
    create(&p, "t").await;
    let after = now();
    let r = p.get_instance("t").await.unwrap().unwrap();
    assert!(r.created_at_ms >= before.saturating_sub(1000) && r.created_at_ms <= after + 1000, "{r:?}");
    assert!(r.updated_at_ms >= r.created_at_ms, "{r:?}");
    assert_eq!(r.parent_instance, None);
    assert_eq!(r.output, None);
}

/// An empty store lists no instances.
pub async fn list_instances_empty_store(f: Factory) {
    let p = f.create_provider().await;
    assert!(p.list_instances().await.unwrap().is_empty());
}

/// `list_instances` returns ids oldest first.
pub async fn list_instances_in_creation_order(f: Factory) {
    let p = f.create_provider().await;
    for id in ["c-first", "a-second", "b-third"] {
        create(&p, id).await;
        sleep_ms(3).await;
    }
    assert_eq!(p.list_instances().await.unwrap(), vec!["c-first", "a-second", "b-third"]);
}

/// `enqueue_message` to an unknown instance fails with `InstanceNotFound`.
pub async fn enqueue_to_unknown_instance_fails(f: Factory) {
    let p = f.create_provider().await;
    match p.enqueue_message(external("ghost", "E", "x")).await {
        Err(ProviderError::InstanceNotFound(id)) => assert_eq!(id, "ghost"),
        other => panic!("expected InstanceNotFound, got {other:?}"),
    }
    assert!(p.list_instances().await.unwrap().is_empty());
}

/// Ids with quotes, spaces, unicode and long ids are stored exactly.
pub async fn unusual_instance_ids_roundtrip(f: Factory) {
    let p = f.create_provider().await;
    let ids = ["it's \"quoted\"", "with space", "ünïcødé-✓", "semi;colon--", &"x".repeat(300)];
    for id in ids {
        create(&p, id).await;
        assert_eq!(p.get_instance(id).await.unwrap().expect("record").instance, id);
    }
    let listed: HashSet<String> = p.list_instances().await.unwrap().into_iter().collect();
    for id in ids {
        assert!(listed.contains(id), "{id} missing from {listed:?}");
    }
}

/// `set_status_note` shows in the record.
pub async fn set_status_note_is_visible(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "n").await;
    p.set_status_note("n", "no node runs this").await.unwrap();
    assert_eq!(p.get_instance("n").await.unwrap().unwrap().status_note.as_deref(), Some("no node runs this"));
}

// ---------------------------------------------------------------------------------------
// Queue semantics

/// An empty store has nothing to fetch.
pub async fn fetch_empty_store_returns_none(f: Factory) {
    let p = f.create_provider().await;
    fetch_none(&p).await;
    assert!(fetch_work(&p, LOCK).await.is_none());
}

/// A batch holds all visible messages of the instance, oldest first.
pub async fn messages_come_in_enqueue_order(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "o").await;
    for n in ["e1", "e2", "e3"] {
        p.enqueue_message(external("o", n, n)).await.unwrap();
    }
    let item = fetch_some(&p, "o").await;
    assert_eq!(names(&item.messages), vec!["StartOrchestration", "e1", "e2", "e3"]);
}

/// While locked, an instance is not fetched again.
pub async fn fetched_instance_is_locked(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "l").await;
    let _item = fetch_some(&p, "l").await;
    fetch_none(&p).await;
    p.enqueue_message(external("l", "more", "")).await.unwrap();
    fetch_none(&p).await;
}

/// Locking one instance does not block others.
pub async fn other_instances_fetchable_while_one_is_locked(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "a").await;
    create(&p, "b").await;
    let first = fetch(&p).await.unwrap();
    let second = fetch(&p).await.unwrap();
    let got: HashSet<_> = [first.instance, second.instance].into_iter().collect();
    assert_eq!(got, ["a".to_string(), "b".to_string()].into_iter().collect());
    assert_ne!(first.lock_token, second.lock_token);
}

/// The instance with the oldest visible message is fetched first.
pub async fn oldest_message_first_across_instances(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "zeta").await;
    create(&p, "alpha").await;
    create(&p, "mid").await;
    let order = [
        fetch(&p).await.unwrap().instance,
        fetch(&p).await.unwrap().instance,
        fetch(&p).await.unwrap().instance,
    ];
    assert_eq!(order, ["zeta", "alpha", "mid"]);
}

/// A batch never contains another instance's messages.
pub async fn batch_holds_only_its_instance(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "x").await;
    create(&p, "y").await;
    p.enqueue_message(external("y", "for-y", "")).await.unwrap();
    p.enqueue_message(external("x", "for-x", "")).await.unwrap();
    let x = fetch_some(&p, "x").await;
    assert_eq!(names(&x.messages), vec!["StartOrchestration", "for-x"]);
    let y = fetch_some(&p, "y").await;
    assert_eq!(names(&y.messages), vec!["StartOrchestration", "for-y"]);
}

/// `commit_turn` deletes the consumed messages and releases the lock.
pub async fn commit_deletes_consumed_messages(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "c").await;
    let item = fetch_some(&p, "c").await;
    p.commit_turn(&item.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
    fetch_none(&p).await;
    p.enqueue_message(external("c", "next", "")).await.unwrap();
    let again = fetch_some(&p, "c").await;
    assert_eq!(names(&again.messages), vec!["next"]);
}

/// Messages enqueued while a turn runs are not consumed by its commit.
pub async fn messages_arriving_during_turn_survive_commit(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "d").await;
    let item = fetch_some(&p, "d").await;
    p.enqueue_message(external("d", "late", "")).await.unwrap();
    p.commit_turn(&item.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
    let next = fetch_some(&p, "d").await;
    assert_eq!(names(&next.messages), vec!["late"]);
    assert_eq!(next.history.len(), 1);
}

/// Abandon releases the lock; the same messages come back.
pub async fn abandon_makes_messages_visible_again(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "ab").await;
    p.enqueue_message(external("ab", "e", "")).await.unwrap();
    let item = fetch_some(&p, "ab").await;
    p.abandon_orchestration_item(&item.lock_token, None, None, true).await.unwrap();
    let again = fetch_some(&p, "ab").await;
    assert_eq!(again.messages, item.messages);
    assert_ne!(again.lock_token, item.lock_token);
}

/// Abandon with a delay keeps the messages invisible until it passes.
pub async fn abandon_with_delay_hides_messages(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "ad").await;
    let item = fetch_some(&p, "ad").await;
    p.abandon_orchestration_item(&item.lock_token, Some(SHORT), None, true).await.unwrap();
    fetch_none(&p).await;
    sleep_ms(450).await;
    fetch_some(&p, "ad").await;
}

/// Abandon's note is recorded on the instance.
pub async fn abandon_records_note(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "an").await;
    let item = fetch_some(&p, "an").await;
    p.abandon_orchestration_item(&item.lock_token, None, Some("not registered here".into()), false)
        .await
        .unwrap();
    assert_eq!(
        p.get_instance("an").await.unwrap().unwrap().status_note.as_deref(),
        Some("not registered here")
    );
}

/// Abandon with a token nobody holds fails with `LockLost`.
pub async fn abandon_with_unknown_token_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "au").await;
    assert_lock_lost(p.abandon_orchestration_item("no-such-token", None, None, true).await, "abandon");
    fetch_some(&p, "au").await;
}

/// Commit with a token nobody holds fails with `LockLost` and changes nothing.
pub async fn commit_with_unknown_token_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "cu").await;
    assert_lock_lost(
        p.commit_turn("no-such-token", turn(1, vec![started("x")], InstanceState::Running)).await,
        "commit",
    );
    assert_eq!(p.get_instance("cu").await.unwrap().unwrap().state, InstanceState::Pending);
    fetch_some(&p, "cu").await;
}

/// A token is good for one commit.
pub async fn commit_twice_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "c2").await;
    let item = fetch_some(&p, "c2").await;
    p.commit_turn(&item.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
    let second = TurnCommit {
        new_events: vec![ev(2, EventKind::OrchestrationCompleted { output: "o".into() })],
        ..turn(1, Vec::new(), InstanceState::Completed)
    };
    assert_lock_lost(p.commit_turn(&item.lock_token, second).await, "second commit");
    assert_eq!(p.read_history("c2", None).await.unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------
// Delayed visibility

/// A message with `visible_at_ms` in the future is invisible until then.
pub async fn delayed_message_invisible_until_due(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "dm").await;
    p.enqueue_message(delayed("dm", "later", now() + 300)).await.unwrap();
    fetch_none(&p).await;
    sleep_ms(450).await;
    let item = fetch_some(&p, "dm").await;
    assert_eq!(names(&item.messages), vec!["later"]);
}

/// Visible messages are delivered without the instance's delayed ones.
pub async fn delayed_message_does_not_hold_back_visible_ones(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "mix").await;
    p.enqueue_message(delayed("mix", "later", now() + 60_000)).await.unwrap();
    p.enqueue_message(external("mix", "now", "")).await.unwrap();
    let item = fetch_some(&p, "mix").await;
    assert_eq!(names(&item.messages), vec!["now"]);
    p.commit_turn(&item.lock_token, turn(1, Vec::new(), InstanceState::Running)).await.unwrap();
    fetch_none(&p).await;
}

/// A timer committed by a turn (a delayed message to itself) fires at its time.
pub async fn timer_committed_by_turn_is_delayed(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "tm").await;
    let item = fetch_some(&p, "tm").await;
    let fire_at = now() + 300;
    let mut c = turn(
        1,
        vec![
            started("x"),
            ev(2, EventKind::TimerCreated { delay_ms: 300, fire_at_ms: fire_at, call_site: None }),
        ],
        InstanceState::Running,
    );
    c.messages.push(OutboundMessage {
        instance: "tm".into(),
        message: OrchestratorMessage::TimerFired { execution_id: 1, event_id: 2, fire_at_ms: fire_at },
        visible_at_ms: Some(fire_at),
    });
    p.commit_turn(&item.lock_token, c).await.unwrap();
    fetch_none(&p).await;
    sleep_ms(450).await;
    let fired = fetch_some(&p, "tm").await;
    assert_eq!(
        fired.messages,
        vec![OrchestratorMessage::TimerFired { execution_id: 1, event_id: 2, fire_at_ms: fire_at }]
    );
}

/// `visible_at_ms` in the past means visible now.
pub async fn past_visible_at_is_visible_now(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "past").await;
    p.enqueue_message(delayed("past", "old", now().saturating_sub(60_000))).await.unwrap();
    let item = fetch_some(&p, "past").await;
    assert_eq!(names(&item.messages), vec!["old"]);
}

/// An instance whose only message is delayed does not block other instances.
pub async fn delayed_instance_does_not_block_others(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "waiting").await;
    p.enqueue_message(delayed("waiting", "later", now() + 60_000)).await.unwrap();
    create(&p, "ready").await;
    fetch_some(&p, "ready").await;
    fetch_none(&p).await;
}

// ---------------------------------------------------------------------------------------
// Locks

/// Once a lock expires, another fetch takes the instance with a new token.
pub async fn expired_lock_can_be_taken_over(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "ex").await;
    let first = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    fetch_none(&p).await;
    sleep_ms(450).await;
    let second = fetch_some(&p, "ex").await;
    assert_ne!(first.lock_token, second.lock_token);
    assert_eq!(second.messages, first.messages);
}

/// The old holder's commit fails after a takeover; the new holder's succeeds.
pub async fn commit_after_takeover_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "to").await;
    let first = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    sleep_ms(450).await;
    let second = fetch_some(&p, "to").await;
    assert_lock_lost(
        p.commit_turn(&first.lock_token, turn(1, vec![started("old")], InstanceState::Running)).await,
        "stale commit",
    );
    p.commit_turn(&second.lock_token, turn(1, vec![started("new")], InstanceState::Running)).await.unwrap();
    let h = p.read_history("to", None).await.unwrap();
    assert_eq!(h.len(), 1);
    assert!(matches!(&h[0].kind, EventKind::OrchestrationStarted { input, .. } if input == "new"));
}

/// A stale commit writes nothing at all: no events, no activities, no messages to itself
/// or others, no child instance, and the consumed messages stay with the new holder.
pub async fn stale_commit_with_effects_writes_nothing(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "other").await;
    create(&p, "st").await;
    let first = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    sleep_ms(450).await;
    let second = fetch_some(&p, "st").await;
    let mut c = turn(1, vec![started("old"), scheduled(2, "Act", "in")], InstanceState::Running);
    c.activities.push(work("st", 1, 2, "Act", "in"));
    c.messages = vec![
        external("other", "from-stale", ""),
        delayed("st", "timer", now()),
        child_start("stale-child", Some(link("st"))),
    ];
    assert_lock_lost(p.commit_turn(&first.lock_token, c).await, "stale commit with effects");
    assert!(p.read_history("st", None).await.unwrap().is_empty(), "no events");
    assert!(fetch_work(&p, LOCK).await.is_none(), "no activity");
    assert!(p.get_instance("stale-child").await.unwrap().is_none(), "no child instance");
    // The new holder still has the start message, and nothing else arrived meanwhile.
    assert_eq!(names(&second.messages), vec!["StartOrchestration"]);
    p.commit_turn(&second.lock_token, turn(1, vec![started("new")], InstanceState::Running)).await.unwrap();
    fetch_none(&p).await;
}

/// Renewal keeps the lock past its original expiry.
pub async fn renew_extends_orchestration_lock(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "rn").await;
    let item = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    sleep_ms(100).await;
    p.renew_orchestration_lock(&item.lock_token, Duration::from_secs(30)).await.unwrap();
    sleep_ms(450).await;
    fetch_none(&p).await;
    p.commit_turn(&item.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
}

/// Renewing a token nobody holds fails with `LockLost`.
pub async fn renew_with_unknown_token_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "ru").await;
    assert_lock_lost(p.renew_orchestration_lock("nope", LOCK).await, "renew");
}

/// A committed token can no longer be renewed.
pub async fn renew_after_commit_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "rc").await;
    let item = fetch_some(&p, "rc").await;
    p.commit_turn(&item.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
    assert_lock_lost(p.renew_orchestration_lock(&item.lock_token, LOCK).await, "renew after commit");
}

/// The old holder cannot abandon after a takeover (it would release the new lock).
pub async fn abandon_after_takeover_fails(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "at").await;
    let first = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    sleep_ms(450).await;
    let second = fetch_some(&p, "at").await;
    assert_lock_lost(
        p.abandon_orchestration_item(&first.lock_token, None, None, true).await,
        "stale abandon",
    );
    fetch_none(&p).await;
    p.renew_orchestration_lock(&second.lock_token, LOCK).await.unwrap();
}

/// After an expiry, the new batch includes messages that arrived meanwhile.
pub async fn messages_arriving_after_expiry_join_next_batch(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "mj").await;
    let _first = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    p.enqueue_message(external("mj", "meanwhile", "")).await.unwrap();
    sleep_ms(450).await;
    let second = fetch_some(&p, "mj").await;
    assert_eq!(names(&second.messages), vec!["StartOrchestration", "meanwhile"]);
}

// ---------------------------------------------------------------------------------------
// Cached fetches (`fetch_orchestration_item_cached`)

async fn fetch_cached(p: &Arc<dyn Provider>, exec: u64, len: u64) -> OrchestrationItem {
    let cached = move |_: &str| Some((exec, len));
    p.fetch_orchestration_item_cached(LOCK, &all(), &cached)
        .await
        .expect("fetch_orchestration_item_cached")
        .expect("a batch")
}

/// When the node's cached length is current, the store may skip the history, but the
/// batch and `history_len` are complete.
pub async fn cached_fetch_with_current_length_keeps_history_len(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cc", &[2, 3]).await;
    p.enqueue_message(external("cc", "e", "")).await.unwrap();
    let item = fetch_cached(&p, 1, 3).await;
    assert_eq!(item.history_len, 3);
    assert!(item.history.is_empty() || item.history.len() == 3, "{:?}", item.history);
    assert!(item.history_error.is_none());
    assert_eq!(names(&item.messages), vec!["e"]);
    assert_eq!(item.record.execution_id, 1);
}

/// A stale cached length (another node ran a turn) makes the store read the history.
pub async fn cached_fetch_with_stale_length_reads_history(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cs", &[2, 3]).await;
    p.enqueue_message(external("cs", "e", "")).await.unwrap();
    let item = fetch_cached(&p, 1, 2).await;
    assert_eq!(item.history.len(), 3, "a stale cache must get the full history");
    assert_eq!(item.history_len, 3);
}

/// A cache of another execution is ignored.
pub async fn cached_fetch_of_other_execution_reads_history(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "ce", &[2]).await;
    p.enqueue_message(external("ce", "e", "")).await.unwrap();
    let item = fetch_cached(&p, 7, 2).await;
    assert_eq!(item.history.len(), 2);
}

// ---------------------------------------------------------------------------------------
// Attempts

/// The first fetch of a batch is attempt 1.
pub async fn first_fetch_is_attempt_one(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "a1").await;
    assert_eq!(fetch_some(&p, "a1").await.attempt, 1);
}

/// Each fetch after an abandon counts an attempt.
pub async fn abandon_counts_attempts(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "ac").await;
    for expected in 1..=4 {
        let item = fetch_some(&p, "ac").await;
        assert_eq!(item.attempt, expected);
        p.abandon_orchestration_item(&item.lock_token, None, None, true).await.unwrap();
    }
}

/// `count_attempt = false` gives the attempt back.
pub async fn abandon_without_count_keeps_attempt(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "nc").await;
    for _ in 0..3 {
        let item = fetch_some(&p, "nc").await;
        assert_eq!(item.attempt, 1);
        p.abandon_orchestration_item(&item.lock_token, None, None, false).await.unwrap();
    }
    let item = fetch_some(&p, "nc").await;
    p.abandon_orchestration_item(&item.lock_token, None, None, true).await.unwrap();
    assert_eq!(fetch_some(&p, "nc").await.attempt, 2);
}

/// A fetch whose lock expired counted as an attempt (the holder may have crashed on it).
pub async fn lock_expiry_counts_an_attempt(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "le").await;
    let _ = p.fetch_orchestration_item(SHORT, &all()).await.unwrap().unwrap();
    sleep_ms(450).await;
    assert_eq!(fetch_some(&p, "le").await.attempt, 2);
}

/// A batch's attempt is that of its most-tried message.
pub async fn attempt_is_highest_of_batch(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "hb").await;
    for _ in 0..2 {
        let item = fetch_some(&p, "hb").await;
        p.abandon_orchestration_item(&item.lock_token, None, None, true).await.unwrap();
    }
    p.enqueue_message(external("hb", "fresh", "")).await.unwrap();
    let item = fetch_some(&p, "hb").await;
    assert_eq!(item.messages.len(), 2);
    assert_eq!(item.attempt, 3);
}

/// Once committed, the next batch starts again at attempt 1.
pub async fn new_batch_after_commit_is_attempt_one(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "nb").await;
    let item = fetch_some(&p, "nb").await;
    p.abandon_orchestration_item(&item.lock_token, None, None, true).await.unwrap();
    let item = fetch_some(&p, "nb").await;
    assert_eq!(item.attempt, 2);
    p.commit_turn(&item.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
    p.enqueue_message(external("nb", "e", "")).await.unwrap();
    assert_eq!(fetch_some(&p, "nb").await.attempt, 1);
}

/// Activity fetches count attempts; abandon keeps the count.
pub async fn activity_attempts_count_up(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "aa", &[2]).await;
    for expected in 1..=3 {
        let w = fetch_work(&p, LOCK).await.expect("work item");
        assert_eq!(w.attempt, expected);
        p.abandon_work_item(&w.lock_token, None).await.unwrap();
    }
}

/// An activity whose lock expired is refetched with the next attempt number.
pub async fn activity_lock_expiry_counts_attempt(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "ae", &[2]).await;
    let w = fetch_work(&p, SHORT).await.unwrap();
    assert_eq!(w.attempt, 1);
    sleep_ms(450).await;
    let again = fetch_work(&p, LOCK).await.expect("refetch after expiry");
    assert_eq!(again.attempt, 2);
    assert_eq!(again.event_id, 2);
}

// ---------------------------------------------------------------------------------------
// Atomic commit

/// Committed events are read back exactly, in order.
pub async fn commit_appends_history(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "h").await;
    let item = fetch_some(&p, "h").await;
    let events = vec![
        started("in"),
        scheduled(2, "A", "a"),
        ev(3, EventKind::SystemCall { op: "guid".into(), value: "g".into(), call_site: None }),
        ev(4, EventKind::CustomStatusSet { status: Some("s".into()) }),
    ];
    p.commit_turn(&item.lock_token, turn(1, events.clone(), InstanceState::Running)).await.unwrap();
    assert_eq!(p.read_history("h", None).await.unwrap(), events);
    assert_eq!(p.read_history("h", Some(1)).await.unwrap(), events);
}

/// The record follows the commit: state, version, execution, duroxide version.
pub async fn commit_updates_instance_record(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "r").await;
    let r = p.get_instance("r").await.unwrap().unwrap();
    assert_eq!(r.state, InstanceState::Running);
    assert_eq!(r.version.as_deref(), Some(V1));
    assert_eq!(r.execution_id, 1);
    assert_eq!(r.duroxide_version.as_deref(), Some(DUROXIDE_VERSION));
    assert_eq!(r.name, NAME);
}

/// A completing turn stores the output and ends the execution.
pub async fn commit_completed_sets_output(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "done").await;
    let item = fetch_some(&p, "done").await;
    let mut c = turn(
        1,
        vec![started("x"), ev(2, EventKind::OrchestrationCompleted { output: "result".into() })],
        InstanceState::Completed,
    );
    c.update.output = Some("result".into());
    p.commit_turn(&item.lock_token, c).await.unwrap();
    let r = p.get_instance("done").await.unwrap().unwrap();
    assert_eq!(r.state, InstanceState::Completed);
    assert_eq!(r.output.as_deref(), Some("result"));
    let ex = p.list_executions("done").await.unwrap();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].state, InstanceState::Completed);
    assert_eq!(ex[0].event_count, 2);
}

/// A failing turn stores the error details exactly.
pub async fn commit_failed_sets_error(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "fail").await;
    let item = fetch_some(&p, "fail").await;
    let details = ErrorDetails::poison("tried 5 times");
    let mut c = turn(
        1,
        vec![started("x"), ev(2, EventKind::OrchestrationFailed { details: details.clone() })],
        InstanceState::Failed,
    );
    c.update.error = Some(details.clone());
    p.commit_turn(&item.lock_token, c).await.unwrap();
    let r = p.get_instance("fail").await.unwrap().unwrap();
    assert_eq!(r.state, InstanceState::Failed);
    assert_eq!(r.error, Some(details));
    assert_eq!(p.list_executions("fail").await.unwrap()[0].state, InstanceState::Failed);
}

/// A commit that fails (duplicate event id) leaves no trace: no events, no activities, no
/// messages, no record change.
pub async fn duplicate_event_id_rolls_back_everything(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "dup").await;
    create(&p, "other").await;
    let other = fetch_some(&p, "other").await;
    p.commit_turn(&other.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
    p.enqueue_message(external("dup", "e", "")).await.unwrap();
    let item = fetch_some(&p, "dup").await;
    let mut c = turn(
        1,
        vec![scheduled(2, "A", "a"), ev(1, EventKind::ExternalRaised { name: "e".into(), data: "".into() })],
        InstanceState::Completed,
    );
    c.update.output = Some("should not be stored".into());
    c.update.custom_status = Some(Some("nope".into()));
    c.activities.push(work("dup", 1, 2, "A", "a"));
    c.messages.push(external("other", "leak", ""));
    c.messages.push(OutboundMessage {
        instance: "child".into(),
        message: OrchestratorMessage::StartOrchestration {
            name: NAME.into(),
            version: None,
            input: "".into(),
            parent: None,
        },
        visible_at_ms: None,
    });
    assert!(p.commit_turn(&item.lock_token, c).await.is_err(), "a duplicate event id must fail the commit");
    assert_eq!(p.read_history("dup", None).await.unwrap().len(), 1, "no event of the failed turn may remain");
    let r = p.get_instance("dup").await.unwrap().unwrap();
    assert_eq!(r.state, InstanceState::Running);
    assert_eq!(r.output, None);
    assert_eq!(r.custom_status, None);
    assert!(fetch_work(&p, LOCK).await.is_none(), "no activity of the failed turn may be enqueued");
    assert!(p.get_instance("child").await.unwrap().is_none(), "no instance may be created");
    fetch_none(&p).await; // "dup" is still locked and "other" got no message
    p.abandon_orchestration_item(&item.lock_token, None, None, true).await.unwrap();
    let again = fetch_some(&p, "dup").await;
    assert_eq!(names(&again.messages), vec!["e"]);
}

/// After a failed commit the lock is still held and the messages are still there.
pub async fn failed_commit_keeps_lock_and_messages(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "fk").await;
    p.enqueue_message(external("fk", "e", "")).await.unwrap();
    let item = fetch_some(&p, "fk").await;
    let bad = turn(1, vec![started("again")], InstanceState::Running);
    assert!(p.commit_turn(&item.lock_token, bad).await.is_err());
    p.renew_orchestration_lock(&item.lock_token, LOCK).await.unwrap();
    let good = turn(
        1,
        vec![ev(2, EventKind::ExternalRaised { name: "e".into(), data: "".into() })],
        InstanceState::Running,
    );
    p.commit_turn(&item.lock_token, good).await.unwrap();
    assert_eq!(p.read_history("fk", None).await.unwrap().len(), 2);
    fetch_none(&p).await;
}

/// `custom_status: Some(x)` sets, `None` keeps, `Some(None)` clears.
pub async fn custom_status_set_kept_and_cleared(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "cs").await;
    let item = fetch_some(&p, "cs").await;
    let mut c = turn(1, vec![started("x")], InstanceState::Running);
    c.update.custom_status = Some(Some("step 1".into()));
    p.commit_turn(&item.lock_token, c).await.unwrap();
    assert_eq!(p.get_instance("cs").await.unwrap().unwrap().custom_status.as_deref(), Some("step 1"));
    p.enqueue_message(external("cs", "e", "")).await.unwrap();
    let item = fetch_some(&p, "cs").await;
    p.commit_turn(&item.lock_token, turn(1, Vec::new(), InstanceState::Running)).await.unwrap();
    assert_eq!(p.get_instance("cs").await.unwrap().unwrap().custom_status.as_deref(), Some("step 1"));
    p.enqueue_message(external("cs", "e", "")).await.unwrap();
    let item = fetch_some(&p, "cs").await;
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    c.update.custom_status = Some(None);
    p.commit_turn(&item.lock_token, c).await.unwrap();
    assert_eq!(p.get_instance("cs").await.unwrap().unwrap().custom_status, None);
}

/// A successful turn clears the status note.
pub async fn commit_clears_status_note(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "sn").await;
    let item = fetch_some(&p, "sn").await;
    p.abandon_orchestration_item(&item.lock_token, None, Some("blocked".into()), false).await.unwrap();
    let item = fetch_some(&p, "sn").await;
    p.commit_turn(&item.lock_token, turn(1, vec![started("x")], InstanceState::Running)).await.unwrap();
    assert_eq!(p.get_instance("sn").await.unwrap().unwrap().status_note, None);
}

/// A turn with no new events still consumes its messages and releases the lock.
pub async fn commit_without_events_consumes_messages(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "ne").await;
    p.enqueue_message(external("ne", "ignored", "")).await.unwrap();
    let item = fetch_some(&p, "ne").await;
    p.commit_turn(&item.lock_token, turn(1, Vec::new(), InstanceState::Running)).await.unwrap();
    fetch_none(&p).await;
    assert_eq!(p.read_history("ne", None).await.unwrap().len(), 1);
}

/// Each turn's events continue the history; fetched items carry the whole history.
pub async fn history_grows_across_turns(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "g", &[2]).await;
    p.enqueue_message(completion("g", 2, "r")).await.unwrap();
    let item = fetch_some(&p, "g").await;
    assert_eq!(item.history.len(), 2);
    assert_eq!(item.history_len, 2);
    let events = vec![
        ev(3, EventKind::ActivityCompleted { source_event_id: 2, result: "r".into() }),
        ev(4, EventKind::OrchestrationCompleted { output: "r".into() }),
    ];
    p.commit_turn(&item.lock_token, turn(1, events, InstanceState::Completed)).await.unwrap();
    let h = p.read_history("g", None).await.unwrap();
    assert_eq!(h.iter().map(|e| e.event_id).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
}

/// Activities committed by a turn are fetched by workers with all fields.
pub async fn commit_enqueues_activities(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "act", &[2]).await;
    let w = fetch_work(&p, LOCK).await.expect("work item");
    assert_eq!((w.instance.as_str(), w.execution_id, w.event_id), ("act", 1, 2));
    assert_eq!((w.name.as_str(), w.input.as_str()), ("Act", "in-2"));
    assert!(!w.lock_token.is_empty());
    assert_eq!(w.attempt, 1);
}

/// Enqueuing the same (execution, event id) activity twice keeps one work item.
pub async fn duplicate_activity_enqueue_is_ignored(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "da", &[2]).await;
    p.enqueue_message(external("da", "e", "")).await.unwrap();
    let item = fetch_some(&p, "da").await;
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    c.activities.push(work("da", 1, 2, "Act", "in-2"));
    p.commit_turn(&item.lock_token, c).await.expect("a re-enqueued activity is not an error");
    assert!(fetch_work(&p, LOCK).await.is_some());
    assert!(fetch_work(&p, LOCK).await.is_none(), "the activity must be queued once");
}

/// An activity enqueued with a lock token is stored locked for its holder: workers do not
/// get it, the holder completes it with that token, and its first attempt is counted.
pub async fn commit_enqueues_locked_activity(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "el").await;
    p.enqueue_message(external("el", "go", "")).await.unwrap();
    let item = fetch_some(&p, "el").await;
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    let mut held = work("el", 1, 2, "Act", "in-2");
    held.lock_token = "eager-token-1".into();
    held.attempt = 1;
    c.activities.push(held);
    c.activities.push(work("el", 1, 3, "Act", "in-3"));
    c.activity_lock_timeout = LOCK;
    p.commit_turn(&item.lock_token, c).await.unwrap();
    let w = fetch_work(&p, LOCK).await.expect("the unlocked activity is fetchable");
    assert_eq!(w.event_id, 3);
    assert!(fetch_work(&p, LOCK).await.is_none(), "the locked activity must not be handed out");
    p.renew_work_item("eager-token-1", LOCK).await.expect("the holder's token renews");
    p.complete_work_item("eager-token-1", completion("el", 2, "done")).await.unwrap();
    let next = fetch_some(&p, "el").await;
    assert_eq!(
        next.messages,
        vec![OrchestratorMessage::ActivityCompleted { execution_id: 1, event_id: 2, result: "done".into() }]
    );
}

/// An activity enqueued locked whose holder never runs it is fetched by another worker
/// once the lock expires, as its second attempt.
pub async fn locked_activity_expires_for_others(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "ex").await;
    p.enqueue_message(external("ex", "go", "")).await.unwrap();
    let item = fetch_some(&p, "ex").await;
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    let mut held = work("ex", 1, 2, "Act", "in-2");
    held.lock_token = "eager-token-2".into();
    c.activities.push(held);
    c.activity_lock_timeout = SHORT;
    p.commit_turn(&item.lock_token, c).await.unwrap();
    assert!(fetch_work(&p, LOCK).await.is_none());
    sleep_ms(450).await;
    let w = fetch_work(&p, LOCK).await.expect("taken over after the lock expired");
    assert_eq!((w.event_id, w.attempt), (2, 2));
    assert_lock_lost(
        p.complete_work_item("eager-token-2", completion("ex", 2, "late")).await,
        "stale holder",
    );
}

// ---------------------------------------------------------------------------------------
// Activities

/// No work, no item.
pub async fn fetch_work_empty_returns_none(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "w").await;
    assert!(fetch_work(&p, LOCK).await.is_none());
}

/// Work items come out in the order they were enqueued.
pub async fn work_items_are_fifo(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "fifo", &[2, 3, 4]).await;
    let mut ids = Vec::new();
    while let Some(w) = fetch_work(&p, LOCK).await {
        ids.push(w.event_id);
    }
    assert_eq!(ids, vec![2, 3, 4]);
}

/// A locked item is not handed to another worker.
pub async fn locked_work_item_is_not_refetched(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "lw", &[2]).await;
    let _w = fetch_work(&p, LOCK).await.unwrap();
    assert!(fetch_work(&p, LOCK).await.is_none());
}

/// Completing deletes the item and enqueues the completion for the orchestration.
pub async fn complete_work_item_enqueues_completion(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cw", &[2]).await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    p.complete_work_item(&w.lock_token, completion("cw", 2, "ok")).await.unwrap();
    let item = fetch_some(&p, "cw").await;
    assert_eq!(
        item.messages,
        vec![OrchestratorMessage::ActivityCompleted { execution_id: 1, event_id: 2, result: "ok".into() }]
    );
    assert!(fetch_work(&p, Duration::from_millis(1)).await.is_none());
    sleep_ms(20).await;
    assert!(fetch_work(&p, LOCK).await.is_none(), "a completed item must be gone");
}

/// Completing with a token nobody holds fails and enqueues nothing.
pub async fn complete_with_unknown_token_fails(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cu", &[2]).await;
    assert_lock_lost(p.complete_work_item("nope", completion("cu", 2, "x")).await, "complete");
    fetch_none(&p).await;
    assert!(fetch_work(&p, LOCK).await.is_some());
}

/// A work item completes once.
pub async fn complete_twice_fails(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "ct", &[2]).await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    p.complete_work_item(&w.lock_token, completion("ct", 2, "1")).await.unwrap();
    assert_lock_lost(p.complete_work_item(&w.lock_token, completion("ct", 2, "2")).await, "second complete");
    let item = fetch_some(&p, "ct").await;
    assert_eq!(item.messages.len(), 1, "only one completion may be enqueued");
}

/// An abandoned item can be fetched again at once.
pub async fn abandon_work_item_retries_now(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "aw", &[2]).await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    p.abandon_work_item(&w.lock_token, None).await.unwrap();
    let again = fetch_work(&p, LOCK).await.expect("abandoned item is visible");
    assert_eq!(again.event_id, 2);
    assert_ne!(again.lock_token, w.lock_token);
    assert_lock_lost(p.complete_work_item(&w.lock_token, completion("aw", 2, "x")).await, "old token");
}

/// An item abandoned with a delay stays invisible until it passes.
pub async fn abandon_work_item_with_delay(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "awd", &[2]).await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    p.abandon_work_item(&w.lock_token, Some(SHORT)).await.unwrap();
    assert!(fetch_work(&p, LOCK).await.is_none());
    sleep_ms(450).await;
    assert!(fetch_work(&p, LOCK).await.is_some());
}

/// A worker that lost its lock cannot complete; the new holder can.
pub async fn expired_work_lock_is_taken_over(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "ew", &[2]).await;
    let first = fetch_work(&p, SHORT).await.unwrap();
    sleep_ms(450).await;
    let second = fetch_work(&p, LOCK).await.expect("taken over");
    assert_lock_lost(p.complete_work_item(&first.lock_token, completion("ew", 2, "old")).await, "stale");
    assert_lock_lost(p.renew_work_item(&first.lock_token, LOCK).await, "stale renew");
    p.complete_work_item(&second.lock_token, completion("ew", 2, "new")).await.unwrap();
    let item = fetch_some(&p, "ew").await;
    assert_eq!(
        item.messages,
        vec![OrchestratorMessage::ActivityCompleted { execution_id: 1, event_id: 2, result: "new".into() }]
    );
}

/// Renewing an activity lock keeps it past its original expiry.
pub async fn renew_work_item_extends_lock(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "rw", &[2]).await;
    let w = fetch_work(&p, SHORT).await.unwrap();
    sleep_ms(100).await;
    p.renew_work_item(&w.lock_token, Duration::from_secs(30)).await.unwrap();
    sleep_ms(450).await;
    assert!(fetch_work(&p, LOCK).await.is_none());
    p.complete_work_item(&w.lock_token, completion("rw", 2, "x")).await.unwrap();
}

/// Renewing an unknown activity lock fails with `LockLost`.
pub async fn renew_work_item_unknown_token_fails(f: Factory) {
    let p = f.create_provider().await;
    assert_lock_lost(p.renew_work_item("nope", LOCK).await, "renew work");
}

/// Failure completions keep their error details.
pub async fn activity_failure_completion_roundtrips(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "af", &[2]).await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    let mut details = ErrorDetails::application("boom");
    details.retryable = false;
    let msg = OrchestratorMessage::ActivityFailed { execution_id: 1, event_id: 2, details };
    p.complete_work_item(
        &w.lock_token,
        OutboundMessage { instance: "af".into(), message: msg.clone(), visible_at_ms: None },
    )
    .await
    .unwrap();
    assert_eq!(fetch_some(&p, "af").await.messages, vec![msg]);
}

// ---------------------------------------------------------------------------------------
// Cancellation

async fn cancel_turn(p: &Arc<dyn Provider>, instance: &str, ids: &[u64]) {
    p.enqueue_message(external(instance, "cancel-trigger", "")).await.unwrap();
    let item = fetch_some(p, instance).await;
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    c.cancelled_activities = ids.to_vec();
    p.commit_turn(&item.lock_token, c).await.unwrap();
}

/// Cancelling a queued activity removes it.
pub async fn cancel_removes_queued_activity(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cq", &[2]).await;
    cancel_turn(&p, "cq", &[2]).await;
    assert!(fetch_work(&p, LOCK).await.is_none());
}

/// Cancelling a running activity makes its renewal fail with `Cancelled`.
pub async fn cancel_flags_running_activity(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cr", &[2]).await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    p.renew_work_item(&w.lock_token, LOCK).await.unwrap();
    cancel_turn(&p, "cr", &[2]).await;
    match p.renew_work_item(&w.lock_token, LOCK).await {
        Err(ProviderError::Cancelled) => {}
        other => panic!("expected Cancelled, got {other:?}"),
    }
}

/// A cancelled running activity whose worker died is not run again.
pub async fn cancelled_running_activity_dropped_after_expiry(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cd", &[2]).await;
    let _w = fetch_work(&p, SHORT).await.unwrap();
    cancel_turn(&p, "cd", &[2]).await;
    sleep_ms(450).await;
    assert!(fetch_work(&p, LOCK).await.is_none(), "cancelled work must not be retried");
}

/// Cancellation affects only the named activity.
pub async fn cancel_touches_only_named_activity(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "co", &[2, 3]).await;
    cancel_turn(&p, "co", &[2]).await;
    let w = fetch_work(&p, LOCK).await.expect("the other activity remains");
    assert_eq!(w.event_id, 3);
    p.renew_work_item(&w.lock_token, LOCK).await.expect("not cancelled");
    assert!(fetch_work(&p, LOCK).await.is_none());
}

/// Cancelling an activity that does not exist (already completed) is not an error.
pub async fn cancel_of_unknown_activity_is_noop(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cn", &[2]).await;
    cancel_turn(&p, "cn", &[99]).await;
    assert!(fetch_work(&p, LOCK).await.is_some());
}

// ---------------------------------------------------------------------------------------
// Sessions

/// A started instance whose first turn scheduled activities on sessions: `(event id,
/// session)` pairs.
async fn with_session_activities(p: &Arc<dyn Provider>, instance: &str, items: &[(u64, Option<&str>)]) {
    create(p, instance).await;
    let item = fetch_some(p, instance).await;
    let mut c = turn(1, vec![started("input")], InstanceState::Running);
    for &(id, session) in items {
        c.new_events.push(scheduled(id, "Act", "x"));
        let mut w = work(instance, 1, id, "Act", "x");
        w.session_id = session.map(str::to_string);
        c.activities.push(w);
    }
    p.commit_turn(&item.lock_token, c).await.expect("commit turn with session activities");
}

async fn fetch_as(p: &Arc<dyn Provider>, w: &WorkerIdentity) -> Option<ActivityWorkItem> {
    p.fetch_work_item(LOCK, w).await.expect("fetch_work_item")
}

/// The first activity of a free session claims it; later ones do not claim again.
pub async fn session_work_claims_the_session(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("s1")), (3, Some("s1"))]).await;
    let w1 = worker("w1");
    let first = fetch_as(&p, &w1).await.expect("session work");
    assert_eq!(first.session_id.as_deref(), Some("s1"));
    assert!(first.session_claimed, "the first fetch claims the session");
    let second = fetch_as(&p, &w1).await.expect("more session work");
    assert!(!second.session_claimed, "the holder does not claim again");
}

/// Another worker does not get a held session's work; work without a session goes anywhere.
pub async fn session_work_stays_with_its_worker(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("s1")), (3, Some("s1")), (4, None)]).await;
    let (w1, w2) = (worker("w1"), worker("w2"));
    assert_eq!(fetch_as(&p, &w1).await.unwrap().event_id, 2);
    let other = fetch_as(&p, &w2).await.expect("sessionless work is free for all");
    assert_eq!(other.event_id, 4);
    assert!(fetch_as(&p, &w2).await.is_none(), "s1 is held by w1");
    assert_eq!(fetch_as(&p, &w1).await.expect("the holder gets it").event_id, 3);
}

/// Once the holder's lease expires, another worker takes the session over.
pub async fn session_taken_over_after_lease_expiry(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("s1")), (3, Some("s1"))]).await;
    let w1 = WorkerIdentity { session_lease: SHORT, ..worker("w1") };
    let w2 = worker("w2");
    let _ = fetch_as(&p, &w1).await.unwrap();
    assert!(fetch_as(&p, &w2).await.is_none());
    sleep_ms(450).await;
    let taken = fetch_as(&p, &w2).await.expect("taken over after the lease expired");
    assert_eq!(taken.event_id, 3);
    assert!(taken.session_claimed);
}

/// A worker at its session cap leaves further sessions to others.
pub async fn max_sessions_caps_claims(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("a")), (3, Some("b"))]).await;
    let w1 = WorkerIdentity { max_sessions: 1, ..worker("w1") };
    assert_eq!(fetch_as(&p, &w1).await.unwrap().session_id.as_deref(), Some("a"));
    assert!(fetch_as(&p, &w1).await.is_none(), "w1 may hold one session only");
    let b = fetch_as(&p, &worker("w2")).await.expect("w2 claims b");
    assert_eq!(b.session_id.as_deref(), Some("b"));
}

/// A session a worker still holds but has no work for does not count against its cap: a
/// worker with a cap of 1 whose session went idle claims the next session at once instead
/// of waiting for the idle timeout, and keeps the idle one (its next work comes back to it).
pub async fn idle_sessions_do_not_count_against_the_cap(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("a"))]).await;
    with_session_activities(&p, "t", &[(2, Some("b"))]).await;
    with_session_activities(&p, "u", &[(2, Some("c"))]).await;
    let w1 = WorkerIdentity { max_sessions: 1, ..worker("w1") };
    let a = fetch_as(&p, &w1).await.expect("w1 claims a");
    assert_eq!(a.session_id.as_deref(), Some("a"));
    p.complete_work_item(&a.lock_token, completion("s", 2, "done")).await.unwrap();
    let b = fetch_as(&p, &w1).await.expect("an idle session does not block a new claim");
    assert_eq!(b.session_id.as_deref(), Some("b"));
    assert!(b.session_claimed);
    // Busy with b, w1 is at its cap: the third session is left to others.
    assert!(fetch_as(&p, &w1).await.is_none(), "w1 is at its cap while b runs");
    let c = fetch_as(&p, &worker("w2")).await.expect("w2 claims c");
    assert_eq!(c.session_id.as_deref(), Some("c"));
}

/// `renew_sessions` keeps a worker's sessions past their original lease.
pub async fn renew_sessions_extends_leases(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("s1")), (3, Some("s1"))]).await;
    let w1 = WorkerIdentity { session_lease: SHORT, ..worker("w1") };
    let _ = fetch_as(&p, &w1).await.unwrap();
    sleep_ms(150).await;
    let extended = WorkerIdentity { session_lease: LOCK, ..w1.clone() };
    let released = p.renew_sessions(&extended, Duration::from_secs(3600)).await.unwrap();
    assert!(released.is_empty(), "{released:?}");
    sleep_ms(300).await;
    assert!(fetch_as(&p, &worker("w2")).await.is_none(), "the renewed lease still holds");
}

/// Sessions idle past the timeout, with nothing running, are released.
pub async fn renew_sessions_releases_idle_sessions(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("s1")), (3, Some("s1"))]).await;
    let w1 = worker("w1");
    let w = fetch_as(&p, &w1).await.unwrap();
    p.complete_work_item(&w.lock_token, completion("s", 2, "done")).await.unwrap();
    sleep_ms(30).await;
    let released = p.renew_sessions(&w1, Duration::from_millis(10)).await.unwrap();
    assert_eq!(released, vec!["s1".to_string()]);
    let next = fetch_as(&p, &worker("w2")).await.expect("a released session is free");
    assert!(next.session_claimed);
}

/// A session with a running activity is not released, however idle it looks.
pub async fn renew_sessions_keeps_busy_sessions(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("s1")), (3, Some("s1"))]).await;
    let w1 = worker("w1");
    let _running = fetch_as(&p, &w1).await.unwrap();
    sleep_ms(30).await;
    assert!(p.renew_sessions(&w1, Duration::from_millis(1)).await.unwrap().is_empty());
    assert!(fetch_as(&p, &worker("w2")).await.is_none());
}

/// The session id of queued work survives fetch, abandon and export/import.
pub async fn session_id_survives_queue_and_export(f: Factory) {
    let p = f.create_provider().await;
    with_session_activities(&p, "s", &[(2, Some("sess-✓"))]).await;
    let snap = p.export_instance("s").await.unwrap();
    assert_eq!(snap.activities[0].session_id.as_deref(), Some("sess-✓"));
    let w = fetch_as(&p, &worker("w1")).await.unwrap();
    p.abandon_work_item(&w.lock_token, None).await.unwrap();
    assert_eq!(fetch_as(&p, &worker("w1")).await.unwrap().session_id.as_deref(), Some("sess-✓"));
    let target = f.create_provider().await;
    target.import_instance(snap).await.unwrap();
    assert_eq!(fetch_as(&target, &worker("w9")).await.unwrap().session_id.as_deref(), Some("sess-✓"));
}

// ---------------------------------------------------------------------------------------
// Batch fetches (`fetch_orchestration_items_cached`, `fetch_work_items`)
//
// A store may return fewer items than asked for (the default methods return one), so these
// tests accept any batch of 1..=max items and drain with further batches; what they pin is
// that a batch is what that many single fetches would have given.

type Cached = dyn for<'s> Fn(&'s str) -> Option<(u64, u64)> + Send + Sync;

/// One `fetch_orchestration_items_cached` call, checked for what every batch must give: at
/// most `max` items, each a different instance with its own lock token.
async fn fetch_batch(
    p: &Arc<dyn Provider>,
    filter: &FetchFilter,
    cached: &Cached,
    max: usize,
) -> Vec<OrchestrationItem> {
    let items = p
        .fetch_orchestration_items_cached(LOCK, filter, cached, max)
        .await
        .expect("fetch_orchestration_items_cached");
    assert!(items.len() <= max, "asked for at most {max} instances, got {}", items.len());
    let instances: HashSet<&str> = items.iter().map(|i| i.instance.as_str()).collect();
    assert_eq!(instances.len(), items.len(), "an instance appears once per batch");
    assert_distinct_tokens(items.iter().map(|i| i.lock_token.as_str()));
    for item in &items {
        assert_eq!(item.record.instance, item.instance, "the record belongs to the item's instance");
        assert!(!item.messages.is_empty(), "'{}' was locked without messages", item.instance);
    }
    items
}

/// Batch-fetches until nothing is left; the instances come out oldest first across batches.
async fn drain_batches(
    p: &Arc<dyn Provider>,
    filter: &FetchFilter,
    cached: &Cached,
    max: usize,
) -> Vec<OrchestrationItem> {
    let mut items = Vec::new();
    loop {
        let batch = fetch_batch(p, filter, cached, max).await;
        if batch.is_empty() {
            break;
        }
        items.extend(batch);
        assert!(items.len() <= 100, "batch fetches keep returning locked instances");
    }
    assert_distinct_tokens(items.iter().map(|i| i.lock_token.as_str()));
    items
}

fn no_cache(_: &str) -> Option<(u64, u64)> {
    None
}

fn instances_of(items: &[OrchestrationItem]) -> Vec<&str> {
    items.iter().map(|i| i.instance.as_str()).collect()
}

fn assert_distinct_tokens<'a>(tokens: impl Iterator<Item = &'a str>) {
    let mut seen = HashSet::new();
    for t in tokens {
        assert!(!t.is_empty(), "an item without a lock token");
        assert!(seen.insert(t), "lock token {t} handed out twice: each item needs its own");
    }
}

/// One `fetch_work_items` call, checked like [`fetch_batch`].
async fn fetch_work_batch(
    p: &Arc<dyn Provider>,
    lock: Duration,
    w: &WorkerIdentity,
    max: usize,
) -> Vec<ActivityWorkItem> {
    let items = p.fetch_work_items(lock, w, max).await.expect("fetch_work_items");
    assert!(items.len() <= max, "asked for at most {max} activities, got {}", items.len());
    assert_distinct_tokens(items.iter().map(|w| w.lock_token.as_str()));
    items
}

/// Batch-fetches activities until none is runnable for `w`.
async fn drain_work_batches(
    p: &Arc<dyn Provider>,
    lock: Duration,
    w: &WorkerIdentity,
    max: usize,
) -> Vec<ActivityWorkItem> {
    let mut items = Vec::new();
    loop {
        let batch = fetch_work_batch(p, lock, w, max).await;
        if batch.is_empty() {
            break;
        }
        items.extend(batch);
        assert!(items.len() <= 100, "batch fetches keep returning locked activities");
    }
    assert_distinct_tokens(items.iter().map(|w| w.lock_token.as_str()));
    items
}

fn event_ids(items: &[ActivityWorkItem]) -> Vec<u64> {
    items.iter().map(|w| w.event_id).collect()
}

/// A batch takes the oldest ready instances, each with only its own messages; locked
/// instances are not fetched again, and later batches take the rest in order.
pub async fn batch_fetch_takes_oldest_instances(f: Factory) {
    let p = f.create_provider().await;
    assert!(fetch_batch(&p, &all(), &no_cache, 2).await.is_empty(), "an empty store has nothing to fetch");
    let order = ["zeta", "alpha", "mid"];
    for id in order {
        create(&p, id).await;
    }
    for id in order.iter().rev() {
        p.enqueue_message(external(id, &format!("for-{id}"), "")).await.unwrap();
    }
    let first = fetch_batch(&p, &all(), &no_cache, 2).await;
    assert!(!first.is_empty(), "three instances are ready");
    assert_eq!(instances_of(&first), order[..first.len()], "oldest message first");
    let rest = drain_batches(&p, &all(), &no_cache, 2).await;
    assert_eq!(instances_of(&rest), order[first.len()..], "later batches take the rest, in order");
    let items: Vec<_> = first.into_iter().chain(rest).collect();
    assert_distinct_tokens(items.iter().map(|i| i.lock_token.as_str()));
    for item in &items {
        assert_eq!(
            names(&item.messages),
            vec!["StartOrchestration".to_string(), format!("for-{}", item.instance)]
        );
        assert_eq!((item.attempt, item.history_len), (1, 0));
        assert!(item.history.is_empty() && item.history_error.is_none());
    }
    fetch_none(&p).await;
    assert!(fetch_batch(&p, &all(), &no_cache, 3).await.is_empty(), "every instance is locked");
}

/// Each item of a batch is a lock of its own: committing one leaves the others locked,
/// and each is committed or abandoned with its own token.
pub async fn batch_fetched_items_commit_independently(f: Factory) {
    let p = f.create_provider().await;
    for id in ["one", "two", "three"] {
        create(&p, id).await;
    }
    let items = drain_batches(&p, &all(), &no_cache, 3).await;
    assert_eq!(instances_of(&items), ["one", "two", "three"]);
    let [one, two, three] = <[OrchestrationItem; 3]>::try_from(items).unwrap();
    p.commit_turn(&one.lock_token, turn(1, vec![started("input")], InstanceState::Running))
        .await
        .expect("commit with the first item's token");
    fetch_none(&p).await; // the commit released only its own instance
    p.renew_orchestration_lock(&two.lock_token, LOCK).await.expect("the second lock is still held");
    p.abandon_orchestration_item(&two.lock_token, None, None, true)
        .await
        .expect("abandon with the second item's token");
    assert_lock_lost(
        p.commit_turn(&one.lock_token, turn(1, Vec::new(), InstanceState::Running)).await,
        "reused token",
    );
    let again = fetch_some(&p, "two").await;
    assert_eq!(again.messages, two.messages);
    assert_eq!(again.attempt, 2);
    fetch_none(&p).await; // "three" is still locked
    p.commit_turn(&three.lock_token, turn(1, vec![started("input")], InstanceState::Running))
        .await
        .expect("commit with the third item's token");
    assert_eq!(p.read_history("one", None).await.unwrap().len(), 1);
    assert_eq!(p.read_history("three", None).await.unwrap().len(), 1);
    assert!(p.read_history("two", None).await.unwrap().is_empty());
}

/// A batch only takes instances the filter allows and nobody else holds.
pub async fn batch_fetch_honours_filter_and_locks(f: Factory) {
    let p = f.create_provider().await;
    p.create_instance("held", "A", None, "").await.unwrap();
    let held = fetch_some(&p, "held").await;
    p.create_instance("b", "B", None, "").await.unwrap();
    p.create_instance("a1", "A", None, "").await.unwrap();
    p.create_instance("a2", "A", None, "").await.unwrap();
    let only_a = only(&[("A", &[])]);
    let items = drain_batches(&p, &only_a, &no_cache, 3).await;
    assert_eq!(instances_of(&items), ["a1", "a2"], "neither the held instance nor the filtered one");
    assert!(fetch_batch(&p, &only(&[("C", &[])]), &no_cache, 3).await.is_empty());
    let items = drain_batches(&p, &all(), &no_cache, 3).await;
    assert_eq!(instances_of(&items), ["b"], "the held instance stays with its holder");
    p.renew_orchestration_lock(&held.lock_token, LOCK).await.expect("the holder keeps its lock");
}

/// In a batch, as in a single cached fetch, a current cache lets the store skip the
/// history (with the stored `history_len`), and a stale one or one of another execution
/// gets the full history.
pub async fn batch_fetch_uses_cached_history_lengths(f: Factory) {
    let p = f.create_provider().await;
    let ids = ["current", "stale", "other-exec"];
    for id in ids {
        with_activities(&p, id, &[2, 3]).await;
    }
    for id in ids {
        p.enqueue_message(external(id, "e", "")).await.unwrap();
    }
    let cached = |instance: &str| match instance {
        "current" => Some((1, 3)),
        "stale" => Some((1, 2)),
        "other-exec" => Some((7, 3)),
        _ => None,
    };
    let items = drain_batches(&p, &all(), &cached, 3).await;
    assert_eq!(instances_of(&items), ids);
    for item in &items {
        let stored = p.read_history(&item.instance, None).await.unwrap();
        assert_eq!(stored.len(), 3);
        assert_eq!(item.history_len, 3, "history_len of '{}'", item.instance);
        assert!(item.history_error.is_none());
        assert_eq!(names(&item.messages), vec!["e"]);
        assert_eq!(item.record.execution_id, 1);
        if item.instance == "current" {
            assert!(
                item.history.is_empty() || item.history == stored,
                "a current cache gets no history or all of it: {:?}",
                item.history
            );
        } else {
            assert_eq!(item.history, stored, "'{}' needs the full history", item.instance);
        }
    }
}

/// A batch of activities is what that many single fetches would give: oldest first, each
/// with its own token, completed one by one; later batches take the rest.
pub async fn batch_work_fetch_takes_oldest_activities(f: Factory) {
    let p = f.create_provider().await;
    assert!(fetch_work_batch(&p, LOCK, &worker("w1"), 3).await.is_empty(), "an empty store has no work");
    with_activities(&p, "bw", &[2, 3, 4, 5]).await;
    let first = fetch_work_batch(&p, LOCK, &worker("w1"), 3).await;
    assert!(!first.is_empty(), "four activities are runnable");
    assert_eq!(event_ids(&first), [2, 3, 4][..first.len()], "oldest first");
    let rest = drain_work_batches(&p, LOCK, &worker("w1"), 3).await;
    assert_eq!(event_ids(&rest), [2, 3, 4, 5][first.len()..], "later batches take the rest, in order");
    let items: Vec<_> = first.into_iter().chain(rest).collect();
    assert_distinct_tokens(items.iter().map(|w| w.lock_token.as_str()));
    for w in &items {
        assert_eq!((w.instance.as_str(), w.execution_id, w.name.as_str()), ("bw", 1, "Act"));
        assert_eq!(w.input, format!("in-{}", w.event_id));
        assert_eq!((w.attempt, w.session_id.as_deref(), w.session_claimed), (1, None, false));
    }
    assert!(fetch_work(&p, LOCK).await.is_none(), "every activity is locked");
    // Completing one leaves the others locked and completable with their own tokens.
    let done = &items[1];
    p.complete_work_item(&done.lock_token, completion("bw", done.event_id, &format!("r{}", done.event_id)))
        .await
        .unwrap();
    assert_lock_lost(
        p.complete_work_item(&done.lock_token, completion("bw", done.event_id, "again")).await,
        "second complete",
    );
    assert!(fetch_work_batch(&p, LOCK, &worker("w1"), 3).await.is_empty(), "the others stay locked");
    for w in items.iter().filter(|w| w.event_id != done.event_id) {
        p.renew_work_item(&w.lock_token, LOCK).await.expect("still held");
        p.complete_work_item(&w.lock_token, completion("bw", w.event_id, &format!("r{}", w.event_id)))
            .await
            .unwrap();
    }
    let item = fetch_some(&p, "bw").await;
    let mut completed: Vec<_> = item
        .messages
        .iter()
        .map(|m| match m {
            OrchestratorMessage::ActivityCompleted { event_id, result, .. } => (*event_id, result.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    completed.sort();
    let expected: Vec<_> = (2..=5).map(|id| (id, format!("r{id}"))).collect();
    assert_eq!(completed, expected, "one completion per activity");
}

/// Activities fetched in a batch whose lock expires are fetched again (next attempt, new
/// tokens); the old tokens no longer complete them.
pub async fn batch_work_locks_expire(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "bx", &[2, 3, 4]).await;
    let first = drain_work_batches(&p, SHORT, &worker("w1"), 3).await;
    assert_eq!(event_ids(&first), [2, 3, 4]);
    assert!(fetch_work_batch(&p, LOCK, &worker("w2"), 3).await.is_empty(), "locked for now");
    sleep_ms(450).await;
    let again = drain_work_batches(&p, LOCK, &worker("w2"), 3).await;
    assert_eq!(event_ids(&again), [2, 3, 4], "expired locks make them fetchable again");
    assert!(again.iter().all(|w| w.attempt == 2), "{again:?}");
    assert_distinct_tokens(first.iter().chain(&again).map(|w| w.lock_token.as_str()));
    for (old, new) in first.iter().zip(&again) {
        assert_lock_lost(
            p.complete_work_item(&old.lock_token, completion("bx", old.event_id, "old")).await,
            "stale",
        );
        p.complete_work_item(&new.lock_token, completion("bx", new.event_id, "new")).await.unwrap();
    }
}

/// A batch skips locked and delayed activities and is empty when nothing is runnable.
pub async fn batch_work_fetch_skips_locked_activities(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "idle").await;
    assert!(fetch_work_batch(&p, LOCK, &worker("w1"), 3).await.is_empty(), "nothing scheduled");
    with_activities(&p, "bl", &[2, 3, 4, 5]).await;
    let locked = fetch_work(&p, LOCK).await.expect("work");
    assert_eq!(locked.event_id, 2);
    let delayed = fetch_work(&p, LOCK).await.expect("work");
    p.abandon_work_item(&delayed.lock_token, Some(LOCK)).await.unwrap();
    let items = drain_work_batches(&p, LOCK, &worker("w1"), 3).await;
    assert_eq!(event_ids(&items), [4, 5], "neither the locked nor the delayed activity");
    assert!(fetch_work_batch(&p, LOCK, &worker("w1"), 3).await.is_empty());
    p.complete_work_item(&locked.lock_token, completion("bl", 2, "r")).await.unwrap();
}

/// Session work keeps its place in a batch: when the oldest activity is on a session, the
/// batch starts with it (claiming the session), as a single fetch would; another worker's
/// batches leave that session's work alone.
pub async fn batch_work_fetch_keeps_session_order(f: Factory) {
    let p = f.create_provider().await;
    let queued = [(2, Some("s1")), (3, None), (4, Some("s1")), (5, None)];
    with_session_activities(&p, "bs", &queued).await;
    let (w1, w2) = (worker("w1"), worker("w2"));
    let first = fetch_work_batch(&p, LOCK, &w1, 3).await;
    assert!(!first.is_empty(), "w1 may claim s1");
    assert_eq!(event_ids(&first), [2, 3, 4][..first.len()], "oldest first, the session item included");
    assert_eq!(first[0].session_id.as_deref(), Some("s1"));
    assert!(first[0].session_claimed, "the first session item claims the session");
    for w in &first[1..] {
        let expected = queued.iter().find(|(id, _)| *id == w.event_id).unwrap().1;
        assert_eq!(w.session_id.as_deref(), expected);
        assert!(!w.session_claimed, "w1 claimed s1 with its first item");
    }
    let taken: Vec<u64> = event_ids(&first);
    let left: Vec<_> = queued.iter().filter(|(id, _)| !taken.contains(id)).collect();
    let others = drain_work_batches(&p, LOCK, &w2, 3).await;
    let free: Vec<u64> = left.iter().filter(|(_, s)| s.is_none()).map(|(id, _)| *id).collect();
    assert_eq!(event_ids(&others), free, "w2 gets the free work only, s1 is held by w1");
    let mine = drain_work_batches(&p, LOCK, &w1, 3).await;
    let held: Vec<u64> = left.iter().filter(|(_, s)| s.is_some()).map(|(id, _)| *id).collect();
    assert_eq!(event_ids(&mine), held, "the holder gets the rest of its session");
    assert!(mine.iter().all(|w| w.session_id.as_deref() == Some("s1") && !w.session_claimed));
}

// ---------------------------------------------------------------------------------------
// Executions (continue-as-new)

/// Commits a continue-as-new of `instance` from execution 1 to 2 and returns the batch of
/// execution 2.
async fn continue_as_new(p: &Arc<dyn Provider>, instance: &str) -> OrchestrationItem {
    started_instance(p, instance).await;
    p.enqueue_message(external(instance, "go", "")).await.unwrap();
    let item = fetch_some(p, instance).await;
    let mut c = turn(
        1,
        vec![ev(2, EventKind::OrchestrationContinuedAsNew { input: "next".into(), version: "2.0.0".into() })],
        InstanceState::Running,
    );
    c.next_execution_id = Some(2);
    c.update.version = "2.0.0".into();
    c.messages.push(OutboundMessage {
        instance: instance.into(),
        message: OrchestratorMessage::ContinueAsNew {
            execution_id: 2,
            name: NAME.into(),
            version: "2.0.0".into(),
            input: "next".into(),
            parent: None,
        },
        visible_at_ms: None,
    });
    p.commit_turn(&item.lock_token, c).await.unwrap();
    fetch_some(p, instance).await
}

fn started_v2(input: &str) -> Event {
    ev(
        1,
        EventKind::OrchestrationStarted {
            name: NAME.into(),
            version: "2.0.0".into(),
            input: input.into(),
            parent: None,
            duroxide_version: DUROXIDE_VERSION.into(),
        },
    )
}

/// `next_execution_id` switches the current execution; its history starts empty.
pub async fn continue_as_new_switches_execution(f: Factory) {
    let p = f.create_provider().await;
    let item = continue_as_new(&p, "can").await;
    assert_eq!(item.record.execution_id, 2);
    assert!(item.history.is_empty(), "execution 2 starts with no history: {:?}", item.history);
    assert_eq!(item.history_len, 0);
    assert!(matches!(item.messages[..], [OrchestratorMessage::ContinueAsNew { execution_id: 2, .. }]));
    assert_eq!(p.get_instance("can").await.unwrap().unwrap().version.as_deref(), Some("2.0.0"));
}

/// `list_executions` shows each execution with its version, state and event count.
pub async fn list_executions_after_continue_as_new(f: Factory) {
    let p = f.create_provider().await;
    let item = continue_as_new(&p, "le").await;
    p.commit_turn(&item.lock_token, turn(2, vec![started_v2("next")], InstanceState::Running)).await.unwrap();
    let ex = p.list_executions("le").await.unwrap();
    assert_eq!(ex.len(), 2, "{ex:?}");
    assert_eq!((ex[0].execution_id, ex[0].version.as_str(), ex[0].event_count), (1, V1, 2));
    assert_eq!(ex[0].state, InstanceState::Completed);
    assert_eq!((ex[1].execution_id, ex[1].version.as_str(), ex[1].event_count), (2, "2.0.0", 1));
    assert_eq!(ex[1].state, InstanceState::Running);
}

/// `read_history` reads any execution; `None` is the current one.
pub async fn read_history_per_execution(f: Factory) {
    let p = f.create_provider().await;
    let item = continue_as_new(&p, "rh").await;
    p.commit_turn(&item.lock_token, turn(2, vec![started_v2("next")], InstanceState::Running)).await.unwrap();
    let h1 = p.read_history("rh", Some(1)).await.unwrap();
    assert_eq!(h1.len(), 2);
    assert!(matches!(h1[1].kind, EventKind::OrchestrationContinuedAsNew { .. }));
    let h2 = p.read_history("rh", Some(2)).await.unwrap();
    assert_eq!(h2.len(), 1);
    assert_eq!(p.read_history("rh", None).await.unwrap(), h2);
    assert!(p.read_history("rh", Some(7)).await.unwrap().is_empty());
}

/// Event ids restart at 1 in a new execution without clashing with the old one.
pub async fn new_execution_history_restarts_at_one(f: Factory) {
    let p = f.create_provider().await;
    let item = continue_as_new(&p, "ra").await;
    let events = vec![started_v2("next"), ev(2, EventKind::OrchestrationCompleted { output: "end".into() })];
    let mut c = turn(2, events, InstanceState::Completed);
    c.update.version = "2.0.0".into();
    c.update.output = Some("end".into());
    p.commit_turn(&item.lock_token, c).await.unwrap();
    let r = p.get_instance("ra").await.unwrap().unwrap();
    assert_eq!((r.execution_id, r.state), (2, InstanceState::Completed));
    assert_eq!(p.read_history("ra", Some(2)).await.unwrap().len(), 2);
    assert_eq!(p.read_history("ra", Some(1)).await.unwrap().len(), 2);
}

/// The current history of an unknown instance is `InstanceNotFound`.
pub async fn read_history_unknown_instance_fails(f: Factory) {
    let p = f.create_provider().await;
    match p.read_history("ghost", None).await {
        Err(ProviderError::InstanceNotFound(_)) => {}
        other => panic!("expected InstanceNotFound, got {other:?}"),
    }
}

/// An unknown instance has no executions.
pub async fn list_executions_unknown_instance_is_empty(f: Factory) {
    let p = f.create_provider().await;
    assert!(p.list_executions("ghost").await.unwrap().is_empty());
    create(&p, "fresh").await;
    assert!(p.list_executions("fresh").await.unwrap().is_empty(), "no execution before the first turn");
}

// ---------------------------------------------------------------------------------------
// Messages between instances

fn child_start(child: &str, parent: Option<ParentLink>) -> OutboundMessage {
    OutboundMessage {
        instance: child.into(),
        message: OrchestratorMessage::StartOrchestration {
            name: "Child".into(),
            version: Some("3.0.0".into()),
            input: "child-in".into(),
            parent,
        },
        visible_at_ms: None,
    }
}

fn link(parent: &str) -> ParentLink {
    ParentLink { instance: parent.into(), execution_id: 1, event_id: 2 }
}

async fn commit_messages(p: &Arc<dyn Provider>, instance: &str, messages: Vec<OutboundMessage>) {
    p.enqueue_message(external(instance, "trigger", "")).await.unwrap();
    let item = fetch_some(p, instance).await;
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    c.messages = messages;
    p.commit_turn(&item.lock_token, c).await.unwrap();
}

/// A committed StartOrchestration creates the child with its parent and pinned version.
pub async fn start_message_creates_child_instance(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "parent").await;
    commit_messages(&p, "parent", vec![child_start("child", Some(link("parent")))]).await;
    let r = p.get_instance("child").await.unwrap().expect("child created");
    assert_eq!(r.name, "Child");
    assert_eq!(r.version.as_deref(), Some("3.0.0"));
    assert_eq!(r.parent_instance.as_deref(), Some("parent"));
    assert_eq!(r.state, InstanceState::Pending);
    let item = fetch_some(&p, "child").await;
    assert!(matches!(
        &item.messages[..],
        [OrchestratorMessage::StartOrchestration { parent: Some(l), .. }] if *l == link("parent")
    ));
}

/// Starting a child whose id exists sends the parent a `SubOrchestrationFailed`.
pub async fn start_to_existing_child_fails_parent(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "existing").await;
    started_instance(&p, "parent").await;
    commit_messages(&p, "parent", vec![child_start("existing", Some(link("parent")))]).await;
    let item = fetch_some(&p, "parent").await;
    match &item.messages[..] {
        [OrchestratorMessage::SubOrchestrationFailed { execution_id: 1, event_id: 2, details }] => {
            assert!(details.message.contains("existing"), "{details:?}")
        }
        other => panic!("expected SubOrchestrationFailed for the parent, got {other:?}"),
    }
    fetch_none(&p).await;
    assert_eq!(p.get_instance("existing").await.unwrap().unwrap().name, NAME, "existing instance untouched");
}

/// A detached start to an existing id is skipped without failing the commit.
pub async fn detached_start_to_existing_is_skipped(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "taken").await;
    started_instance(&p, "starter").await;
    commit_messages(&p, "starter", vec![child_start("taken", None)]).await;
    fetch_none(&p).await;
}

/// Messages to unknown instances are dropped; the commit succeeds.
pub async fn message_to_unknown_instance_is_dropped(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "sender").await;
    commit_messages(&p, "sender", vec![external("nobody", "e", "")]).await;
    assert!(p.get_instance("nobody").await.unwrap().is_none());
    fetch_none(&p).await;
}

/// Messages to other existing instances are delivered.
pub async fn message_to_other_instance_is_delivered(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "to").await;
    started_instance(&p, "from").await;
    let done = OutboundMessage {
        instance: "to".into(),
        message: OrchestratorMessage::SubOrchestrationCompleted {
            execution_id: 1,
            event_id: 5,
            result: "r".into(),
        },
        visible_at_ms: None,
    };
    commit_messages(&p, "from", vec![done.clone()]).await;
    assert_eq!(fetch_some(&p, "to").await.messages, vec![done.message]);
}

/// Delayed messages to other instances honour their visibility time.
pub async fn delayed_message_to_other_instance(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "target").await;
    started_instance(&p, "src").await;
    commit_messages(&p, "src", vec![delayed("target", "later", now() + 300)]).await;
    fetch_none(&p).await;
    sleep_ms(450).await;
    assert_eq!(names(&fetch_some(&p, "target").await.messages), vec!["later"]);
}

// ---------------------------------------------------------------------------------------
// Filters

fn only(list: &[(&str, &[&str])]) -> FetchFilter {
    FetchFilter {
        orchestrations: Some(
            list.iter().map(|(n, vs)| (n.to_string(), vs.iter().map(|v| v.to_string()).collect())).collect(),
        ),
        duroxide_versions: None,
    }
}

/// Only listed orchestration names are fetched.
pub async fn filter_by_name(f: Factory) {
    let p = f.create_provider().await;
    p.create_instance("b", "B", None, "").await.unwrap();
    assert!(fetch_filtered(&p, &only(&[("A", &[])])).await.is_none());
    let item = fetch_filtered(&p, &only(&[("A", &[]), ("B", &[])])).await.expect("B allowed");
    assert_eq!(item.instance, "b");
}

/// An older instance the filter rejects does not hide a newer one it allows.
pub async fn filtered_out_instance_does_not_block_others(f: Factory) {
    let p = f.create_provider().await;
    for i in 0..70 {
        p.create_instance(&format!("b{i}"), "B", None, "").await.unwrap();
    }
    p.create_instance("a", "A", None, "").await.unwrap();
    let item = fetch_filtered(&p, &only(&[("A", &[])])).await.expect("A is behind 70 B instances");
    assert_eq!(item.instance, "a");
}

/// A pinned version must be listed for its name.
pub async fn filter_by_pinned_version(f: Factory) {
    let p = f.create_provider().await;
    p.create_instance("pv", "A", Some("1.0.0"), "").await.unwrap();
    assert!(fetch_filtered(&p, &only(&[("A", &["2.0.0"])])).await.is_none());
    assert!(fetch_filtered(&p, &only(&[("B", &["1.0.0"]), ("A", &["2.0.0"])])).await.is_none());
    let item = fetch_filtered(&p, &only(&[("A", &["2.0.0", "1.0.0"])])).await.expect("1.0.0 listed");
    assert_eq!(item.instance, "pv");
}

/// An instance with no pinned version runs on any node that has its name.
pub async fn unpinned_instance_passes_version_lists(f: Factory) {
    let p = f.create_provider().await;
    p.create_instance("up", "A", None, "").await.unwrap();
    assert!(fetch_filtered(&p, &only(&[("A", &[])])).await.is_some());
    p.create_instance("up2", "A", None, "").await.unwrap();
    assert!(fetch_filtered(&p, &only(&[("A", &["9.9.9"])])).await.is_some());
}

/// An empty name list fetches nothing.
pub async fn empty_filter_list_fetches_nothing(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "e").await;
    assert!(fetch_filtered(&p, &only(&[])).await.is_none());
    fetch_some(&p, "e").await;
}

/// Instances written by a duroxide version outside the range are not fetched.
pub async fn filter_by_duroxide_version_range(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "dv").await;
    p.enqueue_message(external("dv", "e", "")).await.unwrap();
    let cur = semver::Version::parse(DUROXIDE_VERSION).unwrap();
    let above = FetchFilter {
        orchestrations: None,
        duroxide_versions: Some(SemverRange::new(
            semver::Version::new(cur.major + 1, 0, 0),
            semver::Version::new(cur.major + 2, 0, 0),
        )),
    };
    assert!(fetch_filtered(&p, &above).await.is_none());
    let around = FetchFilter {
        orchestrations: None,
        duroxide_versions: Some(SemverRange::new(semver::Version::new(0, 0, 0), cur)),
    };
    assert_eq!(fetch_filtered(&p, &around).await.expect("inside the range").instance, "dv");
}

/// A never-run instance (no duroxide version yet) passes any range.
pub async fn instance_without_duroxide_version_passes_range(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "new").await;
    let filter = FetchFilter {
        orchestrations: None,
        duroxide_versions: Some(SemverRange::new(
            semver::Version::new(50, 0, 0),
            semver::Version::new(60, 0, 0),
        )),
    };
    assert!(fetch_filtered(&p, &filter).await.is_some());
}

/// `list_blocked_instances` names the instances a filter keeps from running.
pub async fn list_blocked_instances_reports_filtered(f: Factory) {
    let p = f.create_provider().await;
    p.create_instance("runs", "A", None, "").await.unwrap();
    p.create_instance("blocked", "B", Some("2.0.0"), "").await.unwrap();
    let filter = only(&[("A", &[])]);
    let blocked = p.list_blocked_instances(&filter, 10).await.unwrap();
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!(blocked[0].instance, "blocked");
    assert_eq!(blocked[0].name, "B");
    assert_eq!(blocked[0].version.as_deref(), Some("2.0.0"));
    assert!(p.list_blocked_instances(&all(), 10).await.unwrap().is_empty());
}

/// `list_blocked_instances` returns at most `limit` entries.
pub async fn list_blocked_instances_respects_limit(f: Factory) {
    let p = f.create_provider().await;
    for i in 0..5 {
        p.create_instance(&format!("b{i}"), "B", None, "").await.unwrap();
    }
    assert_eq!(p.list_blocked_instances(&only(&[("A", &[])]), 3).await.unwrap().len(), 3);
}

/// `count_instances_by_version` groups by name, version and state.
pub async fn count_instances_by_version_groups(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "r1").await;
    started_instance(&p, "r2").await;
    p.create_instance("p1", "Other", None, "").await.unwrap();
    let counts = p.count_instances_by_version().await.unwrap();
    let find = |name: &str, version: Option<&str>, state: InstanceState| {
        counts
            .iter()
            .find(|c| c.name == name && c.version.as_deref() == version && c.state == state)
            .map(|c| c.count)
    };
    assert_eq!(find(NAME, Some(V1), InstanceState::Running), Some(2), "{counts:?}");
    assert_eq!(find("Other", None, InstanceState::Pending), Some(1), "{counts:?}");
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert_eq!(counts[0].name, NAME, "sorted by name: {counts:?}");
}

// ---------------------------------------------------------------------------------------
// Export and import

/// Exporting an unknown instance is `InstanceNotFound`.
pub async fn export_unknown_instance_fails(f: Factory) {
    let p = f.create_provider().await;
    match p.export_instance("ghost").await {
        Err(ProviderError::InstanceNotFound(_)) => {}
        other => panic!("expected InstanceNotFound, got {other:?}"),
    }
}

/// An instance with two executions, a pending delayed message and queued work.
async fn rich_instance(p: &Arc<dyn Provider>, instance: &str) {
    let item = continue_as_new(p, instance).await;
    let mut c = turn(2, vec![started_v2("next"), scheduled(2, "Act", "in-2")], InstanceState::Running);
    c.update.version = "2.0.0".into();
    c.update.custom_status = Some(Some("halfway".into()));
    let mut w = work(instance, 2, 2, "Act", "in-2");
    w.execution_id = 2;
    c.activities.push(w);
    p.commit_turn(&item.lock_token, c).await.unwrap();
    p.enqueue_message(delayed(instance, "later", now() + 60_000)).await.unwrap();
}

/// Export then import into a fresh store gives the same instance, histories and queues.
pub async fn export_import_roundtrip(f: Factory) {
    let source = f.create_provider().await;
    rich_instance(&source, "moved").await;
    let snap = source.export_instance("moved").await.unwrap();
    assert_eq!(snap.executions.len(), 2);
    assert_eq!(snap.executions[0].history.len(), 2);
    assert_eq!(snap.executions[1].history.len(), 2);
    assert_eq!(snap.messages.len(), 1);
    assert_eq!(snap.activities.len(), 1);
    assert_eq!(snap.record.custom_status.as_deref(), Some("halfway"));
    let target = f.create_provider().await;
    target.import_instance(snap.clone()).await.unwrap();
    let mut again = target.export_instance("moved").await.unwrap();
    again.record.updated_at_ms = snap.record.updated_at_ms;
    assert_eq!(again, snap);
    assert_eq!(target.read_history("moved", Some(1)).await.unwrap(), snap.executions[0].history);
    assert_eq!(target.list_executions("moved").await.unwrap().len(), 2);
}

/// Importing over an existing id fails with `InstanceExists` and changes nothing.
pub async fn import_existing_instance_fails(f: Factory) {
    let p = f.create_provider().await;
    rich_instance(&p, "twice").await;
    let snap = p.export_instance("twice").await.unwrap();
    match p.import_instance(snap.clone()).await {
        Err(ProviderError::InstanceExists(_)) => {}
        other => panic!("expected InstanceExists, got {other:?}"),
    }
    let mut again = p.export_instance("twice").await.unwrap();
    again.record.updated_at_ms = snap.record.updated_at_ms;
    assert_eq!(again, snap);
}

/// An imported instance's queued work and messages are runnable on the new store.
pub async fn imported_instance_continues(f: Factory) {
    let source = f.create_provider().await;
    rich_instance(&source, "cont").await;
    source.enqueue_message(external("cont", "now", "")).await.unwrap();
    let snap = source.export_instance("cont").await.unwrap();
    let target = f.create_provider().await;
    target.import_instance(snap).await.unwrap();
    let w = fetch_work(&target, LOCK).await.expect("imported work is queued");
    assert_eq!((w.execution_id, w.event_id), (2, 2));
    let item = fetch_some(&target, "cont").await;
    assert_eq!(names(&item.messages), vec!["now"], "the delayed message keeps its due time");
    assert_eq!(item.record.execution_id, 2);
    assert_eq!(item.history.len(), 2);
}

// ---------------------------------------------------------------------------------------
// Payloads and unreadable data

const MIB: usize = 1024 * 1024;

/// A 1 MiB input survives create and fetch.
pub async fn large_input_roundtrips(f: Factory) {
    let p = f.create_provider().await;
    let input = big(MIB);
    p.create_instance("big", NAME, None, &input).await.unwrap();
    let item = fetch_some(&p, "big").await;
    match &item.messages[..] {
        [OrchestratorMessage::StartOrchestration { input: got, .. }] => {
            assert!(*got == input, "input changed")
        }
        other => panic!("unexpected {}", other.len()),
    }
}

/// A 1 MiB event survives commit and read.
pub async fn large_event_roundtrips(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "bigev").await;
    let item = fetch_some(&p, "bigev").await;
    let events = vec![started(&big(MIB)), scheduled(2, "A", &big(MIB))];
    p.commit_turn(&item.lock_token, turn(1, events.clone(), InstanceState::Running)).await.unwrap();
    assert!(p.read_history("bigev", None).await.unwrap() == events, "large history changed");
}

/// 1 MiB activity input and result survive the worker queue.
pub async fn large_activity_payloads_roundtrip(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "bigact").await;
    let item = fetch_some(&p, "bigact").await;
    let input = big(MIB);
    let mut c = turn(1, vec![started("x"), scheduled(2, "A", &input)], InstanceState::Running);
    c.activities.push(work("bigact", 1, 2, "A", &input));
    p.commit_turn(&item.lock_token, c).await.unwrap();
    let w = fetch_work(&p, LOCK).await.unwrap();
    assert!(w.input == input, "activity input changed");
    let result = big(MIB + 7);
    p.complete_work_item(&w.lock_token, completion("bigact", 2, &result)).await.unwrap();
    match &fetch_some(&p, "bigact").await.messages[..] {
        [OrchestratorMessage::ActivityCompleted { result: got, .. }] => {
            assert!(*got == result, "result changed")
        }
        other => panic!("unexpected {} messages", other.len()),
    }
}

/// Non-ASCII text, NUL-free control characters and JSON-looking strings are kept exactly.
pub async fn unicode_payloads_roundtrip(f: Factory) {
    let p = f.create_provider().await;
    let input = "héllo ✓ 日本語 🚀 \"quoted\" \\ back\tslash\n{\"json\": [1,2]}";
    p.create_instance("uni", NAME, None, input).await.unwrap();
    let item = fetch_some(&p, "uni").await;
    assert!(
        matches!(&item.messages[0], OrchestratorMessage::StartOrchestration { input: got, .. } if got == input)
    );
    let events = vec![started(input), scheduled(2, input, input)];
    p.commit_turn(&item.lock_token, turn(1, events.clone(), InstanceState::Running)).await.unwrap();
    assert_eq!(p.read_history("uni", None).await.unwrap(), events);
}

/// Prepares an instance with one readable event and asks the factory to store `raw` as
/// event 2. Returns false when the factory cannot.
async fn with_raw_event(f: &Factory, p: &Arc<dyn Provider>, instance: &str, raw: &str) -> bool {
    started_instance(p, instance).await;
    if !f.insert_raw_history_event(instance, 1, 2, raw).await {
        eprintln!("factory cannot write raw history rows; unreadable-history check skipped");
        return false;
    }
    true
}

/// Unreadable history does not fail the fetch: it is reported in `history_error`.
pub async fn unreadable_history_sets_history_error(f: Factory) {
    let p = f.create_provider().await;
    if !with_raw_event(&f, &p, "bad", "{ this is not json").await {
        return;
    }
    p.enqueue_message(external("bad", "e", "")).await.unwrap();
    let item = fetch_some(&p, "bad").await;
    assert!(item.history_error.is_some(), "history_error must be set");
    assert!(item.history.is_empty(), "history must be empty when unreadable");
    assert_eq!(item.history_len, 2, "history_len counts stored events");
    assert_eq!(names(&item.messages), vec!["e"]);
}

/// An instance row with an unknown state fails neither a batch fetch (it comes with
/// `history_error`, so the runtime fails it) nor the counts; only reading that instance's
/// record is `Corrupt`.
pub async fn corrupt_instance_state_is_isolated(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "bad").await;
    create(&p, "good").await;
    if !f.set_raw_instance_state("bad", "NotAState").await {
        return;
    }
    let counts = p.count_instances_by_version().await.expect("counts despite the corrupt row");
    assert_eq!(counts.iter().map(|c| c.count).sum::<u64>(), 1, "{counts:?}");
    assert!(matches!(p.get_instance("bad").await, Err(ProviderError::Corrupt(_))));
    assert!(p.get_instance("good").await.unwrap().is_some());
    let items = p.fetch_orchestration_items_cached(LOCK, &all(), &|_| None, 10).await.expect("fetch");
    let bad = items.iter().find(|i| i.instance == "bad").expect("the corrupt instance is fetched");
    assert!(bad.history_error.as_deref().unwrap_or("").contains("NotAState"), "{:?}", bad.history_error);
    let good = match items.iter().find(|i| i.instance == "good") {
        Some(item) => item.clone(),
        None => fetch_some(&p, "good").await,
    };
    assert!(good.history_error.is_none());
    // Failing the corrupt instance rewrites its state.
    p.commit_turn(&bad.lock_token, turn(1, vec![started("input")], InstanceState::Failed)).await.unwrap();
    assert_eq!(p.get_instance("bad").await.unwrap().unwrap().state, InstanceState::Failed);
}

/// Ids and names at the shared limits ([`MAX_INSTANCE_ID_BYTES`], [`MAX_NAME_BYTES`],
/// [`MAX_EVENT_NAME_BYTES`]), of text that does not compress, are stored, fetched and
/// finished like any other (every index and notification of the store holds them).
pub async fn identifiers_at_the_limits_work(f: Factory) {
    let p = f.create_provider().await;
    let text = |len: usize| {
        let mut s = String::new();
        while s.len() < len {
            s.push_str(&uuid::Uuid::new_v4().simple().to_string());
        }
        s.truncate(len);
        s
    };
    let (id, name, event) = (text(MAX_INSTANCE_ID_BYTES), text(MAX_NAME_BYTES), text(MAX_EVENT_NAME_BYTES));
    p.create_instance(&id, &name, None, "in").await.expect("create at the limits");
    p.enqueue_message(external(&id, &event, "x")).await.expect("event at the limit");
    let item = fetch_some(&p, &id).await;
    assert_eq!(item.record.name, name);
    assert_eq!(names(&item.messages), vec!["StartOrchestration".to_string(), event.clone()]);
    let mut c = turn(1, vec![started("in")], InstanceState::Running);
    c.activities.push(work(&id, 1, 2, &text(MAX_NAME_BYTES), "a"));
    c.messages.push(OutboundMessage {
        instance: text(MAX_INSTANCE_ID_BYTES),
        message: OrchestratorMessage::StartOrchestration {
            name: name.clone(),
            version: None,
            input: String::new(),
            parent: None,
        },
        visible_at_ms: None,
    });
    p.commit_turn(&item.lock_token, c).await.expect("commit at the limits");
    let w = fetch_work(&p, LOCK).await.expect("activity at the limits");
    p.complete_work_item(&w.lock_token, completion(&id, 2, "r")).await.unwrap();
    // The child started by the turn is queued too: take both, finish ours.
    let items = p.fetch_orchestration_items_cached(LOCK, &all(), &|_| None, 10).await.unwrap();
    let item = items.into_iter().find(|i| i.instance == id).expect("completion visible");
    p.commit_turn(&item.lock_token, turn(1, Vec::new(), InstanceState::Completed))
        .await
        .expect("final commit");
    assert_eq!(p.get_instance(&id).await.unwrap().unwrap().state, InstanceState::Completed);
}

/// Reading unreadable history gives `ProviderError::Corrupt`.
pub async fn unreadable_history_read_is_corrupt(f: Factory) {
    let p = f.create_provider().await;
    if !with_raw_event(&f, &p, "bad", "not json at all").await {
        return;
    }
    match p.read_history("bad", None).await {
        Err(ProviderError::Corrupt(_)) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(p.get_instance("bad").await.unwrap().is_some(), "the record stays readable");
}

/// An event type from a newer duroxide is reported like corruption, not dropped.
pub async fn unknown_event_type_sets_history_error(f: Factory) {
    let p = f.create_provider().await;
    let raw = r#"{"event_id":2,"timestamp_ms":1,"type":"EventFromTheFuture","x":1}"#;
    if !with_raw_event(&f, &p, "future", raw).await {
        return;
    }
    p.enqueue_message(external("future", "e", "")).await.unwrap();
    let item = fetch_some(&p, "future").await;
    assert!(item.history_error.is_some());
    assert!(item.history.is_empty());
}

// ---------------------------------------------------------------------------------------
// Concurrency

/// Of many concurrent fetches, exactly one gets the instance.
pub async fn concurrent_fetches_lock_instance_once(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "race").await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.fetch_orchestration_item(LOCK, &FetchFilter::default()).await })
        })
        .collect();
    let mut got = 0;
    for t in tasks {
        if t.await.unwrap().expect("fetch").is_some() {
            got += 1;
        }
    }
    assert_eq!(got, 1, "exactly one fetch may lock the instance");
}

/// Concurrent dispatchers take every instance exactly once.
pub async fn concurrent_fetches_take_each_instance_once(f: Factory) {
    let p = f.create_provider().await;
    for i in 0..30 {
        create(&p, &format!("i{i:02}")).await;
    }
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(item) =
                    p.fetch_orchestration_item(LOCK, &FetchFilter::default()).await.unwrap()
                {
                    mine.push(item.instance);
                }
                mine
            })
        })
        .collect();
    let mut all_ids = Vec::new();
    for t in tasks {
        all_ids.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all_ids.iter().cloned().collect();
    assert_eq!(all_ids.len(), 30, "each instance fetched once: {all_ids:?}");
    assert_eq!(unique.len(), 30);
}

/// Concurrent workers take every activity exactly once.
pub async fn concurrent_work_fetches_take_each_item_once(f: Factory) {
    let p = f.create_provider().await;
    let ids: Vec<u64> = (2..42).collect();
    with_activities(&p, "many", &ids).await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(w) = p.fetch_work_item(LOCK, &worker("w-default")).await.unwrap() {
                    p.complete_work_item(&w.lock_token, completion("many", w.event_id, "r")).await.unwrap();
                    mine.push(w.event_id);
                }
                mine
            })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        got.extend(t.await.unwrap());
    }
    got.sort();
    assert_eq!(got, ids);
    let item = fetch_some(&p, "many").await;
    assert_eq!(item.messages.len(), 40);
}

/// Commits on different instances run concurrently without interfering.
pub async fn concurrent_commits_on_different_instances(f: Factory) {
    let p = f.create_provider().await;
    for i in 0..10 {
        create(&p, &format!("c{i}")).await;
    }
    let mut items = Vec::new();
    while let Some(item) = fetch(&p).await {
        items.push(item);
    }
    assert_eq!(items.len(), 10);
    let tasks: Vec<_> = items
        .into_iter()
        .map(|item| {
            let p = p.clone();
            tokio::spawn(async move {
                let mut c =
                    turn(1, vec![started(&item.instance), scheduled(2, "A", "x")], InstanceState::Running);
                c.activities.push(work(&item.instance, 1, 2, "A", "x"));
                p.commit_turn(&item.lock_token, c).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("commit");
    }
    for i in 0..10 {
        assert_eq!(p.read_history(&format!("c{i}"), None).await.unwrap().len(), 2);
    }
    let mut n = 0;
    while fetch_work(&p, LOCK).await.is_some() {
        n += 1;
    }
    assert_eq!(n, 10);
}

/// Turns committed at the same moment (a store may commit them together) succeed or fail
/// each on their own: a stale lock fails only its turn.
pub async fn concurrent_commits_fail_alone(f: Factory) {
    let p = f.create_provider().await;
    let ids: Vec<String> = (0..8).map(|i| format!("cc{i}")).collect();
    let mut tokens = Vec::new();
    for id in &ids {
        create(&p, id).await;
        tokens.push(fetch_some(&p, id).await.lock_token);
    }
    tokens[3] = "stale-token".into();
    let commits = tokens.iter().map(|t| {
        let p = p.clone();
        let t = t.clone();
        async move { p.commit_turn(&t, turn(1, vec![started("input")], InstanceState::Running)).await }
    });
    let results = futures::future::join_all(commits).await;
    for (i, r) in results.into_iter().enumerate() {
        if i == 3 {
            assert_lock_lost(r, "stale token among concurrent commits");
        } else {
            r.unwrap_or_else(|e| panic!("commit {i} failed: {e}"));
        }
    }
    for (i, id) in ids.iter().enumerate() {
        let len = p.read_history(id, None).await.unwrap().len();
        assert_eq!(len, usize::from(i != 3), "history of {id}");
    }
}

/// Instances created at the same moment succeed or fail each on their own.
pub async fn concurrent_creates_fail_alone(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "dup").await;
    let names = ["n0", "n1", "dup", "n2", "n3"];
    let creates = names.iter().map(|id| {
        let p = p.clone();
        async move { p.create_instance(id, NAME, None, "input").await }
    });
    let results = futures::future::join_all(creates).await;
    for (id, r) in names.iter().zip(results) {
        match (*id, r) {
            ("dup", Err(ProviderError::InstanceExists(i))) => assert_eq!(i, "dup"),
            ("dup", other) => panic!("duplicate create must fail with InstanceExists, got {other:?}"),
            (id, r) => r.unwrap_or_else(|e| panic!("create {id} failed: {e}")),
        }
    }
    let mut listed = p.list_instances().await.unwrap();
    listed.sort();
    assert_eq!(listed, vec!["dup", "n0", "n1", "n2", "n3"]);
}

/// Completing work and locking its instance in one call returns the instance as a fetch
/// would, with the completion among its messages; a store that does not lock returns none
/// and the instance stays fetchable.
pub async fn complete_and_lock_returns_the_instance(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cl", &[2, 3]).await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    let known = |_: &str| None;
    let filter = all();
    let lock = LockAfterComplete { max_instances: 1, lock_timeout: LOCK, filter: &filter, cached: &known };
    let (results, items) = p
        .complete_work_items_and_lock(vec![(w.lock_token.clone(), completion("cl", w.event_id, "r"))], lock)
        .await;
    assert_eq!(results.len(), 1);
    results.into_iter().for_each(|r| r.expect("completed"));
    let item = match items.len() {
        0 => fetch_some(&p, "cl").await, // the store does not lock on completion
        1 => {
            fetch_none(&p).await; // locked for the caller
            items.into_iter().next().unwrap()
        }
        n => panic!("locked {n} instances for one completion"),
    };
    assert_eq!(item.instance, "cl");
    assert_eq!(item.history_len as usize, p.read_history("cl", None).await.unwrap().len());
    assert_eq!(
        item.messages,
        vec![OrchestratorMessage::ActivityCompleted {
            execution_id: 1,
            event_id: w.event_id,
            result: "r".into()
        }]
    );
    p.commit_turn(&item.lock_token, turn(1, Vec::new(), InstanceState::Running)).await.unwrap();
}

/// An instance another node holds is not locked by a completion; its lock still counts.
pub async fn complete_and_lock_skips_held_instances(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "ch", &[2]).await;
    p.enqueue_message(external("ch", "e", "")).await.unwrap();
    let held = fetch_some(&p, "ch").await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    let known = |_: &str| None;
    let filter = all();
    let lock = LockAfterComplete { max_instances: 4, lock_timeout: LOCK, filter: &filter, cached: &known };
    let (results, items) =
        p.complete_work_items_and_lock(vec![(w.lock_token.clone(), completion("ch", 2, "r"))], lock).await;
    results.into_iter().for_each(|r| r.expect("completed"));
    assert!(items.is_empty(), "a held instance must not be locked again");
    p.commit_turn(&held.lock_token, turn(1, Vec::new(), InstanceState::Running)).await.unwrap();
    let next = fetch_some(&p, "ch").await;
    assert_eq!(
        next.messages,
        vec![OrchestratorMessage::ActivityCompleted { execution_id: 1, event_id: 2, result: "r".into() }]
    );
}
