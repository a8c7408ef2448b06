//! One segment written whole by a process that does not own the store's writing: a hold's copy
//! of a segment, an anonymised rewrite. Same blocks, footer, fsyncs and audit `seal` entry as
//! a [`StoreWriter`](super::StoreWriter)'s, but without the store lock (a capture may be
//! writing meanwhile) and at a path the caller chooses. Its temporary file is named
//! `.build-NAME.tmp`, which crash recovery does not take for a dead writer's segment: an
//! interrupted build is the work of whoever started it to finish or remove.

use super::{complete, flush_block, flush_leases, Completed, MappedFile, OpenSegment};
use super::{WriterStats, BLOCK_TARGET_BYTES};
use crate::fs;
use crate::record::{FlowRecord, LeaseObservation};
use crate::store::block::BlockEncoder;
use crate::store::leases::MAX_BLOCK_LEASES;
use crate::store::segment::{interface_names_len, CaptureStats, SegmentHeader, HEADER_LEN};
use crate::store::{StoreError, FORMAT_VERSION};
use crate::time::Nanos;
use std::io;
use std::path::{Path, PathBuf};

/// Prefix and suffix of a building segment's temporary name.
pub const BUILD_PREFIX: &str = ".build-";
pub const BUILD_SUFFIX: &str = ".tmp";

/// What the segment to build is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSpec {
    /// Its final path, inside the directory of its partition (which must exist).
    pub path: PathBuf,
    pub partition: (Nanos, Nanos),
    /// Header fields: a copy keeps its source's, so that the two are recognisably related.
    pub writer_id: u32,
    pub sequence: u32,
    pub zstd_level: i32,
    pub block_records: usize,
    /// Names for the records' `interface` indexes (the source's).
    pub interfaces: Vec<String>,
    /// Capture statistics for its footer; a copy carries only the flags that describe its
    /// records (MACs not stored, anonymised).
    pub capture: CaptureStats,
}

/// A segment that was built and sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltSegment {
    pub path: PathBuf,
    pub records: u64,
    pub leases: u64,
    pub bytes: u64,
    /// Smallest `first`, largest `last` of its records and leases.
    pub span: (Nanos, Nanos),
}

pub struct SegmentBuilder {
    /// The store directory: whose audit log the seal entry goes to.
    store: PathBuf,
    seg: Option<OpenSegment>,
    block_records: usize,
    zstd_level: i32,
    interfaces: Vec<String>,
    stats: WriterStats,
}

/// The temporary name a segment at `path` is built under.
pub fn build_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(
        "{BUILD_PREFIX}{}{BUILD_SUFFIX}",
        name.unwrap_or_default()
    ))
}

/// Creates and locks the temporary file `tmp`; `None` when a live builder holds it. One that
/// no process holds any more is a dead builder's: it is removed and claimed afresh.
fn claim(tmp: &Path) -> Result<Option<fs::File>, StoreError> {
    let io = |e| StoreError::io(tmp, e);
    for _ in 0..2 {
        match fs::create_new(tmp) {
            Ok(f) => {
                // Nobody else has it open yet: this cannot block.
                lock(&f).map_err(io)?;
                return Ok(Some(f));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        let old = match fs::open(tmp) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(e)),
        };
        match lock(&old) {
            Ok(()) => match fs::remove_file(tmp) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(io(e)),
        }
    }
    Ok(None)
}

