//! [`Clock`]: where a node reads the time that orchestration code sees.
//!
//! The time a turn runs at becomes `ctx.utc_now()`, the timestamps of the events it writes
//! and the base of the due time of the timers it creates. Production nodes read the system
//! clock ([`SystemClock`], the default of [`RuntimeOptions::clock`](super::RuntimeOptions));
//! the test kit injects a virtual one (`duroxide::testing::VirtualClock`) so that tests
//! move time by hand instead of waiting for it. Not here: lock expiry, queue visibility and
//! metrics, which always use the system clock of the store and the node.

use std::fmt::Debug;

/// A source of the current time for orchestration turns.
pub trait Clock: Debug + Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock: what every node uses unless its options say otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        crate::now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_the_time_since_the_epoch() {
        let before =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let now = SystemClock.now_ms();
        assert!(now >= before && now < before + 60_000, "{now} vs {before}");
    }
}
