//! Scanning flow records: segments and blocks skipped by their time range and address
//! summary, the filter tested on a block's columns, records built only where one matched.

use super::unsealed::scan_open_segment;
use super::walk::{block_bytes, Seen, SegmentRef};
use super::{BlockDamage, ScanProblem, ScanStats, Store};
use crate::record::{FlowFields, FlowRecord};
use crate::store::address_filter::addr_key;
use crate::store::block::BlockDecoder;
use crate::store::columns::{ColumnDecoder, ColumnSet};
use crate::store::leases::KIND_FLOWS;
use crate::store::segment::{BlockEntry, SegmentFile};
use crate::store::StoreError;
use crate::time::Nanos;
use std::io;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::Path;

/// A test on records that a scan applies before it builds them: only the columns the test
/// reads are decoded for every record, and records are built only for blocks with a match (see
/// [`Store::scan_where`]). The query filter is one.
pub trait RecordFilter {
    /// The columns [`RecordFilter::matches`] reads.
    fn columns(&self) -> ColumnSet;
    /// True when every record matches, so that nothing needs testing.
    fn accepts_all(&self) -> bool;
    fn matches<R: FlowFields>(&self, r: &R) -> bool;
    /// Sets `keep[i]` (one entry per record of the block, all `true` on entry) to whether
    /// record `i` matches, from the loaded columns. The default tests record by record; a
    /// filter that can test a whole column at once is much faster on large blocks.
    fn select(&self, cols: &ColumnDecoder, keep: &mut [bool]) {
        for (i, k) in keep.iter_mut().enumerate() {
            *k = self.matches(&cols.row(i));
        }
    }
}

/// The filter that every record passes.
pub struct AllRecords;

impl RecordFilter for AllRecords {
    fn columns(&self) -> ColumnSet {
        ColumnSet::NONE
    }
    fn accepts_all(&self) -> bool {
        true
    }
    fn matches<R: FlowFields>(&self, _: &R) -> bool {
        true
    }
}

/// Records are built this many at a time, so that they are still in cache when the callback
/// reads them (8192 records of 112 bytes would not be).
const BUILD_CHUNK: usize = 256;

/// Whether `r`'s source or destination is one of `addrs` (`None`: no restriction).
pub(super) fn wanted<R: FlowFields>(addrs: Option<&[IpAddr]>, r: &R) -> bool {
    addrs.is_none_or(|a| a.contains(&r.src()) || a.contains(&r.dst()))
}

impl Store {
    /// Calls `f` with the partition start and the record, for every record whose
    /// `[first, last]` overlaps `[since, until)`: `last >= since` and `first < until`; `None`
    /// leaves that side open. Records come segment by segment in partition order, block order
    /// within a segment, and by `first` within a block: not sorted by time overall. `f`
    /// returning `Break` ends the scan (a reader that went away). Unreadable segments and
    /// damaged blocks are described in `problems` and skipped; the scan goes on.
    pub fn scan(
        &self,
        since: Option<Nanos>,
        until: Option<Nanos>,
        f: impl FnMut(Nanos, &FlowRecord) -> ControlFlow<()>,
    ) -> Result<ScanStats, StoreError> {
        self.scan_filtered(since, until, None, f)
    }

    /// [`Store::scan`] restricted to records whose `src` or `dst` is one of `addrs` (`None`: all
    /// records; an empty slice: none). Blocks whose address summary rules out every address are
    /// not read at all, and counted in `ScanStats::blocks_skipped_by_address`.
    pub fn scan_filtered(
        &self,
        since: Option<Nanos>,
        until: Option<Nanos>,
        addrs: Option<&[IpAddr]>,
        mut f: impl FnMut(Nanos, &FlowRecord) -> ControlFlow<()>,
    ) -> Result<ScanStats, StoreError> {
        self.scan_with_interfaces(since, until, addrs, |p, _, r| f(p, r))
    }

