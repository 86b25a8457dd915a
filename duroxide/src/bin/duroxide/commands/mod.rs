//! One file per command group; this file dispatches and holds what every command needs
//! (the store, the output mode).

mod cleanup;
mod console;
mod control;
mod inspect;
mod report;
mod transfer;

use crate::args::{Cli, Command, GlobalArgs};
use crate::error::CliError;
use crate::store::{Access, StoreUrl, no_store};
use duroxide::Client;

/// Runs the command the command line names.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let ctx = Context::new(cli.global)?;
    match cli.command {
        Command::List(a) => inspect::list(&ctx, a).await,
        Command::Show(a) => inspect::show(&ctx, a).await,
        Command::History(a) => inspect::history(&ctx, a).await,
        Command::Raise(a) => control::raise(&ctx, a).await,
        Command::Cancel(a) => control::cancel(&ctx, a).await,
        Command::Terminate(a) => control::terminate(&ctx, a).await,
        Command::Delete(a) => cleanup::delete(&ctx, a).await,
        Command::Prune(a) => cleanup::prune(&ctx, a).await,
        Command::Versions(a) => report::versions(&ctx, a).await,
        Command::Stats => report::stats(&ctx).await,
        Command::Workers(a) => report::workers(&ctx, a).await,
        Command::Export(a) => transfer::export(&ctx, a).await,
        Command::Import(a) => transfer::import(&ctx, a).await,
        Command::Copy(a) => transfer::copy(&ctx, a).await,
        Command::Console(a) => console::serve(&ctx, a).await,
    }
}

/// What every command shares: the store URL and whether to print JSON.
pub struct Context {
    store: Option<StoreUrl>,
    pub json: bool,
}

impl Context {
    fn new(global: GlobalArgs) -> Result<Self, CliError> {
        let store =
            global.store.as_deref().map(|s| StoreUrl::parse(s, global.schema.as_deref())).transpose()?;
        Ok(Self { store, json: global.json })
    }

    /// The --store URL (a usage error when none was given).
    pub fn store_url(&self) -> Result<&StoreUrl, CliError> {
        self.store.as_ref().ok_or_else(no_store)
    }

    /// A client on the existing store (opening it writes nothing).
    pub async fn client(&self) -> Result<Client, CliError> {
        Ok(Client::new(self.store_url()?.open(Access::Existing).await?))
    }
}
