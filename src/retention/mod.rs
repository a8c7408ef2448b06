//! Retention: which whole segments to delete, by age and by store size, never touching a
//! segment that a legal hold covers. [`plan`] is a pure function of the segment list, the holds,
//! the policy and "now" (which the caller passes in: the library never reads a clock);
//! [`apply`] hands a plan to the store, which deletes and audits.

use crate::store::holds::Hold;
use crate::store::{SegmentInfo, Store, StoreError};
use crate::time::{format_rfc3339, Nanos, NANOS_PER_SEC};
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Delete segments whose newest record is older than `now - retention`.
    pub retention: Option<Nanos>,
    /// Then delete oldest segments first while the sealed segments add up to more than this.
    pub max_size: Option<u64>,
}

/// Why a segment goes (or would go, for one kept by a hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Its newest record is older than `now - retention`.
    Age { retention: Nanos, now: Nanos },
    /// The store was over `max_size` (`total` bytes before this segment was chosen).
    Size { max_size: u64, total: u64 },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reason::Age { retention, now } => write!(
                f,
                "age>{} now={} cutoff={}",
                format_duration(retention),
                format_rfc3339(now),
                format_rfc3339(now.saturating_sub(retention))
            ),
            Reason::Size { max_size, total } => {
                write!(f, "size>{} total={total}", format_size(max_size))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub segment: SegmentInfo,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub segment: SegmentInfo,
    /// What would have deleted it.
    pub reason: Reason,
    /// Names of every standing hold that overlaps it.
    pub holds: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// In the order they are to be deleted: age first (oldest first), then size.
    pub delete: Vec<Deletion>,
    /// Segments that would have been deleted but a hold overlaps.
    pub kept_for_hold: Vec<Kept>,
    /// Segments with an unreadable header or footer: their time span is unknown, so they are
    /// never deleted (neither for age nor for size), only reported.
    pub problems: Vec<(SegmentInfo, String)>,
    /// Bytes of all sealed segments before and after the plan.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// The store is still over `max_size` after the plan (held or unreadable segments).
    pub over_size: bool,
}

/// Which segments retention deletes. Age: a segment goes when its newest record (`last`) is
/// older than `now - retention`. Size: then, while the sealed segments add up to more than
/// `max_size`, the oldest remaining ones (by `last`, then partition start, then path). A segment
/// overlapping a standing hold (its `[first, last]` against the hold's `[from, until)`) is never
/// deleted; it is listed in `kept_for_hold` with the holds' names when it would have gone.
/// Only holds that keep whole segments count ([`Hold::keeps_whole_segments`]): a filtered
/// hold keeps its own copies instead, and one that ended keeps nothing.
pub fn plan(segments: &[SegmentInfo], holds: &[Hold], policy: &Policy, now: Nanos) -> Plan {
    let mut out = Plan {
        bytes_before: segments.iter().fold(0u64, |a, s| a.saturating_add(s.bytes)),
        ..Plan::default()
    };
    let mut order: Vec<&SegmentInfo> = Vec::with_capacity(segments.len());
    for s in segments {
        match &s.error {
            Some(e) => out.problems.push((s.clone(), e.clone())),
            None => order.push(s),
        }
    }
    order.sort_by(|a, b| {
        (a.last, a.partition_start, &a.path).cmp(&(b.last, b.partition_start, &b.path))
    });
    let holding = |s: &SegmentInfo| -> Vec<String> {
        holds
            .iter()
            .filter(|h| h.keeps_whole_segments(now) && h.overlaps(s.first, s.last))
            .map(|h| h.name.clone())
            .collect()
    };
    let mut total = out.bytes_before;
    let mut gone = vec![false; order.len()];
    // Deletes segment `s` for `reason` unless a standing hold covers it (then it is listed
    // once, with the first reason that would have deleted it); says whether it was deleted.
    let settle = |s: &SegmentInfo, reason: Reason, out: &mut Plan, total: &mut u64| {
        let held = holding(s);
        if held.is_empty() {
            *total = total.saturating_sub(s.bytes);
            out.delete.push(Deletion {
                segment: s.clone(),
                reason,
            });
            return true;
        }
        if !out.kept_for_hold.iter().any(|k| k.segment.path == s.path) {
            out.kept_for_hold.push(Kept {
                segment: s.clone(),
                reason,
                holds: held,
            });
        }
        false
    };
    if let Some(retention) = policy.retention {
        let cutoff = now.saturating_sub(retention);
        for (i, s) in order.iter().enumerate() {
            if s.last < cutoff {
                gone[i] = settle(s, Reason::Age { retention, now }, &mut out, &mut total);
            }
        }
    }
    if let Some(max_size) = policy.max_size {
        for (i, s) in order.iter().enumerate() {
            if total <= max_size {
                break;
            }
            if !gone[i] {
                gone[i] = settle(s, Reason::Size { max_size, total }, &mut out, &mut total);
            }
        }
        out.over_size = total > max_size;
    }
    out.bytes_after = total;
    out
}

