//! Replaying recorded histories against the code you have now: one history
//! ([`replay_history`]), one as JSON ([`replay_history_json`]), one file the command-line
//! tool wrote ([`replay_history_file`]), or every file of a folder ([`replay_histories_in`],
//! for golden histories in CI).
//!
//! The JSON is what `duroxide history ID --json` prints (and
//! [`Client::export_history_json`](crate::Client::export_history_json) returns): the events
//! of one execution. It does not name the instance; a file does, by its name
//! (see [`replay_history_file`]).

use crate::history::{ErrorCategory, Event, EventKind};
use crate::registry::OrchestrationRegistry;
use crate::replay::{ReplayEngine, TurnEnv, TurnOutcome};
use std::path::{Path, PathBuf};

/// Why a recorded history does not replay against the current code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayCheckError {
    /// The history is malformed or cannot be parsed.
    #[error("corrupt history: {0}")]
    Corrupt(String),
    /// The orchestration (name, version) of the history is not in the registry.
    #[error("{0}")]
    NotRegistered(String),
    /// The code makes different decisions than the history records.
    #[error("{0}")]
    Nondeterminism(String),
    /// The code replays the decisions but ends differently than the history says.
    #[error("history ended with {recorded} but the code now ends with {replayed}")]
    DifferentOutcome {
        /// The recorded terminal event.
        recorded: String,
        /// What the code produced.
        replayed: String,
    },
}

/// What replaying a history produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayReport {
    /// Orchestration name from the history.
    pub name: String,
    /// Version from the history.
    pub version: String,
    /// How the code ended (Pending for histories of running instances).
    pub outcome: TurnOutcome,
}

/// Replays one execution's `history` (of `instance`, execution `execution_id`) against the
/// code registered in `orchestrations` for the history's own name and version.
///
/// Succeeds when every decision matches and, if the history is finished, the code ends the
/// same way. A history of a running instance succeeds when its recorded decisions replay.
/// The instance id and execution matter because default sub-orchestration ids derive from
/// them.
pub fn replay_history(
    orchestrations: &OrchestrationRegistry,
    instance: &str,
    execution_id: u64,
    history: &[Event],
) -> Result<ReplayReport, ReplayCheckError> {
    let (name, version) = match history.first().map(|e| &e.kind) {
        Some(EventKind::OrchestrationStarted { name, version, .. }) => (name.clone(), version.clone()),
        _ => {
            return Err(ReplayCheckError::Corrupt("history does not start with OrchestrationStarted".into()));
        }
    };
    let (_, handler) = orchestrations
        .resolve(&name, Some(&version))
        .map_err(|e| ReplayCheckError::NotRegistered(e.to_string()))?;
    // The terminal event is what we compare against; replay the rest.
    let recorded_end = history.last().filter(|e| e.kind.is_terminal()).cloned();
    let body: Vec<Event> = match &recorded_end {
        Some(_) => history[..history.len() - 1].to_vec(),
        None => history.to_vec(),
    };
    let n = body.len();
    let mut engine = ReplayEngine::new(handler, instance, execution_id, body, n)
        .map_err(|e| ReplayCheckError::Corrupt(e.to_string()))?;
    let result = engine.run_turn(Vec::new(), TurnEnv::default());
    if let TurnOutcome::Failed(d) = &result.outcome {
        match d.category {
            ErrorCategory::Nondeterminism => return Err(ReplayCheckError::Nondeterminism(d.message.clone())),
            ErrorCategory::CorruptHistory => return Err(ReplayCheckError::Corrupt(d.message.clone())),
            _ => {}
        }
    }
    if let Some(end) = recorded_end {
        let same = match (&end.kind, &result.outcome) {
            (EventKind::OrchestrationCompleted { output }, TurnOutcome::Completed(o)) => output == o,
            (EventKind::OrchestrationFailed { details }, TurnOutcome::Failed(d)) => {
                details.message == d.message
            }
            (
                EventKind::OrchestrationContinuedAsNew { input, version },
                TurnOutcome::ContinuedAsNew { input: i, version: v },
            ) => input == i && version == v,
            _ => false,
        };
        if !same {
            return Err(ReplayCheckError::DifferentOutcome {
                recorded: format!("{:?}", end.kind),
                replayed: format!("{:?}", result.outcome),
            });
        }
    }
    Ok(ReplayReport { name, version, outcome: result.outcome })
}