/// An exclusive `flock` without waiting: held for the builder's life (the descriptor's).
fn lock(f: &fs::File) -> io::Result<()> {
    rustix::fs::flock(f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(io::Error::from)
}

impl SegmentBuilder {
    /// Starts building. `None` when the segment exists already, or another builder is making
    /// it: the temporary name is claimed with an exclusive create and held with a `flock`, so
    /// two builders of the same segment never both write it, and one left by a builder that
    /// died is taken over.
    pub fn create(store: &Path, spec: SegmentSpec) -> Result<Option<SegmentBuilder>, StoreError> {
        if fs::symlink_metadata(&spec.path).is_ok() {
            return Ok(None);
        }
        let tmp = build_path(&spec.path);
        let Some(file) = claim(&tmp)? else {
            return Ok(None);
        };
        if fs::symlink_metadata(&spec.path).is_ok() {
            // Sealed by another builder between the check and the create.
            let _ = fs::remove_file(&tmp);
            return Ok(None);
        }
        let mut out = match MappedFile::create(tmp.clone(), file) {
            Ok(out) => out,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let header = SegmentHeader {
            version: FORMAT_VERSION as u16,
            writer_id: spec.writer_id,
            partition_start: spec.partition.0,
            partition_end: spec.partition.1,
            sequence: spec.sequence,
            zstd_level: spec.zstd_level,
        };
        let enc = BlockEncoder::new(spec.zstd_level).map_err(|e| StoreError::Config(e.reason));
        let enc = match enc.and_then(|enc| out.append(&header.encode()).map(|_| enc)) {
            Ok(enc) => enc,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        debug_assert_eq!(out.pos, HEADER_LEN as u64);
        Ok(Some(SegmentBuilder {
            store: store.to_path_buf(),
            seg: Some(OpenSegment {
                start: spec.partition.0,
                end: spec.partition.1,
                final_path: spec.path,
                out,
                enc,
                entries: Vec::new(),
                filters: Vec::new(),
                capture: spec.capture,
                leases: Vec::new(),
                names_len: interface_names_len(Some(&spec.interfaces)),
            }),
            block_records: spec.block_records.max(1),
            zstd_level: spec.zstd_level,
            interfaces: spec.interfaces,
            stats: WriterStats::default(),
        }))
    }

    /// Records and leases must fall in the partition; the caller routes them.
    pub fn append(&mut self, rec: &FlowRecord) -> Result<(), StoreError> {
        let limit = self.block_records;
        let seg = self
            .seg
            .as_mut()
            .ok_or_else(|| StoreError::Config("segment builder used after it failed".into()))?;
        seg.enc.push(rec);
        if seg.enc.records() >= limit || seg.enc.raw_len() >= BLOCK_TARGET_BYTES {
            flush_block(seg, &mut self.stats, None)?;
        }
        Ok(())
    }

    pub fn append_lease(&mut self, obs: &LeaseObservation) -> Result<(), StoreError> {
        let level = self.zstd_level;
        let seg = self
            .seg
            .as_mut()
            .ok_or_else(|| StoreError::Config("segment builder used after it failed".into()))?;
        seg.leases.push(obs.clone());
        if seg.leases.len() >= MAX_BLOCK_LEASES {
            flush_leases(seg, level, &mut self.stats)?;
        }
        Ok(())
    }

    /// Completes the segment, appends its `seal` entry (time `time`, `reason`: what it is a
    /// copy or rewrite of) and renames it into place. `None` when it held nothing: then no file
    /// and no entry are left. Any error leaves no file either.
    pub fn seal(mut self, time: Nanos, reason: &str) -> Result<Option<BuiltSegment>, StoreError> {
        let Some(mut seg) = self.seg.take() else {
            return Err(StoreError::Config(
                "segment builder used after it failed".into(),
            ));
        };
        let mut footer = Vec::new();
        let done = complete(
            &mut seg,
            &mut footer,
            &self.interfaces,
            self.zstd_level,
            &mut self.stats,
            None,
        );
        let tmp = seg.out.path.clone();
        let result = (|| {
            let (totals, block_err) = match done? {
                Completed::Empty(None) => return Ok(None),
                Completed::Empty(Some(e)) => return Err(e),
                Completed::Ready { totals, block_err } => (totals, block_err),
            };
            if let Some(e) = block_err {
                return Err(e);
            }
            let sealed = super::super::audit::log_seal(
                &self.store,
                &tmp,
                &seg.final_path,
                (seg.start, seg.end),
                (totals.min_first, totals.max_last),
                totals.records,
                time,
                reason,
            )
            .and_then(|()| Ok(fs::rename_synced(&tmp, &seg.final_path)?));
            if let Err(e) = sealed {
                // The seal entry may be in the log (an fsync that failed after the write, a
                // rename that failed after it): the file the entry names is never there, and
                // an `expire` entry says why, or `verify` would find a sealed segment gone.
                let _ = log_never_sealed(&self.store, &tmp, &seg, &totals, time, &e);
                return Err(e);
            }
            Ok(Some(BuiltSegment {
                path: seg.final_path.clone(),
                records: totals.records,
                leases: u64::from(totals.leases),
                bytes: seg.out.pos,
                span: (totals.min_first, totals.max_last),
            }))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// The `expire` entry of a built segment whose seal entry may be in the log but that never
/// got its name: named as the seal entry names it, with the temporary file's facts.
fn log_never_sealed(
    store: &Path,
    tmp: &Path,
    seg: &OpenSegment,
    totals: &super::SegmentTotals,
    time: Nanos,
    why: &StoreError,
) -> Result<(), StoreError> {
    use crate::store::audit::{self, Action, AuditLog, AuditRecord};
    let (first, last) = (totals.min_first, totals.max_last);
    let mut facts =
        audit::segment_facts(store, tmp, seg.start, seg.end, first, last, totals.records)?;
    facts.path = audit::relative(store, &seg.final_path);
    AuditLog::open(store).append(&AuditRecord {
        time,
        action: Action::Expire,
        segment: Some(facts),
        reason: format!("never sealed: {why}"),
    })?;
    Ok(())
}

impl Drop for SegmentBuilder {
    /// A builder dropped unsealed (an error on the caller's side) leaves nothing behind.
    fn drop(&mut self) {
        if let Some(seg) = self.seg.take() {
            let _ = fs::remove_file(&seg.out.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreWriter, WriterConfig};
    use crate::testing::sample;

    #[test]
    fn a_built_segment_reads_like_a_written_one_and_is_audited() {
        let d = tempfile::tempdir().unwrap();
        let mut w = StoreWriter::create(WriterConfig::new(d.path())).unwrap();
        w.append(&sample(1)).unwrap();
        w.finish().unwrap();
        let store = Store::open(d.path()).unwrap();
        let src = store.segments().unwrap().remove(0);
        let path = src.path.with_file_name("seg-00000000-00000000-copy.fks");
        let spec = SegmentSpec {
            path: path.clone(),
            partition: (src.partition_start, src.partition_end),
            writer_id: 0,
            sequence: 0,
            zstd_level: 3,
            block_records: 2,
            interfaces: Vec::new(),
            capture: CaptureStats::default(),
        };
        let mut b = SegmentBuilder::create(d.path(), spec.clone())
            .unwrap()
            .unwrap();
        // The name is claimed: a second builder of it gets nothing.
        assert!(SegmentBuilder::create(d.path(), spec.clone())
            .unwrap()
            .is_none());
        for i in 0..5 {
            let mut r = sample(1);
            r.packets = 10 + i;
            b.append(&r).unwrap();
        }
        let built = b.seal(77, "copy of test").unwrap().unwrap();
        assert_eq!((built.records, built.path.clone()), (5, path.clone()));
        assert!(!build_path(&path).exists());
        let store = Store::open(d.path()).unwrap();
        let segs = store.segments().unwrap();
        let copy = segs.iter().find(|s| s.path == path).unwrap();
        assert_eq!((copy.records, copy.blocks), (5, 3));
        let v = store.verify().unwrap();
        assert_eq!(v.problem_count(), 0, "{:?}", v.problem_lines());
        let log = crate::store::audit::read_all(d.path()).unwrap();
        let last = &log.last().unwrap().record;
        assert_eq!((last.time, last.reason.as_str()), (77, "copy of test"));
        // Existing: nothing to build.
        assert!(SegmentBuilder::create(d.path(), spec).unwrap().is_none());
    }

    #[test]
    fn an_empty_or_dropped_build_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("seg-00000000-00000001.fks");
        let spec = SegmentSpec {
            path: path.clone(),
            partition: (0, 3_600_000_000_000),
            writer_id: 0,
            sequence: 1,
            zstd_level: 3,
            block_records: 8192,
            interfaces: Vec::new(),
            capture: CaptureStats::default(),
        };
        let b = SegmentBuilder::create(d.path(), spec.clone())
            .unwrap()
            .unwrap();
        assert_eq!(b.seal(1, "").unwrap(), None);
        let mut b = SegmentBuilder::create(d.path(), spec).unwrap().unwrap();
        b.append(&sample(1)).unwrap();
        drop(b);
        let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
