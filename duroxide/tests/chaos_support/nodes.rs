//! Runtime nodes as child processes: the test binary re-executes itself as a node
//! (`chaos_node` in `chaos.rs`), configured through the environment.
//!
//! [`Nodes`] owns the children: it SIGKILLs and restarts them during the chaos phase and
//! kills every one still running when it is dropped, on every exit path of the test
//! (including a failed assertion). A node also exits by itself when its parent process
//! goes away, so even a killed test leaves nothing running.

use super::workload::{self, now_ms};
use duroxide::Provider;
use duroxide::prelude::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Store URL a node runs on; its presence makes `chaos_node` act as a node.
pub const NODE_ENV: &str = "DUROXIDE_CHAOS_NODE";
/// PostgreSQL schema of the store (unset for SQLite).
const SCHEMA_ENV: &str = "DUROXIDE_CHAOS_SCHEMA";
/// Path of the activity execution log.
const LOG_ENV: &str = "DUROXIDE_CHAOS_LOG";

/// Runtime options of every node: short locks, so work of a killed node is taken over
/// quickly, and an activity lock timeout shorter than the `Slow` activity, so that one only
/// completes if its lock is renewed while it runs. `max_attempts` leaves room for the
/// kills: an attempt of a `Slow` activity is killed about half the time, and a 10-minute
/// run saw one activity run 18 times.
pub fn node_options() -> RuntimeOptions {
    RuntimeOptions {
        dispatcher_poll_interval: Duration::from_millis(50),
        orchestration_lock_timeout: Duration::from_secs(2),
        activity_lock_timeout: Duration::from_secs(1),
        max_attempts: 50,
        max_unregistered_backoff: Duration::from_millis(200),
        ..Default::default()
    }
}

/// Where the nodes keep their data.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Store URL (`sqlite:<file>` or a PostgreSQL URL).
    pub store_url: String,
    /// PostgreSQL schema (`None` for SQLite).
    pub schema: Option<String>,
    /// The activity execution log.
    pub log: PathBuf,
    /// Directory for the nodes' stderr files.
    pub dir: PathBuf,
}

/// Opens the store named by `url` (and `schema` on PostgreSQL).
pub async fn open_store(url: &str, schema: Option<&str>) -> Arc<dyn Provider> {
    if url.starts_with("sqlite:") {
        return Arc::new(SqliteProvider::new(url, None).await.unwrap_or_else(|e| panic!("open {url}: {e}")));
    }
    #[cfg(feature = "postgres")]
    {
        let options = duroxide::PostgresOptions {
            schema: schema.map(str::to_string),
            max_connections: 4,
            application_name: schema.unwrap_or("duroxide-chaos").to_string(),
            ..Default::default()
        };
        let store = PostgresProvider::new(url, Some(options)).await;
        Arc::new(store.unwrap_or_else(|e| panic!("open PostgreSQL store at {url}: {e}")))
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = schema;
        panic!("cannot open {url}: built without the `postgres` feature")
    }
}

/// The body of a node process: runs a runtime with the chaos workload on the store named
/// by the environment until the process is killed. Returns at once when the environment
/// does not name a store (a normal test run).
pub fn node_main() {
    let Ok(url) = std::env::var(NODE_ENV) else { return };
    let schema = std::env::var(SCHEMA_ENV).ok();
    let log = PathBuf::from(std::env::var(LOG_ENV).expect("the parent names the activity log"));
    // Warnings go to stderr, which the parent keeps in a file per node: lock losses and
    // failed completions are read back from there.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("node tokio runtime");
    rt.block_on(async move {
        let parent = std::os::unix::process::parent_id();
        let store = open_store(&url, schema.as_deref()).await;
        let _runtime = Runtime::start_with_options(
            store,
            workload::activities(log),
            workload::orchestrations(),
            node_options(),
        )
        .await;
        eprintln!("chaos node {} running", std::process::id());
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if std::os::unix::process::parent_id() != parent {
                // The test process is gone: stop rather than run on forever.
                std::process::exit(0);
            }
        }
    });
}

/// A SIGKILL sent by the chaos loop.
#[derive(Debug, Clone)]
pub struct Kill {
    /// The node's pid.
    pub pid: u32,
    /// When the node was dead (after the kill was reaped), in ms since the epoch.
    pub at_ms: u64,
}

struct Node {
    child: Child,
    pid: u32,
}

/// The running nodes, and a record of every node started and killed.
pub struct Nodes {
    spec: NodeSpec,
    slots: Vec<Option<Node>>,
    /// Every SIGKILL of the chaos phase.
    pub kills: Vec<Kill>,
    /// Every node started: pid and stderr file.
    pub started: Vec<(u32, PathBuf)>,
    /// Nodes stopped after the drain (not chaos kills).
    pub stopped: Vec<Kill>,
}

impl Nodes {
    /// Starts `count` nodes.
    pub fn start(spec: NodeSpec, count: usize) -> Nodes {
        let mut nodes =
            Nodes { spec, slots: Vec::new(), kills: Vec::new(), started: Vec::new(), stopped: Vec::new() };
        for _ in 0..count {
            let node = nodes.spawn();
            nodes.slots.push(Some(node));
        }
        nodes
    }

    fn spawn(&mut self) -> Node {
        let stderr_path = self.spec.dir.join(format!("node-{}.stderr", self.started.len()));
        let stderr = std::fs::File::create(&stderr_path).expect("node stderr file");
        let mut cmd = Command::new(std::env::current_exe().expect("test binary path"));
        cmd.args(["chaos_node", "--exact", "--nocapture", "--test-threads=1"])
            .env(NODE_ENV, &self.spec.store_url)
            .env(LOG_ENV, &self.spec.log)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        match &self.spec.schema {
            Some(schema) => cmd.env(SCHEMA_ENV, schema),
            None => cmd.env_remove(SCHEMA_ENV),
        };
        let child = cmd.spawn().expect("spawn chaos node");
        let pid = child.id();
        self.started.push((pid, stderr_path));
        Node { child, pid }
    }

    /// Number of node slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// SIGKILLs the node in `slot` and starts a new one in its place.
    pub fn kill_and_restart(&mut self, slot: usize) {
        if let Some(node) = self.slots[slot].take() {
            let at_ms = kill(node);
            self.kills.push(Kill { pid: at_ms.0, at_ms: at_ms.1 });
        }
        let node = self.spawn();
        self.slots[slot] = Some(node);
    }

    /// Fails if a node exited by itself (it must only die by our kills).
    pub fn check_alive(&mut self) -> Result<(), String> {
        for node in self.slots.iter_mut().flatten() {
            if let Ok(Some(status)) = node.child.try_wait() {
                return Err(format!("node {} exited by itself: {status}", node.pid));
            }
        }
        Ok(())
    }

    /// Kills every node (after the drain).
    pub fn stop_all(&mut self) {
        for slot in self.slots.iter_mut() {
            if let Some(node) = slot.take() {
                let (pid, at_ms) = kill(node);
                self.stopped.push(Kill { pid, at_ms });
            }
        }
    }
}

fn kill(mut node: Node) -> (u32, u64) {
    // `Child::kill` sends SIGKILL; `wait` reaps it, so the node is gone when this returns.
    let _ = node.child.kill();
    let _ = node.child.wait();
    (node.pid, now_ms())
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.stop_all();
    }
}