/// When a long-running capture should expire: at most once per `every` of the time it is given
/// (wall clock for live capture). One comparison per call, so it is cheap enough to call for
/// every batch of packets.
#[derive(Debug, Clone)]
pub struct RetentionTicker {
    every: Nanos,
    next: Nanos,
}

impl RetentionTicker {
    pub fn new(every: Nanos) -> RetentionTicker {
        RetentionTicker {
            every,
            next: Nanos::MIN,
        }
    }

    /// True when expiry is due at `now` (and then not again before `now + every`).
    pub fn due(&mut self, now: Nanos) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now.saturating_add(self.every);
        true
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub deleted: Vec<Deletion>,
    pub bytes_freed: u64,
    /// Partition directories removed because they became empty.
    pub removed_dirs: Vec<PathBuf>,
}

/// Carries the plan's deletions out through the store, which unlinks each segment and audits
/// it with the plan's reason (see [`Store::delete_segments`]).
pub fn apply(store: &Store, plan: &Plan, now: Nanos) -> Result<Applied, StoreError> {
    let done = store.delete_segments(
        plan.delete
            .iter()
            .map(|d| (&d.segment, d.reason.to_string())),
        now,
    )?;
    Ok(Applied {
        deleted: done
            .deleted
            .iter()
            .map(|&i| plan.delete[i].clone())
            .collect(),
        bytes_freed: done.bytes_freed,
        removed_dirs: done.removed_dirs,
    })
}

/// Parses a size: a whole number of bytes with an optional suffix `K`, `M`, `G` or `T`
/// (powers of 1024; case-insensitive; a trailing `B` or `iB` is accepted): `500G`, `1.5T` is not
/// accepted, `1536M` is.
pub fn parse_size(input: &str) -> Result<u64, String> {
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("'{input}': expected a whole number with an optional K, M, G or T suffix")
    })?;
    let unit = unit.to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("'{input}': unknown size suffix; use K, M, G or T")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("'{input}': too large"))
}

/// The largest K/M/G/T unit that divides the size exactly: `500G`, `1536M`, `1000`.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        let u = 1u64 << shift;
        if bytes >= u && bytes % u == 0 {
            return format!("{}{unit}", bytes / u);
        }
    }
    bytes.to_string()
}

