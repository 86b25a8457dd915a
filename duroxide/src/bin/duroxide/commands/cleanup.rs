//! Commands that remove data: `delete` (one instance, or finished instances by filter)
//! and `prune` (old executions of continue-as-new instances). Both show what they will
//! remove and ask for confirmation; `delete --dry-run` stops after showing it.

use super::Context;
use super::inspect::instance_table;
use crate::args::{DeleteArgs, PruneArgs};
use crate::confirm::confirm;
use crate::error::CliError;
use crate::output::{count as n_of, print, print_json};
use crate::time::format_ms;
use duroxide::provider::{InstanceFilter, InstanceRecord, InstanceState, ListOrder, PruneOptions};
use duroxide::{BulkDelete, Client, ClientError};
use serde::Serialize;

/// How many instances a bulk preview lists.
const PREVIEW: u32 = 20;

/// `delete --json` (without `--dry-run`): the ids removed (one instance) or how many.
#[derive(Serialize)]
#[serde(untagged)]
enum Deleted {
    Ids { deleted: Vec<String> },
    Count { deleted: u64 },
}

/// `delete --dry-run --json`.
#[derive(Serialize)]
struct DryRun {
    dry_run: bool,
    /// Instances the delete would select (a bulk delete: finished roots; their
    /// sub-orchestrations go with them).
    would_delete: u64,
    /// The first of them (all of them for one instance).
    instances: Vec<InstanceRecord>,
}

/// `delete`.
pub async fn delete(ctx: &Context, a: DeleteArgs) -> Result<(), CliError> {
    let client = ctx.client().await?;
    match a.id.clone() {
        Some(id) => delete_one(ctx, &client, &id, &a).await,
        None => delete_bulk(ctx, &client, &a).await,
    }
}

async fn delete_one(ctx: &Context, client: &Client, id: &str, a: &DeleteArgs) -> Result<(), CliError> {
    let d = client.describe_instance(id).await?;
    // Refuse before asking; the store checks again (and deeper sub-orchestrations) when
    // deleting.
    if !a.force {
        let unfinished = std::iter::once((&d.record.instance, d.record.state))
            .chain(d.children.iter().map(|c| (&c.instance, c.state)))
            .find(|(_, s)| !s.is_terminal());
        if let Some((unfinished, _)) = unfinished {
            return Err(ClientError::InstanceRunning(unfinished.clone()).into());
        }
    }
    let children = d.children.len();
    if a.dry_run {
        let mut instances = vec![d.record.clone()];
        for c in &d.children {
            if let Some(r) = client.get_instance_info(&c.instance).await? {
                instances.push(r);
            }
        }
        if ctx.json {
            return print_json(&DryRun { dry_run: true, would_delete: instances.len() as u64, instances });
        }
        return print(&format!(
            "Would delete {} (nothing was deleted):\n{}",
            n_of(instances.len() as u64, "instance"),
            instance_table(&instances).render()
        ));
    }
    let question = match (children, d.record.state.is_terminal()) {
        (0, true) => format!("Delete instance '{id}' and its history?"),
        (n, true) => {
            let children = n_of(n as u64, "sub-orchestration");
            format!("Delete instance '{id}' and its {children}, with their histories?")
        }
        (_, false) => format!(
            "Instance '{id}' has not finished. Delete it as it stands, with its sub-orchestrations \
             (a node running it loses it)?"
        ),
    };
    confirm(&question, a.yes)?;
    let deleted = client.delete_instance(id, a.force).await?;
    if ctx.json {
        return print_json(&Deleted::Ids { deleted });
    }
    let mut text = format!("Deleted {}:\n", n_of(deleted.len() as u64, "instance"));
    for id in &deleted {
        text.push_str(&format!("  {id}\n"));
    }
    print(&text)
}

