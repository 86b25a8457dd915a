//! Moving instances between stores: `export` (JSON lines, read only), `import` (writes
//! into the store, creating it if needed) and `copy` (store to store). They replace the
//! former `duroxide-migrate` example program. Stop the runtimes on the source first.

use super::Context;
use crate::args::{CopyArgs, ExportArgs, ImportArgs};
use crate::error::{CliError, store_error};
use crate::output::{count, print, print_json};
use crate::store::{Access, StoreUrl};
use duroxide::transfer::{TransferError, TransferReport};
use serde::Serialize;
use std::io::Read;

/// `import --json` and `copy --json`.
#[derive(Serialize)]
struct Transferred {
    /// Instances written to the target.
    copied: Vec<String>,
    /// Instances skipped because the target already had their id.
    skipped_existing: Vec<String>,
}

fn transfer_error(e: TransferError) -> CliError {
    let mut err = store_error(e.source);
    err.message = format!("transfer stopped at instance '{}': {}", e.instance, err.message);
    err.hint = Some(
        "instances copied so far stay in the target; fix the cause and run the command again \
         (existing ids are skipped)"
            .into(),
    );
    err
}

fn report(ctx: &Context, r: TransferReport, verb: &str, target: &StoreUrl) -> Result<(), CliError> {
    if ctx.json {
        return print_json(&Transferred { copied: r.copied, skipped_existing: r.skipped_existing });
    }
    print(&format!(
        "{verb} {} into {}, skipped {} already there.\n",
        count(r.copied.len() as u64, "instance"),
        target.display(),
        r.skipped_existing.len()
    ))
}

/// `export`: every instance as one JSON line each.
pub async fn export(ctx: &Context, a: ExportArgs) -> Result<(), CliError> {
    let store = ctx.store_url()?.open(Access::Existing).await?;
    let lines = duroxide::transfer::export_json_lines(store.as_ref()).await.map_err(transfer_error)?;
    match a.output {
        Some(path) => {
            std::fs::write(&path, &lines).map_err(|e| {
                CliError::refused(format!("cannot write '{}': {e}", path.display()), "check the path")
            })?;
            let n = count(lines.lines().count() as u64, "instance");
            eprintln!("Exported {n} to {}.", path.display());
            Ok(())
        }
        None => print(&lines),
    }
}

/// `import`: instances from `export` into the store (created and migrated if needed).
pub async fn import(ctx: &Context, a: ImportArgs) -> Result<(), CliError> {
    let url = ctx.store_url()?;
    let input = match &a.input {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            CliError::refused(format!("cannot read '{}': {e}", path.display()), "check the path")
        })?,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| CliError::refused(format!("cannot read stdin: {e}"), ""))?;
            s
        }
    };
    let store = url.open(Access::CreateOrMigrate).await?;
    let r = duroxide::transfer::import_json_lines(store.as_ref(), &input).await.map_err(transfer_error)?;
    report(ctx, r, "Imported", url)
}

/// `copy`: every instance of --store into --to.
pub async fn copy(ctx: &Context, a: CopyArgs) -> Result<(), CliError> {
    let from = ctx.store_url()?.open(Access::Existing).await?;
    let to_url = StoreUrl::parse(&a.to, None)?;
    if to_url == *ctx.store_url()? {
        return Err(CliError::usage("--to names the same store as --store", "name another store to copy to"));
    }
    let to = to_url.open(Access::CreateOrMigrate).await?;
    let r = duroxide::transfer::copy_instances(from.as_ref(), to.as_ref()).await.map_err(transfer_error)?;
    report(ctx, r, "Copied", &to_url)
}
