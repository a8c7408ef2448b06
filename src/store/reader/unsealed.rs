//! Scanning open segments, a live writer's temporary files, up to their last complete block.

use super::records::{wanted, RecordFilter, RecordQuery, RecordScratch};
use super::ScanStats;
use crate::fs::File;
use crate::record::{FlowRecord, LeaseObservation};
use crate::store::block::BlockDecoder;
use crate::store::recover::{read_open_blocks, read_open_segment, OpenBlock};
use crate::store::StoreError;
use crate::time::Nanos;
use std::io;
use std::ops::ControlFlow;
use std::path::Path;

/// The lease blocks of an open segment, as [`scan_open_segment`] reads its record blocks.
pub(super) fn scan_open_leases(
    path: &Path,
    file: &File,
    overlaps: &dyn Fn(Nanos, Nanos) -> bool,
    in_range: &dyn Fn(Nanos) -> bool,
    leases: &mut Vec<LeaseObservation>,
    stats: &mut ScanStats,
    f: &mut impl FnMut(&LeaseObservation) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, StoreError> {
    let mut decoder =
        BlockDecoder::new().map_err(|e| StoreError::io(path, io::Error::other(e.reason)))?;
    let (mut buf, mut recs) = (Vec::new(), Vec::new());
    let mut stopped = false;
    read_open_blocks(
        path,
        file,
        &mut decoder,
        &mut buf,
        &mut recs,
        leases,
        |e, block| {
            let OpenBlock::Leases(leases) = block else {
                return ControlFlow::Continue(());
            };
            if !overlaps(e.min_first, e.max_last) {
                stats.blocks_skipped += 1;
                return ControlFlow::Continue(());
            }
            stats.blocks_read += 1;
            for l in leases.iter().filter(|l| in_range(l.time)) {
                stats.records += 1;
                if f(l).is_break() {
                    stopped = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        },
    )?;
    Ok(if stopped {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    })
}

/// Reads an open segment's complete blocks, passing the records that `query` matches to `f`.
/// A torn tail, or a header not written yet, is what a live writer's file looks like between two
/// blocks: ignored silently.
pub(super) fn scan_open_segment<F: RecordFilter>(
    path: &Path,
    file: &File,
    partition: Nanos,
    query: &RecordQuery<'_, F>,
    scratch: &mut RecordScratch,
    stats: &mut ScanStats,
    f: &mut impl FnMut(Nanos, &FlowRecord) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, StoreError> {
    let mut stopped = false;
    let RecordScratch {
        decoder, buf, recs, ..
    } = scratch;
    read_open_segment(path, file, decoder, buf, recs, |e, recs| {
        if !query.overlaps(e.min_first, e.max_last) {
            stats.blocks_skipped += 1;
            return ControlFlow::Continue(());
        }
        stats.blocks_read += 1;
        // No address summary until the segment is sealed: every block is read, and the
        // address restriction applied record by record. Open segments are few (one per
        // writer), so their records are built first and tested after.
        for r in recs {
            if query.overlaps(r.first, r.last) && wanted(query.addrs, r) {
                stats.records += 1;
                if query.filter.matches(r) && f(partition, r).is_break() {
                    stopped = true;
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    })?;
    Ok(if stopped {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    })
}
