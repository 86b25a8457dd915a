//! Durable values in a store: what a turn's commit writes to the instance's values
//! ([`value_writes`], from the value events among its new events), shared by every store
//! so they all keep the same projection of the history. Not here: the orchestration side
//! (`orchestration::values`) and each store's SQL.

use crate::history::{Event, EventKind};
use std::collections::BTreeMap;

/// One change to an instance's values, in the order a commit applies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueWrite {
    /// Insert or replace `key`.
    Set {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Remove `key` (nothing happens when it is not set).
    Clear {
        /// The key.
        key: String,
    },
    /// Remove every key of the instance.
    ClearAll,
}

/// The writes the value events among `events` make, in order. A `ValuesCarried` (the
/// start of a continued execution) replaces everything with what it carries, which is
/// what the store holds already unless it was changed behind the runtime's back.
pub fn value_writes(events: &[Event]) -> Vec<ValueWrite> {
    let mut writes = Vec::new();
    for e in events {
        match &e.kind {
            EventKind::ValueSet { key, value, .. } => {
                writes.push(ValueWrite::Set { key: key.clone(), value: value.clone() })
            }
            EventKind::ValueCleared { key, .. } => writes.push(ValueWrite::Clear { key: key.clone() }),
            EventKind::ValuesCleared { .. } => writes.push(ValueWrite::ClearAll),
            EventKind::ValuesCarried { values } => {
                writes.push(ValueWrite::ClearAll);
                writes
                    .extend(values.iter().map(|(k, v)| ValueWrite::Set { key: k.clone(), value: v.clone() }));
            }
            _ => {}
        }
    }
    writes
}

/// Applies `writes` to `values` (what a store does, for code that keeps values in memory).
pub fn apply_value_writes(values: &mut BTreeMap<String, String>, writes: Vec<ValueWrite>) {
    for w in writes {
        match w {
            ValueWrite::Set { key, value } => {
                values.insert(key, value);
            }
            ValueWrite::Clear { key } => {
                values.remove(&key);
            }
            ValueWrite::ClearAll => values.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: u64, kind: EventKind) -> Event {
        Event { event_id: id, timestamp_ms: 0, kind }
    }

    #[test]
    fn value_events_become_writes_in_order_and_others_are_skipped() {
        let carried = [("a".to_string(), "1".to_string())].into_iter().collect();
        let events = vec![
            ev(2, EventKind::ValuesCarried { values: carried }),
            ev(3, EventKind::ValueSet { key: "b".into(), value: "2".into(), call_site: None }),
            ev(4, EventKind::TimerFired { source_event_id: 1, fire_at_ms: 0 }),
            ev(5, EventKind::ValueCleared { key: "a".into(), call_site: None }),
            ev(6, EventKind::ValuesCleared { call_site: None }),
        ];
        assert_eq!(
            value_writes(&events),
            vec![
                ValueWrite::ClearAll,
                ValueWrite::Set { key: "a".into(), value: "1".into() },
                ValueWrite::Set { key: "b".into(), value: "2".into() },
                ValueWrite::Clear { key: "a".into() },
                ValueWrite::ClearAll,
            ]
        );
    }
}
