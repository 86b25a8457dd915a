//! What the determinism guard rejects by path, and why: each rule names a family, and each
//! family says what breaks on replay and what to use instead.

/// Why a family of calls breaks replay, and what to use instead. `{ctx}` is replaced by the
/// name of the function's context parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    Clock,
    Random,
    Guid,
    Sleep,
    Spawn,
    Io,
    Console,
    Select,
}

impl Family {
    pub(super) fn explain(self, ctx: &str) -> String {
        match self {
            Family::Clock => format!(
                "it reads the wall clock, which differs when the orchestration replays; use `{ctx}.utc_now().await` instead"
            ),
            Family::Random => format!(
                "it is random, so a replay would take a different path; use `{ctx}.system_new_guid().await` or draw the value in an activity"
            ),
            Family::Guid => format!(
                "it returns a different id on every replay; use `{ctx}.system_new_guid().await` instead"
            ),
            Family::Sleep => format!(
                "it waits on the real clock and is not recorded in history; use `{ctx}.schedule_timer(duration).await` instead"
            ),
            Family::Spawn => format!(
                "it starts work that replay cannot see or record; run concurrent durable work with `{ctx}.join(..)`, or move the work into an activity"
            ),
            Family::Io => format!(
                "it performs I/O whose result is not recorded in history; do it in an activity and call that with `{ctx}.call(..)`"
            ),
            Family::Console => format!(
                "standard streams are not recorded in history (input differs, output repeats on every replay); read input in an activity, log with `{ctx}.trace_info(..)`"
            ),
            Family::Select => format!(
                "it picks a branch by polling order, which differs on replay; use `{ctx}.select2(..)` or `{ctx}.select(..)`, which resolve in history order"
            ),
        }
    }
}

/// How a rule matches a path's segments.
pub(super) enum Pattern {
    /// The path ends with these segments (`SystemTime::now` matches
    /// `std::time::SystemTime::now`). Only for type-qualified calls, whose type name says
    /// what they are.
    Suffix(&'static [&'static str]),
    /// The path starts with this crate (after an optional `::`) and goes further.
    Crate(&'static str),
    /// The path starts with `std`, `core`, `tokio` or `async_std` and continues with these
    /// segments (`std::thread::sleep`, `tokio::time::sleep`). A bare `time::sleep` is not
    /// matched: it may be the user's own module, and clippy (which resolves paths) catches
    /// `use tokio::time; time::sleep(..)`.
    Rooted(&'static [&'static str]),
    /// The path starts with `std`, `core`, `tokio` or `async_std`, then this module, and goes
    /// further (`std::fs::read`, `tokio::net::TcpStream::connect`).
    RootedModule(&'static str),
}

pub(super) struct Rule {
    pub(super) pattern: Pattern,
    pub(super) family: Family,
}

const fn suffix(segments: &'static [&'static str], family: Family) -> Rule {
    Rule { pattern: Pattern::Suffix(segments), family }
}

const fn rooted(segments: &'static [&'static str], family: Family) -> Rule {
    Rule { pattern: Pattern::Rooted(segments), family }
}

