//! Which segments a store holds: partition directories by name, segment files by name, and
//! what each sealed segment's footer says.

use super::Store;
use crate::fs::{self, DirEntry};
use crate::store::segment::{CaptureStats, SegmentFile, SEGMENT_EXT, TEMP_SUFFIX};
use crate::store::{parse_partition_dir_name, StoreError};
use crate::time::Nanos;
use std::path::{Path, PathBuf};

/// One sealed segment, as its footer describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub path: PathBuf,
    pub partition_start: Nanos,
    pub partition_end: Nanos,
    pub writer_id: u32,
    pub records: u64,
    pub blocks: u64,
    /// Smallest `first` and largest `last` of the segment's records.
    pub first: Nanos,
    pub last: Nanos,
    /// File size.
    pub bytes: u64,
    /// What the capture saw while the segment was open (all zero if unreadable).
    pub capture: CaptureStats,
    /// Names of the interfaces its records' `interface` indexes refer to (format 3; empty for
    /// format 2, recovered or unreadable segments).
    pub interfaces: Vec<String>,
    /// Set when the segment's header or footer cannot be read: the segment is then unusable and
    /// the other fields hold only what its location says (partition start from the directory
    /// name, end = start, zero counts, first = last = partition start).
    pub error: Option<String>,
}

pub(super) struct Listing {
    /// (partition start from the directory name, path), in time then name order.
    pub(super) sealed: Vec<(Nanos, PathBuf)>,
    /// Sealed and temporary segments together, (partition start, path, is temporary), in time
    /// then name order: a scan goes partition by partition.
    pub(super) all: Vec<(Nanos, PathBuf, bool)>,
}

impl Store {
    /// Partition directories are recognised by their name; other entries are not the store's
    /// and are left alone.
    pub(super) fn list(&self) -> Result<Listing, StoreError> {
        let mut parts = Vec::new();
        for ent in read_dir(&self.dir)? {
            let name = ent.file_name();
            let Some(start) = name.to_str().and_then(parse_partition_dir_name) else {
                continue;
            };
            let path = ent.path();
            if fs::is_dir(&path) {
                parts.push((start, path));
            }
        }
        parts.sort();
        let mut sealed = Vec::new();
        let mut all = Vec::new();
        for (start, pdir) in parts {
            let mut names: Vec<String> = read_dir(&pdir)?
                .into_iter()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect();
            names.sort();
            for name in names {
                if name.starts_with("seg-") && name.ends_with(SEGMENT_EXT) {
                    sealed.push((start, pdir.join(&name)));
                    all.push((start, pdir.join(name), false));
                } else if name.starts_with(".seg-") && name.ends_with(TEMP_SUFFIX) {
                    all.push((start, pdir.join(name), true));
                }
            }
        }
        Ok(Listing { sealed, all })
    }

    /// Sealed segments in time order (partition start, then smallest `first`, then path). A
    /// segment whose header or footer is unreadable is listed with `error` set.
    pub fn segments(&self) -> Result<Vec<SegmentInfo>, StoreError> {
        let mut out: Vec<SegmentInfo> = self
            .list()?
            .sealed
            .into_iter()
            .map(|(start, path)| match SegmentFile::open(&path) {
                Ok(seg) => SegmentInfo {
                    partition_start: seg.header.partition_start,
                    partition_end: seg.header.partition_end,
                    writer_id: seg.header.writer_id,
                    records: seg.totals.records,
                    blocks: seg.entries.len() as u64,
                    first: seg.totals.min_first,
                    last: seg.totals.max_last,
                    bytes: seg.file_len,
                    capture: seg.capture,
                    interfaces: seg.interfaces,
                    error: None,
                    path,
                },
                Err(e) => SegmentInfo {
                    partition_start: start,
                    partition_end: start,
                    writer_id: 0,
                    records: 0,
                    blocks: 0,
                    first: start,
                    last: start,
                    bytes: fs::metadata(&path).map_or(0, |m| m.len()),
                    capture: CaptureStats::default(),
                    interfaces: Vec::new(),
                    error: Some(e.to_string()),
                    path,
                },
            })
            .collect();
        out.sort_by(|a, b| {
            (a.partition_start, a.first, &a.path).cmp(&(b.partition_start, b.first, &b.path))
        });
        Ok(out)
    }

    /// Lease observations in the sealed segments, from their footers.
    pub fn lease_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .list()?
            .sealed
            .iter()
            .filter_map(|(_, p)| SegmentFile::open(p).ok())
            .map(|s| u64::from(s.totals.leases))
            .sum())
    }
}

fn read_dir(dir: &Path) -> Result<Vec<DirEntry>, StoreError> {
    fs::read_dir(dir)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| StoreError::io(dir, e))
}
