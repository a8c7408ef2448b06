//! Going through a store's segments, sealed and open, for a scan.

use super::listing::{CopyGroup, Listed};
use super::{BlockDamage, ScanProblem, ScanStats, Store};
use crate::fs::{self, File};
use crate::store::recover::{read_temp_header, sealed_name};
use crate::store::segment::{BlockEntry, SegmentFile};
use crate::store::StoreError;
use crate::time::Nanos;
use std::io;
use std::ops::ControlFlow;
use std::path::Path;

impl Store {
    /// Walks the segments in partition order for a scan, giving `visit` each one: an open
    /// segment (a live writer's temporary file) as its file, unless it was sealed since the
    /// listing, in which case the sealed file is read instead; a sealed segment parsed from
    /// its footer. A segment that cannot be opened, or whose visit fails, is described in
    /// `problems` and skipped; `visit` returning `Break` ends the walk.
    ///
    /// Also passes the [`CopyGroup`] of a hold copy that shares its source with other holds'
    /// copies, so that the scan can pass the records they share once.
    pub(super) fn walk_listed(
        &self,
        stats: &mut ScanStats,
        mut visit: impl FnMut(
            Nanos,
            &Path,
            Option<&CopyGroup>,
            SegmentRef<'_>,
            &mut ScanStats,
        ) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<(), StoreError> {
        for listed in self.list()?.all {
            let Listed {
                partition,
                mut path,
                temp,
                shared,
            } = listed;
            let shared = shared.as_ref();
            if temp {
                let file = match fs::open(&path) {
                    Ok(file) => Some(file),
                    // Sealed (renamed) since the listing: read the sealed file instead.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => match sealed_name(&path) {
                        Some(p) if fs::exists(&p) => {
                            path = p;
                            None
                        }
                        _ => continue,
                    },
                    Err(e) => {
                        let e = StoreError::io(&path, e);
                        stats.problems.push(ScanProblem::segment(&path, e));
                        continue;
                    }
                };
                if let Some(file) = file {
                    match read_temp_header(&path, &file) {
                        // No header yet: a writer that has not written its first block.
                        Ok(None) => continue,
                        Ok(Some(_)) => {}
                        Err(e) => {
                            stats.problems.push(ScanProblem::segment(&path, e));
                            continue;
                        }
                    }
                    stats.unsealed.push(path.clone());
                    stats.segments_read += 1;
                    match visit(partition, &path, shared, SegmentRef::Open(&file), stats) {
                        Ok(ControlFlow::Continue(())) => continue,
                        Ok(ControlFlow::Break(())) => return Ok(()),
                        Err(e) => {
                            stats.problems.push(ScanProblem::segment(&path, e));
                            continue;
                        }
                    }
                }
            }
            let seg = match SegmentFile::open(&path) {
                Ok(s) => s,
                Err(e) => {
                    stats.problems.push(ScanProblem::segment(&path, e));
                    continue;
                }
            };
            match visit(partition, &path, shared, SegmentRef::Sealed(&seg), stats) {
                Ok(ControlFlow::Continue(())) => {}
                Ok(ControlFlow::Break(())) => return Ok(()),
                Err(e) => stats.problems.push(ScanProblem::segment(&path, e)),
            }
        }
        Ok(())
    }
}

/// A segment as [`Store::walk_listed`] hands it to a scan.
pub(super) enum SegmentRef<'a> {
    /// A live writer's temporary file, read up to its last complete block.
    Open(&'a File),
    Sealed(&'a SegmentFile),
}

/// The bytes of a sealed segment's block, or `None` (described in `problems`) when its index
/// entry points outside the file.
pub(super) fn block_bytes<'s>(
    path: &Path,
    seg: &'s SegmentFile,
    e: &BlockEntry,
    stats: &mut ScanStats,
) -> Option<&'s [u8]> {
    let bytes = seg.block(e);
    if bytes.is_none() {
        stats
            .problems
            .push(ScanProblem::block(path, e.offset, BlockDamage::OutsideFile));
    }
    bytes
}

/// Which records of shared hold copies a scan has passed already: the copies of one source
/// are listed together, so only the current source's need remembering.
pub(super) struct Seen<T> {
    group: Option<CopyGroup>,
    items: std::collections::HashSet<T>,
}

impl<T: std::hash::Hash + Eq + Clone> Seen<T> {
    pub(super) fn new() -> Seen<T> {
        Seen {
            group: None,
            items: std::collections::HashSet::new(),
        }
    }

    /// Starts the segment of `group`; forgets the previous source's items when it changes.
    pub(super) fn enter(&mut self, group: Option<&CopyGroup>) {
        if group.is_some() && self.group.as_ref() != group {
            self.items.clear();
            self.group = group.cloned();
        }
    }

    /// Whether `item` of a segment of `group` is new (always, outside a shared group).
    pub(super) fn first_time(&mut self, group: Option<&CopyGroup>, item: &T) -> bool {
        group.is_none() || self.items.insert(item.clone())
    }
}
