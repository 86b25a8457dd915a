//! Type-level checks the orchestration macros wrap around calls whose safety depends on the
//! receiver's type, which a macro cannot see: iterating a `HashMap`/`HashSet` (its order
//! differs between processes), `elapsed()` on a clock reading, reading standard input.
//!
//! For `m.iter()` inside an `#[orchestration]` or `#[deterministic]` function the macro emits
//! `{ check_order((&Probe(&m)).__duroxide_order()); m.iter() }` (spanned at the user's call).
//! Method lookup picks an impl by the probed type: `Probe<HashMap<..>>` (and references to
//! it, and the hash iterators) have a by-value impl returning a marker that fails the
//! `check_*` bound with a message naming the fix; every other type only matches the
//! fallback impl on `&Probe<T>`, one autoref further, returning the accepted marker. The
//! check is on the concrete type at the call site, so a user type that happens to have an
//! `iter`, `elapsed` or `read_line` method is never flagged, and nothing runs at run time
//! beyond taking a reference.

use std::collections::{HashMap, HashSet, hash_map, hash_set};
use std::marker::PhantomData;

/// A reference to the value under test, so impls can be chosen by its type.
pub struct Probe<'a, T: ?Sized>(pub &'a T);

/// The probed value is fine.
pub struct Accepted;

/// The probed value iterates in hash order.
pub struct HashOrder(PhantomData<()>);

/// The probed value is a clock reading.
pub struct ClockReading(PhantomData<()>);

/// The probed value is standard input.
pub struct ConsoleInput(PhantomData<()>);

/// Iteration whose order is the same in every process.
#[diagnostic::on_unimplemented(
    message = "iterating a `HashMap` or `HashSet` is not allowed in an orchestration: its order differs between processes, so a replay on another node can schedule work in another order",
    label = "iterates in hash order",
    note = "use a `BTreeMap`/`BTreeSet` (or an `IndexMap`), or convert without iterating: `BTreeMap::from_iter(map)`, or `Vec::from_iter(map)` and sort it"
)]
pub trait DeterministicOrder {}
#[diagnostic::do_not_recommend]
impl DeterministicOrder for Accepted {}

/// A method that does not read the clock.
#[diagnostic::on_unimplemented(
    message = "`elapsed()` is not allowed in an orchestration: it reads the wall clock, which differs when the orchestration replays",
    label = "reads the wall clock",
    note = "take `ctx.utc_now().await` at both points and subtract, or wait with `ctx.schedule_timer(..)`"
)]
pub trait NoClockRead {}
#[diagnostic::do_not_recommend]
impl NoClockRead for Accepted {}

/// A method that does not read standard input.
#[diagnostic::on_unimplemented(
    message = "reading standard input is not allowed in an orchestration: what it reads is not recorded in history",
    label = "reads standard input",
    note = "read it in an activity and call that with `ctx.call(..)`, or send it in as an event"
)]
pub trait NoConsoleInput {}
#[diagnostic::do_not_recommend]
impl NoConsoleInput for Accepted {}

/// Fails to compile for a hash-ordered probe.
pub fn check_order<M: DeterministicOrder>(_: M) {}
/// Fails to compile for a clock probe.
pub fn check_clock<M: NoClockRead>(_: M) {}
/// Fails to compile for a standard-input probe.
pub fn check_console<M: NoConsoleInput>(_: M) {}

/// By-value impls for the flagged types; chosen before the fallback.
pub trait HashOrderProbe {
    /// The hash-order marker.
    fn __duroxide_order(&self) -> HashOrder {
        HashOrder(PhantomData)
    }
}
/// The fallback, one autoref away.
pub trait OrderProbe {
    /// The accepted marker.
    fn __duroxide_order(&self) -> Accepted {
        Accepted
    }
}
impl<T: ?Sized> OrderProbe for &Probe<'_, T> {}

/// By-value impls for clock readings.
pub trait ClockProbe {
    /// The clock marker.
    fn __duroxide_clock(&self) -> ClockReading {
        ClockReading(PhantomData)
    }
}
/// The fallback for `elapsed`.
pub trait NotClockProbe {
    /// The accepted marker.
    fn __duroxide_clock(&self) -> Accepted {
        Accepted
    }
}
impl<T: ?Sized> NotClockProbe for &Probe<'_, T> {}

