//! `duroxide`: the command-line tool for operating duroxide stores (feature `cli`).
//!
//! It talks to a store by URL (`--store sqlite:./app.db`, `--store postgres://...`, or
//! `DUROXIDE_STORE`) through [`duroxide::Client`]'s management calls, needs no running
//! runtime, and writes only where a command says it does: read commands open the store
//! with `existing_only`, so a wrong path is reported instead of creating an empty store.
//!
//! Layout: `args` (the command line, as clap types), `store` (store URLs and opening),
//! `commands/` (one file per command group: `inspect` list/show/history, `control`
//! raise/cancel/terminate, `cleanup` delete/prune, `report` versions/stats/workers, `transfer`
//! export/import/copy, `console` the web console's standalone server), `output` (tables, JSON, time formatting), `time` (parsing
//! `--updated-before 7d`), `confirm` (the y/N prompt and `--yes`), `error` (exit statuses
//! and the hints printed on stderr).
//!
//! Exit status: 0 ok; 1 not found or refused (an unfinished instance without `--force`, a
//! finished one, a declined confirmation, no `--yes` without a terminal, a store that
//! cannot be opened); 2 usage errors.

#![forbid(unsafe_code)]

mod args;
mod commands;
mod confirm;
mod error;
mod output;
mod store;
mod time;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Usage errors exit with 2 here (clap's convention), --help and --version with 0.
    let cli = args::Cli::parse_args();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(error::EXIT_REFUSED);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.print();
            ExitCode::from(e.exit)
        }
    }
}
