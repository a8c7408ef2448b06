//! Timestamps are nanoseconds since the Unix epoch, UTC, as `i64`: enough for ±292 years and cheap
//! to compare on the hot path. Nothing in this module reads a clock: time comes from packets, or it
//! is passed in by the caller.

use std::fmt;

/// Nanoseconds since 1970-01-01T00:00:00Z.
pub type Nanos = i64;

pub const NANOS_PER_SEC: Nanos = 1_000_000_000;

/// Where code that must know "now" gets it: the wall clock, read in one place (the
/// `flowkeep` binary) and handed down, or a fixed time in tests.
pub type Clock = fn() -> Nanos;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad time '{input}': {reason}")]
pub struct TimeError {
    pub input: String,
    pub reason: String,
}

/// RFC 3339 with nanoseconds and `Z`, e.g. `2026-11-26T10:00:00.123456789Z`: fixed width, so
/// text output sorts the same way as the numbers.
pub fn format_rfc3339(ns: Nanos) -> String {
    let mut s = String::with_capacity(30);
    // Writing to a String cannot fail.
    let _ = write_rfc3339(&mut s, ns);
    s
}

/// [`format_rfc3339`] into `out`, without a String of its own: the printers call it twice per
/// record.
pub fn write_rfc3339(out: &mut impl fmt::Write, ns: Nanos) -> fmt::Result {
    // The temporal printer, not strftime: it is several times faster, and for every i64 of
    // nanoseconds (years 1677 to 2262) it writes the same text.
    const PRINTER: jiff::fmt::temporal::DateTimePrinter =
        jiff::fmt::temporal::DateTimePrinter::new().precision(Some(9));
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(ts) => PRINTER
            .print_timestamp(&ts, jiff::fmt::StdFmtWrite(out))
            .map_err(|_| fmt::Error),
        Err(_) => write!(out, "{ns}"),
    }
}

/// Parses an absolute time: RFC 3339 (`2026-11-26T10:00:00Z`, any offset), or whole seconds since
/// the epoch (`@1764151200`).
pub fn parse_time(input: &str) -> Result<Nanos, TimeError> {
    let err = |reason: String| TimeError {
        input: input.to_string(),
        reason,
    };
    let s = input.trim();
    if let Some(secs) = s.strip_prefix('@') {
        let secs: i64 = secs
            .parse()
            .map_err(|_| err("expected whole seconds after '@'".into()))?;
        return secs
            .checked_mul(NANOS_PER_SEC)
            .ok_or_else(|| err("out of range".into()));
    }
    let ts: jiff::Timestamp = s.parse().map_err(|e: jiff::Error| {
        err(format!(
            "expected RFC 3339 such as 2026-11-26T10:00:00Z ({e})"
        ))
    })?;
    i64::try_from(ts.as_nanosecond()).map_err(|_| err("out of range".into()))
}

/// Parses a query time: anything [`parse_time`] takes, a date alone (`2026-11-14`, midnight
/// UTC), `now`, or a time relative to `now` (`-2h`, `-30d`, `-15m`, `-90s`: any
/// [`parse_duration`] after a minus sign). `now` is passed in: the library reads no clock.
pub fn parse_time_at(input: &str, now: Nanos) -> Result<Nanos, TimeError> {
    let err = |reason: String| TimeError {
        input: input.to_string(),
        reason,
    };
    let s = input.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(ago) = s.strip_prefix('-') {
        let d = parse_duration(ago).map_err(|e| {
            err(format!(
                "a relative time is a minus sign and a duration such as -2h or -30d ({})",
                e.reason
            ))
        })?;
        return now.checked_sub(d).ok_or_else(|| err("out of range".into()));
    }
    if is_date(s) {
        let date: jiff::civil::Date = s
            .parse()
            .map_err(|e: jiff::Error| err(format!("not a calendar date ({e})")))?;
        let ts = jiff::tz::TimeZone::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .map_err(|e| err(e.to_string()))?;
        return i64::try_from(ts.as_nanosecond()).map_err(|_| err("out of range".into()));
    }
    parse_time(s).map_err(|e| {
        err(format!(
            "expected RFC 3339 (2026-11-26T10:00:00Z), a date (2026-11-26), @SECONDS, now, or -DURATION (-2h): {}",
            e.reason
        ))
    })
}

/// `YYYY-MM-DD` and nothing else.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// Parses a duration such as `60s`, `5m`, `1h`, `30d`, `1500ms`; a bare number means seconds.
pub fn parse_duration(input: &str) -> Result<Nanos, TimeError> {
    let err = |reason: &str| TimeError {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| err("expected a number followed by ms, s, m, h or d"))?;
    let scale = match unit {
        "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        // A bare number has meant seconds to some tools and days to others: say which.
        "" => return Err(err("a unit is required: ms, s, m, h, d or w (e.g. 30d)")),
        "m" | "min" => 60e9,
        "h" => 3600e9,
        "d" => 86400e9,
        "w" => 7.0 * 86400e9,
        _ => return Err(err("unknown unit; use ms, s, m, h, d or w")),
    };
    let ns = value * scale;
    if !ns.is_finite() || ns < 0.0 || ns > i64::MAX as f64 {
        return Err(err("out of range"));
    }
    Ok(ns as Nanos)
}

