//! The store summary: instances per state and the depth of both queues.

use super::{Builder, count_by_state};
use crate::provider::sql::ms;
use crate::provider::sql::rows::Columns;
use crate::provider::sql::tx::SqlTx;
use crate::provider::{
    InstanceFilter, InstanceState, ProviderError, QueueDepth, StateCount, StoreSummary, TagBacklog,
};

/// Instances per state and queue depths at `now`; with `live_only`, instance counts for
/// pending and running instances only (an index range, whatever the finished work kept).
pub(crate) async fn summary<T: SqlTx>(
    tx: &mut T,
    now: u64,
    live_only: bool,
) -> Result<StoreSummary, ProviderError> {
    let live = [InstanceState::Pending, InstanceState::Running];
    let all =
        [InstanceState::Pending, InstanceState::Running, InstanceState::Completed, InstanceState::Failed];
    let states: &[InstanceState] = if live_only { &live } else { &all };
    let by_state = if live_only {
        // The states as literals, not parameters, so a generic plan still knows how few rows
        // they select and reads the state index.
        let mut b = Builder::new(tx.dialect());
        b.push(
            "SELECT state, COUNT(*) AS n FROM instances WHERE state IN ('Pending', 'Running') GROUP BY state",
        );
        let mut counts = Vec::new();
        for r in tx.query(b.build()).await? {
            if let Some(state) = InstanceState::parse(&r.text("state")?) {
                counts.push(StateCount { state, count: r.int("n")? as u64 });
            }
        }
        counts
    } else {
        count_by_state(tx, &InstanceFilter::default()).await?
    };
    let instances = states
        .iter()
        .copied()
        .map(|state| StateCount {
            state,
            count: by_state.iter().find(|c| c.state == state).map_or(0, |c| c.count),
        })
        .collect();
    let d = tx.dialect();
    let mut b = Builder::new(d);
    let n = b.bind(ms(now));
    b.push(&format!(
        "SELECT \
           COALESCE(SUM(CASE WHEN visible_at <= {n} AND lock_token IS NULL THEN 1 ELSE 0 END), 0) AS ready, \
           COALESCE(SUM(CASE WHEN lock_token IS NOT NULL THEN 1 ELSE 0 END), 0) AS locked, \
           COALESCE(SUM(CASE WHEN visible_at > {n} AND lock_token IS NULL THEN 1 ELSE 0 END), 0) AS delayed, \
           MIN(CASE WHEN visible_at <= {n} AND lock_token IS NULL THEN visible_at END) AS oldest \
         FROM orchestrator_queue"
    ));
    let orchestrator_queue = depth(tx.query(b.build()).await?, now)?;
    let mut b = Builder::new(d);
    let n = b.bind(ms(now));
    let nc = d.not_cancelled;
    b.push(&format!(
        "SELECT \
           COALESCE(SUM(CASE WHEN visible_at <= {n} AND (lock_token IS NULL OR locked_until <= {n}) THEN 1 ELSE 0 END), 0) AS ready, \
           COALESCE(SUM(CASE WHEN lock_token IS NOT NULL AND locked_until > {n} THEN 1 ELSE 0 END), 0) AS locked, \
           COALESCE(SUM(CASE WHEN visible_at > {n} AND (lock_token IS NULL OR locked_until <= {n}) THEN 1 ELSE 0 END), 0) AS delayed, \
           MIN(CASE WHEN visible_at <= {n} AND (lock_token IS NULL OR locked_until <= {n}) THEN visible_at END) AS oldest \
         FROM worker_queue WHERE {nc}"
    ));
    let activity_queue = depth(tx.query(b.build()).await?, now)?;
    let activity_tags = tag_backlog(tx, now).await?;
    let mut b = Builder::new(d);
    let n = b.bind(ms(now));
    b.push(&format!("SELECT COUNT(*) AS n FROM sessions WHERE locked_until > {n}"));
    let sessions = tx.query(b.build()).await?.first().map(|r| r.int("n")).transpose()?.unwrap_or(0) as u64;
    Ok(StoreSummary {
        taken_at_ms: now,
        instances,
        orchestrator_queue,
        activity_queue,
        sessions,
        activity_tags,
    })
}

/// Activities waiting for a worker per tag (read along the `(tag, visible_at, id)` index),
/// untagged first, then by tag.
async fn tag_backlog<T: SqlTx>(tx: &mut T, now: u64) -> Result<Vec<TagBacklog>, ProviderError> {
    let d = tx.dialect();
    let mut b = Builder::new(d);
    let n = b.bind(ms(now));
    b.push(&format!(
        "SELECT tag, COUNT(*) AS waiting, MIN(visible_at) AS oldest FROM worker_queue \
         WHERE {} AND (lock_token IS NULL OR locked_until <= {n}) GROUP BY tag",
        d.not_cancelled
    ));
    let mut backlog = Vec::new();
    for r in tx.query(b.build()).await? {
        backlog.push(TagBacklog {
            tag: r.opt_text("tag")?,
            waiting: r.int("waiting")? as u64,
            oldest_visible_at_ms: r.int("oldest")? as u64,
            served_by: 0,
        });
    }
    backlog.sort_by(|a, b| (a.tag.is_some(), &a.tag).cmp(&(b.tag.is_some(), &b.tag)));
    Ok(backlog)
}

fn depth(rows: Vec<impl Columns>, now: u64) -> Result<QueueDepth, ProviderError> {
    let Some(r) = rows.first() else { return Ok(QueueDepth::default()) };
    let oldest = r.opt_int("oldest")?;
    Ok(QueueDepth {
        ready: r.int("ready")? as u64,
        locked: r.int("locked")? as u64,
        delayed: r.int("delayed")? as u64,
        oldest_ready_age_ms: oldest.map(|t| now.saturating_sub(t as u64)),
    })
}