/// Function and value paths banned in orchestration bodies.
pub(super) const PATH_RULES: &[Rule] = &[
    suffix(&["SystemTime", "now"], Family::Clock),
    suffix(&["SystemTime", "elapsed"], Family::Clock),
    suffix(&["Instant", "now"], Family::Clock),
    suffix(&["Instant", "elapsed"], Family::Clock),
    suffix(&["Utc", "now"], Family::Clock),
    suffix(&["Utc", "today"], Family::Clock),
    suffix(&["Local", "now"], Family::Clock),
    suffix(&["Local", "today"], Family::Clock),
    suffix(&["OffsetDateTime", "now_utc"], Family::Clock),
    suffix(&["OffsetDateTime", "now_local"], Family::Clock),
    Rule { pattern: Pattern::Crate("rand"), family: Family::Random },
    Rule { pattern: Pattern::Crate("fastrand"), family: Family::Random },
    Rule { pattern: Pattern::Crate("getrandom"), family: Family::Random },
    suffix(&["thread_rng"], Family::Random),
    suffix(&["Uuid", "new_v4"], Family::Guid),
    suffix(&["Uuid", "now_v1"], Family::Guid),
    suffix(&["Uuid", "now_v6"], Family::Guid),
    suffix(&["Uuid", "now_v7"], Family::Guid),
    suffix(&["Uuid", "new_v7"], Family::Guid),
    rooted(&["time", "sleep"], Family::Sleep),
    rooted(&["time", "sleep_until"], Family::Sleep),
    rooted(&["time", "interval"], Family::Sleep),
    rooted(&["time", "interval_at"], Family::Sleep),
    rooted(&["time", "timeout"], Family::Sleep),
    rooted(&["time", "timeout_at"], Family::Sleep),
    rooted(&["thread", "sleep"], Family::Sleep),
    rooted(&["task", "sleep"], Family::Sleep),
    suffix(&["tokio", "spawn"], Family::Spawn),
    rooted(&["task", "spawn"], Family::Spawn),
    rooted(&["task", "spawn_local"], Family::Spawn),
    rooted(&["task", "spawn_blocking"], Family::Spawn),
    rooted(&["thread", "spawn"], Family::Spawn),
    rooted(&["thread", "scope"], Family::Spawn),
    rooted(&["env", "var"], Family::Io),
    rooted(&["env", "var_os"], Family::Io),
    rooted(&["env", "vars"], Family::Io),
    rooted(&["env", "vars_os"], Family::Io),
    rooted(&["env", "args"], Family::Io),
    rooted(&["env", "args_os"], Family::Io),
    rooted(&["env", "current_dir"], Family::Io),
    Rule { pattern: Pattern::RootedModule("fs"), family: Family::Io },
    Rule { pattern: Pattern::RootedModule("net"), family: Family::Io },
    Rule { pattern: Pattern::RootedModule("process"), family: Family::Io },
    suffix(&["File", "open"], Family::Io),
    suffix(&["File", "create"], Family::Io),
    suffix(&["TcpStream", "connect"], Family::Io),
    suffix(&["TcpListener", "bind"], Family::Io),
    suffix(&["UdpSocket", "bind"], Family::Io),
    Rule { pattern: Pattern::Crate("reqwest"), family: Family::Io },
    rooted(&["io", "stdin"], Family::Console),
    rooted(&["io", "stdout"], Family::Console),
    rooted(&["io", "stderr"], Family::Console),
];

/// Macro paths banned in orchestration bodies. `select!` covers `tokio::select!` and the
/// non-biased `futures::select!`; `futures::select_biased!` polls in written order and is
/// allowed.
pub(super) const MACRO_RULES: &[Rule] = &[suffix(&["select"], Family::Select)];

const STD_LIKE: &[&str] = &["std", "core", "tokio", "async_std"];

impl Pattern {
    fn matches(&self, segments: &[String]) -> bool {
        let rooted_rest = || match segments.first() {
            Some(first) if STD_LIKE.contains(&first.as_str()) => Some(&segments[1..]),
            _ => None,
        };
        match self {
            Pattern::Suffix(suffix) => {
                segments.len() >= suffix.len()
                    && segments[segments.len() - suffix.len()..]
                        .iter()
                        .zip(suffix.iter())
                        .all(|(a, b)| a == b)
            }
            Pattern::Crate(name) => segments.len() >= 2 && segments[0] == *name,
            Pattern::Rooted(path) => rooted_rest().is_some_and(|rest| {
                rest.len() == path.len() && rest.iter().zip(path.iter()).all(|(a, b)| a == b)
            }),
            Pattern::RootedModule(module) => {
                rooted_rest().is_some_and(|rest| rest.len() >= 2 && rest[0] == *module)
            }
        }
    }
}

pub(super) fn find(rules: &[Rule], segments: &[String]) -> Option<Family> {
    rules.iter().find(|rule| rule.pattern.matches(segments)).map(|rule| rule.family)
}
