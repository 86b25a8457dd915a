//! The management API end to end: a runtime runs real orchestrations on a SQLite file while
//! a `Client` lists, describes, pages history, terminates, deletes and prunes them, and
//! every refusal is a typed error. The store-level contract of each call is in the
//! conformance suite (`provider::validation`, `listing` and `removal`).

mod common;

use common::{TestStore, completed, file_store, wait, wait_until_subscribed};
use duroxide::history::EventKind;
use duroxide::provider::{InstanceFilter, InstanceState, ListOrder, PruneOptions};
use duroxide::{
    ActivityContext, ActivityRegistry, BulkDelete, Client, ClientError, Either2, ErrorCategory,
    OrchestrationContext, OrchestrationRegistry, OrchestrationStatus, Runtime,
};
use std::time::Duration;

fn activities() -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Echo", |_ctx: ActivityContext, input: String| async move { Ok(input) })
        .register("Slow", |_ctx: ActivityContext, input: String| async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok(input)
        })
        .build()
}

fn orchestrations() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Steps", |ctx: OrchestrationContext, input: String| async move {
            let n: u32 = input.parse().unwrap_or(3);
            let mut out = String::new();
            for i in 0..n {
                out = ctx.schedule_activity("Echo", i.to_string()).await?;
            }
            ctx.schedule_timer(Duration::from_millis(5)).await;
            Ok(out)
        })
        .register("Waiter", |ctx: OrchestrationContext, _input: String| async move {
            let go = ctx.schedule_wait("Go");
            let deadline = ctx.schedule_timer(Duration::from_secs(3600));
            Ok(match ctx.select2(go, deadline).await {
                Either2::First(data) => data,
                Either2::Second(()) => "timed out".to_string(),
            })
        })
        .register("Parent", |ctx: OrchestrationContext, input: String| async move {
            match ctx.schedule_sub_orchestration_with_id("Waiter", input, "").await {
                Ok(v) => Ok(format!("child said {v}")),
                Err(e) => Ok(format!("child failed: {e}")),
            }
        })
        .register("SlowOne", |ctx: OrchestrationContext, input: String| async move {
            Ok(ctx.schedule_activity("Slow", input).await?)
        })
        .register("Counter", |ctx: OrchestrationContext, input: String| async move {
            let n: u32 = input.parse().unwrap_or(0);
            if n < 4 {
                ctx.continue_as_new((n + 1).to_string());
            }
            Ok(n.to_string())
        })
        .build()
}

async fn start(ts: &TestStore) -> (Runtime, Client) {
    let rt =
        Runtime::start_with_options(ts.store.clone(), activities(), orchestrations(), ts.options.clone())
            .await;
    (rt, Client::new(ts.store.clone()))
}

