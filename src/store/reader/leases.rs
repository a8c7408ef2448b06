//! Scanning DHCP lease observations.

use super::unsealed::scan_open_leases;
use super::walk::{block_bytes, Seen, SegmentRef};
use super::{BlockDamage, ScanProblem, ScanStats, Store};
use crate::record::LeaseObservation;
use crate::store::leases::{decode_lease_block, KIND_LEASES};
use crate::store::segment::SegmentFile;
use crate::store::StoreError;
use crate::time::Nanos;
use std::ops::ControlFlow;
use std::path::Path;

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
        let mut seen = Seen::new();
        self.walk_listed(&mut stats, |_, path, shared, seg, stats| {
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
            seen.enter(shared);
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
                    let damage = BlockDamage::Decode(be);
                    stats
                        .problems
                        .push(ScanProblem::block(path, e.offset, damage));
                    continue;
                }
                if leases.len() as u64 != u64::from(e.records) {
                    let damage = BlockDamage::LeaseCount {
                        found: leases.len(),
                        indexed: e.records,
                    };
                    stats
                        .problems
                        .push(ScanProblem::block(path, e.offset, damage));
                    continue;
                }
                stats.blocks_read += 1;
                for l in leases.iter().filter(|l| in_range(l.time)) {
                    if !seen.first_time(shared, l) {
                        continue;
                    }
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

    /// The lease observations of the one sealed segment at `path` (see [`Store::scan_segment`]).
    pub fn segment_leases(path: &Path) -> Result<Vec<LeaseObservation>, StoreError> {
        let seg = SegmentFile::open(path)?;
        let mut out = Vec::new();
        let mut leases = Vec::new();
        for e in seg.entries.iter().filter(|e| e.kind == KIND_LEASES) {
            let bytes = seg
                .block(e)
                .ok_or_else(|| StoreError::corrupt(path, e.offset, "block outside the file"))?;
            decode_lease_block(bytes, &mut leases).map_err(|be| {
                StoreError::corrupt(path, e.offset.saturating_add(be.offset), be.reason)
            })?;
            out.append(&mut leases);
        }
        Ok(out)
    }
}
