//! End-to-end scenarios, each on an in-memory and a file SQLite store.

mod common;

use common::{TestStore, assert_clean_history, completed, start_runtime, wait};
use duroxide::history::EventKind;
use duroxide::prelude::*;
use duroxide::{ClientError, Either2, ErrorCategory};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn basic_activities() -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Add1", |_ctx: ActivityContext, input: String| async move {
            let n: i64 =
                input.parse().map_err(|e| ActivityError::non_retryable(format!("bad number: {e}")))?;
            Ok((n + 1).to_string())
        })
        .register("Echo", |_ctx: ActivityContext, input: String| async move { Ok(input) })
        .register("Fail", |_ctx: ActivityContext, input: String| async move {
            Err(ActivityError::new(format!("failed on {input}")))
        })
        .register("Panic", |_ctx: ActivityContext, _input: String| async move {
            if true {
                panic!("activity exploded");
            }
            Ok(String::new())
        })
        .register("Sleep", |ctx: ActivityContext, input: String| async move {
            let ms: u64 = input.parse().unwrap_or(100);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms)) => Ok("slept".to_string()),
                _ = ctx.cancelled() => Err(ActivityError::new("cancelled")),
            }
        })
        .build()
}

on_both_stores!(function_chaining, |ts: TestStore| async move {
    let orchestrations = OrchestrationRegistry::builder()
        .register("Chain", |ctx: OrchestrationContext, input: String| async move {
            let mut v = input;
            for _ in 0..5 {
                v = ctx.schedule_activity("Add1", &v).await?;
            }
            Ok(v)
        })
        .build();
    let rt = start_runtime(&ts, basic_activities(), orchestrations).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("chain-1", "Chain", "10").await.unwrap();
    assert_eq!(completed(&client, "chain-1").await, "15");
    let h = client.read_execution_history("chain-1", None).await.unwrap();
    assert_clean_history(&h);
    assert_eq!(h.iter().filter(|e| matches!(e.kind, EventKind::ActivityScheduled { .. })).count(), 5);
    rt.shutdown(None).await;
});

on_both_stores!(fan_out_fan_in_100, |ts: TestStore| async move {
    let orchestrations = OrchestrationRegistry::builder()
        .register("FanOut", |ctx: OrchestrationContext, _input: String| async move {
            let tasks = (0..100).map(|i| ctx.schedule_activity("Add1", i.to_string())).collect();
            let mut sum = 0i64;
            for r in ctx.join(tasks).await {
                sum += r?.parse::<i64>().map_err(|e| e.to_string())?;
            }
            Ok(sum.to_string())
        })
        .build();
    let rt = start_runtime(&ts, basic_activities(), orchestrations).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("fan-1", "FanOut", "").await.unwrap();
    // sum of 1..=100
    assert_eq!(completed(&client, "fan-1").await, "5050");
    assert_clean_history(&client.read_execution_history("fan-1", None).await.unwrap());
    rt.shutdown(None).await;
});

on_both_stores!(durable_timer, |ts: TestStore| async move {
    let orchestrations = OrchestrationRegistry::builder()
        .register("Timer", |ctx: OrchestrationContext, _input: String| async move {
            let t0 = ctx.utc_now().await;
            ctx.schedule_timer(Duration::from_millis(300)).await;
            let t1 = ctx.utc_now().await;
            let waited = t1.duration_since(t0).map_err(|e| e.to_string())?;
            Ok((waited >= Duration::from_millis(300)).to_string())
        })
        .build();
    let rt = start_runtime(&ts, basic_activities(), orchestrations).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("timer-1", "Timer", "").await.unwrap();
    assert_eq!(completed(&client, "timer-1").await, "true");
    let h = client.read_execution_history("timer-1", None).await.unwrap();
    assert!(h.iter().any(|e| matches!(e.kind, EventKind::TimerFired { .. })));
    rt.shutdown(None).await;
});

fn approval_orchestrations() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Approval", |ctx: OrchestrationContext, _input: String| async move {
            let first = ctx.schedule_wait("Approve").await;
            ctx.set_custom_status(format!("got {first}"));
            let second = ctx.schedule_wait("Approve").await;
            Ok(format!("{first}+{second}"))
        })
        .register("Deadline", |ctx: OrchestrationContext, input: String| async move {
            let ms: u64 = input.parse().unwrap_or(200);
            let event = ctx.schedule_wait("Approve");
            let timer = ctx.schedule_timer(Duration::from_millis(ms));
            Ok(match ctx.select2(event, timer).await {
                Either2::First(data) => format!("approved:{data}"),
                Either2::Second(()) => "timed out".to_string(),
            })
        })
        .build()
}

