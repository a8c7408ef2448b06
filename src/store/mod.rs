//! The flow store: time-partitioned, zstd-compressed segment files. The on-disk format is
//! specified byte for byte in `docs/FORMAT.md`; that document is the promise, this code keeps it.
//!
//! - [`block`]: how a run of records becomes one checksummed, compressed block; `columns` lays
//!   the records out column by column inside it.
//! - [`address_filter`]: the per-block address Bloom filter that lets a query skip blocks.
//! - [`segment`]: the segment file around the blocks (header, footer, trailer).
//! - [`writer`]: [`StoreWriter`] routes records to partitions and seals segment files.
//! - [`reader`]: [`Store`] lists segments and scans records by time.
//! - [`lock`]: the store lock a writing process holds, which tells readers whether temporary
//!   segments belong to a live writer.
//! - [`audit`]: the audit log; [`access`]: its `access` and `policy` entries (who looked, which
//!   policy deleted); [`report`]: what the log says to an auditor (`flowkeep audit`).
//! - [`recover`]: reading open segments up to their last complete block, and sealing the ones a
//!   dead writer left.

pub mod access;
pub mod address_filter;
pub mod audit;
pub mod block;
pub(crate) mod columns;
pub mod evidence;
mod expire;
#[cfg(test)]
mod fixtures;
pub mod history;
pub mod holds;
pub mod imports;
pub mod leases;
pub mod lock;
mod overview;
pub mod reader;
pub mod recover;
pub mod report;
pub mod segment;
pub mod verify;
pub mod writer;

pub use block::{decode_block, encode_block, encode_block_with_level, BlockError};
/// Column-wise filtering, the surface a [`RecordFilter`] works with: it names the columns it
/// reads ([`ColumnSet`]), and tests a block's records on them before any record is built,
/// either whole columns at a time through [`ColumnDecoder`]'s slices (where the `F_*` bits of
/// [`ColumnDecoder::flags`] say which address family and which MACs a record has) or record by
/// record through a [`Row`]. The rest of the column layout stays private to the store.
pub use columns::{ColumnDecoder, ColumnSet, Row, F_DST_MAC, F_DST_V6, F_SRC_MAC, F_SRC_V6};
pub use expire::Deleted;
pub use overview::{Overview, TierSums};
pub use reader::{
    AllRecords, BlockDamage, OpenSegment, RecordFilter, ScanProblem, ScanStats, Scope, SegmentInfo,
    Store,
};
pub use recover::{recover, RecoveredSegment, Recovery};
pub use segment::CaptureStats;
pub use writer::{
    BuiltSegment, FlushHook, FlushReport, SealHook, SealReport, SegmentBuilder, SegmentSpec,
    StoreWriter, WriterConfig, WriterStats,
};

use crate::fs;
use crate::time::Nanos;
use std::io;
use std::path::{Path, PathBuf};

/// The store format this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 5;
/// Versions below this were development formats, never released: refused, not read.
pub const OLDEST_READABLE_VERSION: u32 = 2;
/// Name of the marker file at the top of a store directory.
pub const MARKER_NAME: &str = "flowkeep-store";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("not a flowkeep store: {} (no {MARKER_NAME} marker file)", path.display())]
    NotAStore { path: PathBuf },
    #[error(
        "{}: store format {found}, but this flowkeep reads format {supported} and older; upgrade flowkeep",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{}: corrupt at byte {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{}: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    #[error(
        "{}: store format {found} was written by an older development build of flowkeep; re-create the store",
        path.display()
    )]
    OldVersion { path: PathBuf, found: u32 },
    #[error("invalid store configuration: {0}")]
    Config(String),
    #[error("record first={first} ns: {reason}")]
    Record { first: Nanos, reason: String },
}

