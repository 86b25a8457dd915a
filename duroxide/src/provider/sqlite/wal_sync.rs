//! Durability of group commits without holding the writer through the fsync.
//!
//! Under [`SqliteDurability::Full`] a round of the group commit is committed with
//! `synchronous = NORMAL` (its frames are written to the WAL, not flushed) and made durable
//! afterwards by flushing the WAL file here, outside the writer connection. While one
//! round's flush runs, the writer commits the next round and the lock-only writes, so the
//! disk and the writer work at the same time instead of taking turns. One flush covers
//! every round committed before it began; rounds waiting meanwhile share the next one.
//!
//! `NORMAL` keeps the database consistent through a power loss (SQLite flushes the WAL
//! before a checkpoint copies it into the database and the database after); the flush
//! here adds the durability `FULL` gives: a write is acknowledged only after a flush that
//! began after its commit. WAL frames are appended in commit order, so what survives a
//! crash is always a prefix of the commits.

use super::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Flushes the WAL of one database file for the group commit (see the module docs).
pub(super) struct WalSync {
    /// The database's WAL file (`<database>-wal`).
    path: PathBuf,
    /// Rounds begun (each takes the next number while it holds the writer).
    begun: AtomicU64,
    /// Every round up to this number has finished on the writer (committed or rolled back).
    finished: tokio::sync::watch::Sender<u64>,
    /// Every round up to this number is durable.
    synced: AtomicU64,
    /// Flushes done here (not counting commits that flushed the WAL themselves).
    flushes: AtomicU64,
    /// Set when a flush failed: what the failed flush should have covered may be lost, and
    /// a later flush cannot tell (the kernel reports a write-back error once), so nothing
    /// is acknowledged as durable again until the store is reopened.
    failed: AtomicBool,
    /// Held by the flush in progress; the open WAL file.
    file: tokio::sync::Mutex<Option<Arc<std::fs::File>>>,
}

/// A round's number while it runs on the writer; dropping it marks the round finished
/// (committed, rolled back, or abandoned by a cancelled caller).
pub(super) struct Round<'a> {
    sync: &'a WalSync,
    pub(super) seq: u64,
}

impl Drop for Round<'_> {
    fn drop(&mut self) {
        let seq = self.seq;
        self.sync.finished.send_if_modified(|v| {
            let later = *v < seq;
            if later {
                *v = seq;
            }
            later
        });
    }
}

impl WalSync {
    /// The flush for the database file at `database`.
    pub(super) fn new(database: &std::path::Path) -> Self {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        WalSync {
            path: PathBuf::from(wal),
            begun: AtomicU64::new(0),
            finished: tokio::sync::watch::Sender::new(0),
            synced: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            file: tokio::sync::Mutex::new(None),
        }
    }

