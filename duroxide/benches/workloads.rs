//! duroxide benchmark workloads. Prints a human table, one JSON line per workload and a
//! `target_ratio` line per performance target.
//!
//! ```sh
//! cargo bench -p duroxide --bench workloads                 # default workloads, all stores
//! cargo bench -p duroxide --bench workloads -- fanout latency --store file --seconds 10
//! DUROXIDE_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo bench -p duroxide --features postgres --bench workloads -- --store postgres
//! ```
//!
//! Workloads: fanout, overhead, sequential, latency, replay, idle; and, only when named,
//! management, scale and nodes (see docs/performance.md).
//! Stores: memory (SQLite in-memory), file (SQLite file in a temp dir, default durability),
//! postgres (with `--features postgres`; a fresh schema per run, dropped at its end).
//! Options: `--seconds`, `--preload N`, `--pg-pool N`, `--sequential-sizes a,b,c`,
//! `--replay-events a,b`, `--nodes a,b,c`, `--idle-instances`, `--management-instances`,
//! `--runs N` (run the selection N times, then print each target's median as a
//! `target_median` line with the figure of every run).

#[path = "workloads/app.rs"]
mod app;
#[path = "workloads/args.rs"]
mod args;
#[path = "workloads/idle.rs"]
mod idle;
#[path = "workloads/management.rs"]
mod management;
#[path = "workloads/node.rs"]
mod node;
#[path = "workloads/nodes.rs"]
mod nodes;
#[path = "workloads/preload.rs"]
mod preload;
#[path = "workloads/raw.rs"]
mod raw;
#[path = "workloads/replay.rs"]
mod replay;
#[path = "workloads/report.rs"]
mod report;
#[path = "workloads/scale.rs"]
mod scale;
#[path = "workloads/scans.rs"]
mod scans;
#[path = "workloads/sequential.rs"]
mod sequential;
#[path = "workloads/store.rs"]
mod store;
#[path = "workloads/throughput.rs"]
mod throughput;
#[path = "workloads/turn_ledger.rs"]
mod turn_ledger;

#[tokio::main]
async fn main() {
    // Started again by the `nodes` workload as one of its worker nodes.
    if let Some(schema) = node::requested() {
        node::run(&schema).await;
        return;
    }
    let args = args::parse_args();
    store::set_pg_pool(args.pg_pool);
    println!(
        "duroxide benchmarks on {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    for run in 1..=args.runs {
        if args.runs > 1 {
            println!("run {run} of {}", args.runs);
        }
        run_selection(&args).await;
    }
    if args.runs > 1 {
        report::print_medians();
    }
}

/// Every selected workload on every selected store, once.
async fn run_selection(args: &args::Args) {
    for w in &args.workloads {
        if w == "replay" {
            replay::replay(&args.replay_events);
            continue;
        }
        for s in &args.stores {
            match w.as_str() {
                "fanout" => throughput::fanout(s, args.seconds).await,
                "overhead" => throughput::overhead(s, args.seconds, args.preload).await,
                "sequential" => sequential::sequential(s, &args.sequential_sizes).await,
                "latency" => throughput::latency(s, args.preload).await,
                "idle" => idle::idle(s, args.idle_instances).await,
                "management" => management::management(s, args.management_instances).await,
                "scale" => scale::scale(s, args.seconds, args.preload).await,
                "nodes" => nodes::nodes(s, args.seconds, &args.node_counts).await,
                other => eprintln!("unknown workload '{other}'"),
            }
        }
    }
}
