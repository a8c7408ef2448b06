//! One hold copy: what a hold names out of one source segment.

use super::PreserveError;
use crate::fs;
use crate::query::Filter;
use crate::record::{FlowFields, FlowRecord};
use crate::store::audit::relative;
use crate::store::holds::Hold;
use crate::store::segment::{CaptureStats, SegmentFile};
use crate::store::{partition_dir_name, BuiltSegment, SegmentBuilder, SegmentSpec, Store};
use crate::store::{ScanStats, StoreError};
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
    let src = SegmentFile::open(source)?;
    let header = &src.header;
    let name = source
        .file_name()
        .ok_or_else(|| StoreError::Config(format!("{}: no file name", source.display())))?;
    let pdir = hold
        .dir(dir)
        .join(partition_dir_name(header.partition_start));
    let target = pdir.join(name);
    let mut copied = Copied::default();
    if fs::exists(&target) {
        return Ok(copied);
    }
    let required = filter.required_addresses();
    let mut records: Vec<FlowRecord> = Vec::new();
    copied.scan = Store::scan_segment(
        source,
        Some(hold.from),
        Some(hold.until),
        required.as_deref(),
        filter,
        |_, r| {
            records.push(r.clone());
            ControlFlow::Continue(())
        },
    )?;
    if let Some(p) = copied.scan.problems.first() {
        // A copy that leaves out a damaged block would be a silent short answer to the court.
        return Err(StoreError::Refused {
            path: source.to_path_buf(),
            reason: format!("not copied for hold {}: {p}", hold.name),
        }
        .into());
    }
    if records.is_empty() {
        return Ok(copied);
    }
    let addrs: HashSet<IpAddr> = records.iter().flat_map(|r| [r.src(), r.dst()]).collect();
    let leases: Vec<_> = Store::segment_leases(source)?
        .into_iter()
        .filter(|l| addrs.contains(&l.address))
        .collect();
    make_dirs(dir, &pdir)?;
    let spec = SegmentSpec {
        path: target,
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
        return Ok(copied);
    };
    // Blocks hold records in `first` order, as a writer's do.
    records.sort_by_key(|r| (r.first, r.last));
    for r in &records {
        b.append(r)?;
    }
    for l in &leases {
        b.append_lease(l)?;
    }
    let reason = format!("hold={} source={}", hold.name, relative(dir, source));
    copied.built = b.seal(time, &reason)?;
    Ok(copied)
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
