//! The command line as clap types: global options, one variant per command, and the
//! argument groups several commands share (instance filters). Parsing values (times,
//! states) lives here too, as clap value parsers, so a bad value is a usage error (exit 2).

use crate::time::parse_time;
use clap::{Args, Parser, Subcommand, ValueEnum};
use duroxide::provider::{InstanceFilter, InstanceState, ListOrder};

/// Operate duroxide instances in a store: list, inspect, control, clean up, move.
///
/// Every command talks to the store named by --store (or DUROXIDE_STORE) and needs no
/// running runtime. Read commands never write; commands that write say so in their help,
/// and the destructive ones ask for confirmation (or take --yes in scripts).
#[derive(Debug, Parser)]
#[command(name = "duroxide", version, max_term_width = 100)]
#[command(after_help = "Examples:\n  \
    duroxide --store sqlite:./app.db list --state failed\n  \
    duroxide --store sqlite:./app.db show order-42\n  \
    DUROXIDE_STORE=postgres://user@db-host/app duroxide versions")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command as clap sees it: `duroxide --version` prints the tool's version, while
    /// `--version` after a command is the orchestration version filter.
    pub fn command() -> clap::Command {
        <Self as clap::CommandFactory>::command().mut_subcommands(|c| c.disable_version_flag(true))
    }

    /// Parses the process's arguments; usage errors exit with status 2.
    pub fn parse_args() -> Self {
        let matches = Self::command().get_matches();
        <Self as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The store: sqlite:./app.db, or postgres://user@host/db (add ?schema=NAME for a
    /// schema other than public). A plain path is taken as a SQLite file.
    #[arg(long, short = 's', env = "DUROXIDE_STORE", global = true, value_name = "URL")]
    pub store: Option<String>,

    /// PostgreSQL schema holding the store (overrides the URL's ?schema=).
    #[arg(long, env = "DUROXIDE_SCHEMA", global = true, value_name = "NAME")]
    pub schema: Option<String>,

    /// Print JSON instead of tables (shapes documented in docs/operations.md).
    #[arg(long, global = true)]
    pub json: bool,
}

/// The commands. New command groups are new variants.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List instances, newest first, a page at a time.
    List(ListArgs),
    /// Show one instance: state, versions, executions, pending work, timers, messages,
    /// children.
    Show(ShowArgs),
    /// Print the history of one execution (--json: the replayable export).
    History(HistoryArgs),
    /// Raise an external event for an instance (writes).
    Raise(RaiseArgs),
    /// Cancel an instance: its code sees the cancellation and may clean up (writes).
    Cancel(CancelArgs),
    /// End an instance now without running its code, and its unfinished
    /// sub-orchestrations (writes).
    Terminate(TerminateArgs),
    /// Delete one instance, or finished instances selected by filters (writes).
    Delete(DeleteArgs),
    /// Remove old executions of continue-as-new instances, keeping the current one
    /// (writes).
    Prune(PruneArgs),
    /// Instances per orchestration version and duroxide version: which versions still
    /// have unfinished instances and which can be retired.
    Versions(VersionsArgs),
    /// Instances per state, queue depths, and per tag the activities waiting and how many
    /// live workers serve it.
    Stats,
    /// The runtimes using the store: id, tags served, slots, version, when last seen.
    /// Live ones only, unless --all.
    Workers(WorkersArgs),
    /// Write every instance of the store as JSON lines (to stdout or --output).
    Export(ExportArgs),
    /// Read instances written by `export` into the store, creating and migrating the store
    /// if needed (writes; existing ids are skipped).
    Import(ImportArgs),
    /// Copy every instance of the store into another store, creating and migrating the
    /// target if needed (writes to the target; existing ids are skipped).
    Copy(CopyArgs),
    /// Serve the web console for the store: instances, histories as timelines, versions,
    /// queue depths, and the actions (raise, cancel, terminate, delete) unless
    /// --read-only. Listens on loopback only unless --listen says otherwise.
    Console(ConsoleArgs),
}

/// Instance filters, shared by `list`, `delete` and `prune`. Every flag given must match.
#[derive(Debug, Args, Default, Clone)]
pub struct FilterArgs {
    /// Only instances in this state (repeat or separate with commas for several).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "STATE")]
    pub state: Vec<StateArg>,
    /// Only instances of this orchestration.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Only instances whose current execution runs this orchestration version.
    // Its own id: "version" is the id of the --version flag.
    #[arg(long = "version", id = "orchestration_version", value_name = "VERSION")]
    pub version: Option<String>,
    /// Only sub-orchestrations of this instance.
    #[arg(long, value_name = "ID")]
    pub parent: Option<String>,
    /// Only instances whose id starts with this.
    #[arg(long, value_name = "TEXT")]
    pub prefix: Option<String>,
    /// Only instances created at or after TIME (2026-12-01T00:00:00Z, 2026-12-01, or an
    /// age such as 7d, 12h, 30m).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub created_after: Option<u64>,
    /// Only instances created before TIME.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub created_before: Option<u64>,
    /// Only instances last updated at or after TIME.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub updated_after: Option<u64>,
    /// Only instances last updated before TIME (for finished ones: finished before).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub updated_before: Option<u64>,
}

