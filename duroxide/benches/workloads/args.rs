//! The command line of the benchmark program: which workloads, on which stores, for how
//! long, and the sizes each workload takes.

/// What to run, parsed from the command line.
pub struct Args {
    pub workloads: Vec<String>,
    pub stores: Vec<String>,
    pub seconds: u64,
    pub idle_instances: usize,
    pub management_instances: u64,
    /// Finished instances (with their histories) loaded before `overhead` and `latency`;
    /// 0: none. `scale` loads this many for its preloaded half (0: [`SCALE_PRELOAD`]).
    pub preload: u64,
    /// The PostgreSQL pool size of the store, and the connections of the raw ceiling.
    pub pg_pool: u32,
    /// Activities of one instance for `sequential`; the ratio compares the last two.
    pub sequential_sizes: Vec<usize>,
    /// History lengths for `replay`.
    pub replay_events: Vec<usize>,
    /// Runtime processes for `nodes`; the ratio compares the last with the first.
    pub node_counts: Vec<usize>,
    /// How many times to run the whole selection; with more than one, the median of every
    /// target figure is printed at the end.
    pub runs: usize,
}

/// Finished instances `scale` loads when `--preload` is not given.
pub const SCALE_PRELOAD: u64 = 1_000_000;

/// Default workloads (the heavy `management`, `scale` and `nodes` run only when named).
const DEFAULT_WORKLOADS: [&str; 6] = ["fanout", "overhead", "sequential", "latency", "replay", "idle"];

fn list<T: std::str::FromStr>(value: Option<String>, flag: &str) -> Vec<T> {
    let value = value.unwrap_or_else(|| panic!("{flag} needs a value"));
    value
        .split(',')
        .map(|s| s.trim().replace('_', "").parse().unwrap_or_else(|_| panic!("{flag}: cannot parse '{s}'")))
        .collect()
}

fn number<T: std::str::FromStr>(value: Option<String>, flag: &str) -> T {
    let value = value.unwrap_or_else(|| panic!("{flag} needs a value"));
    value.replace('_', "").parse().unwrap_or_else(|_| panic!("{flag}: cannot parse '{value}'"))
}

pub fn parse_args() -> Args {
    let mut a = Args {
        workloads: Vec::new(),
        stores: Vec::new(),
        seconds: 10,
        idle_instances: 10_000,
        management_instances: 100_000,
        preload: 0,
        pg_pool: super::store::default_pg_pool(),
        sequential_sizes: vec![1_000, 5_000, 10_000],
        replay_events: vec![10_000, 100_000],
        node_counts: vec![1, 2, 3],
        runs: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--store" => a.stores.extend(it.next()),
            "--seconds" => a.seconds = number(it.next(), "--seconds"),
            "--idle-instances" => a.idle_instances = number(it.next(), "--idle-instances"),
            "--management-instances" => a.management_instances = number(it.next(), "--management-instances"),
            "--preload" => a.preload = number(it.next(), "--preload"),
            "--pg-pool" => a.pg_pool = number(it.next(), "--pg-pool"),
            "--sequential-sizes" => a.sequential_sizes = list(it.next(), "--sequential-sizes"),
            "--replay-events" => a.replay_events = list(it.next(), "--replay-events"),
            "--nodes" => a.node_counts = list(it.next(), "--nodes"),
            "--runs" => a.runs = number::<usize>(it.next(), "--runs").max(1),
            s if s.starts_with("--") => {} // cargo bench passes --bench
            w => a.workloads.push(w.to_string()),
        }
    }
    if a.workloads.is_empty() {
        a.workloads = DEFAULT_WORKLOADS.map(String::from).to_vec();
    }
    if a.stores.is_empty() {
        a.stores = vec!["memory".into(), "file".into()];
        // PostgreSQL when compiled in and reachable (DUROXIDE_TEST_PG_URL).
        if cfg!(feature = "postgres") && std::env::var("DUROXIDE_TEST_PG_URL").is_ok() {
            a.stores.push("postgres".into());
        }
    }
    assert!(a.sequential_sizes.len() >= 2, "--sequential-sizes needs at least two sizes");
    assert!(a.pg_pool >= 1, "--pg-pool must be at least 1");
    a
}
