//! The instance cache: live orchestrations kept in memory between turns on this node, so a
//! turn continues a replay engine instead of replaying the history from the start.
//!
//! Whether a cached copy may be used for a turn is decided by the turn (it compares it with
//! the stored history), not here.

use super::Inner;
use crate::provider::CachedPosition;
use crate::replay::ReplayEngine;
use std::collections::{BTreeMap, HashMap};

/// A live orchestration kept between turns (see `RuntimeOptions::instance_cache_size`).
pub(super) struct CachedInstance {
    pub(super) execution_id: u64,
    /// The store's history revision when this copy was last checked against it.
    pub(super) history_rev: u64,
    pub(super) engine: ReplayEngine,
}

/// A bounded least-recently-used map of live orchestrations.
#[derive(Default)]
pub(super) struct InstanceCache {
    tick: u64,
    entries: HashMap<String, (u64, CachedInstance)>,
    order: BTreeMap<u64, String>,
}

impl InstanceCache {
    /// Live orchestrations held now.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn peek(&self, instance: &str) -> Option<&CachedInstance> {
        self.entries.get(instance).map(|(_, c)| c)
    }

    pub(super) fn take(&mut self, instance: &str) -> Option<CachedInstance> {
        let (tick, c) = self.entries.remove(instance)?;
        self.order.remove(&tick);
        Some(c)
    }

    pub(super) fn put(&mut self, instance: String, c: CachedInstance, capacity: usize) {
        self.take(&instance);
        self.tick += 1;
        self.order.insert(self.tick, instance.clone());
        self.entries.insert(instance, (self.tick, c));
        while self.entries.len() > capacity {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.entries.remove(&oldest);
        }
    }
}

/// Where this node's live copy of an instance stands, so the store may skip reading its
/// history.
pub(super) fn cached_position(inner: &Inner, instance: &str) -> Option<CachedPosition> {
    let cache = inner.cache.lock().unwrap_or_else(|e| e.into_inner());
    cache.peek(instance).map(|c| CachedPosition {
        execution_id: c.execution_id,
        last_event_id: c.engine.history_len() as u64,
    })
}