impl From<fs::PathError> for StoreError {
    fn from(e: fs::PathError) -> StoreError {
        StoreError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> StoreError {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn corrupt(path: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}

fn marker_text() -> String {
    marker_text_for(FORMAT_VERSION)
}

/// The marker a writer of format `version` writes.
pub(crate) fn marker_text_for(version: u32) -> String {
    format!("flowkeep store\nformat {version}\n")
}

/// Checks the marker of an existing store directory. `Ok(false)` when there is no marker.
pub(crate) fn check_marker(dir: &Path) -> Result<bool, StoreError> {
    marker_version(dir).map(|v| v.is_some())
}

/// The format a readable store's marker names; `None` when there is no marker.
pub(crate) fn marker_version(dir: &Path) -> Result<Option<u32>, StoreError> {
    let path = dir.join(MARKER_NAME);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(path, e)),
    };
    // The marker is a few bytes; a huge file here is not ours, and only the start matters.
    let text = String::from_utf8_lossy(text.get(..256).unwrap_or(&text));
    let mut lines = text.lines();
    if lines.next() != Some("flowkeep store") {
        return Err(StoreError::corrupt(
            path,
            0,
            "marker does not start with 'flowkeep store'",
        ));
    }
    let version = lines
        .next()
        .and_then(|l| l.strip_prefix("format "))
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or_else(|| StoreError::corrupt(&path, 15, "marker has no 'format <number>' line"))?;
    if version > FORMAT_VERSION {
        return Err(StoreError::UnsupportedVersion {
            path,
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version == 0 {
        return Err(StoreError::corrupt(path, 15, "marker says format 0"));
    }
    if version < OLDEST_READABLE_VERSION {
        return Err(StoreError::OldVersion {
            path,
            found: version,
        });
    }
    Ok(Some(version))
}

/// Writes the marker atomically (temporary file, fsync, rename, directory fsync), so a reader
/// never sees a half-written one.
pub(crate) fn write_marker(dir: &Path) -> Result<(), StoreError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    // Unique per process and call: writers racing to create the same store each rename their
    // own (identical) marker into place.
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let tmp = format!(".{MARKER_NAME}.{}.{n}.tmp", std::process::id());
    fs::write_atomically(dir, &tmp, MARKER_NAME, marker_text().as_bytes())?;
    Ok(())
}

/// Directory name of the partition that starts at `start`: `YYYY-MM-DDTHH-MMZ` in UTC. Fixed
/// width with the most significant field first, so names sort by time (every `Nanos` is a year
/// between 1677 and 2262, always four digits).
pub fn partition_dir_name(start: Nanos) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(start)) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H-%MZ").to_string(),
        // Unreachable for i64 nanoseconds; a distinct name is still better than a panic.
        Err(_) => format!("ns{start}"),
    }
}

/// Inverse of [`partition_dir_name`]; `None` for any other name.
pub fn parse_partition_dir_name(name: &str) -> Option<Nanos> {
    let b = name.as_bytes();
    if b.len() != 17 || b[13] != b'-' || b[16] != b'Z' {
        return None;
    }
    let text = format!("{}:{}:00Z", name.get(..13)?, name.get(14..16)?);
    let ts: jiff::Timestamp = text.parse().ok()?;
    let ns = i64::try_from(ts.as_nanosecond()).ok()?;
    (partition_dir_name(ns) == name).then_some(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip_and_sort() {
        let t = crate::time::parse_time("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(partition_dir_name(t), "2026-01-01T00-00Z");
        assert_eq!(parse_partition_dir_name("2026-01-01T00-00Z"), Some(t));
        assert_eq!(parse_partition_dir_name("2026-01-01T00-00"), None);
        assert_eq!(parse_partition_dir_name("2026-13-01T00-00Z"), None);
        assert_eq!(parse_partition_dir_name("flowkeep-store"), None);
        let early = partition_dir_name(i64::MIN / 2);
        let late = partition_dir_name(i64::MAX / 2);
        assert!(early < partition_dir_name(0) && partition_dir_name(0) < late);
    }

    #[test]
    fn marker_versions() {
        let d = tempfile::tempdir().unwrap();
        assert!(!check_marker(d.path()).unwrap());
        write_marker(d.path()).unwrap();
        assert!(check_marker(d.path()).unwrap());
        std::fs::write(d.path().join(MARKER_NAME), "flowkeep store\nformat 7\n").unwrap();
        let e = check_marker(d.path()).unwrap_err();
        assert!(matches!(
            e,
            StoreError::UnsupportedVersion {
                found: 7,
                supported: FORMAT_VERSION,
                ..
            }
        ));
        assert!(e.to_string().contains("upgrade flowkeep"), "{e}");
        std::fs::write(d.path().join(MARKER_NAME), "flowkeep store\nformat 1\n").unwrap();
        let e = check_marker(d.path()).unwrap_err();
        assert!(matches!(e, StoreError::OldVersion { found: 1, .. }));
        assert!(e.to_string().contains("re-create the store"), "{e}");
        std::fs::write(d.path().join(MARKER_NAME), "something else").unwrap();
        assert!(matches!(
            check_marker(d.path()),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
