//! End-to-end: event queues across continue-as-new, progress status with
//! `wait_for_status_change`, typed events, and a multi-step block racing a deadline. Each
//! scenario runs on memory, file and PostgreSQL stores, with the instance cache on and off.

#[path = "queues_support/mod.rs"]
mod support;

use duroxide::history::EventKind;
use duroxide::prelude::*;
use duroxide::{ClientError, Either2};
use std::time::Duration;
use support::TestStore;
use support::common::{assert_clean_history, completed, start_runtime, wait_for_event};

fn activities() -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Echo", |_ctx: ActivityContext, input: String| async move { Ok(input) })
        .register("Sleep", |ctx: ActivityContext, input: String| async move {
            let ms: u64 = input.parse().unwrap_or(100);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms)) => Ok(format!("slept {ms}")),
                _ = ctx.cancelled() => Err(ActivityError::new("cancelled")),
            }
        })
        .build()
}

/// Reads one message per execution and continues as new with what it has read so far, so
/// every message but the first of a batch is carried from execution to execution.
fn consumer() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Consumer", |ctx: OrchestrationContext, seen: String| async move {
            let message = ctx.dequeue_event("stream").await;
            if message == "stop" {
                return Ok(seen);
            }
            let seen = if seen.is_empty() { message } else { format!("{seen},{message}") };
            ctx.continue_as_new(seen);
            Ok(String::new())
        })
        .build()
}

on_all_stores!(
    a_continue_as_new_loop_consumes_a_stream_without_loss_or_duplicates,
    |ts: TestStore| async move {
        let client = Client::new(ts.store.clone());
        client.start_orchestration("stream-1", "Consumer", "").await.unwrap();
        // Half the stream is queued before any node runs: the first execution takes one
        // message and carries the rest.
        for i in 0..20 {
            client.enqueue_event("stream-1", "stream", i.to_string()).await.unwrap();
        }
        let rt = start_runtime(&ts, activities(), consumer()).await;
        // The other half arrives while executions come and go.
        for i in 20..40 {
            client.enqueue_event("stream-1", "stream", i.to_string()).await.unwrap();
        }
        client.enqueue_event("stream-1", "stream", "stop").await.unwrap();
        let expected: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let out = completed(&client, "stream-1").await;
        if out != expected.join(",") {
            for e in client.list_executions("stream-1").await.unwrap() {
                let h = client.read_execution_history("stream-1", Some(e.execution_id)).await.unwrap();
                let short: Vec<String> = h
                    .iter()
                    .map(|e| match &e.kind {
                        EventKind::QueueMessageReceived { data, .. } => format!("Q{data}"),
                        EventKind::OrchestrationStarted { input, .. } => format!("S[{}]", input.len()),
                        k => k.type_name().to_string(),
                    })
                    .collect();
                eprintln!("exec {}: {}", e.execution_id, short.join(" "));
            }
        }
        assert_eq!(out, expected.join(","));
        let executions = client.list_executions("stream-1").await.unwrap();
        assert_eq!(executions.len(), 41, "one execution per message");
        for e in &executions {
            let h = client.read_execution_history("stream-1", Some(e.execution_id)).await.unwrap();
            assert_clean_history(&h);
            let received = h.iter().filter(|e| matches!(e.kind, EventKind::QueueSubscribed { .. })).count();
            assert_eq!(received, 1, "execution {} dequeued once", e.execution_id);
        }
        // A finished instance takes no more messages.
        assert!(matches!(
            client.enqueue_event("stream-1", "stream", "late").await,
            Err(ClientError::InstanceFinished { .. })
        ));
        rt.shutdown(None).await;
    }
);

#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct Job {
    name: String,
}

fn progress() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Progress", |ctx: OrchestrationContext, done: String| async move {
            let mut done: u32 = done.parse().unwrap_or(0);
            let job: Job = ctx.dequeue_event_typed("jobs").await?;
            done += 1;
            ctx.set_custom_status(format!("{done}/3 {}", job.name));
            if done < 3 {
                // Wait for a go-ahead (typed), then go on in a new execution: the status
                // stays as it is until the next job sets it.
                let _: bool = ctx.schedule_wait_typed("next").await?;
                ctx.continue_as_new_typed(&done)?;
                return Ok(String::new());
            }
            Ok(format!("all {done}"))
        })
        .build()
}