async fn delete_bulk(ctx: &Context, client: &Client, a: &DeleteArgs) -> Result<(), CliError> {
    let mut what = if a.all { BulkDelete::all() } else { BulkDelete::matching(a.filter.to_filter()) };
    if let Some(n) = a.limit {
        what = what.limit(n);
    }
    let count = client.count_deletable(&what).await?;
    let first = preview(client, &what, count).await?;
    if a.dry_run {
        if ctx.json {
            return print_json(&DryRun { dry_run: true, would_delete: count, instances: first });
        }
        return print(&format!("{}(dry run: nothing was deleted)\n", preview_text(count, &first)));
    }
    if count == 0 {
        if ctx.json {
            return print_json(&Deleted::Count { deleted: 0 });
        }
        return print("No finished instance matches: nothing to delete.\n");
    }
    // The preview goes to stderr with the question, so stdout carries only the result.
    eprint!("{}", preview_text(count, &first));
    confirm(&format!("Delete {}?", n_of(count, "instance")), a.yes)?;
    let deleted = client.delete_instances(&what).await?;
    if ctx.json {
        return print_json(&Deleted::Count { deleted });
    }
    print(&format!("Deleted {} (sub-orchestrations included).\n", n_of(deleted, "instance")))
}

/// The first instances a bulk delete selects (it removes finished instances only).
async fn preview(client: &Client, what: &BulkDelete, count: u64) -> Result<Vec<InstanceRecord>, CliError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut filter: InstanceFilter = what.filter.clone();
    if filter.states.is_empty() {
        filter = filter.state(InstanceState::Completed).state(InstanceState::Failed);
    }
    let n = count.min(u64::from(PREVIEW)) as u32;
    Ok(client.list_instances_page(&filter, ListOrder::OldestFirst, n, None).await?.instances)
}

fn preview_text(count: u64, first: &[InstanceRecord]) -> String {
    if count == 0 {
        return "No finished instance matches: nothing would be deleted.\n".into();
    }
    let mut text = format!(
        "{} selected (their sub-orchestrations are deleted with them):\n{}",
        n_of(count, "finished instance"),
        instance_table(first).render()
    );
    if count > first.len() as u64 {
        text.push_str(&format!("... and {} more\n", count - first.len() as u64));
    }
    text
}

/// `prune --json`.
#[derive(Serialize)]
struct Pruned {
    /// Executions removed (with `--dry-run`: that would be removed).
    pruned: u64,
    /// True for `--dry-run`: nothing was removed.
    dry_run: bool,
}

/// `prune`.
pub async fn prune(ctx: &Context, a: PruneArgs) -> Result<(), CliError> {
    let options = PruneOptions { keep_last: a.rule.keep_last, finished_before_ms: a.rule.finished_before };
    let rule = match (options.keep_last, options.finished_before_ms) {
        (Some(n), Some(t)) => {
            format!("keeping the last {n}, and only those finished before {}", format_ms(t))
        }
        (Some(n), None) => format!("keeping the last {n}"),
        (None, Some(t)) => format!("those finished before {}", format_ms(t)),
        (None, None) => String::new(),
    };
    let client = ctx.client().await?;
    let pruned = match &a.id {
        Some(id) => {
            let executions = client.list_executions(id).await?;
            if executions.is_empty() && client.get_instance_info(id).await?.is_none() {
                return Err(ClientError::NotFound(id.clone()).into());
            }
            if a.dry_run {
                return report_pruned(ctx, client.count_prunable(id, &options).await?, true);
            }
            confirm(
                &format!(
                    "Remove old executions of instance '{id}' ({} stored; {rule}; the current one is kept)?",
                    n_of(executions.len() as u64, "execution")
                ),
                a.yes,
            )?;
            client.prune_executions(id, &options).await?
        }
        None => {
            let filter = a.filter.to_filter();
            if filter.is_empty() && !a.all {
                return Err(CliError::usage(
                    "prune needs an instance id, filters, or --all",
                    "name one instance (`duroxide prune ID --keep-last 3`), select instances with \
                     --name, --state, --prefix, ..., or pass --all",
                ));
            }
            if a.dry_run {
                return report_pruned(ctx, client.count_prunable_where(&filter, &options).await?, true);
            }
            let n = client.count_instances(&filter).await?;
            confirm(
                &format!(
                    "Remove old executions of {} ({rule}; current executions are kept)?",
                    n_of(n, "instance")
                ),
                a.yes,
            )?;
            client.prune_executions_where(&filter, &options).await?
        }
    };
    report_pruned(ctx, pruned, false)
}

fn report_pruned(ctx: &Context, pruned: u64, dry_run: bool) -> Result<(), CliError> {
    if ctx.json {
        return print_json(&Pruned { pruned, dry_run });
    }
    if dry_run {
        return print(&format!("Would remove {} (dry run: nothing removed).\n", n_of(pruned, "execution")));
    }
    print(&format!("Removed {}.\n", n_of(pruned, "execution")))
}