impl FilterArgs {
    /// The library filter these flags describe.
    pub fn to_filter(&self) -> InstanceFilter {
        let mut f = InstanceFilter::default();
        for s in &self.state {
            f = f.state(s.state());
        }
        f.name = self.name.clone();
        f.version = self.version.clone();
        f.parent = self.parent.clone();
        f.id_prefix = self.prefix.clone();
        f.created_after_ms = self.created_after;
        f.created_before_ms = self.created_before;
        f.updated_after_ms = self.updated_after;
        f.updated_before_ms = self.updated_before;
        f
    }
}

/// An instance state on the command line (lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    /// Created, not started by any node yet.
    Pending,
    /// Started, not finished.
    Running,
    /// Finished with an output.
    Completed,
    /// Finished with an error (cancelled and terminated instances included).
    Failed,
}

impl StateArg {
    pub fn state(self) -> InstanceState {
        match self {
            StateArg::Pending => InstanceState::Pending,
            StateArg::Running => InstanceState::Running,
            StateArg::Completed => InstanceState::Completed,
            StateArg::Failed => InstanceState::Failed,
        }
    }
}

/// The order of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OrderArg {
    /// Most recently created first.
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
}

impl OrderArg {
    pub fn order(self) -> ListOrder {
        match self {
            OrderArg::Newest => ListOrder::NewestFirst,
            OrderArg::Oldest => ListOrder::OldestFirst,
        }
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Most instances on the page (1 to 10000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
    /// Continue after the previous page: the cursor it printed (same filters and order).
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
    /// Listing order.
    #[arg(long, value_enum, default_value_t = OrderArg::Newest)]
    pub order: OrderArg,
    /// Print how many instances match, per state, instead of listing them.
    #[arg(long, conflicts_with_all = ["cursor", "limit", "order"])]
    pub count: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Instance id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Instance id.
    pub id: String,
    /// Execution to print (default: the current one; see `show` for the list).
    #[arg(long, value_name = "N")]
    pub execution: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RaiseArgs {
    /// Instance id.
    pub id: String,
    /// Event name the orchestration waits for.
    pub event: String,
    /// Event payload (usually JSON); `-` reads it from stdin.
    pub data: String,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// Instance id.
    pub id: String,
    /// Reason recorded with the cancellation.
    #[arg(long, default_value = "cancelled by an operator")]
    pub reason: String,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct TerminateArgs {
    /// Instance id.
    pub id: String,
    /// Reason recorded as the instance's error.
    #[arg(long, default_value = "terminated by an operator")]
    pub reason: String,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The instance to delete (with its sub-orchestrations). Without it, select finished
    /// instances with the filter flags, or --all.
    #[arg(conflicts_with_all = ["FilterArgs", "all", "limit"])]
    pub id: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Delete every finished instance (a bulk delete without filters).
    #[arg(long, conflicts_with = "FilterArgs")]
    pub all: bool,
    /// Delete at most N instances (bulk).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Delete the instance even though it has not finished (a node running it loses it).
    #[arg(long, requires = "id")]
    pub force: bool,
    /// Print what would be deleted and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The instance to prune. Without it, select instances with the filter flags, or
    /// --all.
    #[arg(conflicts_with_all = ["FilterArgs", "all"])]
    pub id: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Prune every instance.
    #[arg(long, conflicts_with = "FilterArgs")]
    pub all: bool,
    #[command(flatten)]
    pub rule: PruneRule,
    /// Print how many executions would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Which executions `prune` removes (at least one flag).
#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub struct PruneRule {
    /// Keep the last N executions (the current one included).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_last: Option<u32>,
    /// Remove only executions that finished before TIME (2026-12-01T00:00:00Z or an age
    /// such as 30d).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub finished_before: Option<u64>,
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// Only this orchestration.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// Also list runtimes that stopped heartbeating (gone: crashed, hung or cut off from
    /// the store) in the last hour.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Read from this file instead of stdin.
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The target store (created and migrated if needed), e.g. postgres://user@host/db.
    #[arg(long, value_name = "URL")]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Address and port to listen on. The default is reachable from this machine only;
    /// port 0 picks a free port (the URL printed says which).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Show instances only: no raise, cancel, terminate or delete.
    #[arg(long)]
    pub read_only: bool,
    /// Ask browsers for this user and password (HTTP Basic). Prefer the environment
    /// variable: other users of the machine can read command lines.
    #[arg(long, env = "DUROXIDE_CONSOLE_AUTH", hide_env_values = true, value_name = "USER:PASSWORD")]
    pub basic_auth: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