/// The largest unit that divides the duration exactly: `30d`, `90m`, `1500ms`.
pub fn format_duration(ns: Nanos) -> String {
    const UNITS: [(Nanos, &str); 7] = [
        (86_400 * NANOS_PER_SEC, "d"),
        (3_600 * NANOS_PER_SEC, "h"),
        (60 * NANOS_PER_SEC, "m"),
        (NANOS_PER_SEC, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    for (u, name) in UNITS {
        if ns != 0 && ns % u == 0 {
            return format!("{}{name}", ns / u);
        }
    }
    "0s".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Nanos = 86_400 * NANOS_PER_SEC;
    const HOUR: Nanos = 3_600 * NANOS_PER_SEC;

    /// A real segment's info as the template, so that fields added to `SegmentInfo` later
    /// need no change here.
    fn base() -> SegmentInfo {
        static BASE: std::sync::OnceLock<SegmentInfo> = std::sync::OnceLock::new();
        BASE.get_or_init(|| {
            let d = tempfile::tempdir().unwrap();
            let mut w =
                crate::store::StoreWriter::create(crate::store::WriterConfig::new(d.path()))
                    .unwrap();
            w.append(&crate::testing::sample(1)).unwrap();
            w.finish().unwrap();
            crate::store::Store::open(d.path())
                .unwrap()
                .segments()
                .unwrap()[0]
                .clone()
        })
        .clone()
    }

    fn seg(start: Nanos, width: Nanos, bytes: u64) -> SegmentInfo {
        SegmentInfo {
            path: PathBuf::from(format!("/s/{start}/seg.fks")),
            partition_start: start,
            partition_end: start + width,
            first: start,
            last: start + width - 1,
            bytes,
            error: None,
            ..base()
        }
    }

    fn hold(name: &str, from: Nanos, until: Nanos) -> Hold {
        Hold::new(name, from, until, 0)
    }

    #[test]
    fn age_deletes_exactly_the_segments_older_than_the_cutoff() {
        let segs: Vec<_> = (0..10).map(|d| seg(d * DAY, DAY, 100)).collect();
        let now = 10 * DAY;
        let p = plan(
            &segs,
            &[],
            &Policy {
                retention: Some(3 * DAY),
                max_size: None,
            },
            now,
        );
        // cutoff = 7 days: segments 0..=6 end before it (segment 6's last is 7d - 1 ns);
        // segment 7 holds a record at 7d + 1 ns and stays.
        let gone: Vec<_> = p
            .delete
            .iter()
            .map(|d| d.segment.partition_start / DAY)
            .collect();
        assert_eq!(gone, vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(p.bytes_after, 300);
        assert!(p.delete[0]
            .reason
            .to_string()
            .starts_with("age>3d now=1970-01-11T00:00:00"));
    }

    #[test]
    fn holds_keep_segments_and_say_which() {
        let segs: Vec<_> = (0..10).map(|d| seg(d * DAY, DAY, 100)).collect();
        let holds = [
            hold("CASE-1", 2 * DAY + 5, 2 * DAY + 6),
            hold("CASE-2", 2 * DAY, 4 * DAY),
        ];
        let p = plan(
            &segs,
            &holds,
            &Policy {
                retention: Some(3 * DAY),
                max_size: Some(150),
            },
            10 * DAY,
        );
        let gone: Vec<_> = p
            .delete
            .iter()
            .map(|d| d.segment.partition_start / DAY)
            .collect();
        // Age: 0, 1, 4, 5, 6; days 2 and 3 held. Size: 500 left > 150: 7, 8, 9 go oldest
        // first, and the two held days alone stay over the limit.
        assert_eq!(gone, vec![0, 1, 4, 5, 6, 7, 8, 9]);
        assert_eq!(p.bytes_after, 200);
        assert!(p.over_size);
        let kept: Vec<_> = p
            .kept_for_hold
            .iter()
            .map(|k| (k.segment.partition_start / DAY, k.holds.clone()))
            .collect();
        assert_eq!(
            kept,
            vec![
                (2, vec!["CASE-1".to_string(), "CASE-2".to_string()]),
                (3, vec!["CASE-2".to_string()])
            ]
        );
    }

    #[test]
    fn unreadable_segments_are_never_deleted() {
        let mut segs: Vec<_> = (0..3).map(|d| seg(d * DAY, DAY, 100)).collect();
        segs[0].error = Some("corrupt".into());
        let p = plan(
            &segs,
            &[],
            &Policy {
                retention: Some(DAY),
                max_size: Some(0),
            },
            10 * DAY,
        );
        assert_eq!(p.delete.len(), 2);
        assert_eq!(p.problems.len(), 1);
        assert!(p.over_size);
    }

    #[test]
    fn size_deletes_oldest_first_by_last_then_partition() {
        let mut segs: Vec<_> = (0..4).map(|h| seg(h * HOUR, HOUR, 10)).collect();
        // A late long flow makes segment 0 the newest by `last`.
        segs[0].last = 10 * HOUR;
        let p = plan(
            &segs,
            &[],
            &Policy {
                retention: None,
                max_size: Some(20),
            },
            0,
        );
        let gone: Vec<_> = p
            .delete
            .iter()
            .map(|d| d.segment.partition_start / HOUR)
            .collect();
        assert_eq!(gone, vec![1, 2]);
        assert!(!p.over_size);
        assert_eq!(p.delete[0].reason.to_string(), "size>20 total=40");
    }

    #[test]
    fn ticker_fires_once_per_period() {
        let mut t = RetentionTicker::new(60);
        assert!(t.due(1_000));
        assert!(!t.due(1_059));
        assert!(t.due(1_060));
        assert!(!t.due(1_100));
        assert!(t.due(5_000));
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("500G").unwrap(), 500 << 30);
        assert_eq!(parse_size("1k").unwrap(), 1024);
        assert_eq!(parse_size("2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_size("3T").unwrap(), 3 << 40);
        assert_eq!(parse_size("1234").unwrap(), 1234);
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("5X").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(format_size(500 << 30), "500G");
        assert_eq!(format_size(1536 << 20), "1536M");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(format_duration(30 * DAY), "30d");
        assert_eq!(format_duration(90 * 60 * NANOS_PER_SEC), "90m");
        assert_eq!(format_duration(1_500_000_000), "1500ms");
    }
}