/// By-value impls for standard input.
pub trait ConsoleProbe {
    /// The console marker.
    fn __duroxide_console(&self) -> ConsoleInput {
        ConsoleInput(PhantomData)
    }
}
/// The fallback for reads.
pub trait NotConsoleProbe {
    /// The accepted marker.
    fn __duroxide_console(&self) -> Accepted {
        Accepted
    }
}
impl<T: ?Sized> NotConsoleProbe for &Probe<'_, T> {}

/// Implements a probe trait for a type, a shared and a mutable reference to it, and a
/// reference to either (`m`, `&m`, `&mut m`, and a `&HashMap` parameter taken by `&`).
macro_rules! probe {
    ($trait:ident: $([$($g:tt)*] $ty:ty),* $(,)?) => {$(
        impl<$($g)*> $trait for Probe<'_, $ty> {}
        impl<$($g)*> $trait for Probe<'_, &$ty> {}
        impl<$($g)*> $trait for Probe<'_, &mut $ty> {}
        impl<$($g)*> $trait for Probe<'_, &&$ty> {}
        impl<$($g)*> $trait for Probe<'_, &&mut $ty> {}
    )*};
}

probe!(HashOrderProbe:
    [K, V, S] HashMap<K, V, S>,
    [T, S] HashSet<T, S>,
    ['a, K, V] hash_map::Iter<'a, K, V>,
    ['a, K, V] hash_map::IterMut<'a, K, V>,
    ['a, K, V] hash_map::Keys<'a, K, V>,
    ['a, K, V] hash_map::Values<'a, K, V>,
    ['a, K, V] hash_map::ValuesMut<'a, K, V>,
    ['a, K, V] hash_map::Drain<'a, K, V>,
    [K, V] hash_map::IntoIter<K, V>,
    [K, V] hash_map::IntoKeys<K, V>,
    [K, V] hash_map::IntoValues<K, V>,
    ['a, T] hash_set::Iter<'a, T>,
    ['a, T] hash_set::Drain<'a, T>,
    [T] hash_set::IntoIter<T>,
    ['a, T, S] hash_set::Union<'a, T, S>,
    ['a, T, S] hash_set::Intersection<'a, T, S>,
    ['a, T, S] hash_set::Difference<'a, T, S>,
    ['a, T, S] hash_set::SymmetricDifference<'a, T, S>,
);

probe!(ClockProbe:
    [] std::time::Instant,
    [] std::time::SystemTime,
    [] tokio::time::Instant,
);

probe!(ConsoleProbe:
    [] std::io::Stdin,
    ['a] std::io::StdinLock<'a>,
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    // The accepted side: these compile, so ordered collections and look-alikes pass.
    #[test]
    fn ordered_collections_and_look_alikes_are_accepted() {
        struct MyMap;
        impl MyMap {
            fn iter(&self) -> std::ops::Range<u8> {
                0..2
            }
        }
        let b: BTreeMap<u8, u8> = BTreeMap::new();
        let v = vec![1, 2];
        let mine = MyMap;
        check_order((&Probe(&b)).__duroxide_order());
        check_order((&Probe(&v)).__duroxide_order());
        check_order((&Probe(&mine)).__duroxide_order());
        assert_eq!(mine.iter().count(), 2);
        check_clock((&Probe(&std::time::Duration::ZERO)).__duroxide_clock());
        check_console((&Probe(&"text")).__duroxide_console());
    }

    // The rejected side is pinned by the trybuild cases in `ui-tests/`; here the markers
    // are told apart by type.
    // Written exactly as the macro writes them (the `&` is what makes the fallback reachable
    // for every other type).
    #[allow(clippy::needless_borrow)]
    #[test]
    fn hash_types_clocks_and_stdin_get_their_markers() {
        let m: HashMap<u8, u8> = HashMap::new();
        let r = &m;
        let HashOrder(_) = (&Probe(&m)).__duroxide_order();
        let HashOrder(_) = (&Probe(&r)).__duroxide_order();
        let HashOrder(_) = (&Probe(&m.keys())).__duroxide_order();
        let ClockReading(_) = (&Probe(&std::time::SystemTime::UNIX_EPOCH)).__duroxide_clock();
        let ConsoleInput(_) = (&Probe(&std::io::stdin())).__duroxide_console();
    }
}