    /// [`Store::scan_filtered`], also passing the interface names of the record's segment
    /// (indexed by `FlowRecord::interface`; empty when the segment names none: format 2, a
    /// segment sealed by recovery, or one still being written).
    pub fn scan_with_interfaces(
        &self,
        since: Option<Nanos>,
        until: Option<Nanos>,
        addrs: Option<&[IpAddr]>,
        f: impl FnMut(Nanos, &[String], &FlowRecord) -> ControlFlow<()>,
    ) -> Result<ScanStats, StoreError> {
        self.scan_where(since, until, addrs, &AllRecords, f)
    }

    /// [`Store::scan_with_interfaces`], passing `f` only the records `filter` matches. The
    /// time, address and filter tests run on the block's columns before any record is built:
    /// only the columns they read are decompressed and decoded (codec 4), and the rest only
    /// for blocks where a record matched.
    pub fn scan_where(
        &self,
        since: Option<Nanos>,
        until: Option<Nanos>,
        addrs: Option<&[IpAddr]>,
        filter: &impl RecordFilter,
        mut f: impl FnMut(Nanos, &[String], &FlowRecord) -> ControlFlow<()>,
    ) -> Result<ScanStats, StoreError> {
        self.scan_where_in(since, until, addrs, filter, |_, p, names, r| f(p, names, r))
    }

    /// [`Store::scan_where`], also passing the path of the segment each record was read from
    /// (a sealed segment's, or an open one's temporary name), so that an answer can say which
    /// fingerprinted file holds each record.
    pub fn scan_where_in(
        &self,
        since: Option<Nanos>,
        until: Option<Nanos>,
        addrs: Option<&[IpAddr]>,
        filter: &impl RecordFilter,
        mut f: impl FnMut(&Path, Nanos, &[String], &FlowRecord) -> ControlFlow<()>,
    ) -> Result<ScanStats, StoreError> {
        let query = RecordQuery::new(since, until, addrs, filter);
        let mut scratch = RecordScratch::new(&self.dir)?;
        let mut stats = ScanStats::default();
        let mut seen = Seen::new();
        self.walk_listed(
            &mut stats,
            |partition, path, shared, seg, stats| match seg {
                SegmentRef::Open(file) => {
                    let mut f = |p, r: &FlowRecord| f(path, p, &[], r);
                    scan_open_segment(path, file, partition, &query, &mut scratch, stats, &mut f)
                }
                SegmentRef::Sealed(seg) => {
                    seen.enter(shared);
                    let mut f = |p, names: &[String], r: &FlowRecord| {
                        if seen.first_time(shared, r) {
                            f(path, p, names, r)
                        } else {
                            ControlFlow::Continue(())
                        }
                    };
                    Ok(scan_sealed_segment(
                        path,
                        seg,
                        partition,
                        &query,
                        &mut scratch,
                        stats,
                        &mut f,
                    ))
                }
            },
        )?;
        Ok(stats)
    }
}

impl Store {
    /// [`Store::scan_where`] over the one sealed segment at `path`, which need not be in a
    /// store that is open (a writer's hook reads the segment it just sealed). An unreadable
    /// segment is an error; damaged blocks are described in `problems`.
    pub fn scan_segment(
        path: &Path,
        since: Option<Nanos>,
        until: Option<Nanos>,
        addrs: Option<&[IpAddr]>,
        filter: &impl RecordFilter,
        mut f: impl FnMut(&[String], &FlowRecord) -> ControlFlow<()>,
    ) -> Result<ScanStats, StoreError> {
        let query = RecordQuery::new(since, until, addrs, filter);
        let mut scratch = RecordScratch::new(path)?;
        let mut stats = ScanStats::default();
        let seg = SegmentFile::open(path)?;
        let partition = seg.header.partition_start;
        let mut f = |_, names: &[String], r: &FlowRecord| f(names, r);
        let _ = scan_sealed_segment(
            path,
            &seg,
            partition,
            &query,
            &mut scratch,
            &mut stats,
            &mut f,
        );
        Ok(stats)
    }
}