    /// Numbers a round; call it while holding the writer, before the round's first
    /// statement, and keep the result until the round has committed or rolled back.
    pub(super) fn begin_round(&self) -> Round<'_> {
        Round { sync: self, seq: self.begun.fetch_add(1, Ordering::AcqRel) + 1 }
    }

    /// The number of the last round begun: a read that ended before this call cannot have
    /// seen a round numbered higher.
    pub(super) fn last_begun(&self) -> u64 {
        self.begun.load(Ordering::Acquire)
    }

    /// Records that a commit which flushed the WAL itself (`synchronous = FULL`) made every
    /// round up to `seq` durable.
    pub(super) fn flushed_through(&self, seq: u64) {
        self.synced.fetch_max(seq, Ordering::AcqRel);
    }

    /// Returns once every round up to `seq` is durable, flushing the WAL if no flush that
    /// began after those rounds finished has done so yet.
    pub(super) async fn sync_through(&self, seq: u64) -> Result<(), ProviderError> {
        loop {
            self.check()?;
            if self.synced.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
            let mut file = self.file.lock().await;
            self.check()?;
            if self.synced.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
            let target = *self.finished.borrow();
            if target < seq {
                // A round up to `seq` still runs on the writer (a read saw it begin): flush
                // once it has finished.
                drop(file);
                let mut finished = self.finished.subscribe();
                let _ = finished.wait_for(|v| *v >= seq).await;
                continue;
            }
            let handle = match &*file {
                Some(f) => f.clone(),
                None => {
                    let opened = std::fs::File::open(&self.path).map_err(|e| {
                        ProviderError::Storage(format!("cannot open the WAL '{}': {e}", self.path.display()))
                    })?;
                    file.insert(Arc::new(opened)).clone()
                }
            };
            let flushed = tokio::task::spawn_blocking(move || handle.sync_data())
                .await
                .map_err(|e| ProviderError::Storage(format!("the WAL flush did not finish: {e}")))?;
            if let Err(e) = flushed {
                self.failed.store(true, Ordering::Release);
                return Err(ProviderError::Storage(format!(
                    "flushing the WAL '{}' failed ({e}): writes since the last flush may be lost; \
                     reopen the store",
                    self.path.display()
                )));
            }
            self.synced.fetch_max(target, Ordering::AcqRel);
            self.flushes.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
    }

    /// Fails once a flush has failed (see `failed`).
    pub(super) fn check(&self) -> Result<(), ProviderError> {
        match self.failed.load(Ordering::Acquire) {
            false => Ok(()),
            true => Err(ProviderError::Storage(format!(
                "an earlier flush of the WAL '{}' failed: writes may have been lost; reopen the store",
                self.path.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn file_store(dir: &tempfile::TempDir) -> SqliteProvider {
        let url = format!("sqlite:{}", dir.path().join("store.db").display());
        SqliteProvider::new(&url, None).await.expect("open a file store")
    }

    fn synced(wal: &WalSync) -> u64 {
        wal.synced.load(Ordering::Acquire)
    }

    #[tokio::test]
    async fn a_lone_start_commits_with_its_own_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        let wal = store.conns.wal.clone().expect("a file store under Full flushes the WAL itself");
        for k in 1..=3u64 {
            store.start_instance(&format!("i{k}"), "Flow", None, "{}").await.unwrap();
            // On this single-threaded runtime nothing ran between the reply and here.
            assert_eq!(wal.last_begun(), k, "one round per start");
            assert_eq!(synced(&wal), k, "start {k} was acknowledged before its round was flushed");
        }
        // Nothing else waited, so each round flushed the WAL in its own commit.
        assert_eq!(wal.flushes.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_read_waits_for_the_round_it_may_have_seen() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        store.start_instance("first", "Flow", None, "{}").await.unwrap();
        let wal = store.conns.wal.clone().unwrap();
        // A round that has begun on the writer and not finished.
        let round = wal.begin_round();
        let seq = round.seq;
        let settle = {
            let conns = store.conns.clone();
            tokio::spawn(async move { conns.settle().await })
        };
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert!(!settle.is_finished(), "the read settled before the round it may have seen finished");
        drop(round);
        tokio::time::timeout(Duration::from_secs(5), settle).await.unwrap().unwrap().unwrap();
        assert!(synced(&wal) >= seq, "the read settled without a flush covering round {seq}");
    }

    #[tokio::test]
    async fn concurrent_writes_share_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(file_store(&dir).await);
        let mut writes = tokio::task::JoinSet::new();
        for k in 0..50 {
            let store = store.clone();
            writes.spawn(async move { store.start_instance(&format!("i{k}"), "Flow", None, "{}").await });
        }
        while let Some(done) = writes.join_next().await {
            done.unwrap().unwrap();
        }
        let wal = store.conns.wal.clone().unwrap();
        assert!(wal.last_begun() < 50, "50 concurrent starts took {} rounds", wal.last_begun());
        assert_eq!(synced(&wal), wal.last_begun(), "a start was acknowledged before its round was flushed");
        let flushes = wal.flushes.load(Ordering::Relaxed);
        assert!(flushes > 0, "rounds under load flush the WAL outside the writer");
        assert_eq!(store.instance_ids().await.unwrap().len(), 50);
    }

    #[tokio::test]
    async fn an_activity_is_handed_out_only_once_its_turn_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        let wal = store.conns.wal.clone().unwrap();
        // An activity a turn scheduled, then a round committed after it and not flushed
        // yet, as under load.
        sqlx::query(
            "INSERT INTO worker_queue (instance_id, execution_id, event_id, name, input, visible_at) \
             VALUES ('i', 1, 2, 'Act', 'x', 0)",
        )
        .execute(&mut store.conns.writer().await.conn)
        .await
        .unwrap();
        let seq = wal.begin_round().seq;
        assert!(synced(&wal) < seq);
        let worker = WorkerIdentity {
            worker_id: "w".into(),
            session_lease: Duration::from_secs(30),
            max_sessions: 1,
            tags: TagFilter::Untagged,
        };
        let p: &dyn Provider = &store;
        let work = p.fetch_work_item(Duration::from_secs(30), &worker).await.unwrap();
        assert_eq!(work.expect("the scheduled activity").event_id, 2);
        assert!(
            synced(&wal) >= seq,
            "an activity was handed out before every round it could see was flushed"
        );
    }

    #[tokio::test]
    async fn a_wal_that_cannot_be_opened_fails_the_write_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let wal = WalSync::new(&dir.path().join("missing").join("store.db"));
        let round = wal.begin_round();
        let seq = round.seq;
        drop(round);
        match wal.sync_through(seq).await {
            Err(ProviderError::Storage(m)) => assert!(m.contains("store.db-wal"), "{m}"),
            other => panic!("expected a storage error naming the WAL, got {other:?}"),
        }
        assert_eq!(synced(&wal), 0);
    }
}
