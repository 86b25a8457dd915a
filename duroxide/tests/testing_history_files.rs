//! Golden histories: the JSON `duroxide history ID --json` writes, fed back to
//! `replay_history_file` and `replay_histories_in`. The histories are made by a test
//! harness on a SQLite file, read by the real command-line tool.

use assert_cmd::Command;
use duroxide::prelude::*;
use duroxide::testing::{
    FolderReplayError, ReplayCheckError, TestHarness, replay_histories_in, replay_history_file,
};
use duroxide::{Either2, Provider, replay::TurnOutcome};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn approval(ask_first: bool) -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register_versioned("Approval", "1.0.0", move |ctx: OrchestrationContext, who: String| async move {
            if ask_first {
                ctx.schedule_activity("Ask", who).await?;
            }
            let decision = ctx.schedule_wait("Approve");
            let deadline = ctx.schedule_timer(7 * DAY);
            Ok(match ctx.select2(decision, deadline).await {
                Either2::First(by) => format!("approved by {by}"),
                Either2::Second(()) => "expired".to_string(),
            })
        })
        .build()
}

fn activities() -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Ask", |_ctx: ActivityContext, who: String| async move { Ok(format!("asked {who}")) })
        .build()
}

/// `duroxide --store URL history ID --json`, written to `dir/FILE`.
fn export(url: &str, id: &str, dir: &Path, file: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_duroxide"))
        .env_remove("DUROXIDE_STORE")
        .env_remove("DUROXIDE_SCHEMA")
        .args(["--store", url, "history", id, "--json"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(out.status.success(), "history {id}: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(dir.join(file), out.stdout).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_the_cli_writes_replay_one_by_one_and_by_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", tmp.path().join("app.db").display());
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&url, None).await.unwrap());
    let h = TestHarness::builder(activities(), approval(true)).store(store).build().await.unwrap();
    for id in ["approved", "expired"] {
        h.start(id, "Approval", "ada").await.unwrap();
    }
    h.settle().await.unwrap();
    h.advance(DAY).await.unwrap();
    h.raise_event("approved", "Approve", "grace").await.unwrap();
    assert_eq!(h.wait_for_output("approved").await.unwrap(), "approved by grace");
    assert_eq!(h.wait_for_output("expired").await.unwrap(), "expired");
    h.shutdown().await;
    // A second harness on the same file: one instance left waiting.
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&url, None).await.unwrap());
    let h = TestHarness::builder(activities(), approval(true)).store(store).build().await.unwrap();
    h.start("running", "Approval", "ada").await.unwrap();
    h.settle().await.unwrap();
    h.shutdown().await;

    let golden = tmp.path().join("histories");
    std::fs::create_dir(&golden).unwrap();
    export(&url, "approved", &golden, "approved.json");
    export(&url, "expired", &golden, "expired@1.json");
    export(&url, "running", &golden, "running.json");

    let one = replay_history_file(&approval(true), golden.join("approved.json")).unwrap();
    assert_eq!((one.name.as_str(), one.version.as_str()), ("Approval", "1.0.0"));
    assert_eq!(one.outcome, TurnOutcome::Completed("approved by grace".into()));

    let replayed = replay_histories_in(&approval(true), &golden).unwrap().check().unwrap();
    let outcomes: Vec<_> = replayed
        .iter()
        .map(|(p, r)| (p.file_name().unwrap().to_str().unwrap().to_string(), r.outcome.clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("approved.json".to_string(), TurnOutcome::Completed("approved by grace".into())),
            ("expired@1.json".to_string(), TurnOutcome::Completed("expired".into())),
            ("running.json".to_string(), TurnOutcome::Pending),
        ]
    );

    // The same version changed in place: every file fails, each named, with the fix.
    let err = replay_histories_in(&approval(false), &golden).unwrap().check().unwrap_err();
    let FolderReplayError::Failed { failed } = &err else { panic!("{err}") };
    assert_eq!(failed.len(), 3, "{err}");
    for (path, e) in failed {
        let ReplayCheckError::Nondeterminism(m) = e else { panic!("{}: {e}", path.display()) };
        assert!(m.contains("recorded by 'Approval' version 1.0.0"), "{m}");
        assert!(m.contains("continue_as_new_versioned"), "{m}");
    }
    assert!(err.to_string().contains("approved.json"), "{err}");
}

#[test]
fn bad_folders_and_file_names_are_named_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = approval(true);
    assert!(matches!(replay_histories_in(&registry, tmp.path()), Err(FolderReplayError::Empty(_))));
    assert!(matches!(
        replay_histories_in(&registry, tmp.path().join("missing")),
        Err(FolderReplayError::Unreadable { .. })
    ));
    std::fs::write(tmp.path().join("x@zero.json"), "[]").unwrap();
    let e = replay_history_file(&registry, tmp.path().join("x@zero.json")).unwrap_err();
    assert!(matches!(&e, ReplayCheckError::Corrupt(m) if m.contains("not an execution number")), "{e}");
    std::fs::write(tmp.path().join("y.json"), "{not json").unwrap();
    let e = replay_history_file(&registry, tmp.path().join("y.json")).unwrap_err();
    assert!(matches!(e, ReplayCheckError::Corrupt(_)), "{e}");
}