impl<'q, F> RecordQuery<'q, F> {
    fn new(
        since: Option<Nanos>,
        until: Option<Nanos>,
        addrs: Option<&'q [IpAddr]>,
        filter: &'q F,
    ) -> RecordQuery<'q, F> {
        RecordQuery {
            since: since.unwrap_or(Nanos::MIN),
            until,
            addrs,
            keys: addrs.map(|a| a.iter().map(addr_key).collect()),
            filter,
        }
    }
}

impl RecordScratch {
    fn new(path: &Path) -> Result<RecordScratch, StoreError> {
        Ok(RecordScratch {
            decoder: BlockDecoder::new()
                .map_err(|e| StoreError::io(path, io::Error::other(e.reason)))?,
            buf: Vec::new(),
            recs: Vec::new(),
            selection: Selection::default(),
        })
    }
}

/// What a record scan tests, on sealed and open segments alike.
pub(super) struct RecordQuery<'q, F> {
    /// `Nanos::MIN` when the range is open on that side.
    pub(super) since: Nanos,
    pub(super) until: Option<Nanos>,
    pub(super) addrs: Option<&'q [IpAddr]>,
    /// `addrs` as address summary keys.
    keys: Option<Vec<[u8; 16]>>,
    pub(super) filter: &'q F,
}

impl<F> RecordQuery<'_, F> {
    /// Whether something spanning `[first, last]` overlaps the queried range.
    #[inline]
    pub(super) fn overlaps(&self, first: Nanos, last: Nanos) -> bool {
        last >= self.since && self.until.is_none_or(|u| first < u)
    }

    /// Whether `[first, last]` lies wholly inside the queried range.
    fn contains(&self, first: Nanos, last: Nanos) -> bool {
        first >= self.since && self.until.is_none_or(|u| last < u)
    }
}

/// A record scan's buffers, reused from block to block and segment to segment.
pub(super) struct RecordScratch {
    pub(super) decoder: BlockDecoder,
    /// An open segment's block as read from its file.
    pub(super) buf: Vec<u8>,
    /// Records built, at most [`BUILD_CHUNK`] of a sealed block at a time.
    pub(super) recs: Vec<FlowRecord>,
    selection: Selection,
}

/// Passes the records of a sealed segment that `query` matches to `f`, skipping the blocks
/// that the footer's index rules out.
fn scan_sealed_segment<F: RecordFilter>(
    path: &Path,
    seg: &SegmentFile,
    partition: Nanos,
    query: &RecordQuery<'_, F>,
    scratch: &mut RecordScratch,
    stats: &mut ScanStats,
    f: &mut impl FnMut(Nanos, &[String], &FlowRecord) -> ControlFlow<()>,
) -> ControlFlow<()> {
    // The footer's extremes bound every block and record in the file; an empty segment has
    // (MAX, MIN) and never overlaps.
    if !query.overlaps(seg.totals.min_first, seg.totals.max_last) {
        stats.segments_skipped += 1;
        return ControlFlow::Continue(());
    }
    stats.segments_read += 1;
    for (i, e) in seg.entries.iter().enumerate() {
        // Lease blocks are read by `scan_leases`.
        if e.kind != KIND_FLOWS {
            continue;
        }
        if !query.overlaps(e.min_first, e.max_last) {
            stats.blocks_skipped += 1;
            continue;
        }
        if query
            .keys
            .as_ref()
            .is_some_and(|k| !seg.block_may_contain(i, k))
        {
            stats.blocks_skipped_by_address += 1;
            continue;
        }
        let Some(bytes) = block_bytes(path, seg, e, stats) else {
            continue;
        };
        let mut f = |r: &FlowRecord| f(partition, &seg.interfaces, r);
        scan_sealed_block(path, e, bytes, query, scratch, stats, &mut f)?;
    }
    ControlFlow::Continue(())
}

