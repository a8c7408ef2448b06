//! Reading: list sealed segments from their footers, and scan records by time, skipping whole
//! segments and blocks by the min/max times their footer records. Damage is reported and stepped
//! over: one bad block must not hide the rest of the store.

use super::block::BlockDecoder;
use super::columns::{ColumnDecoder, ColumnSet};
use super::leases::{decode_lease_block, KIND_FLOWS, KIND_LEASES};
use super::recover::{read_open_blocks, OpenBlock};
use super::recover::{read_open_segment, read_temp_header, recover, sealed_name, Recovery};
use super::segment::{BlockEntry, CaptureStats, SegmentFile, SEGMENT_EXT, TEMP_SUFFIX};
use super::summary::addr_key;
use super::{check_marker, parse_partition_dir_name, StoreError};
use crate::fs::{self, DirEntry, File};
use crate::record::{FlowFields, FlowRecord, LeaseObservation};
use crate::time::Nanos;
use std::io;
use std::net::IpAddr;
use std::ops::ControlFlow;
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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Segments whose blocks were looked at.
    pub segments_read: u64,
    /// Segments skipped whole because their time range is outside the query.
    pub segments_skipped: u64,
    /// Blocks decoded successfully.
    pub blocks_read: u64,
    /// Blocks skipped by their time range.
    pub blocks_skipped: u64,
    /// Blocks in the time range skipped because their address summary rules out every address
    /// of the query ([`Store::scan_filtered`]).
    pub blocks_skipped_by_address: u64,
    /// Records that passed the time and address checks (those the record filter, if any,
    /// was tested on); the callback gets the ones the filter also matched.
    pub records: u64,
    /// Unreadable segments and damaged blocks, one line each: path, byte offset, reason.
    pub problems: Vec<String>,
    /// Open segments (still under their temporary name, a live writer's): read up to their
    /// last complete block, a torn tail ignored.
    pub unsealed: Vec<PathBuf>,
}

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
fn wanted<R: FlowFields>(addrs: Option<&[IpAddr]>, r: &R) -> bool {
    addrs.is_none_or(|a| a.contains(&r.src()) || a.contains(&r.dst()))
}

/// A store directory opened for reading.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    recovery: Recovery,
}

struct Listing {
    /// (partition start from the directory name, path), in time then name order.
    sealed: Vec<(Nanos, PathBuf)>,
    /// Sealed and temporary segments together, (partition start, path, is temporary), in time
    /// then name order: a scan goes partition by partition.
    all: Vec<(Nanos, PathBuf, bool)>,
}

