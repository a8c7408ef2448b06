//! One hold copy: what a hold names out of one source segment.

use super::PreserveError;
use crate::fs;
use crate::query::Filter;
use crate::record::{FlowFields, FlowRecord};
use crate::store::audit::relative;
use crate::store::holds::Hold;
use crate::store::segment::{CaptureStats, SegmentFile};
use crate::store::{partition_dir_name, BuiltSegment, SegmentBuilder, SegmentSpec, Store};
use crate::store::{ColumnDecoder, ColumnSet, RecordFilter, ScanStats, StoreError};
use crate::time::Nanos;
use std::collections::HashSet;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::Path;

/// What copying one segment did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    /// The copy, when records matched and this call made it (not when it existed already or
    /// another process was making it).
    pub built: Option<BuiltSegment>,
    /// The source segment's scan: blocks read and skipped by time and address.
    pub scan: ScanStats,
}

/// Copies, out of the sealed segment `source` of store `dir`, the records that overlap the
/// hold's range and match `filter`, and the source's lease observations of their addresses,
/// into `DIR/holds/NAME/PARTITION/` under the source's file name and header numbers, sealed
/// with an audit entry at `time` naming the hold and the source. Blocks are skipped by time
/// and by the address summary of the addresses the filter requires. Nothing is written when
/// no record matches, or when the copy exists or is being made.
pub fn copy_segment(
    dir: &Path,
    hold: &Hold,
    filter: &Filter,
    source: &Path,
    time: Nanos,
) -> Result<Copied, PreserveError> {
    Ok(copy_for_holds(dir, &[(hold, filter)], source, time)?
        .pop()
        .unwrap_or_default())
}

/// [`copy_segment`] for several holds in one pass over the source: its blocks are read once,
/// tested against every hold's filter at once, and each matching record goes to the copies of
/// the holds it matches. One [`Copied`] per hold, in order (all sharing the one scan's counts).
pub fn copy_for_holds(
    dir: &Path,
    holds: &[(&Hold, &Filter)],
    source: &Path,
    time: Nanos,
) -> Result<Vec<Copied>, PreserveError> {
    let mut out = vec![Copied::default(); holds.len()];
    let src = SegmentFile::open(source)?;
    let header = &src.header;
    let name = source
        .file_name()
        .ok_or_else(|| StoreError::Config(format!("{}: no file name", source.display())))?;
    let part = partition_dir_name(header.partition_start);
    let todo: Vec<usize> = (0..holds.len())
        .filter(|&i| !fs::exists(&holds[i].0.dir(dir).join(&part).join(name)))
        .collect();
    if todo.is_empty() {
        return Ok(out);
    }
    let wanted: Vec<(&Hold, &Filter)> = todo.iter().map(|&i| holds[i]).collect();
    let any = AnyOf(&wanted);
    let since = wanted.iter().map(|(h, _)| h.from).min();
    let until = wanted.iter().map(|(h, _)| h.until).max();
    let required = any.required_addresses();
    let mut records: Vec<Vec<FlowRecord>> = vec![Vec::new(); wanted.len()];
    let scan = Store::scan_segment(source, since, until, required.as_deref(), &any, |_, r| {
        for (i, (h, f)) in wanted.iter().enumerate() {
            if h.overlaps(r.first, r.last) && f.matches(r) {
                records[i].push(r.clone());
            }
        }
        ControlFlow::Continue(())
    })?;
    if let Some(p) = scan.problems.first() {
        // A copy that leaves out a damaged block would be a silent short answer to the court.
        return Err(StoreError::Refused {
            path: source.to_path_buf(),
            reason: format!("not copied for holds: {p}"),
        }
        .into());
    }
    for &i in &todo {
        out[i].scan = scan.clone();
    }
    if records.iter().all(Vec::is_empty) {
        return Ok(out);
    }
    let leases = Store::segment_leases(source)?;
    for (k, recs) in records.iter_mut().enumerate() {
        if recs.is_empty() {
            continue;
        }
        let hold = wanted[k].0;
        let pdir = hold.dir(dir).join(&part);
        make_dirs(dir, &pdir)?;
        let spec = SegmentSpec {
            path: pdir.join(name),
            partition: (header.partition_start, header.partition_end),
            writer_id: header.writer_id,
            sequence: header.sequence,
            zstd_level: header.zstd_level,
            block_records: 8192,
            interfaces: src.interfaces.clone(),
            capture: CaptureStats {
                flags: src.capture.flags,
                ..CaptureStats::default()
            },
        };
        let Some(mut b) = SegmentBuilder::create(dir, spec)? else {
            continue;
        };
        // Blocks hold records in `first` order, as a writer's do.
        recs.sort_by_key(|r| (r.first, r.last));
        for r in recs.iter() {
            b.append(r)?;
        }
        let addrs: HashSet<IpAddr> = recs.iter().flat_map(|r| [r.src(), r.dst()]).collect();
        for l in leases.iter().filter(|l| addrs.contains(&l.address)) {
            b.append_lease(l)?;
        }
        let reason = format!("hold={} source={}", hold.name, relative(dir, source));
        out[todo[k]].built = b.seal(time, &reason)?;
    }
    Ok(out)
}

/// Records any of several holds' filters match: the filter of a scan on behalf of them all.
struct AnyOf<'a>(&'a [(&'a Hold, &'a Filter)]);

impl AnyOf<'_> {
    /// Every address some filter requires, when each requires some (else no block can be
    /// skipped by address).
    fn required_addresses(&self) -> Option<Vec<IpAddr>> {
        let mut all = Vec::new();
        for (_, f) in self.0 {
            all.extend(f.required_addresses()?);
        }
        Some(all)
    }
}

impl RecordFilter for AnyOf<'_> {
    fn columns(&self) -> ColumnSet {
        self.0
            .iter()
            .fold(ColumnSet::NONE, |c, (_, f)| c.union(f.columns()))
    }

    fn accepts_all(&self) -> bool {
        self.0.iter().any(|(_, f)| f.accepts_all())
    }

    fn matches<R: FlowFields>(&self, r: &R) -> bool {
        self.0.iter().any(|(_, f)| f.matches(r))
    }

    fn select(&self, cols: &ColumnDecoder, keep: &mut [bool]) {
        if let [(_, f)] = self.0 {
            return f.select(cols, keep);
        }
        let mut one = vec![true; keep.len()];
        let mut any = vec![false; keep.len()];
        for (_, f) in self.0 {
            one.fill(true);
            f.select(cols, &mut one);
            any.iter_mut().zip(&one).for_each(|(a, o)| *a |= o);
        }
        keep.copy_from_slice(&any);
    }
}

/// Creates a hold's partition folder and makes its entries durable up to the store.
fn make_dirs(dir: &Path, pdir: &Path) -> Result<(), StoreError> {
    if fs::is_dir(pdir) {
        return Ok(());
    }
    fs::create_dir_all(pdir).map_err(|e| StoreError::io(pdir, e))?;
    let mut d = pdir.parent();
    while let Some(p) = d {
        fs::sync_dir(p).map_err(|e| StoreError::io(p, e))?;
        if p == dir {
            break;
        }
        d = p.parent();
    }
    Ok(())
}
