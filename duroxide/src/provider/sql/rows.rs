//! Decoding rows both stores lay out alike: instance records (strict and lenient),
//! activities, executions and the management reads' rows. Each store reads its own attempt counter (the column types differ) and
//! passes it in.

use super::parse_details;
use crate::history::Event;
use crate::provider::{
    ActivityWorkItem, BlockedInstance, ExecutionRecord, InstanceRecord, InstanceState, ProviderError,
    VersionCount,
};
use sqlx::Row;

/// Typed column reads over either store's rows. A column that is missing or of the wrong
/// type is a storage failure, as any other read error.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String, ProviderError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, ProviderError>;
    fn int(&self, column: &str) -> Result<i64, ProviderError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, ProviderError>;
}

macro_rules! columns_for {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, column: &str) -> Result<String, ProviderError> {
                self.try_get(column).map_err(read_failed)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, ProviderError> {
                self.try_get(column).map_err(read_failed)
            }
            fn int(&self, column: &str) -> Result<i64, ProviderError> {
                self.try_get(column).map_err(read_failed)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, ProviderError> {
                self.try_get(column).map_err(read_failed)
            }
        }
    };
}

#[cfg(feature = "sqlite")]
columns_for!(sqlx::sqlite::SqliteRow);
#[cfg(feature = "postgres")]
columns_for!(sqlx::postgres::PgRow);

fn read_failed(e: sqlx::Error) -> ProviderError {
    ProviderError::Storage(e.to_string())
}

/// An activity from a `worker_queue` row, with the attempt the store counted.
pub(crate) fn activity_from_row(
    r: &impl Columns,
    lock_token: String,
    session_id: Option<String>,
    session_claimed: bool,
    attempt: u32,
) -> Result<ActivityWorkItem, ProviderError> {
    Ok(ActivityWorkItem {
        instance: r.text("instance_id")?,
        execution_id: r.int("execution_id")? as u64,
        event_id: r.int("event_id")? as u64,
        name: r.text("name")?,
        input: r.text("input")?,
        session_id,
        lock_token,
        attempt,
        session_claimed,
        visible_at_ms: r.int("visible_at")? as u64,
        tag: r.opt_text("tag")?,
        orchestration_name: r.opt_text("orchestration_name")?.unwrap_or_default(),
        orchestration_version: r.opt_text("orchestration_version")?.unwrap_or_default(),
    })
}

pub(crate) fn record_from_row(r: &impl Columns) -> Result<InstanceRecord, ProviderError> {
    let (record, bad_state) = locked_record_from_row(r)?;
    match bad_state {
        Some(why) => Err(ProviderError::Corrupt(why)),
        None => Ok(record),
    }
}

/// The record of an instance a fetch locked. An unknown state string does not fail the
/// fetch (that would stall every other instance): the record says `Running` and the
/// returned problem becomes the item's `history_error`, so the runtime fails the instance
/// after `max_attempts`, which rewrites the state.
pub(crate) fn locked_record_from_row(
    r: &impl Columns,
) -> Result<(InstanceRecord, Option<String>), ProviderError> {
    let state = r.text("state")?;
    let parsed = InstanceState::parse(&state);
    let bad_state = parsed.is_none().then(|| format!("unknown instance state '{state}'"));
    let record = InstanceRecord {
        instance: r.text("instance_id")?,
        name: r.text("name")?,
        version: r.opt_text("version")?,
        execution_id: r.int("execution_id")? as u64,
        state: parsed.unwrap_or(InstanceState::Running),
        output: r.opt_text("output")?,
        error: parse_details(r.opt_text("error")?),
        custom_status: r.opt_text("custom_status")?,
        custom_status_version: r.int("custom_status_version")? as u64,
        parent_instance: r.opt_text("parent_instance")?,
        duroxide_version: r.opt_text("duroxide_version")?,
        status_note: r.opt_text("status_note")?,
        created_at_ms: r.int("created_at")? as u64,
        updated_at_ms: r.int("updated_at")? as u64,
    };
    Ok((record, bad_state))
}

/// An `executions` row (`execution_id`, `version`, `state`, `started_at`, `updated_at`)
/// with its event count.
pub(crate) fn execution_from_row(
    r: &impl Columns,
    event_count: u64,
) -> Result<ExecutionRecord, ProviderError> {
    let state = r.text("state")?;
    Ok(ExecutionRecord {
        execution_id: r.int("execution_id")? as u64,
        version: r.text("version")?,
        state: InstanceState::parse(&state)
            .ok_or_else(|| ProviderError::Corrupt(format!("unknown execution state '{state}'")))?,
        event_count,
        started_at_ms: r.int("started_at")? as u64,
        updated_at_ms: r.int("updated_at")? as u64,
    })
}

/// A row of the per-version counts (`name`, `version`, `duroxide_version`, `state`, `n`); `None` for a row
/// whose state is unknown.
pub(crate) fn version_count_from_row(r: &impl Columns) -> Result<Option<VersionCount>, ProviderError> {
    let state = r.text("state")?;
    let name = r.text("name")?;
    // A corrupt row must not hide everyone else's counts: skip it, loudly.
    let Some(state) = InstanceState::parse(&state) else {
        tracing::warn!(orchestration = %name, "instances with unknown state '{state}' left out of the counts");
        return Ok(None);
    };
    Ok(Some(VersionCount {
        name,
        version: r.opt_text("version")?,
        duroxide_version: r.opt_text("duroxide_version")?,
        state,
        count: r.int("n")? as u64,
    }))
}

pub(crate) fn blocked_instance(r: InstanceRecord) -> BlockedInstance {
    BlockedInstance {
        instance: r.instance,
        name: r.name,
        version: r.version,
        duroxide_version: r.duroxide_version,
    }
}

/// The execution a history read without an explicit one means: the instance's current.
pub(crate) fn current_execution(
    record: Option<InstanceRecord>,
    instance: &str,
) -> Result<u64, ProviderError> {
    match record {
        Some(r) => Ok(r.execution_id),
        None => Err(ProviderError::InstanceNotFound(instance.to_string())),
    }
}

/// A loaded history as a read returns it: unreadable is corrupt.
pub(crate) fn events_or_corrupt(
    loaded: (Vec<Event>, Option<String>, u64),
) -> Result<Vec<Event>, ProviderError> {
    match loaded {
        (_, Some(why), _) => Err(ProviderError::Corrupt(why)),
        (events, None, _) => Ok(events),
    }
}
