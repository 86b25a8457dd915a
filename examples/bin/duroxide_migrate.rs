//! `duroxide-migrate`: copies every instance (all executions' histories, status, pinned
//! versions, pending events, timers and activity work) from one store to another.
//!
//! ```sh
//! cargo run -p duroxide-examples --bin duroxide-migrate -- sqlite:./old.db sqlite:./new.db
//! cargo run -p duroxide-examples --bin duroxide-migrate -- sqlite:./old.db postgres://user@host/db
//! cargo run -p duroxide-examples --bin duroxide-migrate -- --export sqlite:./old.db > instances.jsonl
//! cargo run -p duroxide-examples --bin duroxide-migrate -- --import sqlite:./new.db < instances.jsonl
//! ```
//!
//! Stop the runtimes on the source store first. Instances already present in the target
//! are skipped, so an interrupted copy can be run again.

use duroxide::{PostgresProvider, Provider, SqliteProvider};
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

async fn open(url: &str) -> Result<Arc<dyn Provider>, String> {
    if url.starts_with("sqlite:") {
        let store = SqliteProvider::new(url, None).await.map_err(|e| format!("{url}: {e}"))?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let store = PostgresProvider::new(url, None).await.map_err(|e| format!("{url}: {e}"))?;
        return Ok(Arc::new(store));
    }
    Err(format!("unsupported store URL '{url}' (expected sqlite:... or postgres://...)"))
}

async fn run(args: Vec<String>) -> Result<String, String> {
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["--export", url] => {
            let lines = duroxide::transfer::export_json_lines(open(url).await?.as_ref())
                .await
                .map_err(|e| e.to_string())?;
            std::io::stdout().write_all(lines.as_bytes()).map_err(|e| e.to_string())?;
            Ok(String::new())
        }
        ["--import", url] => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).map_err(|e| e.to_string())?;
            let report = duroxide::transfer::import_json_lines(open(url).await?.as_ref(), &input)
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "imported {}, skipped {} existing",
                report.copied.len(),
                report.skipped_existing.len()
            ))
        }
        [from, to] if !from.starts_with("--") => {
            let (from, to) = (open(from).await?, open(to).await?);
            let report = duroxide::transfer::copy_instances(from.as_ref(), to.as_ref())
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!("copied {}, skipped {} existing", report.copied.len(), report.skipped_existing.len()))
        }
        _ => Err("usage: duroxide-migrate FROM_URL TO_URL | --export URL | --import URL".into()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(msg) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("duroxide-migrate: {e}");
            ExitCode::FAILURE
        }
    }
}