on_all_stores!(
    status_changes_wake_waiters_and_survive_continue_as_new_and_completion,
    |ts: TestStore| async move {
        let rt = start_runtime(&ts, activities(), progress()).await;
        let client = Client::new(ts.store.clone());
        // The store announces each status change in-process (what wakes waiters at once).
        let mut notices = ts.store.notifiers().expect("both stores notify").status_changed.subscribe();
        client.start_orchestration("p-1", "Progress", "0").await.unwrap();
        let mut seen = 0;
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            let waiter = {
                let client = client.clone();
                tokio::spawn(async move {
                    client.wait_for_status_change("p-1", seen, Duration::from_secs(20)).await
                })
            };
            client.enqueue_event_typed("p-1", "jobs", &Job { name: name.to_string() }).await.unwrap();
            let change = waiter.await.unwrap().unwrap();
            assert_eq!(change.version, seen + 1, "{change:?}");
            assert_eq!(change.custom_status, Some(format!("{}/3 {name}", i + 1)));
            seen = change.version;
            if i < 2 {
                client.raise_event_typed("p-1", "next", &true).await.unwrap();
                // The next execution has not set a status yet: the last one is kept.
                let next_execution = i as u64 + 2;
                let mut waited = 0;
                while client.get_instance_info("p-1").await.unwrap().unwrap().execution_id < next_execution {
                    waited += 1;
                    assert!(waited < 500, "no continue-as-new");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                wait_for_event(&client, "p-1", |k| matches!(k, EventKind::QueueSubscribed { .. })).await;
                let info = client.get_instance_info("p-1").await.unwrap().unwrap();
                assert_eq!(info.execution_id, next_execution);
                assert_eq!(info.custom_status, Some(format!("{}/3 {name}", i + 1)));
                assert_eq!(info.custom_status_version, seen);
            }
        }
        assert_eq!(completed(&client, "p-1").await, "all 3");
        // The notice of the last change may still be on its way: the client can hear that
        // the instance finished (a PostgreSQL notification) before the committing task
        // announces the status change in-process.
        let mut announced = Vec::new();
        let all_three = async {
            while announced.len() < 3 {
                match notices.recv().await {
                    Ok(id) => announced.push(id),
                    Err(e) => panic!("the notices ended early: {e}"),
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), all_three).await;
        while let Ok(id) = notices.try_recv() {
            announced.push(id);
        }
        assert_eq!(announced, vec!["p-1"; 3], "one notice per committed status change");
        let change = client.wait_for_status_change("p-1", seen, Duration::from_secs(1)).await.unwrap();
        assert!(change.status.is_terminal());
        assert_eq!((change.version, change.custom_status.as_deref()), (3, Some("3/3 c")));
        // Nothing changes on an unfinished instance: a timeout, not a busy loop.
        client.start_orchestration("p-2", "Progress", "0").await.unwrap();
        let started = std::time::Instant::now();
        let r = client.wait_for_status_change("p-2", 0, Duration::from_millis(300)).await;
        assert!(matches!(r, Err(ClientError::Timeout { .. })), "{r:?}");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(matches!(
            client.wait_for_status_change("nope", 0, Duration::from_millis(10)).await,
            Err(ClientError::NotFound(_))
        ));
        rt.shutdown(None).await;
    }
);

fn racing() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Steps", |ctx: OrchestrationContext, input: String| async move {
            let (sleep_ms, deadline_ms) = input.split_once('/').ok_or("input is sleep/deadline")?;
            let deadline_ms: u64 = deadline_ms.parse().map_err(|_| "bad deadline")?;
            let steps = ctx.composite(async {
                let slept = ctx.schedule_activity("Sleep", sleep_ms).await?;
                ctx.schedule_activity("Echo", format!("{slept}, echoed")).await
            });
            let deadline = ctx.schedule_timer(Duration::from_millis(deadline_ms));
            Ok(match ctx.select2(steps, deadline).await {
                Either2::First(r) => r?,
                Either2::Second(()) => "deadline".to_string(),
            })
        })
        .build()
}

on_all_stores!(two_steps_race_a_deadline, |ts: TestStore| async move {
    let rt = start_runtime(&ts, activities(), racing()).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("fast", "Steps", "10/20000").await.unwrap();
    client.start_orchestration("slow", "Steps", "5000/200").await.unwrap();
    assert_eq!(completed(&client, "fast").await, "slept 10, echoed");
    assert_eq!(completed(&client, "slow").await, "deadline");
    let h = client.read_execution_history("slow", None).await.unwrap();
    assert_clean_history(&h);
    let sleep_id = h
        .iter()
        .find(|e| matches!(&e.kind, EventKind::ActivityScheduled { name, .. } if name == "Sleep"))
        .map(|e| e.event_id)
        .expect("Sleep scheduled");
    assert!(
        h.iter().any(|e| matches!(e.kind, EventKind::ActivityCancelRequested { source_event_id } if source_event_id == sleep_id)),
        "the pending step is cancelled in history: {h:?}"
    );
    assert!(
        !h.iter().any(|e| matches!(&e.kind, EventKind::ActivityScheduled { name, .. } if name == "Echo"))
    );
    rt.shutdown(Some(Duration::from_millis(500))).await;
});

fn losing_dequeue() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Loser", |ctx: OrchestrationContext, _in: String| async move {
            let dequeue = ctx.dequeue_event("q");
            let timer = ctx.schedule_timer(Duration::from_millis(50));
            ctx.schedule_wait("go").await;
            let first = match ctx.select2(timer, dequeue).await {
                Either2::First(()) => "timer".to_string(),
                Either2::Second(m) => format!("message {m}"),
            };
            Ok(format!("{first}, then {}", ctx.dequeue_event("q").await))
        })
        .build()
}

on_all_stores!(a_dequeue_that_loses_a_select_does_not_eat_its_message, |ts: TestStore| async move {
    let rt = start_runtime(&ts, activities(), losing_dequeue()).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("l-1", "Loser", "").await.unwrap();
    wait_for_event(&client, "l-1", |k| matches!(k, EventKind::TimerFired { .. })).await;
    client.enqueue_event("l-1", "q", "m").await.unwrap();
    wait_for_event(&client, "l-1", |k| matches!(k, EventKind::QueueMessageReceived { .. })).await;
    client.raise_event("l-1", "go", "").await.unwrap();
    assert_eq!(completed(&client, "l-1").await, "timer, then m");
    rt.shutdown(None).await;
});