fn terminated(status: OrchestrationStatus) -> String {
    match status {
        OrchestrationStatus::Failed { details } if details.category == ErrorCategory::Terminated => {
            details.message
        }
        other => panic!("expected a terminated instance, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_a_child_and_its_parent_hears_of_it() {
    let ts = file_store().await;
    let (rt, client) = start(&ts).await;
    client.start_orchestration("boss", "Parent", "boss-kid").await.unwrap();
    wait_until_subscribed(&client, "boss-kid").await;
    assert_eq!(client.terminate_instance("boss-kid", "stuck on a vendor").await.unwrap(), vec!["boss-kid"]);
    assert_eq!(terminated(wait(&client, "boss-kid").await), "stuck on a vendor");
    let out = completed(&client, "boss").await;
    assert!(out.starts_with("child failed:") && out.contains("stuck on a vendor"), "{out}");
    match client.terminate_instance("boss-kid", "again").await {
        Err(ClientError::InstanceFinished { instance, .. }) => assert_eq!(instance, "boss-kid"),
        other => panic!("expected InstanceFinished, got {other:?}"),
    }
    assert!(matches!(
        client.raise_event("boss-kid", "Go", "late").await,
        Err(ClientError::InstanceFinished { .. })
    ));
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_a_parent_takes_its_children_and_the_runtime_carries_on() {
    let ts = file_store().await;
    let (rt, client) = start(&ts).await;
    client.start_orchestration("chief", "Parent", "chief-kid").await.unwrap();
    wait_until_subscribed(&client, "chief-kid").await;
    let ids = client.terminate_instance("chief", "whole tree").await.unwrap();
    assert_eq!(ids, vec!["chief", "chief-kid"]);
    assert_eq!(terminated(wait(&client, "chief").await), "whole tree");
    assert_eq!(terminated(wait(&client, "chief-kid").await), "whole tree");
    // The runtime, which held both in its cache, goes on with other work.
    client.start_orchestration("after", "Steps", "2").await.unwrap();
    assert_eq!(completed(&client, "after").await, "1");
    let d = client.describe_instance("chief").await.unwrap();
    assert!(d.queued_messages.is_empty() && d.pending_timers.is_empty(), "{d:?}");
    assert_eq!(d.children.len(), 1);
    assert_eq!(d.children[0].state, InstanceState::Failed);
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_a_waiting_instance() {
    let ts = file_store().await;
    let (rt, client) = start(&ts).await;
    client.start_orchestration("wait-1", "Waiter", "").await.unwrap();
    wait_until_subscribed(&client, "wait-1").await;
    let d = client.describe_instance("wait-1").await.unwrap();
    assert_eq!(d.record.state, InstanceState::Running);
    assert_eq!(d.executions.len(), 1);
    assert_eq!(d.pending_timers.len(), 1, "{d:?}");
    assert!(d.pending_timers[0].fire_at_ms > d.record.created_at_ms + 3_000_000);
    assert!(matches!(client.describe_instance("nobody").await, Err(ClientError::NotFound(_))));
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_history_replays_and_pages_match() {
    let ts = file_store().await;
    let (rt, client) = start(&ts).await;
    client.start_orchestration("steps", "Steps", "12").await.unwrap();
    assert_eq!(completed(&client, "steps").await, "11");
    let full = client.read_execution_history("steps", None).await.unwrap();
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = client.read_history_page("steps", None, after, 7).await.unwrap();
        paged.extend(page.events);
        match page.next_after_event_id {
            Some(n) => after = n,
            None => break,
        }
    }
    assert_eq!(paged, full);
    let json = client.export_history_json("steps", None).await.unwrap();
    let report =
        duroxide::testing::replay_history_json(&orchestrations(), "steps", 1, &json).expect("replays");
    assert_eq!(report.name, "Steps");
    assert!(matches!(
        client.read_history_page("steps", Some(9), 0, 10).await,
        Err(ClientError::NotFound(what)) if what.contains("execution 9")
    ));
    assert!(matches!(
        client.read_history_page("steps", None, 0, 0).await,
        Err(ClientError::InvalidArgument(_))
    ));
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_and_refuses_bad_cursors() {
    let ts = file_store().await;
    let (rt, client) = start(&ts).await;
    for i in 0..5 {
        client.start_orchestration(&format!("l-{i}"), "Steps", "1").await.unwrap();
    }
    client.start_orchestration("l-wait", "Waiter", "").await.unwrap();
    for i in 0..5 {
        completed(&client, &format!("l-{i}")).await;
    }
    let done = InstanceFilter::default().state(InstanceState::Completed).id_prefix("l-");
    let first = client.list_instances_page(&done, ListOrder::OldestFirst, 3, None).await.unwrap();
    assert_eq!(first.instances.len(), 3);
    let cursor = first.next_cursor.expect("more");
    let second = client.list_instances_page(&done, ListOrder::OldestFirst, 3, Some(&cursor)).await.unwrap();
    assert_eq!(second.instances.len(), 2);
    assert_eq!(second.next_cursor, None);
    assert_eq!(client.count_instances(&done).await.unwrap(), 5);
    let by_state = client.count_instances_by_state(&InstanceFilter::default().id_prefix("l-")).await.unwrap();
    assert_eq!(
        by_state.iter().map(|c| (c.state, c.count)).collect::<Vec<_>>(),
        vec![(InstanceState::Running, 1), (InstanceState::Completed, 5)]
    );
    for bad in ["", "garbage", "n.12.zz", "o.x.6c2d30", "n.1.6c2d30.extra"] {
        match client.list_instances_page(&done, ListOrder::NewestFirst, 3, Some(bad)).await {
            Err(ClientError::InvalidCursor(e)) => assert_eq!(e.cursor, bad),
            other => panic!("cursor {bad:?}: expected InvalidCursor, got {other:?}"),
        }
    }
    // A cursor of an oldest-first listing does not continue a newest-first one.
    assert!(matches!(
        client.list_instances_page(&done, ListOrder::NewestFirst, 3, Some(&cursor)).await,
        Err(ClientError::InvalidCursor(_))
    ));
    assert!(matches!(
        client.list_instances_page(&done, ListOrder::NewestFirst, 0, None).await,
        Err(ClientError::InvalidArgument(_))
    ));
    let long = InstanceFilter::default().name("n".repeat(600));
    assert!(matches!(client.count_instances(&long).await, Err(ClientError::TooLong { .. })));
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_are_refused_or_done_as_asked() {
    let ts = file_store().await;
    let (rt, client) = start(&ts).await;
    for i in 0..9 {
        client.start_orchestration(&format!("d-{i}"), "Steps", "1").await.unwrap();
    }
    client.start_orchestration("d-wait", "Waiter", "").await.unwrap();
    for i in 0..9 {
        completed(&client, &format!("d-{i}")).await;
    }
    wait_until_subscribed(&client, "d-wait").await;
    assert!(matches!(
        client.delete_instances(&BulkDelete::matching(InstanceFilter::default())).await,
        Err(ClientError::EmptyFilter)
    ));
    let running = BulkDelete::matching(InstanceFilter::default().state(InstanceState::Running));
    assert!(matches!(client.delete_instances(&running).await, Err(ClientError::InvalidArgument(_))));
    match client.delete_instance("d-wait", false).await {
        Err(ClientError::InstanceRunning(id)) => assert_eq!(id, "d-wait"),
        other => panic!("expected InstanceRunning, got {other:?}"),
    }
    assert!(matches!(client.delete_instance("nobody", false).await, Err(ClientError::NotFound(_))));

    let some = BulkDelete::matching(InstanceFilter::default().state(InstanceState::Completed))
        .limit(4)
        .batch_size(3);
    assert_eq!(client.count_deletable(&some).await.unwrap(), 4);
    assert_eq!(client.delete_instances(&some).await.unwrap(), 4);
    assert_eq!(client.count_instances(&InstanceFilter::default().id_prefix("d-")).await.unwrap(), 6);
    assert_eq!(client.delete_instances(&BulkDelete::all().batch_size(2)).await.unwrap(), 5);
    // Forced, while the runtime waits in it: it goes, and nothing brings it back.
    assert_eq!(client.delete_instance("d-wait", true).await.unwrap(), vec!["d-wait"]);
    assert!(matches!(client.raise_event("d-wait", "Go", "x").await, Err(ClientError::NotFound(_))));
    client.start_orchestration("d-after", "Steps", "1").await.unwrap();
    completed(&client, "d-after").await;
    assert_eq!(client.get_orchestration_status("d-wait").await.unwrap(), OrchestrationStatus::NotFound);
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_old_executions_of_a_continue_as_new_instance() {
    let ts = file_store().await;
    let (rt, client) = start(&ts).await;
    client.start_orchestration("count", "Counter", "0").await.unwrap();
    assert_eq!(completed(&client, "count").await, "4");
    assert_eq!(client.list_executions("count").await.unwrap().len(), 5);
    assert!(matches!(
        client.prune_executions("count", &PruneOptions::default()).await,
        Err(ClientError::InvalidArgument(_))
    ));
    let keep_two = PruneOptions { keep_last: Some(2), finished_before_ms: None };
    assert_eq!(client.prune_executions("count", &keep_two).await.unwrap(), 3);
    let left: Vec<u64> =
        client.list_executions("count").await.unwrap().iter().map(|e| e.execution_id).collect();
    assert_eq!(left, vec![4, 5]);
    let counters = InstanceFilter::default().name("Counter");
    let keep_one = PruneOptions { keep_last: Some(1), finished_before_ms: None };
    assert_eq!(client.prune_executions_where(&counters, &keep_one).await.unwrap(), 1);
    assert_eq!(completed(&client, "count").await, "4", "the current execution is untouched");
    let summary = client.store_summary().await.unwrap();
    assert_eq!(summary.instances.iter().map(|c| c.count).sum::<u64>(), 1);
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_running_when_its_instance_ends_changes_nothing() {
    let ts = file_store().await;
    let (rt, client) = start(&ts).await;
    for id in ["slow-term", "slow-del"] {
        client.start_orchestration(id, "SlowOne", "x").await.unwrap();
    }
    for id in ["slow-term", "slow-del"] {
        common::wait_for_event(&client, id, |k| matches!(k, EventKind::ActivityScheduled { .. })).await;
    }
    client.terminate_instance("slow-term", "no time").await.unwrap();
    client.delete_instance("slow-del", true).await.unwrap();
    // The activities finish after the instance ended: their results go nowhere.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(terminated(client.get_orchestration_status("slow-term").await.unwrap()), "no time");
    let history = client.read_execution_history("slow-term", None).await.unwrap();
    assert!(
        matches!(history.last().map(|e| &e.kind), Some(EventKind::OrchestrationFailed { .. })),
        "nothing after the termination: {history:?}"
    );
    assert_eq!(client.get_orchestration_status("slow-del").await.unwrap(), OrchestrationStatus::NotFound);
    let summary = client.store_summary().await.unwrap();
    assert_eq!((summary.activity_queue.ready, summary.activity_queue.locked), (0, 0), "{summary:?}");
    assert_eq!((summary.orchestrator_queue.ready, summary.orchestrator_queue.locked), (0, 0), "{summary:?}");
    // The runtime is fine.
    client.start_orchestration("slow-after", "Steps", "1").await.unwrap();
    completed(&client, "slow-after").await;
    rt.shutdown(None).await;
}