on_both_stores!(external_events_before_and_after_the_wait, |ts: TestStore| async move {
    let rt = start_runtime(&ts, basic_activities(), approval_orchestrations()).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("ev-1", "Approval", "").await.unwrap();
    // Raised immediately: may land before the orchestration subscribes.
    client.raise_event("ev-1", "Approve", "early").await.unwrap();
    // Wait until the first one was consumed, then raise the second.
    for _ in 0..200 {
        if let OrchestrationStatus::Running { custom_status: Some(s) } =
            client.get_orchestration_status("ev-1").await.unwrap()
        {
            assert_eq!(s, "got early");
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.raise_event("ev-1", "Approve", "late").await.unwrap();
    assert_eq!(completed(&client, "ev-1").await, "early+late");
    assert!(matches!(client.raise_event("nope", "Approve", "x").await, Err(ClientError::NotFound(_))));
    rt.shutdown(None).await;
});

on_both_stores!(select_between_timer_and_event, |ts: TestStore| async move {
    let rt = start_runtime(&ts, basic_activities(), approval_orchestrations()).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("dl-timeout", "Deadline", "100").await.unwrap();
    assert_eq!(completed(&client, "dl-timeout").await, "timed out");
    client.start_orchestration("dl-event", "Deadline", "60000").await.unwrap();
    client.raise_event("dl-event", "Approve", "yes").await.unwrap();
    assert_eq!(completed(&client, "dl-event").await, "approved:yes");
    rt.shutdown(None).await;
});

fn parent_child() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Child", |ctx: OrchestrationContext, input: String| async move {
            if input == "fail" {
                return Err(OrchestrationError::application("child refused"));
            }
            if input == "wait" {
                return Ok(ctx.schedule_wait("never").await);
            }
            Ok(ctx.schedule_activity("Add1", input).await?)
        })
        .register("Parent", |ctx: OrchestrationContext, input: String| async move {
            match ctx.schedule_sub_orchestration("Child", input).await {
                Ok(v) => Ok(format!("child said {v}")),
                Err(e) => Ok(format!("child failed: {}", e.message)),
            }
        })
        .register("ParentWithId", |ctx: OrchestrationContext, input: String| async move {
            Ok(ctx.schedule_sub_orchestration_with_id("Child", "the-child", input).await?)
        })
        .build()
}

on_both_stores!(sub_orchestrations_success_and_failure, |ts: TestStore| async move {
    let rt = start_runtime(&ts, basic_activities(), parent_child()).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("p-ok", "Parent", "41").await.unwrap();
    client.start_orchestration("p-fail", "Parent", "fail").await.unwrap();
    client.start_orchestration("p-id", "ParentWithId", "1").await.unwrap();
    assert_eq!(completed(&client, "p-ok").await, "child said 42");
    assert_eq!(completed(&client, "p-fail").await, "child failed: child refused");
    assert_eq!(completed(&client, "p-id").await, "2");
    assert_eq!(completed(&client, "the-child").await, "2");
    let child = client.get_instance_info("the-child").await.unwrap().unwrap();
    assert_eq!(child.parent_instance.as_deref(), Some("p-id"));
    rt.shutdown(None).await;
});

on_both_stores!(cancel_cascades_to_sub_orchestrations, |ts: TestStore| async move {
    let rt = start_runtime(&ts, basic_activities(), parent_child()).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("p-wait", "ParentWithId", "wait").await.unwrap();
    // Wait until the child runs.
    for _ in 0..300 {
        if matches!(
            client.get_orchestration_status("the-child").await.unwrap(),
            OrchestrationStatus::Running { .. }
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.cancel_instance("p-wait", "operator said stop").await.unwrap();
    assert_eq!(
        wait(&client, "p-wait").await,
        OrchestrationStatus::Cancelled { reason: "operator said stop".into() }
    );
    match wait(&client, "the-child").await {
        OrchestrationStatus::Cancelled { reason } => {
            assert!(reason.contains("operator said stop"), "{reason}")
        }
        other => panic!("child not cancelled: {other:?}"),
    }
    let h = client.read_execution_history("p-wait", None).await.unwrap();
    assert!(h.iter().any(|e| matches!(e.kind, EventKind::OrchestrationCancelRequested { .. })));
    assert!(h.iter().any(|e| matches!(e.kind, EventKind::SubOrchestrationCancelRequested { .. })));
    rt.shutdown(None).await;
});

on_both_stores!(cancel_running_instance_stops_its_activity, |ts: TestStore| async move {
    let orchestrations = OrchestrationRegistry::builder()
        .register("Long", |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx.schedule_activity("Sleep", "60000").await?)
        })
        .build();
    let rt = start_runtime(&ts, basic_activities(), orchestrations).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("long-1", "Long", "").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.cancel_instance("long-1", "no longer needed").await.unwrap();
    assert_eq!(
        wait(&client, "long-1").await,
        OrchestrationStatus::Cancelled { reason: "no longer needed".into() }
    );
    let h = client.read_execution_history("long-1", None).await.unwrap();
    assert!(h.iter().any(|e| matches!(e.kind, EventKind::ActivityCancelRequested { source_event_id: 2 })));
    // The running activity notices at its next lock renewal and stops (it does not sleep 60 s):
    // shutdown returns promptly.
    let t = std::time::Instant::now();
    rt.shutdown(Some(Duration::from_secs(20))).await;
    assert!(t.elapsed() < Duration::from_secs(15), "activity was not cancelled");
});

