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
//!
//! This file holds the public API (the factory trait, the runner, the macros and the one
//! list of tests); the tests themselves live in one file per topic (`instances`, `queues`,
//! `locks`, `commit`, `activities`, `sessions`, `tags`, `batches`, `messages`, `filters`,
//! `transfer`, `corruption`, `concurrency`, `status` (event queues, status version),
//! `values`, the runtimes' presence records in `workers`, and the management calls in
//! `listing` and `removal`) and are re-exported here, so every test stays
//! reachable as `duroxide::provider::validation::<name>`.

use super::*;
use crate::history::{DUROXIDE_VERSION, ErrorDetails, EventKind, ParentLink};
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::future::Future;

mod activities;
mod batches;
mod commit;
mod concurrency;
mod corruption;
mod filters;
mod instances;
mod listing;
mod locks;
mod messages;
mod queues;
mod removal;
mod sessions;
mod status;
mod support;
mod tags;
mod transfer;
mod values;
mod workers;

pub use activities::*;
pub use batches::*;
pub use commit::*;
pub use concurrency::*;
pub use corruption::*;
pub use filters::*;
pub use instances::*;
pub use listing::*;
pub use locks::*;
pub use messages::*;
pub use queues::*;
pub use removal::*;
pub use sessions::*;
pub use status::*;
pub use tags::*;
pub use transfer::*;
pub use values::*;
pub use workers::*;

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
            // event queues and progress status
            custom_status_version_counts_status_changes,
            queue_messages_kept_in_order,
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
            fetched_work_says_when_it_became_runnable,
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
            // activity routing by tag
            fetch_takes_only_the_tags_the_worker_serves,
            worker_serving_no_tags_fetches_nothing,
            tagged_session_work_goes_only_to_workers_serving_the_tag,
            tag_and_orchestration_travel_with_the_work_item,
            summary_and_describe_report_work_per_tag,
            // batch fetches
            batch_fetch_takes_oldest_instances,
            batch_fetched_items_commit_independently,
            batch_fetch_honours_filter_and_locks,
            batch_fetch_uses_cached_history_lengths,
            batch_work_fetch_takes_oldest_activities,
            batch_work_locks_expire,
            batch_work_fetch_skips_locked_activities,
            batch_work_fetch_keeps_session_order,
            batch_completions_fail_alone_and_keep_order,
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
            // management: listings and reads
            list_pages_cover_every_instance_once,
            list_cursor_survives_concurrent_inserts,
            list_filters_select_exactly_the_matches,
            describe_instance_reports_everything,
            history_pages_read_in_order,
            // management: delete, prune, terminate, summary
            delete_removes_everything_of_the_instance,
            delete_of_running_instance_needs_force,
            delete_cascades_to_children,
            delete_during_a_turn_wins,
            concurrent_delete_and_commit_leave_nothing,
            bulk_delete_goes_in_bounded_batches,
            bulk_delete_by_finish_time,
            prune_keeps_the_current_execution,
            terminate_ends_a_running_instance,
            terminate_tells_the_parent_and_takes_the_children,
            store_summary_counts_states_and_queues,
            // concurrency
            concurrent_fetches_lock_instance_once,
            concurrent_fetches_take_each_instance_once,
            concurrent_work_fetches_take_each_item_once,
            concurrent_commits_fail_alone,
            concurrent_creates_fail_alone,
            complete_and_lock_returns_the_instance,
            complete_and_lock_skips_held_instances,
            concurrent_commits_on_different_instances,
            // durable values
            values_follow_the_turns_value_events,
            values_cleared_and_carried,
            stale_commit_writes_no_values,
            values_go_with_deleted_instances_and_stay_after_prune,
            values_travel_with_export_and_import,
            // worker presence
            worker_records_read_back_exactly,
            recording_again_refreshes_the_record,
            remove_worker_removes_only_its_record,
            gone_records_stay_readable_then_expire,
            expiry_deletes_a_bounded_batch_per_write,
        ] }
    };
}