/// [`replay_history`] for a history stored as JSON (as [`crate::history::to_json`] writes it).
pub fn replay_history_json(
    orchestrations: &OrchestrationRegistry,
    instance: &str,
    execution_id: u64,
    json: &str,
) -> Result<ReplayReport, ReplayCheckError> {
    let history = crate::history::from_json(json).map_err(|e| ReplayCheckError::Corrupt(e.to_string()))?;
    replay_history(orchestrations, instance, execution_id, &history)
}

/// [`replay_history_json`] for a file written by `duroxide history ID --json > FILE`.
///
/// The file's name gives the instance and execution, which default sub-orchestration ids
/// derive from: `ID.json` is execution 1 of instance `ID`, and `ID@N.json` execution `N`.
pub fn replay_history_file(
    orchestrations: &OrchestrationRegistry,
    path: impl AsRef<Path>,
) -> Result<ReplayReport, ReplayCheckError> {
    let path = path.as_ref();
    let (instance, execution_id) = instance_of_file(path)?;
    let json = std::fs::read_to_string(path)
        .map_err(|e| ReplayCheckError::Corrupt(format!("cannot read {}: {e}", path.display())))?;
    replay_history_json(orchestrations, &instance, execution_id, &json)
}

/// The instance and execution a history file's name gives (see [`replay_history_file`]).
fn instance_of_file(path: &Path) -> Result<(String, u64), ReplayCheckError> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| ReplayCheckError::Corrupt(format!("{}: no file name", path.display())))?;
    match stem.rsplit_once('@') {
        Some((instance, n)) => {
            let execution = n.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ReplayCheckError::Corrupt(format!(
                    "{}: '@{n}' is not an execution number (ID@N.json, N from 1)",
                    path.display()
                ))
            })?;
            Ok((instance.to_string(), execution))
        }
        None => Ok((stem.to_string(), 1)),
    }
}

/// Every history file of a folder replayed: what replayed and what did not.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderReplay {
    /// Files that replay, with their report.
    pub replayed: Vec<(PathBuf, ReplayReport)>,
    /// Files that do not, with why.
    pub failed: Vec<(PathBuf, ReplayCheckError)>,
}

impl FolderReplay {
    /// `Ok` when every file replayed, else an error listing each failure.
    pub fn check(self) -> Result<Vec<(PathBuf, ReplayReport)>, FolderReplayError> {
        if self.failed.is_empty() {
            Ok(self.replayed)
        } else {
            Err(FolderReplayError::Failed { failed: self.failed })
        }
    }
}

/// Why [`replay_histories_in`] found the folder wanting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FolderReplayError {
    /// The folder cannot be listed.
    #[error("cannot read history folder {path}: {message}")]
    Unreadable {
        /// The folder.
        path: PathBuf,
        /// The system's message.
        message: String,
    },
    /// The folder holds no `.json` file: a golden-history check that checks nothing.
    #[error("history folder {0} holds no .json file")]
    Empty(PathBuf),
    /// Some histories do not replay.
    #[error("{} histories do not replay:{}", failed.len(), list(failed))]
    Failed {
        /// Each failing file and why.
        failed: Vec<(PathBuf, ReplayCheckError)>,
    },
}

fn list(failed: &[(PathBuf, ReplayCheckError)]) -> String {
    failed.iter().map(|(p, e)| format!("\n- {}: {e}", p.display())).collect()
}

/// Replays every `*.json` file of `dir` (not its subfolders), in name order, as
/// [`replay_history_file`] does, and reports all of them: one broken history does not hide
/// the others. Call [`FolderReplay::check`] for a single pass/fail.
///
/// ```no_run
/// # fn registry() -> duroxide::OrchestrationRegistry { duroxide::OrchestrationRegistry::builder().build() }
/// // In a test: every history recorded from production still replays.
/// let replayed = duroxide::testing::replay_histories_in(&registry(), "tests/histories")
///     .and_then(|r| r.check())
///     .unwrap_or_else(|e| panic!("{e}"));
/// assert!(!replayed.is_empty());
/// ```
pub fn replay_histories_in(
    orchestrations: &OrchestrationRegistry,
    dir: impl AsRef<Path>,
) -> Result<FolderReplay, FolderReplayError> {
    let dir = dir.as_ref();
    let unreadable =
        |e: std::io::Error| FolderReplayError::Unreadable { path: dir.to_path_buf(), message: e.to_string() };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.is_file() && path.extension().is_some_and(|x| x == "json") {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(FolderReplayError::Empty(dir.to_path_buf()));
    }
    files.sort();
    let mut out = FolderReplay { replayed: Vec::new(), failed: Vec::new() };
    for path in files {
        match replay_history_file(orchestrations, &path) {
            Ok(report) => out.replayed.push((path, report)),
            Err(e) => out.failed.push((path, e)),
        }
    }
    Ok(out)
}