on_both_stores!(detached_orchestration, |ts: TestStore| async move {
    let orchestrations = OrchestrationRegistry::builder()
        .register("Launcher", |ctx: OrchestrationContext, input: String| async move {
            ctx.schedule_orchestration("Worker", format!("worker-of-{input}"), input);
            Ok("launched".to_string())
        })
        .register("Worker", |ctx: OrchestrationContext, input: String| async move {
            Ok(ctx.schedule_activity("Echo", input).await?)
        })
        .build();
    let rt = start_runtime(&ts, basic_activities(), orchestrations).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("launcher", "Launcher", "job7").await.unwrap();
    assert_eq!(completed(&client, "launcher").await, "launched");
    assert_eq!(completed(&client, "worker-of-job7").await, "job7");
    let info = client.get_instance_info("worker-of-job7").await.unwrap().unwrap();
    assert_eq!(info.parent_instance, None);
    rt.shutdown(None).await;
});

on_both_stores!(continue_as_new_keeps_each_execution, |ts: TestStore| async move {
    let orchestrations = OrchestrationRegistry::builder()
        .register("Counter", |ctx: OrchestrationContext, input: String| async move {
            let n: u32 = input.parse().map_err(|e| format!("{e}"))?;
            let n = ctx
                .schedule_activity("Add1", n.to_string())
                .await?
                .parse::<u32>()
                .map_err(|e| e.to_string())?;
            if n < 3 {
                ctx.continue_as_new(n.to_string());
                return Ok(String::new());
            }
            Ok(format!("done at {n} in execution {}", ctx.execution_id()))
        })
        .build();
    let rt = start_runtime(&ts, basic_activities(), orchestrations).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("counter", "Counter", "0").await.unwrap();
    assert_eq!(completed(&client, "counter").await, "done at 3 in execution 3");
    let execs = client.list_executions("counter").await.unwrap();
    assert_eq!(execs.iter().map(|e| e.execution_id).collect::<Vec<_>>(), vec![1, 2, 3]);
    for e in &execs {
        let h = client.read_execution_history("counter", Some(e.execution_id)).await.unwrap();
        assert_clean_history(&h);
        let last = &h.last().unwrap().kind;
        if e.execution_id < 3 {
            assert!(matches!(last, EventKind::OrchestrationContinuedAsNew { .. }), "{last:?}");
        } else {
            assert!(matches!(last, EventKind::OrchestrationCompleted { .. }), "{last:?}");
        }
        match &h[0].kind {
            EventKind::OrchestrationStarted { input, .. } => {
                assert_eq!(input, &(e.execution_id - 1).to_string())
            }
            other => panic!("{other:?}"),
        }
    }
    let info = client.get_instance_info("counter").await.unwrap().unwrap();
    assert_eq!(info.execution_id, 3);
    rt.shutdown(None).await;
});