impl Store {
    pub fn open(dir: impl AsRef<Path>) -> Result<Store, StoreError> {
        let dir = dir.as_ref();
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(StoreError::NotAStore {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) => return Err(StoreError::io(dir, e)),
        }
        if !check_marker(dir)? {
            return Err(StoreError::NotAStore {
                path: dir.to_path_buf(),
            });
        }
        // With no live writer (the store lock is free), temporary segments are a dead writer's:
        // seal what they hold now. Problems do not stop reading.
        let recovery = recover(dir)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            recovery,
        })
    }

    /// What `open` did about temporary segments left by a writer that died.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Partition directories are recognised by their name; other entries are not the store's
    /// and are left alone.
    fn list(&self) -> Result<Listing, StoreError> {
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
        let keys: Option<Vec<[u8; 16]>> = addrs.map(|a| a.iter().map(addr_key).collect());
        let since = since.unwrap_or(Nanos::MIN);
        let overlaps = |first: Nanos, last: Nanos| last >= since && until.is_none_or(|u| first < u);
        let mut stats = ScanStats::default();
        let mut decoder = BlockDecoder::new()
            .map_err(|e| StoreError::io(&self.dir, io::Error::other(e.reason)))?;
        let mut recs = Vec::new();
        let mut buf = Vec::new();
        let mut selection = Selection::default();
        self.walk_segments(&mut stats, |partition, path, seg, stats| {
            let seg = match seg {
                SegmentRef::Open(file) => {
                    return scan_open_segment(
                        path,
                        file,
                        partition,
                        &overlaps,
                        addrs,
                        filter,
                        &mut decoder,
                        &mut buf,
                        &mut recs,
                        stats,
                        &mut |p, r| f(p, &[], r),
                    )
                }
                SegmentRef::Sealed(seg) => seg,
            };
            // The footer's extremes bound every block and record in the file; an empty segment
            // has (MAX, MIN) and never overlaps.
            if !overlaps(seg.totals.min_first, seg.totals.max_last) {
                stats.segments_skipped += 1;
                return Ok(ControlFlow::Continue(()));
            }
            stats.segments_read += 1;
            for (i, e) in seg.entries.iter().enumerate() {
                // Lease blocks are read by `scan_leases`.
                if e.kind != KIND_FLOWS {
                    continue;
                }
                if !overlaps(e.min_first, e.max_last) {
                    stats.blocks_skipped += 1;
                    continue;
                }
                if keys.as_ref().is_some_and(|k| !seg.block_may_contain(i, k)) {
                    stats.blocks_skipped_by_address += 1;
                    continue;
                }
                let Some(bytes) = block_bytes(path, seg, e, stats) else {
                    continue;
                };
                // Every record's `first` and `last` lie within the block's: a block inside
                // the range needs no record's times tested.
                let inside = e.min_first >= since && until.is_none_or(|u| e.max_last < u);
                let test = !(inside && addrs.is_none() && filter.accepts_all());
                let tested = match select_rows(
                    &mut decoder,
                    bytes,
                    e.records,
                    test.then_some((inside, &overlaps, addrs, filter)),
                    &mut selection,
                ) {
                    Ok(tested) => tested,
                    Err((offset, reason)) => {
                        stats
                            .problems
                            .push(block_problem(path, e.offset, offset, reason));
                        continue;
                    }
                };
                stats.blocks_read += 1;
                stats.records += tested;
                let cols = decoder.columns();
                let n = cols.records();
                let mut call = |recs: &[FlowRecord]| {
                    recs.iter()
                        .try_for_each(|r| f(partition, &seg.interfaces, r))
                };
                if test {
                    for chunk in selection.rows.chunks(BUILD_CHUNK) {
                        recs.clear();
                        cols.assemble_rows(chunk, &mut recs);
                        if call(&recs).is_break() {
                            return Ok(ControlFlow::Break(()));
                        }
                    }
                } else {
                    for start in (0..n).step_by(BUILD_CHUNK) {
                        recs.clear();
                        cols.assemble(start..n.min(start + BUILD_CHUNK), &mut recs);
                        if call(&recs).is_break() {
                            return Ok(ControlFlow::Break(()));
                        }
                    }
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(stats)
    }

    /// Walks the segments in partition order for a scan, giving `visit` each one: an open
    /// segment (a live writer's temporary file) as its file, unless it was sealed since the
    /// listing, in which case the sealed file is read instead; a sealed segment parsed from
    /// its footer. A segment that cannot be opened, or whose visit fails, is described in
    /// `problems` and skipped; `visit` returning `Break` ends the walk.
    fn walk_segments(
        &self,
        stats: &mut ScanStats,
        mut visit: impl FnMut(
            Nanos,
            &Path,
            SegmentRef<'_>,
            &mut ScanStats,
        ) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<(), StoreError> {
        for (partition, mut path, temp) in self.list()?.all {
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
                        stats.problems.push(StoreError::io(&path, e).to_string());
                        continue;
                    }
                };
                if let Some(file) = file {
                    match read_temp_header(&path, &file) {
                        // No header yet: a writer that has not written its first block.
                        Ok(None) => continue,
                        Ok(Some(_)) => {}
                        Err(e) => {
                            stats.problems.push(e.to_string());
                            continue;
                        }
                    }
                    stats.unsealed.push(path.clone());
                    stats.segments_read += 1;
                    match visit(partition, &path, SegmentRef::Open(&file), stats) {
                        Ok(ControlFlow::Continue(())) => continue,
                        Ok(ControlFlow::Break(())) => return Ok(()),
                        Err(e) => {
                            stats.problems.push(e.to_string());
                            continue;
                        }
                    }
                }
            }
            let seg = match SegmentFile::open(&path) {
                Ok(s) => s,
                Err(e) => {
                    stats.problems.push(e.to_string());
                    continue;
                }
            };
            match visit(partition, &path, SegmentRef::Sealed(&seg), stats) {
                Ok(ControlFlow::Continue(())) => {}
                Ok(ControlFlow::Break(())) => return Ok(()),
                Err(e) => stats.problems.push(e.to_string()),
            }
        }
        Ok(())
    }
}

/// A segment as [`Store::walk_segments`] hands it to a scan.
enum SegmentRef<'a> {
    /// A live writer's temporary file, read up to its last complete block.
    Open(&'a File),
    Sealed(&'a SegmentFile),
}

/// The bytes of a sealed segment's block, or `None` (described in `problems`) when its index
/// entry points outside the file.
fn block_bytes<'s>(
    path: &Path,
    seg: &'s SegmentFile,
    e: &BlockEntry,
    stats: &mut ScanStats,
) -> Option<&'s [u8]> {
    let bytes = seg.block(e);
    if bytes.is_none() {
        stats.problems.push(block_problem(
            path,
            e.offset,
            0,
            "block outside the file".into(),
        ));
    }
    bytes
}