/// Passes the records of one sealed block that `query` matches to `f`, built
/// [`BUILD_CHUNK`] at a time. A damaged block is described in `problems` and skipped whole.
fn scan_sealed_block<F: RecordFilter>(
    path: &Path,
    e: &BlockEntry,
    bytes: &[u8],
    query: &RecordQuery<'_, F>,
    scratch: &mut RecordScratch,
    stats: &mut ScanStats,
    f: &mut impl FnMut(&FlowRecord) -> ControlFlow<()>,
) -> ControlFlow<()> {
    // Every record's `first` and `last` lie within the block's: a block inside the range
    // needs no record's times tested.
    let inside = query.contains(e.min_first, e.max_last);
    let test = !(inside && query.addrs.is_none() && query.filter.accepts_all());
    let RecordScratch {
        decoder,
        recs,
        selection,
        ..
    } = scratch;
    let tested = match select_rows(
        decoder,
        bytes,
        e.records,
        test.then_some((inside, query)),
        selection,
    ) {
        Ok(tested) => tested,
        Err(damage) => {
            stats
                .problems
                .push(ScanProblem::block(path, e.offset, damage));
            return ControlFlow::Continue(());
        }
    };
    stats.blocks_read += 1;
    stats.records += tested;
    let cols = decoder.columns();
    if test {
        for chunk in selection.rows.chunks(BUILD_CHUNK) {
            recs.clear();
            cols.assemble_rows(chunk, recs);
            recs.iter().try_for_each(&mut *f)?;
        }
    } else {
        let n = cols.records();
        for start in (0..n).step_by(BUILD_CHUNK) {
            recs.clear();
            cols.assemble(start..n.min(start + BUILD_CHUNK), recs);
            recs.iter().try_for_each(&mut *f)?;
        }
    }
    ControlFlow::Continue(())
}

/// Scratch space of a scan's record selection, reused from block to block.
#[derive(Default)]
struct Selection {
    /// Indexes of the records to build.
    rows: Vec<u32>,
    /// Per record: whether the filter matched it.
    keep: Vec<bool>,
}

/// Opens a sealed block and, when `test` is given (whether the block lies inside the queried
/// range, and the query), tests its records on their columns, leaving the matching ones'
/// indexes in `scratch.rows`; then loads every column if any record is to be built. Returns
/// how many records passed the time and address tests (all of them when nothing is tested).
/// An error drops the block whole, before any of its
/// records reached the caller.
fn select_rows<F: RecordFilter>(
    decoder: &mut BlockDecoder,
    bytes: &[u8],
    records: u32,
    test: Option<(bool, &RecordQuery<'_, F>)>,
    scratch: &mut Selection,
) -> Result<u64, BlockDamage> {
    let Selection {
        rows: selected,
        keep,
    } = scratch;
    let be = BlockDamage::Decode;
    let n = decoder.open(bytes).map_err(be)?;
    if n as u64 != u64::from(records) {
        return Err(BlockDamage::RecordCount {
            found: n,
            indexed: records,
        });
    }
    selected.clear();
    let Some((inside, query)) = test else {
        decoder.load(bytes, ColumnSet::ALL).map_err(be)?;
        return Ok(n as u64);
    };
    let RecordQuery { addrs, filter, .. } = *query;
    let mut need = filter.columns();
    if !inside {
        need |= ColumnSet::TIMES;
    }
    if addrs.is_some() {
        need |= ColumnSet::ADDRS;
    }
    decoder.load(bytes, need).map_err(be)?;
    let cols = decoder.columns();
    keep.clear();
    keep.resize(n, true);
    if !filter.accepts_all() {
        filter.select(cols, keep);
    }
    let mut passed = n as u64;
    if inside && addrs.is_none() {
        selected.extend(
            (0..n as u32)
                .zip(keep.iter())
                .filter(|(_, &k)| k)
                .map(|(i, _)| i),
        );
    } else {
        passed = 0;
        for (i, &k) in keep.iter().enumerate() {
            let row = cols.row(i);
            if (inside || query.overlaps(row.first(), row.last())) && wanted(addrs, &row) {
                passed += 1;
                if k {
                    selected.push(i as u32);
                }
            }
        }
    }
    if !selected.is_empty() {
        decoder.load(bytes, ColumnSet::ALL).map_err(be)?;
    }
    Ok(passed)
}
