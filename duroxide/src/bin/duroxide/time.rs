//! Times on the command line: absolute (`2026-12-01T00:00:00Z`, `2026-12-01`) or an age
//! (`7d`, `12h`, `90m`: that long before now), as milliseconds since the epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a time flag (a clap value parser: an error here is a usage error).
pub fn parse_time(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let hint = "expected a time such as 2026-12-01T00:00:00Z or 2026-12-01 (UTC), \
                or an age such as 7d, 12h, 30m (that long ago)";
    if t.is_empty() {
        return Err(hint.to_string());
    }
    // A plain date is midnight UTC.
    let absolute = if t.len() == 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-' {
        humantime::parse_rfc3339(&format!("{t}T00:00:00Z")).ok()
    } else if t.as_bytes()[0].is_ascii_digit() && t.contains('-') {
        humantime::parse_rfc3339_weak(t).ok()
    } else {
        None
    };
    if let Some(at) = absolute {
        return Ok(ms_of(at));
    }
    match humantime::parse_duration(t) {
        Ok(age) => Ok(ms_of(SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH))),
        Err(_) => Err(format!("'{t}' is not a time: {hint}")),
    }
}

fn ms_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// A time in ms since the epoch as RFC 3339 in UTC, to the second.
pub fn format_ms(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A duration in ms as a short human form (`1h 2m 3s`, `250ms`).
pub fn format_age(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_times() {
        assert_eq!(parse_time("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_time("1970-01-01T00:00:01Z").unwrap(), 1_000);
        assert_eq!(format_ms(1_000), "1970-01-01T00:00:01Z");
    }

    #[test]
    fn ages_are_before_now() {
        let week_ms = 7 * 86_400_000;
        let before = ms_of(SystemTime::now());
        let week = parse_time("7d").unwrap();
        let after = ms_of(SystemTime::now());
        // The age is taken from the clock between the two readings.
        assert!(week >= before - week_ms && week <= after - week_ms, "{before} {week} {after}");
        assert!(parse_time("1h 30m").unwrap() < before);
    }

    #[test]
    fn bad_times_say_what_is_expected() {
        for bad in ["", "yesterday", "2026-13-45", "7 parsecs"] {
            let e = parse_time(bad).unwrap_err();
            assert!(e.contains("expected a time"), "{bad}: {e}");
        }
    }
}