/// Start of the window of width `width` that holds `ns` (floor, also for times before 1970).
pub fn window_start(ns: Nanos, width: Nanos) -> Nanos {
    ns.div_euclid(width) * width
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_nanoseconds() {
        let ns = 1_764_151_200_123_456_789;
        let text = format_rfc3339(ns);
        assert_eq!(text, "2025-11-26T10:00:00.123456789Z");
        assert_eq!(parse_time(&text).unwrap(), ns);
        assert_eq!(format_rfc3339(1_000), "1970-01-01T00:00:00.000001000Z");
        assert_eq!(format_rfc3339(i64::MIN), "1677-09-21T00:12:43.145224192Z");
        assert_eq!(format_rfc3339(i64::MAX), "2262-04-11T23:47:16.854775807Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
    }

    proptest::proptest! {
        /// The text is fixed-width RFC 3339 with nine fraction digits, and reads back exactly.
        #[test]
        fn rfc3339_of_any_time(ns in proptest::prelude::any::<i64>()) {
            let text = format_rfc3339(ns);
            proptest::prop_assert_eq!(text.len(), 30, "{}", text);
            proptest::prop_assert!(text.ends_with('Z') && text.as_bytes()[19] == b'.', "{}", text);
            proptest::prop_assert_eq!(parse_time(&text).unwrap(), ns);
            // The same text as strftime, which it replaced.
            let ts = jiff::Timestamp::from_nanosecond(i128::from(ns)).unwrap();
            proptest::prop_assert_eq!(text, ts.strftime("%Y-%m-%dT%H:%M:%S.%9fZ").to_string());
        }
    }

    #[test]
    fn parses_offsets_and_epoch_seconds() {
        assert_eq!(
            parse_time("2026-01-01T01:00:00+01:00").unwrap(),
            parse_time("2026-01-01T00:00:00Z").unwrap()
        );
        assert_eq!(parse_time("@10").unwrap(), 10 * NANOS_PER_SEC);
        assert!(parse_time("yesterday-ish").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s").unwrap(), 60 * NANOS_PER_SEC);
        assert_eq!(parse_duration("1h").unwrap(), 3600 * NANOS_PER_SEC);
        assert_eq!(parse_duration("30d").unwrap(), 30 * 86400 * NANOS_PER_SEC);
        assert_eq!(parse_duration("1500ms").unwrap(), 1_500_000_000);
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-5s").is_err());
        // A bare number is refused, not taken for seconds (issue 15, defect 13).
        let e = parse_duration("30").unwrap_err();
        assert!(e.reason.contains("a unit is required"), "{}", e.reason);
        assert!(parse_time_at("-30", 0).is_err());
    }

    #[test]
    fn query_times_absolute_date_and_relative() {
        let now = parse_time("2026-11-14T12:00:00Z").unwrap();
        let at = |s| parse_time_at(s, now);
        assert_eq!(
            at("2026-11-14T02:00:00Z"),
            parse_time("2026-11-14T02:00:00Z")
        );
        assert_eq!(
            at("2026-11-14T03:00:00+01:00"),
            parse_time("2026-11-14T02:00:00Z")
        );
        assert_eq!(
            at("2026-11-14").unwrap(),
            parse_time("2026-11-14T00:00:00Z").unwrap()
        );
        assert_eq!(at(" 2026-11-14 ").unwrap(), now - 12 * 3600 * NANOS_PER_SEC);
        assert_eq!(at("@10").unwrap(), 10 * NANOS_PER_SEC);
        assert_eq!(at("now").unwrap(), now);
        assert_eq!(at("-2h").unwrap(), now - 2 * 3600 * NANOS_PER_SEC);
        assert_eq!(at("-30d").unwrap(), now - 30 * 86400 * NANOS_PER_SEC);
        assert_eq!(at("-15m").unwrap(), now - 15 * 60 * NANOS_PER_SEC);
        assert_eq!(at("-90s").unwrap(), now - 90 * NANOS_PER_SEC);
        assert_eq!(at("-0s").unwrap(), now);
        // Leap day exists in 2028, not in 2026.
        assert!(at("2028-02-29").is_ok());
        let e = at("2026-02-29").unwrap_err();
        assert!(e.reason.contains("not a calendar date"), "{e}");
        let e = at("-2 fortnights").unwrap_err();
        assert!(e.reason.contains("relative time"), "{e}");
        let e = at("-").unwrap_err();
        assert!(e.reason.contains("relative time"), "{e}");
        let e = at("yesterday").unwrap_err();
        assert!(
            e.reason.contains("RFC 3339") && e.to_string().contains("'yesterday'"),
            "{e}"
        );
        assert!(at("2026-11-14T25:00:00Z").is_err());
        assert!(at("14/11/2026").is_err());
        // Far before the epoch: an error, not an overflow.
        let e = parse_time_at("-300000d", i64::MIN / 2).unwrap_err();
        assert!(e.reason.contains("out of range"), "{e}");
    }

    #[test]
    fn windows_floor() {
        assert_eq!(window_start(3_599, 3_600), 0);
        assert_eq!(window_start(3_600, 3_600), 3_600);
        assert_eq!(window_start(-1, 3_600), -3_600);
    }
}