/// A damaged block's line in `problems`: the file, the byte offset (the block's, plus where in
/// the block), and what is wrong.
fn block_problem(path: &Path, block: u64, within: u64, reason: String) -> String {
    StoreError::corrupt(path, block.saturating_add(within), reason).to_string()
}

/// Scratch space of a scan's record selection, reused from block to block.
#[derive(Default)]
struct Selection {
    /// Indexes of the records to build.
    rows: Vec<u32>,
    /// Per record: whether the filter matched it.
    keep: Vec<bool>,
}

/// Opens a sealed block and, when `test` is given, tests its records on their columns, leaving
/// the matching ones' indexes in `scratch.rows`; then loads every column if any record is to be
/// built. Returns how many records passed the time and address tests (all of them when
/// nothing is tested). An error (offset within the block, reason) drops the block whole,
/// before any of its records reached the caller.
#[allow(clippy::type_complexity)]
fn select_rows<F: RecordFilter>(
    decoder: &mut BlockDecoder,
    bytes: &[u8],
    records: u32,
    test: Option<(bool, &dyn Fn(Nanos, Nanos) -> bool, Option<&[IpAddr]>, &F)>,
    scratch: &mut Selection,
) -> Result<u64, (u64, String)> {
    let Selection {
        rows: selected,
        keep,
    } = scratch;
    let be = |e: super::block::BlockError| (e.offset, e.reason);
    let n = decoder.open(bytes).map_err(be)?;
    if n as u64 != u64::from(records) {
        return Err((
            0,
            format!("block holds {n} records, the index says {records}"),
        ));
    }
    selected.clear();
    let Some((inside, overlaps, addrs, filter)) = test else {
        decoder.load(bytes, ColumnSet::ALL).map_err(be)?;
        return Ok(n as u64);
    };
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
            if (inside || overlaps(row.first(), row.last())) && wanted(addrs, &row) {
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

impl Store {
    /// Calls `f` with every DHCP lease observation whose time is in `[since, until)` (`None`
    /// leaves that side open), in segment order, by time within a lease block: not sorted
    /// overall. Lease blocks outside the range are skipped by their index entry. `f`
    /// returning `Break` ends the scan. Damage is reported in `problems` as for
    /// [`Store::scan`]; `ScanStats::records` counts the observations passed to `f`.
    pub fn scan_leases(
        &self,
        since: Option<Nanos>,
        until: Option<Nanos>,
        mut f: impl FnMut(&LeaseObservation) -> ControlFlow<()>,
    ) -> Result<ScanStats, StoreError> {
        let since = since.unwrap_or(Nanos::MIN);
        let in_range = |t: Nanos| t >= since && until.is_none_or(|u| t < u);
        let overlaps = |lo: Nanos, hi: Nanos| hi >= since && until.is_none_or(|u| lo < u);
        let mut stats = ScanStats::default();
        let mut leases = Vec::new();
        self.walk_segments(&mut stats, |_, path, seg, stats| {
            let seg = match seg {
                SegmentRef::Open(file) => {
                    return scan_open_leases(
                        path,
                        file,
                        &overlaps,
                        &in_range,
                        &mut leases,
                        stats,
                        &mut f,
                    )
                }
                SegmentRef::Sealed(seg) => seg,
            };
            if seg.totals.leases == 0 || !overlaps(seg.totals.min_first, seg.totals.max_last) {
                stats.segments_skipped += 1;
                return Ok(ControlFlow::Continue(()));
            }
            stats.segments_read += 1;
            for e in seg.entries.iter().filter(|e| e.kind == KIND_LEASES) {
                if !overlaps(e.min_first, e.max_last) {
                    stats.blocks_skipped += 1;
                    continue;
                }
                let Some(bytes) = block_bytes(path, seg, e, stats) else {
                    continue;
                };
                if let Err(be) = decode_lease_block(bytes, &mut leases) {
                    stats
                        .problems
                        .push(block_problem(path, e.offset, be.offset, be.reason));
                    continue;
                }
                if leases.len() as u64 != u64::from(e.records) {
                    stats.problems.push(block_problem(
                        path,
                        e.offset,
                        0,
                        format!(
                            "lease block holds {} observations, the index says {}",
                            leases.len(),
                            e.records
                        ),
                    ));
                    continue;
                }
                stats.blocks_read += 1;
                for l in leases.iter().filter(|l| in_range(l.time)) {
                    stats.records += 1;
                    if f(l).is_break() {
                        return Ok(ControlFlow::Break(()));
                    }
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(stats)
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

/// The lease blocks of an open segment, as [`scan_open_segment`] reads its record blocks.
fn scan_open_leases(
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

/// Reads an open segment's complete blocks, passing the records that overlap the query to `f`.
/// A torn tail, or a header not written yet, is what a live writer's file looks like between two
/// blocks: ignored silently.
#[allow(clippy::too_many_arguments)]
fn scan_open_segment(
    path: &Path,
    file: &File,
    partition: Nanos,
    overlaps: &dyn Fn(Nanos, Nanos) -> bool,
    addrs: Option<&[IpAddr]>,
    filter: &impl RecordFilter,
    decoder: &mut BlockDecoder,
    buf: &mut Vec<u8>,
    recs: &mut Vec<FlowRecord>,
    stats: &mut ScanStats,
    f: &mut impl FnMut(Nanos, &FlowRecord) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, StoreError> {
    let mut stopped = false;
    read_open_segment(path, file, decoder, buf, recs, |e, recs| {
        if !overlaps(e.min_first, e.max_last) {
            stats.blocks_skipped += 1;
            return ControlFlow::Continue(());
        }
        stats.blocks_read += 1;
        // No address summary until the segment is sealed: every block is read, and the
        // address restriction applied record by record. Open segments are few (one per
        // writer), so their records are built first and tested after.
        for r in recs {
            if overlaps(r.first, r.last) && wanted(addrs, r) {
                stats.records += 1;
                if filter.matches(r) && f(partition, r).is_break() {
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

fn read_dir(dir: &Path) -> Result<Vec<DirEntry>, StoreError> {
    fs::read_dir(dir)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| StoreError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreWriter, WriterConfig, MARKER_NAME};
    use crate::testing::{arb_record, sample};
    use crate::time::NANOS_PER_SEC;
    use proptest::prelude::*;
    use std::net::IpAddr;

    const T0: Nanos = 1_767_225_600 * NANOS_PER_SEC; // 2026-01-01T00:00:00Z
    const HOUR: Nanos = 3600 * NANOS_PER_SEC;

    fn rec(first: Nanos, last: Nanos, i: u64) -> FlowRecord {
        FlowRecord {
            first,
            last,
            ..sample(i)
        }
    }

    fn write(
        dir: &Path,
        recs: &[FlowRecord],
        tweak: impl FnOnce(&mut WriterConfig),
    ) -> crate::store::WriterStats {
        let mut cfg = WriterConfig::new(dir);
        tweak(&mut cfg);
        let mut w = StoreWriter::create(cfg).unwrap();
        for r in recs {
            w.append(r).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(
        dir: &Path,
        since: Option<Nanos>,
        until: Option<Nanos>,
    ) -> (Vec<FlowRecord>, ScanStats) {
        let mut out = Vec::new();
        let stats = Store::open(dir)
            .unwrap()
            .scan(since, until, |_, r| {
                out.push(r.clone());
                ControlFlow::Continue(())
            })
            .unwrap();
        (out, stats)
    }

    fn sorted(mut v: Vec<FlowRecord>) -> Vec<FlowRecord> {
        v.sort_by_key(|r| (r.first, r.last, r.sport, r.packets, format!("{r:?}")));
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn writer_scan_round_trip(recs in proptest::collection::vec(arb_record(), 0..60)) {
            let d = tempfile::tempdir().unwrap();
            // Whole-range timestamps land in partitions near the ends of time: the writer must
            // either store a record or refuse it, and whatever it stores must come back.
            let mut cfg = WriterConfig::new(d.path());
            cfg.block_records = 7;
            let mut w = StoreWriter::create(cfg).unwrap();
            let mut kept = Vec::new();
            for r in &recs {
                if w.append(r).is_ok() {
                    kept.push(r.clone());
                }
            }
            let stats = w.finish().unwrap();
            prop_assert_eq!(stats.records, kept.len() as u64);
            let (got, scan) = read_all(d.path(), None, None);
            prop_assert!(scan.problems.is_empty(), "{:?}", scan.problems);
            prop_assert_eq!(sorted(got), sorted(kept));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// A query for some addresses returns exactly the records that have one of them, and
        /// reads only the blocks that hold one (plus a few false positives).
        #[test]
        fn address_filter_never_misses(
            hosts in proptest::collection::vec(any::<u32>(), 1..400),
            picks in proptest::collection::vec(any::<prop::sample::Index>(), 300..1500),
            query in proptest::collection::vec(any::<prop::sample::Index>(), 1..3),
            stranger in any::<[u8; 16]>(),
        ) {
            let d = tempfile::tempdir().unwrap();
            let recs: Vec<FlowRecord> = picks
                .iter()
                .enumerate()
                .map(|(i, p)| FlowRecord {
                    src: IpAddr::V4(hosts[p.index(hosts.len())].into()),
                    dst: IpAddr::V4(hosts[(p.index(hosts.len()) + 1) % hosts.len()].into()),
                    ..rec(T0 + i as i64 * 1000, T0 + i as i64 * 1000 + 5, i as u64)
                })
                .collect();
            write(d.path(), &recs, |c| c.block_records = 50);
            let mut addrs: Vec<IpAddr> =
                query.iter().map(|q| IpAddr::V4(hosts[q.index(hosts.len())].into())).collect();
            addrs.push(IpAddr::V6(stranger.into()));
            let store = Store::open(d.path()).unwrap();
            let mut got = Vec::new();
            let s = store
                .scan_filtered(None, None, Some(&addrs), |_, r| {
                    got.push(r.clone());
                    ControlFlow::Continue(())
                })
                .unwrap();
            let want: Vec<FlowRecord> = recs
                .iter()
                .filter(|r| addrs.contains(&r.src) || addrs.contains(&r.dst))
                .cloned()
                .collect();
            prop_assert_eq!(sorted(got), sorted(want));
            let holding = recs
                .chunks(50)
                .filter(|c| c.iter().any(|r| addrs.contains(&r.src) || addrs.contains(&r.dst)))
                .count() as u64;
            let blocks = recs.len().div_ceil(50) as u64;
            prop_assert_eq!(s.blocks_read + s.blocks_skipped_by_address, blocks);
            prop_assert!(s.blocks_read >= holding);
            // ~1.3 % false positives per address per block (≤ 3 addresses here, so ≤ 4 %):
            // a margin of 25 % + 3 blocks keeps this test from ever flaking.
            let slack = (blocks - holding) / 4 + 3;
            prop_assert!(s.blocks_read <= holding + slack, "{} read, {} hold", s.blocks_read, holding);
        }
    }

    #[test]
    fn address_query_skips_blocks_without_the_address() {
        let d = tempfile::tempdir().unwrap();
        let recs: Vec<FlowRecord> = (0..10_000).map(sample).collect();
        write(d.path(), &recs, |c| c.block_records = 1000);
        // sample(i) has src 10.0.(i>>8).(i&255): one address, in exactly one block.
        let target: IpAddr = "10.0.20.3".parse().unwrap();
        let store = Store::open(d.path()).unwrap();
        let mut got = Vec::new();
        let s = store
            .scan_filtered(None, None, Some(&[target]), |_, r| {
                got.push(r.clone());
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(got, [sample(20 * 256 + 3)]);
        assert!(s.blocks_read <= 2, "{s:?}");
        assert_eq!(s.blocks_read + s.blocks_skipped_by_address, 10);
        // An empty address list matches nothing; None matches everything.
        let s = store
            .scan_filtered(None, None, Some(&[]), |_, _| ControlFlow::Continue(()))
            .unwrap();
        assert_eq!((s.records, s.blocks_read), (0, 0));
        let s = store
            .scan_filtered(None, None, None, |_, _| ControlFlow::Continue(()))
            .unwrap();
        assert_eq!(s.records, 10_000);
    }

    #[test]
    fn capture_stats_go_to_the_newest_open_segment_or_the_next_one() {
        use crate::store::CaptureStats;
        let d = tempfile::tempdir().unwrap();
        let mut w = StoreWriter::create(WriterConfig::new(d.path())).unwrap();
        let one = CaptureStats {
            frames: 10,
            kernel_drops: 2,
            ..CaptureStats::default()
        };
        // Nothing open: kept for the next segment.
        w.add_capture_stats(&one);
        w.append(&rec(T0 + 1, T0 + 2, 1)).unwrap();
        w.add_capture_stats(&CaptureStats {
            frames: 5,
            malformed: 1,
            flags: crate::store::segment::CAPTURE_MACS_NOT_STORED,
            ..CaptureStats::default()
        });
        w.append(&rec(T0 + HOUR + 1, T0 + HOUR + 2, 2)).unwrap();
        // Two partitions open: only the newest gets these, so sums stay exact.
        w.add_capture_stats(&CaptureStats {
            frames: u64::MAX - 15,
            records_not_stored: 3,
            ..CaptureStats::default()
        });
        w.finish().unwrap();
        let segs = Store::open(d.path()).unwrap().segments().unwrap();
        assert_eq!(
            segs[0].capture,
            CaptureStats {
                frames: 15,
                kernel_drops: 2,
                malformed: 1,
                flags: 1,
                ..CaptureStats::default()
            }
        );
        assert_eq!(
            segs[1].capture,
            CaptureStats {
                frames: u64::MAX - 15,
                records_not_stored: 3,
                ..CaptureStats::default()
            }
        );
    }

    #[test]
    fn segments_of_format_1_are_refused_as_old() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), &[sample(1)], |_| {});
        let path = Store::open(d.path()).unwrap().segments().unwrap()[0]
            .path
            .clone();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8] = 1;
        let crc = crc32c::crc32c(&bytes[..60]);
        bytes[60..64].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let info = &Store::open(d.path()).unwrap().segments().unwrap()[0];
        let e = info.error.as_deref().unwrap();
        assert!(
            e.contains("older development build") && e.contains("re-create the store"),
            "{e}"
        );
    }

    #[test]
    fn many_blocks_round_trip_in_order() {
        let d = tempfile::tempdir().unwrap();
        let recs: Vec<FlowRecord> = (0..10_000).map(sample).collect();
        let stats = write(d.path(), &recs, |c| c.block_records = 1000);
        assert_eq!(stats.records, 10_000);
        assert_eq!(stats.blocks, 10);
        assert_eq!(stats.segments, 1);
        let (got, scan) = read_all(d.path(), None, None);
        assert_eq!(got, recs);
        assert_eq!(scan.blocks_read, 10);
        assert!(scan.problems.is_empty() && scan.unsealed.is_empty());
        let seg = &Store::open(d.path()).unwrap().segments().unwrap()[0];
        assert_eq!(seg.bytes, std::fs::metadata(&seg.path).unwrap().len());
        assert_eq!(seg.bytes, stats.bytes);
        eprintln!(
            "synthetic: {} bytes for {} records = {:.1} bytes/record",
            seg.bytes,
            seg.records,
            seg.bytes as f64 / seg.records as f64
        );
    }

    #[test]
    fn partition_routing_three_partitions() {
        let d = tempfile::tempdir().unwrap();
        // Out of order on purpose, and one record that outlives its partition: records go by
        // `first` and are never split.
        let recs = vec![
            rec(T0 + 2 * HOUR + 5, T0 + 2 * HOUR + 6, 1),
            rec(T0, T0 + 3 * HOUR, 2),
            rec(T0 + HOUR - 1, T0 + HOUR, 3),
            rec(T0 + HOUR, T0 + HOUR + 1, 4),
        ];
        let stats = write(d.path(), &recs, |_| {});
        assert_eq!(stats.segments, 3);
        let names: Vec<String> = {
            let mut v: Vec<String> = std::fs::read_dir(d.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            names,
            [
                crate::store::lock::LOCK_NAME,
                "2026-01-01T00-00Z",
                "2026-01-01T01-00Z",
                "2026-01-01T02-00Z",
                crate::store::audit::AUDIT_LOG_NAME,
                MARKER_NAME
            ]
        );
        for p in &names[1..4] {
            let files: Vec<_> = std::fs::read_dir(d.path().join(p)).unwrap().collect();
            assert_eq!(files.len(), 1, "{p}");
        }
        let segs = Store::open(d.path()).unwrap().segments().unwrap();
        let starts: Vec<_> = segs
            .iter()
            .map(|s| (s.partition_start, s.partition_end, s.records))
            .collect();
        assert_eq!(
            starts,
            [
                (T0, T0 + HOUR, 2),
                (T0 + HOUR, T0 + 2 * HOUR, 1),
                (T0 + 2 * HOUR, T0 + 3 * HOUR, 1)
            ]
        );
        assert_eq!((segs[0].first, segs[0].last), (T0, T0 + 3 * HOUR));
        assert!(segs.iter().all(|s| s.error.is_none() && s.blocks == 1));
    }

    #[test]
    fn time_range_edges() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (T0 + 100, T0 + 200);
        // One record per partition so segment skipping shows in the counts.
        write(
            d.path(),
            &[rec(a, b, 1), rec(T0 + 5 * HOUR, T0 + 5 * HOUR + 1, 2)],
            |_| {},
        );
        let count = |since, until| read_all(d.path(), since, until).0.len();
        assert_eq!(count(Some(b), None), 2, "since == last is inside");
        assert_eq!(
            count(Some(b + 1), Some(T0 + HOUR)),
            0,
            "since after last is outside"
        );
        assert_eq!(count(None, Some(a)), 0, "until == first is outside");
        assert_eq!(
            count(None, Some(a + 1)),
            1,
            "until just after first is inside"
        );
        assert_eq!(
            count(Some(a + 50), Some(a + 60)),
            1,
            "window inside the record overlaps"
        );
        assert_eq!(count(Some(T0 + 5 * HOUR + 1), Some(T0 + 5 * HOUR + 2)), 1);
        let (_, s) = read_all(d.path(), Some(b + 1), Some(T0 + HOUR));
        assert_eq!((s.segments_read, s.segments_skipped), (0, 2));
        let (_, s) = read_all(d.path(), None, Some(T0 + HOUR));
        assert_eq!((s.segments_read, s.segments_skipped, s.records), (1, 1, 1));
    }

    #[test]
    fn blocks_are_skipped_by_time() {
        let d = tempfile::tempdir().unwrap();
        let recs: Vec<FlowRecord> = (0..100)
            .map(|i| rec(T0 + i * 1000, T0 + i * 1000 + 10, i as u64))
            .collect();
        write(d.path(), &recs, |c| c.block_records = 10);
        let (got, s) = read_all(d.path(), Some(T0 + 25_000), Some(T0 + 45_000));
        assert_eq!(got, recs[25..45]);
        // Blocks 2..=4 hold records overlapping [25 000, 45 000); the other seven are skipped.
        assert_eq!((s.blocks_read, s.blocks_skipped), (3, 7));
    }

    #[test]
    fn two_writers_same_partition_distinct_files() {
        let d = tempfile::tempdir().unwrap();
        let cfg = WriterConfig::new(d.path());
        // Same writer id, both open at once, then a later run: names must still not collide.
        let mut w1 = StoreWriter::create(cfg.clone()).unwrap();
        let mut w2 = StoreWriter::create(cfg.clone()).unwrap();
        w1.append(&rec(T0 + 1, T0 + 2, 1)).unwrap();
        w2.append(&rec(T0 + 3, T0 + 4, 2)).unwrap();
        w2.finish().unwrap();
        w1.finish().unwrap();
        write(d.path(), &[rec(T0 + 5, T0 + 6, 3)], |_| {});
        let mut other = cfg;
        other.writer_id = 7;
        write(d.path(), &[rec(T0 + 7, T0 + 8, 4)], |c| *c = other);
        let segs = Store::open(d.path()).unwrap().segments().unwrap();
        let mut names: Vec<_> = segs
            .iter()
            .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "seg-00000000-00000000.fks",
                "seg-00000000-00000001.fks",
                "seg-00000000-00000002.fks",
                "seg-00000007-00000000.fks"
            ]
        );
        assert_eq!(read_all(d.path(), None, None).0.len(), 4);
    }

    #[test]
    fn concurrent_writer_threads_never_collide() {
        let d = tempfile::tempdir().unwrap();
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let cfg = WriterConfig::new(d.path());
                std::thread::spawn(move || {
                    let mut w = StoreWriter::create(cfg).unwrap();
                    for i in 0..50 {
                        w.append(&rec(T0 + i, T0 + i + 1, t * 100 + i as u64))
                            .unwrap();
                    }
                    w.finish().unwrap()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().segments, 1);
        }
        let segs = Store::open(d.path()).unwrap().segments().unwrap();
        assert_eq!(segs.len(), 4);
        assert_eq!(read_all(d.path(), None, None).0.len(), 200);
    }

    #[test]
    fn flipped_byte_in_block_is_reported_and_other_blocks_read() {
        let d = tempfile::tempdir().unwrap();
        let recs: Vec<FlowRecord> = (0..30).map(sample).collect();
        write(d.path(), &recs, |c| c.block_records = 10);
        let seg =
            SegmentFile::open(&Store::open(d.path()).unwrap().segments().unwrap()[0].path).unwrap();
        let victim = seg.entries[1];
        let path = seg.path.clone();
        drop(seg);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = victim.offset as usize + 30;
        bytes[at] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let (got, s) = read_all(d.path(), None, None);
        assert_eq!(s.blocks_read, 2);
        assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
        assert!(
            s.problems[0].contains(&path.display().to_string()),
            "{}",
            s.problems[0]
        );
        assert!(s.problems[0].contains("checksum"), "{}", s.problems[0]);
        assert!(
            s.problems[0].contains(&format!("byte {}", victim.offset + 16)),
            "{}",
            s.problems[0]
        );
        assert_eq!(got, [&recs[..10], &recs[20..]].concat());
    }

    #[test]
    fn truncated_or_damaged_segments_do_not_panic() {
        let d = tempfile::tempdir().unwrap();
        let recs: Vec<FlowRecord> = (0..50).map(sample).collect();
        write(d.path(), &recs, |c| c.block_records = 10);
        let path = Store::open(d.path()).unwrap().segments().unwrap()[0]
            .path
            .clone();
        let good = std::fs::read(&path).unwrap();
        let mut cuts: Vec<usize> = (0..good.len()).step_by(37).collect();
        cuts.extend([
            good.len() - 1,
            good.len() - 24,
            good.len() - 25,
            0,
            1,
            63,
            64,
        ]);
        for cut in cuts {
            std::fs::write(&path, &good[..cut]).unwrap();
            let store = Store::open(d.path()).unwrap();
            let infos = store.segments().unwrap();
            assert!(infos[0].error.is_some(), "cut at {cut} went unnoticed");
            let (got, s) = read_all(d.path(), None, None);
            assert!(got.is_empty() && s.problems.len() == 1, "cut {cut}");
        }
        // Every single-byte flip in the header, footer and trailer is caught (checksums, magic),
        // never a panic.
        let footer_len =
            u32::from_le_bytes(good[good.len() - 16..good.len() - 12].try_into().unwrap());
        let footer_start = good.len() - 24 - footer_len as usize;
        for at in (0..64).chain(footer_start..good.len()) {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            let infos = Store::open(d.path()).unwrap().segments().unwrap();
            assert!(infos[0].error.is_some(), "flip at {at} went unnoticed");
        }
        std::fs::write(&path, &good).unwrap();
        assert_eq!(read_all(d.path(), None, None).0, recs);
    }

    #[test]
    fn seal_before_seals_only_finished_partitions() {
        let d = tempfile::tempdir().unwrap();
        let mut w = StoreWriter::create(WriterConfig::new(d.path())).unwrap();
        w.append(&rec(T0 + 10, T0 + 20, 1)).unwrap();
        w.append(&rec(T0 + HOUR + 10, T0 + HOUR + 20, 2)).unwrap();
        w.seal_before(T0 + HOUR - 1).unwrap();
        assert_eq!(w.stats().segments, 0);
        w.seal_before(T0 + HOUR).unwrap();
        assert_eq!(w.stats().segments, 1);
        let (got, s) = read_all(d.path(), None, None);
        assert_eq!(got.len(), 1);
        assert_eq!(s.unsealed.len(), 1);
        assert!(s.unsealed[0]
            .to_string_lossy()
            .ends_with(".seg-00000000-00000000.fks.tmp"));
        // A late record for the sealed partition goes to a new segment, not into the sealed one.
        w.append(&rec(T0 + 30, T0 + 40, 3)).unwrap();
        let stats = w.finish().unwrap();
        assert_eq!((stats.segments, stats.records), (3, 3));
        let (got, s) = read_all(d.path(), None, None);
        assert_eq!(got.len(), 3);
        assert!(s.unsealed.is_empty());
    }

    #[test]
    fn large_segments_roll_over() {
        let d = tempfile::tempdir().unwrap();
        let recs: Vec<FlowRecord> = (0..3000).map(sample).collect();
        let stats = write(d.path(), &recs, |c| {
            c.block_records = 100;
            c.max_segment_bytes = 4096;
            c.zstd_level = 1;
        });
        assert!(stats.segments > 2, "{stats:?}");
        let (got, _) = read_all(d.path(), None, None);
        assert_eq!(sorted(got), sorted(recs));
    }

    #[test]
    fn create_refuses_files_and_unwritable_paths() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        let e = StoreWriter::create(WriterConfig::new(&file)).err().unwrap();
        assert!(e.to_string().contains(&file.display().to_string()), "{e}");
        let under = file.join("store");
        let e = StoreWriter::create(WriterConfig::new(&under))
            .err()
            .unwrap();
        assert!(e.to_string().contains(&under.display().to_string()), "{e}");
        // A populated directory without a marker is somebody else's: not written into.
        let e = StoreWriter::create(WriterConfig::new(d.path()))
            .err()
            .unwrap();
        assert!(e.to_string().contains("not a flowkeep store"), "{e}");
        assert!(!d.path().join(MARKER_NAME).exists());
    }

    #[test]
    fn newer_store_format_is_refused_by_writer_and_reader() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(MARKER_NAME), "flowkeep store\nformat 5\n").unwrap();
        let e = StoreWriter::create(WriterConfig::new(d.path()))
            .err()
            .unwrap();
        assert!(e.to_string().contains("upgrade flowkeep"), "{e}");
        let e = Store::open(d.path()).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::UnsupportedVersion {
                    found: 5,
                    supported: 4,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn open_refuses_non_store_dirs() {
        let d = tempfile::tempdir().unwrap();
        let e = Store::open(d.path()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "not a flowkeep store: {} (no flowkeep-store marker file)",
                d.path().display()
            )
        );
        assert!(Store::open(d.path().join("missing")).is_err());
        // A fresh store is readable and empty.
        let s = d.path().join("s");
        StoreWriter::create(WriterConfig::new(&s))
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(s.join(MARKER_NAME)).unwrap(),
            "flowkeep store\nformat 4\n"
        );
        assert!(Store::open(&s).unwrap().segments().unwrap().is_empty());
    }

    #[test]
    fn bad_config_is_refused() {
        let d = tempfile::tempdir().unwrap();
        for tweak in [
            (|c: &mut WriterConfig| c.partition = 90 * NANOS_PER_SEC) as fn(&mut WriterConfig),
            |c| c.partition = 0,
            |c| c.block_records = 0,
            |c| c.block_records = 1 << 20,
            |c| c.zstd_level = 99,
            |c| c.max_segment_bytes = 0,
        ] {
            let mut cfg = WriterConfig::new(d.path());
            tweak(&mut cfg);
            assert!(matches!(
                StoreWriter::create(cfg),
                Err(StoreError::Config(_))
            ));
        }
    }
}
