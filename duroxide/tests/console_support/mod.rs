//! What the console tests share: orchestrations that leave instances in every state the
//! console shows (completed in two versions, failed by an activity, waiting for an event
//! with a timer, a parent waiting on a child, one no node can start), and a helper that
//! starts them and waits until each is where the tests expect it.
#![allow(dead_code)] // each test binary uses a different subset

use duroxide::Either2;
use duroxide::prelude::*;
use duroxide::provider::InstanceState;
use std::time::Duration;

pub fn activities() -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Hello", |_ctx: ActivityContext, name: String| async move { Ok(format!("Hello, {name}!")) })
        .register(
            "Prepare",
            |_ctx: ActivityContext, order: String| async move { Ok(format!("prepared {order}")) },
        )
        .register(
            "Ship",
            |_ctx: ActivityContext, order: String| async move { Ok(format!("shipped {order}")) },
        )
        .register("Explode", |_ctx: ActivityContext, _input: String| async move {
            Err::<String, _>(ActivityError::from("the warehouse is on fire"))
        })
        .build()
}

pub fn orchestrations() -> OrchestrationRegistry {
    let greet = |ctx: OrchestrationContext, name: String| async move {
        Ok(ctx.schedule_activity("Hello", name).await?)
    };
    OrchestrationRegistry::builder()
        .register_versioned("Greet", "1.0.0", greet)
        .register_versioned("Greet", "2.0.0", greet)
        .register("Fail", |ctx: OrchestrationContext, input: String| async move {
            Ok(ctx.schedule_activity("Explode", input).await?)
        })
        .register("Approval", |ctx: OrchestrationContext, order: String| async move {
            ctx.schedule_activity("Prepare", order.clone()).await?;
            ctx.set_custom_status("waiting for approval");
            ctx.set_value("order", &order)?;
            ctx.set_value("<stage>", "review & sign")?;
            let decision = ctx.schedule_wait("Approve");
            let deadline = ctx.schedule_timer(Duration::from_secs(3600));
            match ctx.select2(decision, deadline).await {
                Either2::First(data) => {
                    ctx.set_custom_status(format!("approved: {data}"));
                    Ok(ctx.schedule_activity("Ship", order).await?)
                }
                Either2::Second(()) => Ok("expired".to_string()),
            }
        })
        .register("Holder", |ctx: OrchestrationContext, order: String| async move {
            let child = format!("{}-child", ctx.instance_id());
            Ok(ctx.schedule_sub_orchestration_with_id("Approval", child, order).await?)
        })
        .build()
}

/// Every instance [`populate`] leaves, with its state.
pub const INSTANCES: &[(&str, InstanceState)] = &[
    ("done-1", InstanceState::Completed),
    ("done-2", InstanceState::Completed),
    ("failed-1", InstanceState::Failed),
    ("waiting-1", InstanceState::Running),
    ("waiting-2", InstanceState::Running),
    ("holder-1", InstanceState::Running),
    ("holder-1-child", InstanceState::Running),
    ("pending-1", InstanceState::Pending),
];

/// Starts the instances of [`INSTANCES`] on a store a runtime with [`activities`] and
/// [`orchestrations`] serves, and waits until each is in its state.
pub async fn populate(client: &Client) {
    client.start_orchestration_versioned("done-1", "Greet", "1.0.0", "Ada").await.unwrap();
    client.start_orchestration("done-2", "Greet", "Grace").await.unwrap();
    client.start_orchestration("failed-1", "Fail", "crate-7").await.unwrap();
    client.start_orchestration("waiting-1", "Approval", "order-1").await.unwrap();
    client.start_orchestration("waiting-2", "Approval", "order-2").await.unwrap();
    client.start_orchestration("holder-1", "Holder", "order-3").await.unwrap();
    // No node has it registered: it stays pending, with no version pinned.
    client.start_orchestration("pending-1", "Unregistered", "").await.unwrap();
    for id in ["done-1", "done-2", "failed-1"] {
        let status = client.wait_for_orchestration(id, Duration::from_secs(20)).await.unwrap();
        assert!(status.is_terminal(), "{id}: {status:?}");
    }
    for id in ["waiting-1", "waiting-2", "holder-1-child"] {
        wait_until(client, id, |d| !d.pending_timers.is_empty()).await;
    }
    wait_until(client, "holder-1", |d| !d.children.is_empty()).await;
    for (id, state) in INSTANCES {
        let record = client.get_instance_info(id).await.unwrap().unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(record.state, *state, "{id}");
    }
}

/// Waits until `id`'s description satisfies `done`.
pub async fn wait_until(
    client: &Client,
    id: &str,
    done: impl Fn(&duroxide::provider::InstanceDescription) -> bool,
) {
    for _ in 0..2_000 {
        if let Ok(d) = client.describe_instance(id).await
            && done(&d)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} never got where the test waits for it");
}
