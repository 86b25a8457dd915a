//! Query strings and form bodies, read by hand so that a bad value gets a 400 page naming
//! the parameter and what it expects (a typo in a parameter name too), and times as the
//! console's forms take them.

use super::error::ConsoleError;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The parameters of a query string or form body, in order.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Reads a query string (`None`: no `?`) or a form body.
    pub(crate) fn parse(raw: &[u8]) -> Self {
        Self { pairs: form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect() }
    }

    /// Fails on the first parameter not in `allowed`, listing those that are.
    pub(crate) fn only(&self, allowed: &[&str]) -> Result<(), ConsoleError> {
        match self.pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            Some((k, _)) => Err(ConsoleError::bad(
                k,
                format!("unknown parameter; this page takes {}", allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// The value of `key` given at most once, trimmed; an empty value counts as absent (a
    /// form's empty field).
    pub(crate) fn one(&self, key: &str) -> Result<Option<&str>, ConsoleError> {
        let mut values = self.pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.trim());
        let first = values.next();
        if values.next().is_some() {
            return Err(ConsoleError::bad(key, "given more than once"));
        }
        Ok(first.filter(|v| !v.is_empty()))
    }

    /// The value of `key` given at most once, untouched (a payload, where spaces count).
    pub(crate) fn raw(&self, key: &str) -> Result<Option<&str>, ConsoleError> {
        let mut values = self.pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ConsoleError::bad(key, "given more than once"));
        }
        Ok(first)
    }

    /// Every non-empty value of `key`, split at commas (`state=running,failed` and
    /// `state=running&state=failed` are the same).
    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// `key` as a number in `range`.
    pub(crate) fn number<T>(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, ConsoleError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(text) = self.one(key)? else { return Ok(None) };
        match text.parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(ConsoleError::bad(
                key,
                format!("'{text}' is not a whole number from {} to {}", range.start(), range.end()),
            )),
        }
    }

    /// `key` as a time ([`parse_time`]).
    pub(crate) fn time(&self, key: &str, now: SystemTime) -> Result<Option<u64>, ConsoleError> {
        self.one(key)?
            .map(|t| parse_time(t, now).map_err(|problem| ConsoleError::bad(key, problem)))
            .transpose()
    }
}

/// A time as the filter form takes it, as ms since the epoch: `2026-12-01T10:30:00Z`
/// (RFC 3339, fractions allowed), `2026-12-01T10:30` or `2026-12-01 10:30` (UTC),
/// `2026-12-01` (midnight UTC), or an age such as `7d`, `12h`, `30m` (that long before
/// `now`).
pub(crate) fn parse_time(text: &str, now: SystemTime) -> Result<u64, String> {
    let t = text.trim();
    let expected = "expected a time such as 2026-12-01T00:00:00Z, 2026-12-01 10:30 or 2026-12-01 (UTC), \
                    or an age such as 7d, 12h or 30m (that long ago)";
    let bytes = t.as_bytes();
    let looks_like_date = bytes.len() >= 10 && bytes[4] == b'-' && bytes[7] == b'-';
    let absolute = if !looks_like_date {
        None
    } else if t.len() == 10 {
        humantime::parse_rfc3339(&format!("{t}T00:00:00Z")).ok()
    } else if t.len() == 16 {
        // What `<input type="datetime-local">` sends: no seconds, no zone.
        humantime::parse_rfc3339_weak(&format!("{t}:00")).ok()
    } else {
        humantime::parse_rfc3339_weak(t).ok()
    };
    if let Some(at) = absolute {
        return Ok(ms_of(at));
    }
    if looks_like_date {
        return Err(format!("'{t}' is not a valid date and time: {expected}"));
    }
    match humantime::parse_duration(t) {
        Ok(age) => Ok(ms_of(now.checked_sub(age).unwrap_or(UNIX_EPOCH))),
        Err(_) => Err(format!("'{t}' is not a time: {expected}")),
    }
}

fn ms_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// A time in ms as the form takes it back exactly (RFC 3339 with milliseconds).
pub(crate) fn format_time(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn times_in_every_form_the_page_takes() {
        let now = at(10 * 86_400_000);
        assert_eq!(parse_time("1970-01-02", now).unwrap(), 86_400_000);
        assert_eq!(parse_time("1970-01-01T00:01", now).unwrap(), 60_000);
        assert_eq!(parse_time("1970-01-01 00:01", now).unwrap(), 60_000);
        assert_eq!(parse_time("1970-01-01T00:00:01Z", now).unwrap(), 1_000);
        assert_eq!(parse_time("1970-01-01T00:00:01.250Z", now).unwrap(), 1_250);
        assert_eq!(parse_time("7d", now).unwrap(), 3 * 86_400_000);
        assert_eq!(parse_time(&format_time(123_456), now).unwrap(), 123_456);
        for bad in ["", "yesterday", "2026-13-45", "7 parsecs", "2026-12-01T25:00"] {
            let e = parse_time(bad, now).unwrap_err();
            assert!(e.contains("expected a time"), "{bad}: {e}");
        }
    }

    #[test]
    fn parameters_are_checked() {
        let p = Params::parse(b"state=running,failed&state=pending&name=&limit=20&limit=30&x=%C3%A9");
        assert_eq!(p.all("state"), ["running", "failed", "pending"]);
        assert_eq!(p.one("name").unwrap(), None);
        assert!(p.one("limit").unwrap_err().to_string().contains("more than once"));
        let e = p.only(&["state", "name", "limit"]).unwrap_err().to_string();
        assert!(e.contains("'x'") && e.contains("this page takes state, name, limit"), "{e}");
        let n = Params::parse(b"limit=0");
        assert!(n.number::<u32>("limit", 1..=500).unwrap_err().to_string().contains("from 1 to 500"));
        assert_eq!(Params::parse(b"limit=5").number::<u32>("limit", 1..=500).unwrap(), Some(5));
        assert_eq!(Params::parse(b"data=+a+").raw("data").unwrap(), Some(" a "));
    }
}