on_both_stores!(custom_status_is_visible_while_running, |ts: TestStore| async move {
    let orchestrations = OrchestrationRegistry::builder()
        .register("Status", |ctx: OrchestrationContext, _input: String| async move {
            ctx.set_custom_status("waiting for go");
            let go = ctx.schedule_wait("Go").await;
            ctx.set_custom_status(format!("got {go}"));
            Ok(ctx.custom_status().unwrap_or_default())
        })
        .build();
    let rt = start_runtime(&ts, basic_activities(), orchestrations).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("st", "Status", "").await.unwrap();
    let mut seen = None;
    for _ in 0..300 {
        if let OrchestrationStatus::Running { custom_status: Some(s) } =
            client.get_orchestration_status("st").await.unwrap()
        {
            seen = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.as_deref(), Some("waiting for go"));
    client.raise_event("st", "Go", "now").await.unwrap();
    assert_eq!(completed(&client, "st").await, "got now");
    assert_eq!(
        client.get_instance_info("st").await.unwrap().unwrap().custom_status.as_deref(),
        Some("got now")
    );
    rt.shutdown(None).await;
});

on_both_stores!(user_retry_loop_and_failures_are_visible, |ts: TestStore| async move {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let activities = ActivityRegistry::builder()
        .register("Flaky", move |_ctx: ActivityContext, _input: String| {
            let c = c.clone();
            async move {
                if c.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(ActivityError::new("transient"))
                } else {
                    Ok("ok".into())
                }
            }
        })
        .register("Panic", |_ctx: ActivityContext, _input: String| async move {
            if true {
                panic!("activity exploded");
            }
            Ok(String::new())
        })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("Retry", |ctx: OrchestrationContext, _input: String| async move {
            let mut last = None;
            for attempt in 1..=5 {
                match ctx.schedule_activity("Flaky", "").await {
                    Ok(v) => return Ok(format!("{v} after {attempt} attempts")),
                    Err(e) => last = Some(e),
                }
                ctx.schedule_timer(Duration::from_millis(10)).await;
            }
            Err(last.map(OrchestrationError::from).unwrap_or_else(|| "no attempts".into()))
        })
        .register("PanicParent", |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx.schedule_activity("Panic", "").await?)
        })
        .build();
    let rt = start_runtime(&ts, activities, orchestrations).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("retry", "Retry", "").await.unwrap();
    assert_eq!(completed(&client, "retry").await, "ok after 3 attempts");
    client.start_orchestration("panics", "PanicParent", "").await.unwrap();
    match wait(&client, "panics").await {
        OrchestrationStatus::Failed { details } => {
            assert_eq!(details.category, ErrorCategory::Application);
            assert!(details.message.contains("panicked: activity exploded"), "{}", details.message);
        }
        other => panic!("{other:?}"),
    }
    rt.shutdown(None).await;
});

on_both_stores!(bad_input_gets_typed_errors, |ts: TestStore| async move {
    let orchestrations = OrchestrationRegistry::builder()
        .register("Echo", |ctx: OrchestrationContext, input: String| async move {
            Ok(ctx.schedule_activity("Echo", input).await?)
        })
        .build();
    let rt = start_runtime(&ts, basic_activities(), orchestrations).await;
    let client = Client::new(ts.store.clone()).with_max_payload_bytes(1000);
    client.start_orchestration("dup", "Echo", "1").await.unwrap();
    assert_eq!(
        client.start_orchestration("dup", "Echo", "2").await,
        Err(ClientError::InstanceExists("dup".into()))
    );
    assert!(matches!(
        client.start_orchestration("big", "Echo", "x".repeat(2000)).await,
        Err(ClientError::PayloadTooLarge { size: 2000, limit: 1000, .. })
    ));
    assert!(matches!(
        client.start_orchestration("", "Echo", "1").await,
        Err(ClientError::InvalidArgument(_))
    ));
    assert!(matches!(
        client.start_orchestration_versioned("v", "Echo", "not-semver", "1").await,
        Err(ClientError::InvalidVersion(_))
    ));
    assert_eq!(
        client.get_orchestration_status("never-started").await.unwrap(),
        OrchestrationStatus::NotFound
    );
    assert!(matches!(
        client.wait_for_orchestration("never-started", Duration::from_millis(10)).await,
        Err(ClientError::NotFound(_))
    ));
    assert_eq!(completed(&client, "dup").await, "1");
    rt.shutdown(None).await;
});

