//! Nondeterminism: the failure of an execution whose code no longer makes the decisions
//! its history records.
//!
//! Decisions are matched by sequence as the code makes them (the n-th call must equal the
//! n-th decision event; see `EventKind::is_same_decision`); this file turns the first
//! mismatch into the failure that names the recorded call (kind, name, input digest, call
//! site, the version that recorded it) and the call the code made instead, which
//! orchestration and duroxide versions recorded the history and which replay it, and the
//! two ways to fix it.

use crate::history::{DUROXIDE_VERSION, ErrorDetails, EventKind, digest};
use crate::orchestration::state::{Divergence, ExecutionState};

/// The failure for `divergence` in the execution of `st`.
pub(super) fn failure(st: &ExecutionState, divergence: &Divergence) -> ErrorDetails {
    let expected = &divergence.expected;
    let actual = match &divergence.actual {
        Some(actual) => format!("the code now makes {}", describe(actual, None)),
        None => "the code did not make it".to_string(),
    };
    ErrorDetails::nondeterminism(format!(
        "nondeterministic orchestration '{}' (instance '{}', execution {}): history expected {} at \
         event {} but {actual}. {}",
        st.name(),
        st.instance(),
        st.execution_id(),
        describe(&expected.kind, Some(st.version())),
        expected.event_id,
        versions_and_fix(st),
    ))
}

/// Which versions recorded the history and which replay it, and how to fix the divergence.
///
/// The runtime replays an execution with the code registered under the version the
/// execution is pinned to, so the orchestration version is the same on both sides: what
/// changed is the code registered under it (and possibly the duroxide version).
fn versions_and_fix(st: &ExecutionState) -> String {
    let (name, version) = (st.name(), st.version());
    let recorded_with = st
        .history()
        .first()
        .and_then(|e| match &e.kind {
            EventKind::OrchestrationStarted { duroxide_version, .. } => Some(duroxide_version.as_str()),
            _ => None,
        })
        .unwrap_or("an unknown version");
    format!(
        "The history was recorded by '{name}' version {version} (duroxide {recorded_with}) and is \
         replayed by the code now registered as '{name}' version {version} (duroxide \
         {DUROXIDE_VERSION}). To fix it, register the code that recorded it as version {version} \
         again and give the changed code a new version (instances stay on the version they \
         started with), or move running instances to the new version with \
         continue_as_new_versioned."
    )
}

/// Describes a decision for a nondeterminism message: kind, name, input digest, call site
/// and (for recorded decisions) the version that recorded it.
fn describe(kind: &EventKind, recorded_by: Option<&str>) -> String {
    let site = |s: &Option<String>| s.clone().unwrap_or_else(|| "unknown call site".into());
    let by = recorded_by.map(|v| format!(", recorded by version {v}")).unwrap_or_default();
    match kind {
        EventKind::ActivityScheduled { name, input, call_site, session_id: None, .. } => {
            format!("schedule_activity(\"{name}\", input #{}) at {}{by}", digest(input), site(call_site))
        }
        EventKind::ActivityScheduled { name, input, call_site, session_id: Some(session), .. } => format!(
            "schedule_activity_on_session(\"{name}\", input #{}, session \"{session}\") at {}{by}",
            digest(input),
            site(call_site)
        ),
        EventKind::TimerCreated { delay_ms, call_site, .. } => {
            format!("schedule_timer({delay_ms} ms) at {}{by}", site(call_site))
        }
        EventKind::ExternalSubscribed { name, call_site } => {
            format!("schedule_wait(\"{name}\") at {}{by}", site(call_site))
        }
        EventKind::SubOrchestrationScheduled { name, instance, input, call_site, .. } => format!(
            "schedule_sub_orchestration(\"{name}\", instance \"{instance}\", input #{}) at {}{by}",
            digest(input),
            site(call_site)
        ),
        EventKind::OrchestrationChained { name, instance, input, call_site, .. } => format!(
            "schedule_orchestration(\"{name}\", instance \"{instance}\", input #{}) at {}{by}",
            digest(input),
            site(call_site)
        ),
        EventKind::SystemCall { op, call_site, .. } => {
            format!("system call {op} at {}{by}", site(call_site))
        }
        EventKind::ValueSet { key, value, call_site } => {
            format!("set_value(\"{key}\", value #{}) at {}{by}", digest(value), site(call_site))
        }
        EventKind::ValueCleared { key, call_site } => {
            format!("clear_value(\"{key}\") at {}{by}", site(call_site))
        }
        EventKind::ValuesCleared { call_site } => format!("clear_all() at {}{by}", site(call_site)),
        EventKind::ValueReadScheduled { instance, key, call_site } => {
            format!("get_value_from(\"{instance}\", \"{key}\") at {}{by}", site(call_site))
        }
        other => other.type_name().to_string(),
    }
}
