//! Deletes and pruning: the instance tree (an instance and its sub-orchestrations), one
//! tree removed, a bounded batch of a bulk delete, and old executions pruned.

use super::{Builder, order_sql};
use crate::provider::sql::ms;
use crate::provider::sql::rows::{Columns, execution_from_row};
use crate::provider::sql::tx::{Dialect, SqlTx};
use crate::provider::{
    DeleteBatch, InstanceCursor, InstanceFilter, InstanceState, ListOrder, ProviderError, PruneOptions,
};
use std::collections::BTreeSet;

/// A member of an instance tree: its id and state.
pub(super) struct Member {
    pub(super) instance: String,
    pub(super) state: InstanceState,
}

/// `root` and its sub-orchestrations, recursively, root first (empty when `root` does not
/// exist). Where the dialect says so, the rows are locked until the transaction ends.
pub(super) async fn tree<T: SqlTx>(tx: &mut T, root: &str) -> Result<Vec<Member>, ProviderError> {
    let d = tx.dialect();
    let p1 = d.param(1);
    let sql = format!(
        "WITH RECURSIVE tree(instance_id, depth) AS (\
           SELECT instance_id, 0 FROM instances WHERE instance_id = {p1} \
           UNION SELECT c.instance_id, t.depth + 1 FROM instances c JOIN tree t ON c.parent_instance = t.instance_id \
           WHERE t.depth < 1000) \
         SELECT i.instance_id AS instance_id, i.state AS state FROM instances i JOIN tree t ON i.instance_id = t.instance_id \
         ORDER BY t.depth, i.instance_id{}",
        lock_suffix(d)
    );
    let rows = tx.rows(sql, root).await?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let instance = r.text("instance_id")?;
        if !seen.insert(instance.clone()) {
            continue;
        }
        let state = r.text("state")?;
        // An unreadable state counts as unfinished: it is never removed unforced.
        let state = InstanceState::parse(&state).unwrap_or(InstanceState::Running);
        out.push(Member { instance, state });
    }
    Ok(out)
}

/// `FOR UPDATE OF i` where rows are locked (PostgreSQL cannot lock the rows of a recursive
/// CTE, only those of the joined table).
fn lock_suffix(d: &Dialect) -> String {
    if d.for_update.is_empty() { String::new() } else { format!("{} OF i", d.for_update) }
}

/// Removes everything stored about `ids`, instance rows first (so no history trigger
/// touches a row that is about to go).
async fn remove<T: SqlTx>(tx: &mut T, ids: &[String]) -> Result<(), ProviderError> {
    for table in
        ["instances", "history", "executions", "orchestrator_queue", "worker_queue", "instance_values"]
    {
        for chunk in ids.chunks(500) {
            let mut b = Builder::new(tx.dialect());
            let ps: Vec<String> = chunk.iter().map(|id| b.bind(id)).collect();
            b.push(&format!("DELETE FROM {table} WHERE instance_id IN ({})", ps.join(", ")));
            tx.execute(b.build()).await?;
        }
    }
    Ok(())
}

/// Deletes `instance` and its sub-orchestrations; the ids removed, root first.
pub(crate) async fn delete_tree<T: SqlTx>(
    tx: &mut T,
    instance: &str,
    force: bool,
) -> Result<Vec<String>, ProviderError> {
    let members = tree(tx, instance).await?;
    if members.is_empty() {
        return Err(ProviderError::InstanceNotFound(instance.to_string()));
    }
    if !force && let Some(m) = members.iter().find(|m| !m.state.is_terminal()) {
        return Err(ProviderError::InstanceRunning(m.instance.clone()));
    }
    let ids: Vec<String> = members.into_iter().map(|m| m.instance).collect();
    remove(tx, &ids).await?;
    Ok(ids)
}

/// One batch of a bulk delete: the finished instances `filter` selects after `after`
/// (oldest first, at most `max`), each with its sub-orchestrations; one whose tree has an
/// unfinished member is skipped.
pub(crate) async fn delete_batch<T: SqlTx>(
    tx: &mut T,
    filter: &InstanceFilter,
    after: Option<&InstanceCursor>,
    max: u32,
) -> Result<DeleteBatch, ProviderError> {
    let max = max.max(1);
    let mut b = Builder::new(tx.dialect());
    b.push("SELECT i.instance_id AS instance_id, i.created_at AS created_at FROM instances i");
    b.filter(&crate::client::finished_only(filter));
    b.push(" AND i.state IN ('Completed', 'Failed')");
    b.after(ListOrder::OldestFirst, after);
    b.push(order_sql(ListOrder::OldestFirst));
    let l = b.bind(i64::from(max));
    b.push(&format!(" LIMIT {l}"));
    let candidates = tx.query(b.build()).await?;
    let mut removed: BTreeSet<String> = BTreeSet::new();
    let mut skipped = 0;
    let mut last = None;
    for r in &candidates {
        let id = r.text("instance_id")?;
        last = Some(InstanceCursor {
            order: ListOrder::OldestFirst,
            created_at_ms: r.int("created_at")? as u64,
            instance: id.clone(),
        });
        if removed.contains(&id) {
            continue;
        }
        let members = tree(tx, &id).await?;
        if members.is_empty() {
            continue;
        }
        if members.iter().any(|m| !m.state.is_terminal()) {
            skipped += 1;
            continue;
        }
        removed.extend(members.into_iter().map(|m| m.instance));
    }
    // One set of statements for the whole batch.
    remove(tx, &removed.iter().cloned().collect::<Vec<_>>()).await?;
    let next = if candidates.len() == max as usize { last } else { None };
    Ok(DeleteBatch { deleted: removed.len() as u64, skipped, next })
}

/// Removes old executions of `instance` as `options` says; how many.
pub(crate) async fn prune<T: SqlTx>(
    tx: &mut T,
    instance: &str,
    options: &PruneOptions,
) -> Result<u64, ProviderError> {
    let record =
        tx.record(instance).await?.ok_or_else(|| ProviderError::InstanceNotFound(instance.to_string()))?;
    let d = tx.dialect();
    let sql = format!(
        "SELECT execution_id, version, state, started_at, updated_at FROM executions WHERE instance_id = {}",
        d.param(1)
    );
    let executions = tx
        .rows(sql, instance)
        .await?
        .iter()
        .map(|r| execution_from_row(r, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let doomed = options.select(&executions, record.execution_id);
    for chunk in doomed.chunks(500) {
        for table in ["history", "executions"] {
            let mut b = Builder::new(d);
            let i = b.bind(instance);
            let ps: Vec<String> = chunk.iter().map(|e| b.bind(ms(*e))).collect();
            b.push(&format!(
                "DELETE FROM {table} WHERE instance_id = {i} AND execution_id IN ({})",
                ps.join(", ")
            ));
            tx.execute(b.build()).await?;
        }
    }
    Ok(doomed.len() as u64)
}