on_both_stores!(unregistered_orchestration_stays_pending_with_a_reason, |ts: TestStore| async move {
    let rt = start_runtime(&ts, basic_activities(), OrchestrationRegistry::builder().build()).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("orphan", "NobodyHasThis", "").await.unwrap();
    let mut note = None;
    for _ in 0..300 {
        if let OrchestrationStatus::Pending { note: Some(n) } =
            client.get_orchestration_status("orphan").await.unwrap()
        {
            note = Some(n);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let note = note.expect("a note saying why");
    assert!(note.contains("'NobodyHasThis' is not registered"), "{note}");
    assert!(matches!(
        client.wait_for_orchestration("orphan", Duration::from_millis(300)).await,
        Err(ClientError::Timeout { .. })
    ));
    rt.shutdown(None).await;
    // A node that has it picks it up.
    let orchestrations = OrchestrationRegistry::builder()
        .register("NobodyHasThis", |_ctx: OrchestrationContext, _input: String| async move {
            Ok("found".to_string())
        })
        .build();
    let rt = start_runtime(&ts, basic_activities(), orchestrations).await;
    assert_eq!(completed(&client, "orphan").await, "found");
    rt.shutdown(None).await;
});

on_both_stores!(oversized_activity_output_fails_the_activity, |ts: TestStore| async move {
    let activities = ActivityRegistry::builder()
        .register("Big", |_ctx: ActivityContext, _input: String| async move { Ok("y".repeat(5000)) })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("Big", |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx.schedule_activity("Big", "").await?)
        })
        .build();
    let opts = RuntimeOptions { max_payload_bytes: 1000, ..ts.options.clone() };
    let rt = Runtime::start_with_options(ts.store.clone(), activities, orchestrations, opts).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("big", "Big", "").await.unwrap();
    match wait(&client, "big").await {
        OrchestrationStatus::Failed { details } => {
            assert!(details.message.contains("output of activity 'Big' is 5000 bytes"), "{}", details.message)
        }
        other => panic!("{other:?}"),
    }
    rt.shutdown(None).await;
});

/// The same workload with and without the instance cache writes the same histories
/// (event for event; timestamps and recorded guid/time values aside).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_and_uncached_runs_write_identical_histories() {
    async fn run(ts: TestStore) -> Vec<Vec<String>> {
        let orchestrations = OrchestrationRegistry::builder()
            .register("Mixed", |ctx: OrchestrationContext, input: String| async move {
                let a = ctx.schedule_activity("Add1", &input).await?;
                ctx.set_custom_status(format!("a={a}"));
                let fan = (0..5).map(|i| ctx.schedule_activity("Add1", i.to_string())).collect();
                let joined: Vec<String> = ctx.join(fan).await.into_iter().collect::<Result<_, _>>()?;
                let _guid = ctx.system_new_guid().await;
                let ev = ctx.schedule_wait("Go");
                let t = ctx.schedule_timer(Duration::from_secs(60));
                let go = match ctx.select2(ev, t).await {
                    Either2::First(d) => d,
                    Either2::Second(()) => "timeout".into(),
                };
                ctx.schedule_timer(Duration::from_millis(20)).await;
                let child = ctx.schedule_sub_orchestration("Child", a.as_str()).await?;
                Ok(format!("{a}/{}/{go}/{child}", joined.join(",")))
            })
            .register("Child", |ctx: OrchestrationContext, input: String| async move {
                Ok(ctx.schedule_activity("Add1", input).await?)
            })
            .build();
        let rt = start_runtime(&ts, basic_activities(), orchestrations).await;
        let client = Client::new(ts.store.clone());
        client.start_orchestration("mixed", "Mixed", "1").await.unwrap();
        for _ in 0..500 {
            let h = client.read_execution_history("mixed", None).await.unwrap();
            if h.iter().any(|e| matches!(e.kind, EventKind::ExternalSubscribed { .. })) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        client.raise_event("mixed", "Go", "go").await.unwrap();
        assert_eq!(completed(&client, "mixed").await, "2/1,2,3,4,5/go/3");
        rt.shutdown(None).await;
        let mut out = Vec::new();
        let child = client
            .list_instances()
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.starts_with("mixed::sub::"))
            .unwrap();
        for id in ["mixed".to_string(), child] {
            let h = client.read_execution_history(&id, None).await.unwrap();
            out.push(
                h.into_iter()
                    .map(|mut e| {
                        e.timestamp_ms = 0;
                        match &mut e.kind {
                            EventKind::SystemCall { value, .. } => *value = String::new(),
                            EventKind::TimerCreated { fire_at_ms, .. }
                            | EventKind::TimerFired { fire_at_ms, .. } => *fire_at_ms = 0,
                            _ => {}
                        }
                        // Activity completions of a join may land in different orders in
                        // different runs; compare the set of events by id and kind instead
                        // of requiring equal arrival order.
                        format!("{:?}", e.kind)
                    })
                    .collect(),
            );
        }
        out
    }
    let cached = run(common::memory_store().await).await;
    let uncached = run(common::uncached(common::memory_store().await)).await;
    let sorted = |v: &Vec<Vec<String>>| {
        v.iter()
            .map(|h| {
                let mut h = h.clone();
                h.sort();
                h
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        cached.iter().map(Vec::len).collect::<Vec<_>>(),
        uncached.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert_eq!(sorted(&cached), sorted(&uncached));
}
