//! [`VirtualClock`]: the time of a [`TestHarness`](super::TestHarness), which moves only when
//! the harness moves it.
//!
//! The runtime reads it for every turn (through [`Clock`]), so `ctx.utc_now()`, event
//! timestamps and timer due times follow it. Activity mocks that take virtual time park on
//! [`VirtualClock::sleep`]; the harness counts them as idle and wakes them when the clock
//! reaches their time. Not here: deciding when to move the clock (the harness does).

use crate::runtime::Clock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// A clock that stands still until it is moved: the time of a test harness.
///
/// Clones share the same time.
///
/// ```
/// use duroxide::runtime::Clock;
/// use duroxide::testing::VirtualClock;
/// use std::time::Duration;
/// let clock = VirtualClock::starting_at_ms(1_000);
/// assert_eq!(clock.now_ms(), 1_000);
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(clock.now_ms(), 3_000);
/// ```
#[derive(Debug, Clone)]
pub struct VirtualClock {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    now_ms: AtomicU64,
    /// Virtual sleeps not yet due: when each ends, and who to wake.
    sleepers: Mutex<Vec<Sleeper>>,
}

#[derive(Debug)]
struct Sleeper {
    wake_at_ms: u64,
    wake: oneshot::Sender<()>,
}

impl VirtualClock {
    /// A clock that reads `ms` (milliseconds since the Unix epoch) until moved.
    pub fn starting_at_ms(ms: u64) -> Self {
        Self { shared: Arc::new(Shared { now_ms: AtomicU64::new(ms), sleepers: Mutex::new(Vec::new()) }) }
    }

    /// A clock that starts at the system time of the call.
    pub fn starting_now() -> Self {
        Self::starting_at_ms(crate::now_ms())
    }

    /// The virtual time, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.shared.now_ms.load(Ordering::SeqCst)
    }

    /// The virtual time.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms())
    }

    /// Moves the clock forward by `by` and wakes the sleeps that are due. Only the clock:
    /// the timers of a harness fire through
    /// [`TestHarness::advance`](super::TestHarness::advance).
    pub fn advance(&self, by: Duration) {
        self.advance_to(self.now_ms().saturating_add(by.as_millis() as u64));
    }

    /// Moves the clock to `ms` (never backwards) and wakes the sleeps due by then.
    pub(crate) fn advance_to(&self, ms: u64) {
        self.shared.now_ms.fetch_max(ms, Ordering::SeqCst);
        let now = self.now_ms();
        let mut sleepers = lock(&self.shared.sleepers);
        let (due, waiting): (Vec<Sleeper>, Vec<Sleeper>) =
            sleepers.drain(..).partition(|s| s.wake_at_ms <= now);
        *sleepers = waiting;
        drop(sleepers);
        for s in due {
            // A sleeper whose future was dropped no longer listens.
            let _ = s.wake.send(());
        }
    }

    /// Completes when the clock has moved `duration` past the time of the call. While it
    /// waits, a harness counts the caller as idle (it waits for time, not for work).
    pub fn sleep(&self, duration: Duration) -> impl std::future::Future<Output = ()> + Send + use<> {
        let wake_at_ms = self.now_ms().saturating_add(duration.as_millis() as u64);
        let (tx, rx) = oneshot::channel();
        if wake_at_ms <= self.now_ms() {
            let _ = tx.send(());
        } else {
            lock(&self.shared.sleepers).push(Sleeper { wake_at_ms, wake: tx });
        }
        async move {
            // The sender is only dropped after sending, or with the clock itself.
            let _ = rx.await;
        }
    }

    /// Ends every waiting sleep now (a harness shutting down lets parked mocks finish).
    pub(crate) fn wake_all(&self) {
        let sleepers = std::mem::take(&mut *lock(&self.shared.sleepers));
        for s in sleepers {
            let _ = s.wake.send(());
        }
    }

    /// How many sleeps are waiting (their futures still alive).
    pub(crate) fn sleeping(&self) -> usize {
        let mut sleepers = lock(&self.shared.sleepers);
        sleepers.retain(|s| !s.wake.is_closed());
        sleepers.len()
    }

    /// When the earliest waiting sleep ends.
    pub(crate) fn next_wake_ms(&self) -> Option<u64> {
        let mut sleepers = lock(&self.shared.sleepers);
        sleepers.retain(|s| !s.wake.is_closed());
        sleepers.iter().map(|s| s.wake_at_ms).min()
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        VirtualClock::now_ms(self)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleeps_end_when_the_clock_reaches_them_and_never_before() {
        let clock = VirtualClock::starting_at_ms(0);
        let mut short = Box::pin(clock.sleep(Duration::from_millis(10)));
        let mut long = Box::pin(clock.sleep(Duration::from_millis(20)));
        assert_eq!(clock.sleeping(), 2);
        assert_eq!(clock.next_wake_ms(), Some(10));
        fn pending(f: &mut std::pin::Pin<Box<impl std::future::Future<Output = ()>>>) -> bool {
            futures::FutureExt::now_or_never(f.as_mut()).is_none()
        }
        assert!(pending(&mut short) && pending(&mut long));
        clock.advance(Duration::from_millis(10));
        assert!(!pending(&mut short), "due at 10");
        assert!(pending(&mut long), "due at 20");
        assert_eq!(clock.next_wake_ms(), Some(20));
        drop(long);
        assert_eq!(clock.sleeping(), 0, "a dropped sleep no longer counts");
    }

    #[test]
    fn the_clock_never_goes_back() {
        let clock = VirtualClock::starting_at_ms(50);
        clock.advance_to(10);
        assert_eq!(clock.now_ms(), 50);
    }
}
