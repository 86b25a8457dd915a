//! Which runtimes are running and what they serve: [`Client::workers`] reads the presence
//! records runtimes keep in the store and judges each live or gone by its own heartbeat;
//! [`Client::store_summary`] and [`Client::describe_instance`] use the same judgement to
//! say how many live workers serve each tag with waiting work. Not here: writing the
//! records (`runtime::presence`) and keeping them (the stores).

use super::{Client, ClientError};
use crate::provider::{InstanceDescription, StoreSummary, WorkerRecord};
use serde::{Deserialize, Serialize};

/// A runtime's presence record as read at one moment (see [`Client::workers`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerPresence {
    /// The record as the runtime last wrote it.
    #[serde(flatten)]
    pub record: WorkerRecord,
    /// Whether the runtime refreshed the record within its last three heartbeats
    /// ([`WorkerRecord::is_live`]); a gone runtime crashed, hangs, or cannot reach the
    /// store.
    pub live: bool,
    /// How long ago it last refreshed the record, in ms.
    pub last_seen_ago_ms: u64,
}

impl WorkerPresence {
    fn at(record: WorkerRecord, now_ms: u64) -> Self {
        WorkerPresence {
            live: record.is_live(now_ms),
            last_seen_ago_ms: now_ms.saturating_sub(record.last_seen_ms),
            record,
        }
    }
}

/// How many of `live` serve `tag` (`None`: untagged).
fn serving(live: &[WorkerRecord], tag: Option<&str>) -> u32 {
    u32::try_from(live.iter().filter(|w| w.serves(tag)).count()).unwrap_or(u32::MAX)
}

impl Client {
    /// The runtimes using this store, by worker id: the live ones, and with
    /// `include_gone` also those whose record was not refreshed for three heartbeats
    /// (kept for an hour after that, or until a graceful shutdown removed them).
    ///
    /// ```no_run
    /// # async fn demo(client: duroxide::Client) -> Result<(), duroxide::ClientError> {
    /// for w in client.workers(false).await? {
    ///     println!("{} serves {} ({} slots)", w.record.worker_id, w.record.tags.describe(), w.record.activity_slots);
    /// }
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "workers"))]
    pub async fn workers(&self, include_gone: bool) -> Result<Vec<WorkerPresence>, ClientError> {
        let now = crate::now_ms();
        Ok(self
            .calls
            .list_workers()
            .await?
            .into_iter()
            .map(|r| WorkerPresence::at(r, now))
            .filter(|w| include_gone || w.live)
            .collect())
    }

    /// The records of the runtimes live at `now_ms`.
    async fn live_workers(&self, now_ms: u64) -> Result<Vec<WorkerRecord>, ClientError> {
        Ok(self.calls.list_workers().await?.into_iter().filter(|r| r.is_live(now_ms)).collect())
    }

    /// Fills [`TagBacklog::served_by`](crate::provider::TagBacklog::served_by) of every
    /// tag with waiting work.
    pub(super) async fn add_served_by(&self, summary: &mut StoreSummary) -> Result<(), ClientError> {
        if summary.activity_tags.is_empty() {
            return Ok(());
        }
        let live = self.live_workers(crate::now_ms()).await?;
        for t in &mut summary.activity_tags {
            t.served_by = serving(&live, t.tag.as_deref());
        }
        Ok(())
    }

    /// Fills [`PendingActivity::served`](crate::provider::PendingActivity::served) of
    /// every pending activity.
    pub(super) async fn add_served(&self, d: &mut InstanceDescription) -> Result<(), ClientError> {
        if d.pending_activities.is_empty() {
            return Ok(());
        }
        let live = self.live_workers(crate::now_ms()).await?;
        for a in &mut d.pending_activities {
            a.served = Some(serving(&live, a.tag.as_deref()) > 0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::TagFilter;

    fn node(id: &str, tags: TagFilter, slots: u32) -> WorkerRecord {
        WorkerRecord {
            worker_id: id.into(),
            tags,
            activity_slots: slots,
            orchestration_slots: 2,
            duroxide_version: "0.0.0".into(),
            started_at_ms: 0,
            last_seen_ms: 1_000,
            heartbeat_ms: 100,
        }
    }

    #[test]
    fn a_tag_is_served_by_nodes_whose_filter_admits_it_and_that_have_slots() {
        let live = [
            node("general", TagFilter::Untagged, 4),
            node("gpu", TagFilter::tags(["gpu"]), 1),
            node("both", TagFilter::untagged_and(["gpu"]), 2),
            node("orchestrator", TagFilter::None, 0),
            node("no-slots", TagFilter::Any, 0),
        ];
        assert_eq!(serving(&live, None), 2);
        assert_eq!(serving(&live, Some("gpu")), 2);
        assert_eq!(serving(&live, Some("video")), 0);
    }

    #[test]
    fn presence_says_how_long_ago_and_whether_live() {
        let w = WorkerPresence::at(node("n", TagFilter::Any, 1), 1_250);
        assert!(w.live);
        assert_eq!(w.last_seen_ago_ms, 250);
        assert!(!WorkerPresence::at(node("n", TagFilter::Any, 1), 1_300).live);
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["worker_id"], "n");
        assert_eq!(json["tags"]["kind"], "any");
        assert_eq!(json["live"], true);
    }
}
