//! The loop that samples the store's queue depths and instance counts into gauges every
//! `RuntimeOptions::queue_metrics_interval` (one `live_summary` call each time).
//!
//! The gauges themselves are named in `metrics`.

use super::Inner;
use super::metrics;
use super::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;

pub(super) async fn queue_metrics_loop(inner: Arc<Inner>, every: Duration, mut shutdown: Shutdown) {
    let every = every.max(Duration::from_millis(10));
    loop {
        // Live counts only: the cost of a sample follows live work, not finished instances.
        match inner.store.live_summary().await {
            Ok(summary) => metrics::store_summary(inner.store.kind(), &summary),
            Err(e) => tracing::debug!(error = %e, "sampling the store's queue depths failed"),
        }
        if !shutdown.sleep(every).await {
            return;
        }
    }
}
