//! Shared code of the examples: the versioned order orchestration that
//! `examples/versioning.rs` deploys, and whose recorded histories
//! (`duroxide/tests/histories/process_order/`) CI replays against the current code.

pub mod orders {
    //! `ProcessOrder` 1.0.0 and 2.0.0 and their activities.
    use duroxide::prelude::*;

    /// Activities used by both versions.
    pub fn activities() -> ActivityRegistry {
        ActivityRegistry::builder()
            .register("Reserve", |_ctx: ActivityContext, order: String| async move {
                Ok(format!("reserved[{order}]"))
            })
            .register("Validate", |_ctx: ActivityContext, order: String| async move {
                if order.is_empty() {
                    return Err(ActivityError::non_retryable("empty order"));
                }
                Ok(order)
            })
            .register("Charge", |_ctx: ActivityContext, reservation: String| async move {
                Ok(format!("charged[{reservation}]"))
            })
            .build()
    }

    /// Version 1.0.0: reserve, wait for payment confirmation, charge.
    pub async fn process_order_v1(
        ctx: OrchestrationContext,
        order: String,
    ) -> Result<String, OrchestrationError> {
        let reservation = ctx.schedule_activity("Reserve", &order).await?;
        let payment = ctx.schedule_wait("PaymentConfirmed").await;
        let charged = ctx.schedule_activity("Charge", format!("{reservation}/{payment}")).await?;
        Ok(charged)
    }

    /// Version 2.0.0: adds validation before reserving, and a confirmation deadline.
    pub async fn process_order_v2(
        ctx: OrchestrationContext,
        order: String,
    ) -> Result<String, OrchestrationError> {
        let valid = ctx.schedule_activity("Validate", &order).await?;
        let reservation = ctx.schedule_activity("Reserve", valid).await?;
        let payment = ctx.schedule_wait("PaymentConfirmed");
        let deadline = ctx.schedule_timer(std::time::Duration::from_secs(3600));
        let payment = match ctx.select2(payment, deadline).await {
            duroxide::Either2::First(p) => p,
            duroxide::Either2::Second(()) => return Err("payment not confirmed within an hour".into()),
        };
        let charged = ctx.schedule_activity("Charge", format!("{reservation}/{payment}")).await?;
        Ok(charged)
    }

    /// Registry with only 1.0.0 (the first deploy).
    pub fn v1_registry() -> OrchestrationRegistry {
        OrchestrationRegistry::builder().register_versioned("ProcessOrder", "1.0.0", process_order_v1).build()
    }

    /// Registry with both versions; new instances get the latest.
    pub fn v1_v2_registry() -> OrchestrationRegistry {
        OrchestrationRegistry::builder()
            .register_versioned("ProcessOrder", "1.0.0", process_order_v1)
            .register_versioned("ProcessOrder", "2.0.0", process_order_v2)
            .with_version_policy(VersionPolicy::Latest)
            .build()
    }
}
