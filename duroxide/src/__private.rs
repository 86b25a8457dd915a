//! Items the macros expand to. Not public API: no stability promise.
