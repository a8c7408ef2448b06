//! Writing: records are routed by `first` to their partition; each partition with records has one
//! open segment, a temporary file written through a memory mapping, sealed (footer, fsync, rename,
//! directory fsync) when its partition can no longer receive records or it grows too large.

use super::block::{BlockEncoder, MAX_BLOCK_RECORDS};
use super::leases::{encode_lease_block, KIND_FLOWS, KIND_LEASES, MAX_BLOCK_LEASES};
use super::lock::{lock_for_writing, Acquired, StoreLock};
use super::recover::{recover_locked, Recovery};
use super::segment::CAPTURE_MACS_NOT_STORED;
use super::segment::{
    encode_footer_and_trailer, footer_and_trailer_len, interface_names_len, BlockEntry,
    CaptureStats, SegmentHeader, SegmentTotals, HEADER_LEN, MAX_INTERFACES, SEGMENT_EXT,
    TEMP_SUFFIX,
};
use super::{
    check_marker, partition_dir_name, write_marker, StoreError, FORMAT_VERSION, MARKER_NAME,
};
use crate::fs;
use crate::record::{FlowRecord, LeaseObservation};
use crate::time::{Nanos, NANOS_PER_SEC};
use mapped::MappedFile;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A block is closed at this many bytes of encoded rows even if `block_records` is not reached,
/// so that one block stays a cheap unit to decompress and to lose.
pub const BLOCK_TARGET_BYTES: usize = 1 << 20;
/// First size of a segment's temporary file; it doubles (at most 64 MiB at a time) as needed.
const INITIAL_SEGMENT_BYTES: u64 = 1 << 20;
const MAX_GROWTH_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterConfig {
    pub dir: PathBuf,
    /// Partition width; a positive whole number of minutes. Default 1 h.
    pub partition: Nanos,
    /// Distinguishes concurrent writers in file names; they stay distinct even if two writers
    /// share an id, but distinct ids keep the names readable.
    pub writer_id: u32,
    /// zstd level for block payloads. Default 3.
    pub zstd_level: i32,
    /// Records per block, at most 65 536. Default 8192.
    pub block_records: usize,
    /// A segment is sealed, and the next records of its partition go to a new one, once it
    /// passes this size (so it can exceed it by one block). Default 256 MiB.
    pub max_segment_bytes: u64,
    /// Called after each block is complete in its segment's temporary file (so it survives the
    /// process being killed), e.g. for `replay --verbose`.
    pub on_flush: Option<FlushHook>,
    /// Names of the capture sources (interfaces or input files), indexed by
    /// `FlowRecord::interface`, so a segment can say where its records were seen.
    pub interfaces: Vec<String>,
    /// Called after each segment is sealed (renamed to its final name and audited), in the
    /// thread that sealed it, e.g. to copy what standing holds name out of it. An error is the
    /// seal's error; the segment stays sealed.
    pub on_seal: Option<SealHook>,
    /// `--no-mac`: MAC addresses and DHCP hostnames are dropped before anything is written,
    /// and every segment says so in its capture statistics (`CAPTURE_MACS_NOT_STORED`).
    pub no_mac: bool,
}

/// A block that is complete in the temporary file of an open segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushReport {
    /// The segment's temporary file (sealed later under the name without `.` and `.tmp`).
    pub path: PathBuf,
    /// Index of the block in its segment, from 0.
    pub block: u64,
    pub records: u32,
}

/// A callback for [`FlushReport`]s; compared by identity.
#[derive(Clone)]
pub struct FlushHook(pub Arc<dyn Fn(&FlushReport) + Send + Sync>);

impl std::fmt::Debug for FlushHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlushHook")
    }
}

impl PartialEq for FlushHook {
    fn eq(&self, other: &FlushHook) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for FlushHook {}

/// A segment that was just sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealReport {
    /// Its final path.
    pub path: PathBuf,
    pub partition: (Nanos, Nanos),
    /// Smallest `first`, largest `last` of its records.
    pub span: (Nanos, Nanos),
    pub records: u64,
    /// The audit time of its seal entry.
    pub time: Nanos,
}

/// A callback for [`SealReport`]s; compared by identity.
#[derive(Clone)]
pub struct SealHook(pub Arc<SealFn>);

/// What a [`SealHook`] calls.
pub type SealFn = dyn Fn(&SealReport) -> Result<(), StoreError> + Send + Sync;

impl std::fmt::Debug for SealHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealHook")
    }
}

impl PartialEq for SealHook {
    fn eq(&self, other: &SealHook) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SealHook {}

impl WriterConfig {
    pub fn new(dir: impl Into<PathBuf>) -> WriterConfig {
        WriterConfig {
            dir: dir.into(),
            partition: 3600 * NANOS_PER_SEC,
            writer_id: 0,
            zstd_level: super::block::DEFAULT_ZSTD_LEVEL,
            block_records: 8192,
            max_segment_bytes: 256 << 20,
            on_flush: None,
            on_seal: None,
            interfaces: Vec::new(),
            no_mac: false,
        }
    }

    fn validate(&self) -> Result<(), StoreError> {
        let minute = 60 * NANOS_PER_SEC;
        if self.partition <= 0 || self.partition % minute != 0 {
            return Err(StoreError::Config(format!(
                "partition width must be a positive whole number of minutes, got {} ns",
                self.partition
            )));
        }
        if self.block_records == 0 || self.block_records > MAX_BLOCK_RECORDS {
            return Err(StoreError::Config(format!(
                "block_records must be between 1 and {MAX_BLOCK_RECORDS}, got {}",
                self.block_records
            )));
        }
        let levels = zstd::compression_level_range();
        if !levels.contains(&self.zstd_level) {
            return Err(StoreError::Config(format!(
                "zstd level must be in {}..={}, got {}",
                levels.start(),
                levels.end(),
                self.zstd_level
            )));
        }
        if self.max_segment_bytes == 0 {
            return Err(StoreError::Config(
                "max_segment_bytes must be positive".into(),
            ));
        }
        if self.interfaces.len() > MAX_INTERFACES {
            return Err(StoreError::Config(format!(
                "{} interfaces, a segment names at most {MAX_INTERFACES}",
                self.interfaces.len()
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records accepted by `append` (each went into an open segment's next block).
    pub records: u64,
    /// Records `append` refused: their partition is outside the representable time range, or
    /// no segment could be opened for them (disk full, I/O error). Never in the store.
    pub records_refused: u64,
    /// Accepted records lost with a block that could not be written (disk full, I/O error).
    /// `records - records_lost` records are in the store (or in open segments that recovery
    /// seals).
    pub records_lost: u64,
    /// Blocks written into segments.
    pub blocks: u64,
    /// Segments sealed.
    pub segments: u64,
    /// Bytes of sealed segment files.
    pub bytes: u64,
    /// DHCP lease observations accepted by `append_lease`.
    pub leases: u64,
    /// Of those, observations lost with a lease block that could not be written.
    pub leases_lost: u64,
    /// Of `records_refused + records_lost`, those no segment's `records_not_stored` counts:
    /// no segment could be written after they were lost (the disk stayed full to the end), so
    /// the store cannot say. The rest are in the sealed segments' statistics.
    pub not_stored_uncounted: u64,
}

/// Writers' statistics add up to the run's.
impl std::ops::AddAssign<&WriterStats> for WriterStats {
    fn add_assign(&mut self, w: &WriterStats) {
        self.records += w.records;
        self.records_refused += w.records_refused;
        self.records_lost += w.records_lost;
        self.blocks += w.blocks;
        self.segments += w.segments;
        self.bytes += w.bytes;
        self.leases += w.leases;
        self.leases_lost += w.leases_lost;
        self.not_stored_uncounted += w.not_stored_uncounted;
    }
}

struct OpenSegment {
    start: Nanos,
    end: Nanos,
    final_path: PathBuf,
    out: MappedFile,
    enc: BlockEncoder,
    entries: Vec<BlockEntry>,
    /// The entries' address filters, concatenated in entry order.
    filters: Vec<u8>,
    capture: CaptureStats,
    /// Lease observations for the next lease block (DHCP is rare: a plain list will do).
    leases: Vec<LeaseObservation>,
    /// Footer bytes the interface names take, kept free with the rest of the footer.
    names_len: u64,
}

pub struct StoreWriter {
    cfg: WriterConfig,
    open: Vec<OpenSegment>,
    stats: WriterStats,
    footer: Vec<u8>,
    /// Capture statistics reported while no segment was open, for the next one opened.
    pending_capture: CaptureStats,
    recovery: Recovery,
    /// Held for the writer's life; shared with the other writers of this process. Declared
    /// last: dropped after `Drop::drop` has sealed the open segments.
    _lock: Arc<StoreLock>,
}

impl StoreWriter {
    /// Opens (creating if needed) the store directory for writing. Refuses a path that is not a
    /// directory, an existing non-empty directory that is not a store, a store of a newer format,
    /// and a directory it cannot write to: better now than at the first record.
    pub fn create(cfg: WriterConfig) -> Result<StoreWriter, StoreError> {
        cfg.validate()?;
        let dir = &cfg.dir;
        match fs::metadata(dir) {
            Ok(m) if !m.is_dir() => {
                return Err(StoreError::Refused {
                    path: dir.clone(),
                    reason: "exists and is not a directory; a store must be a directory".into(),
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
            }
            Err(e) => return Err(StoreError::io(dir, e)),
        }
        if !check_marker(dir)? {
            let mut entries = fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
            let foreign = entries.any(|e| {
                e.map(|e| {
                    !e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!(".{MARKER_NAME}."))
                })
                .unwrap_or(true)
            });
            // Another writer creating this store writes its marker before anything else, so
            // anything besides marker temporaries without a marker is not ours.
            if !foreign {
                write_marker(dir)?;
                finish_creation(dir)?;
            } else if !check_marker(dir)? {
                return Err(StoreError::Refused {
                    path: dir.clone(),
                    reason: format!(
                        "not a flowkeep store (no {MARKER_NAME} marker) and not empty; refusing to write into it"
                    ),
                });
            }
        } else if creation_interrupted(dir)? {
            finish_creation(dir)?;
        }
        // Segments of this format are about to be added: an older store's marker must say so,
        // so that an older flowkeep refuses the store as a whole rather than segment by segment.
        if super::marker_version(dir)?.is_some_and(|v| v < FORMAT_VERSION) {
            write_marker(dir)?;
        }
        probe_writable(dir, cfg.writer_id)?;
        // The first writer of this process to lock the store finds only dead writers' temporary
        // files, and seals them before it adds its own.
        let recovering = super::lock::RECOVERING
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (lock, recovery) = match lock_for_writing(dir)? {
            Acquired::Fresh(lock) => (lock, recover_locked(dir)),
            Acquired::Shared(lock) => (lock, Recovery::default()),
            Acquired::Busy => {
                return Err(StoreError::Refused {
                    path: dir.clone(),
                    reason: "the store is locked by another writer".into(),
                })
            }
        };
        drop(recovering);
        Ok(StoreWriter {
            cfg,
            open: Vec::new(),
            stats: WriterStats::default(),
            footer: Vec::new(),
            pending_capture: CaptureStats::default(),
            recovery,
            _lock: lock,
        })
    }

    /// What `create` recovered from writers that died (empty unless this writer was the first
    /// of its process to lock the store).
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Takes the recovery report, leaving an empty one.
    pub fn take_recovery(&mut self) -> Recovery {
        std::mem::take(&mut self.recovery)
    }

    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// Adds capture statistics (counts since the previous call) to the newest open segment (the
    /// latest partition: where the traffic of this moment is recorded), so a segment's footer
    /// says what the capture saw, dropped or could not store while it was the current one, and
    /// sums over segments are exact. When no segment is open the counts are kept for the next
    /// segment opened; counts reported after the last segment is sealed are not stored.
    pub fn add_capture_stats(&mut self, stats: &CaptureStats) {
        match self.open.iter_mut().max_by_key(|s| s.start) {
            Some(seg) => seg.capture += stats,
            None => self.pending_capture += stats,
        }
    }

    /// Adds a record to the open segment of the partition holding `rec.first`.
    ///
    /// An error leaves the writer usable: a refused record is counted in `records_refused`, and
    /// the records of a block that could not be written in `records_lost`; later records are
    /// written as soon as the cause (a full disk) goes away.
    pub fn append(&mut self, rec: &FlowRecord) -> Result<(), StoreError> {
        let idx = match self.route(rec.first) {
            Ok(i) => i,
            Err(e) => {
                self.refused();
                return Err(e);
            }
        };
        let Some(seg) = self.open.get_mut(idx) else {
            self.refused();
            return Ok(());
        };
        if self.cfg.no_mac && (rec.src_mac.is_some() || rec.dst_mac.is_some()) {
            let mut r = rec.clone();
            r.src_mac = None;
            r.dst_mac = None;
            seg.enc.push(&r);
        } else {
            seg.enc.push(rec);
        }
        self.stats.records += 1;
        if seg.enc.records() >= self.cfg.block_records || seg.enc.raw_len() >= BLOCK_TARGET_BYTES {
            flush_block(seg, &mut self.stats, self.cfg.on_flush.as_ref())?;
            if seg.out.pos >= self.cfg.max_segment_bytes {
                let seg = self.open.swap_remove(idx);
                self.seal(seg)?;
            }
        }
        Ok(())
    }

    /// Counts a record `append` could not take, also in the statistics of the segment where
    /// the capture of this moment is recorded, so that the store says what it lost.
    fn refused(&mut self) {
        self.stats.records_refused += 1;
        self.add_capture_stats(&CaptureStats {
            records_not_stored: 1,
            ..CaptureStats::default()
        });
    }

    /// Adds a DHCP lease observation to the open segment of the partition holding its time;
    /// it is written in a lease block when the segment is flushed or sealed (or holds
    /// `MAX_BLOCK_LEASES` of them). Under `no_mac` its MAC and hostname are dropped first.
    pub fn append_lease(&mut self, obs: &LeaseObservation) -> Result<(), StoreError> {
        let idx = match self.route(obs.time) {
            Ok(i) => i,
            Err(e) => {
                self.stats.leases += 1;
                self.stats.leases_lost += 1;
                return Err(e);
            }
        };
        let no_mac = self.cfg.no_mac;
        let level = self.cfg.zstd_level;
        let Some(seg) = self.open.get_mut(idx) else {
            return Ok(());
        };
        let mut obs = obs.clone();
        if no_mac {
            obs.client_mac = None;
            obs.hostname = None;
        }
        seg.leases.push(obs);
        self.stats.leases += 1;
        if seg.leases.len() >= MAX_BLOCK_LEASES {
            flush_leases(seg, level, &mut self.stats)?;
        }
        Ok(())
    }

    /// Index of the open segment for a record starting at `first`, opening one if needed.
    fn route(&mut self, first: Nanos) -> Result<usize, StoreError> {
        let width = self.cfg.partition;
        let start = first
            .div_euclid(width)
            .checked_mul(width)
            .ok_or_else(|| out_of_range(first))?;
        let end = start
            .checked_add(width)
            .ok_or_else(|| out_of_range(first))?;
        // Records arrive roughly in time order, so the partition is almost always the newest.
        if let Some(i) = self.open.iter().rposition(|s| s.start == start) {
            return Ok(i);
        }
        let seg = self.open_segment(start, end)?;
        self.open.push(seg);
        Ok(self.open.len() - 1)
    }

    /// Writes the pending records of every open segment as a (smaller) block, so that they are
    /// on disk in complete blocks: readable by queries now, and kept by recovery after a crash.
    /// Live capture calls this at least once a second. Writes all it can and returns the first
    /// error (the records of a block that failed are counted in `records_lost`).
    pub fn flush_open(&mut self) -> Result<(), StoreError> {
        let mut first_err = None;
        for seg in &mut self.open {
            if seg.enc.records() > 0 {
                if let Err(e) = flush_block(seg, &mut self.stats, self.cfg.on_flush.as_ref()) {
                    first_err.get_or_insert(e);
                }
            }
            if !seg.leases.is_empty() {
                if let Err(e) = flush_leases(seg, self.cfg.zstd_level, &mut self.stats) {
                    first_err.get_or_insert(e);
                }
            }
        }
        let max = self.cfg.max_segment_bytes;
        let sealed = self.seal_where(|seg| seg.out.pos >= max);
        first_err.map_or(sealed, Err)
    }

    /// Stops without sealing, as a crash would: open segments stay behind as temporary files
    /// holding their complete blocks (pending records are lost), for recovery to find. For tests
    /// of recovery.
    #[doc(hidden)]
    pub fn abandon(mut self) {
        self.open.clear();
    }

    /// Seals every open segment whose partition ends at or before `t`. Seals all it can and
    /// returns the first error.
    pub fn seal_before(&mut self, t: Nanos) -> Result<(), StoreError> {
        self.seal_where(|seg| seg.end <= t)
    }

    /// Seals and closes every open segment `done` picks; seals all it can and returns the first
    /// error.
    fn seal_where(&mut self, mut done: impl FnMut(&OpenSegment) -> bool) -> Result<(), StoreError> {
        let mut first_err = None;
        let mut i = 0;
        while i < self.open.len() {
            if done(&self.open[i]) {
                let seg = self.open.swap_remove(i);
                if let Err(e) = self.seal(seg) {
                    first_err.get_or_insert(e);
                }
            } else {
                i += 1;
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Seals everything still open.
    pub fn finish(mut self) -> Result<WriterStats, StoreError> {
        self.seal_before(Nanos::MAX)?;
        // Kept for a segment that was never opened: these losses are in no footer.
        self.stats.not_stored_uncounted = self.pending_capture.records_not_stored;
        Ok(self.stats)
    }

    fn open_segment(&mut self, start: Nanos, end: Nanos) -> Result<OpenSegment, StoreError> {
        let pdir = self.cfg.dir.join(partition_dir_name(start));
        match fs::create_dir(&pdir) {
            Ok(()) => fs::sync_dir(&self.cfg.dir).map_err(|e| StoreError::io(&self.cfg.dir, e))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && fs::is_real_dir(&pdir) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Refused {
                    path: pdir,
                    reason: "is not a directory (a symbolic link?); a store never follows one"
                        .into(),
                })
            }
            Err(e) => return Err(StoreError::io(&pdir, e)),
        }
        let id = self.cfg.writer_id;
        let mut seq: u32 = 0;
        let (tmp_path, final_path, file) = loop {
            let name = format!("seg-{id:08x}-{seq:08x}");
            let final_path = pdir.join(format!("{name}{SEGMENT_EXT}"));
            let tmp_path = pdir.join(format!(".{name}{TEMP_SUFFIX}"));
            if !exists(&final_path)? {
                match fs::create_new(&tmp_path) {
                    // The final name is checked again now that the temporary name is ours: a
                    // writer that held it may have renamed it to the final name in between.
                    Ok(f) if !exists(&final_path)? => break (tmp_path, final_path, f),
                    Ok(_) => {
                        fs::remove_file(&tmp_path).map_err(|e| StoreError::io(&tmp_path, e))?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(StoreError::io(&tmp_path, e)),
                }
            }
            seq = seq.checked_add(1).ok_or_else(|| StoreError::Refused {
                path: pdir.clone(),
                reason: format!("no free segment sequence number left for writer {id}"),
            })?;
        };
        let mut out = match MappedFile::create(tmp_path.clone(), file) {
            Ok(out) => out,
            Err(e) => {
                // Nothing is in it; leaving it would only give recovery work.
                let _ = fs::remove_file(&tmp_path);
                return Err(e);
            }
        };
        let header = SegmentHeader {
            version: FORMAT_VERSION as u16,
            writer_id: id,
            partition_start: start,
            partition_end: end,
            sequence: seq,
            zstd_level: self.cfg.zstd_level,
        };
        if let Err(e) = out.append(&header.encode()) {
            let _ = fs::remove_file(&tmp_path);
            return Err(e);
        }
        debug_assert_eq!(out.pos, HEADER_LEN as u64);
        let enc =
            BlockEncoder::new(self.cfg.zstd_level).map_err(|e| StoreError::Config(e.reason))?;
        let mut capture = std::mem::take(&mut self.pending_capture);
        if self.cfg.no_mac {
            capture.flags |= CAPTURE_MACS_NOT_STORED;
        }
        Ok(OpenSegment {
            start,
            end,
            final_path,
            out,
            enc,
            entries: Vec::new(),
            filters: Vec::new(),
            capture,
            leases: Vec::new(),
            names_len: interface_names_len(Some(&self.cfg.interfaces)),
        })
    }

    /// Seals a segment. If the last partial block cannot be written its records are counted
    /// lost and the segment is sealed with the blocks it has: room for the footer was kept free
    /// as blocks were added, so a full disk does not stop the seal. If sealing fails anyway
    /// (an I/O error), the temporary file is left with its complete blocks for recovery (readers
    /// read it meanwhile) and the error names it.
    fn seal(&mut self, mut seg: OpenSegment) -> Result<(), StoreError> {
        let hook = self.cfg.on_flush.clone();
        let (totals, block_err) = match complete(
            &mut seg,
            &mut self.footer,
            &self.cfg.interfaces,
            self.cfg.zstd_level,
            &mut self.stats,
            hook.as_ref(),
        )? {
            Completed::Empty(block_err) => {
                // Its statistics (what was captured, what could not be stored) go on in the
                // segment that is now the current one, or the next one opened.
                let capture = std::mem::take(&mut seg.capture);
                self.add_capture_stats(&capture);
                return block_err.map_or(Ok(()), Err);
            }
            Completed::Ready { totals, block_err } => (totals, block_err),
        };
        // Audit time is packet time: the newest record this writer still holds open.
        let now = self
            .open
            .iter()
            .flat_map(|s| s.entries.iter().map(|e| e.max_last))
            .fold(totals.max_last, Nanos::max);
        let m = &seg.out;
        super::audit::log_seal(
            &self.cfg.dir,
            &m.path,
            &seg.final_path,
            (seg.start, seg.end),
            (totals.min_first, totals.max_last),
            totals.records,
            now,
            "",
        )?;
        fs::rename_synced(&m.path, &seg.final_path)?;
        self.stats.segments += 1;
        self.stats.bytes += m.pos;
        if let Some(hook) = &self.cfg.on_seal {
            (hook.0)(&SealReport {
                path: seg.final_path.clone(),
                partition: (seg.start, seg.end),
                span: (totals.min_first, totals.max_last),
                records: totals.records,
                time: now,
            })?;
        }
        block_err.map_or(Ok(()), Err)
    }
}

/// What [`complete`] left: nothing (every block was lost, the temporary file is removed), or a
/// segment complete and fsynced under its temporary name.
enum Completed {
    Empty(Option<StoreError>),
    Ready {
        totals: SegmentTotals,
        /// Why the last block, or the last lease block, could not be written.
        block_err: Option<StoreError>,
    },
}

/// Writes a segment's pending blocks, its footer and trailer, and fsyncs it: afterwards it is
/// complete under its temporary name, ready to be audited and renamed.
fn complete(
    seg: &mut OpenSegment,
    footer: &mut Vec<u8>,
    interfaces: &[String],
    zstd_level: i32,
    stats: &mut WriterStats,
    hook: Option<&FlushHook>,
) -> Result<Completed, StoreError> {
    let mut block_err = None;
    if seg.enc.records() > 0 {
        if let Err(e) = flush_block(seg, stats, hook) {
            block_err = Some(e);
        }
    }
    if !seg.leases.is_empty() {
        if let Err(e) = flush_leases(seg, zstd_level, stats) {
            block_err.get_or_insert(e);
        }
    }
    if seg.entries.is_empty() {
        // Every block was lost: nothing to seal, and an empty temporary file is only noise.
        drop(seg.out.map.take());
        fs::remove_file(&seg.out.path).map_err(|e| StoreError::io(&seg.out.path, e))?;
        return Ok(Completed::Empty(block_err));
    }
    footer.clear();
    let totals = SegmentTotals {
        records: seg
            .entries
            .iter()
            .filter(|e| e.kind == KIND_FLOWS)
            .map(|e| u64::from(e.records))
            .sum(),
        leases: seg
            .entries
            .iter()
            .filter(|e| e.kind == KIND_LEASES)
            .fold(0u32, |n, e| n.saturating_add(e.records)),
        min_first: seg
            .entries
            .iter()
            .map(|e| e.min_first)
            .min()
            .unwrap_or(Nanos::MAX),
        max_last: seg
            .entries
            .iter()
            .map(|e| e.max_last)
            .max()
            .unwrap_or(Nanos::MIN),
    };
    encode_footer_and_trailer(
        &seg.entries,
        &seg.filters,
        &totals,
        &seg.capture,
        Some(interfaces),
        seg.out.pos,
        footer,
    );
    seg.out.append(footer)?;
    let m = &mut seg.out;
    let io = |e| StoreError::io(&m.path, e);
    if let Some(map) = m.map.take() {
        fs::sync_map(&map).map_err(io)?;
    }
    fs::set_len(&m.file, m.pos).map_err(io)?;
    fs::sync(&m.file).map_err(io)?;
    Ok(Completed::Ready { totals, block_err })
}

impl Drop for StoreWriter {
    /// Best effort, so that records are not stranded in temporary files when the writer is
    /// dropped on an error path; `finish` is the way to learn whether sealing worked.
    fn drop(&mut self) {
        let _ = self.seal_before(Nanos::MAX);
    }
}

/// Closes the pending block of a segment and writes it. On failure its records are counted in
/// `records_lost` and in the segment's `records_not_stored` (its footer has room kept for it,
/// so it says what it lost, even when the last block fails as it is sealed): the encoder has
/// already moved on to the next block.
fn flush_block(
    seg: &mut OpenSegment,
    stats: &mut WriterStats,
    hook: Option<&FlushHook>,
) -> Result<(), StoreError> {
    let pending = seg.enc.records() as u64;
    let (bytes, summary) = match seg.enc.finish() {
        Ok(b) => b,
        Err(e) => {
            stats.records_lost += pending;
            seg.capture.records_not_stored += pending;
            return Err(StoreError::Config(e.reason));
        }
    };
    let footer_room = footer_and_trailer_len(seg.entries.len() + 1)
        + (seg.filters.len() + summary.filter.len()) as u64
        + seg.names_len;
    let offset = match seg.out.append_block(bytes, footer_room) {
        Ok(at) => at,
        Err(e) => {
            stats.records_lost += u64::from(summary.records);
            seg.capture.records_not_stored += u64::from(summary.records);
            return Err(e);
        }
    };
    seg.entries.push(BlockEntry {
        offset,
        len: bytes.len() as u32,
        records: summary.records,
        min_first: summary.min_first,
        max_last: summary.max_last,
        filter_len: summary.filter.len() as u32,
        filter_hashes: summary.filter_hashes,
        kind: KIND_FLOWS,
    });
    seg.filters.extend_from_slice(summary.filter);
    stats.blocks += 1;
    if let Some(hook) = hook {
        (hook.0)(&FlushReport {
            path: seg.out.path.clone(),
            block: seg.entries.len() as u64 - 1,
            records: summary.records,
        });
    }
    Ok(())
}

/// Writes a segment's pending lease observations as one lease block. On failure they are
/// dropped (the error says how many; `leases_lost` counts them): a retry could only fail the
/// same way.
fn flush_leases(
    seg: &mut OpenSegment,
    zstd_level: i32,
    stats: &mut WriterStats,
) -> Result<(), StoreError> {
    let leases = std::mem::take(&mut seg.leases);
    let mut lost = |e: String| {
        stats.leases_lost += leases.len() as u64;
        StoreError::Config(format!(
            "{e}; {} DHCP lease observations not stored",
            leases.len()
        ))
    };
    let (bytes, min, max) = encode_lease_block(&leases, zstd_level).map_err(|e| lost(e.reason))?;
    let footer_room = footer_and_trailer_len(seg.entries.len() + 1) + seg.filters.len() as u64;
    let offset = seg
        .out
        .append_block(&bytes, footer_room)
        .map_err(|e| lost(e.to_string()))?;
    seg.entries.push(BlockEntry {
        offset,
        len: bytes.len() as u32,
        records: leases.len() as u32,
        min_first: min,
        max_last: max,
        filter_len: 0,
        filter_hashes: 0,
        kind: KIND_LEASES,
    });
    Ok(())
}

fn out_of_range(first: Nanos) -> StoreError {
    StoreError::Record {
        first,
        reason: "its partition would start or end outside the representable time range".into(),
    }
}

/// What a new store holds besides its marker: the audit log from its creation, so that a log
/// that is gone is a problem `verify` reports, not an empty history; and the identity its
/// checkpoints will name.
fn finish_creation(dir: &Path) -> Result<(), StoreError> {
    let log = dir.join(super::audit::AUDIT_LOG_NAME);
    fs::open_append(&log).map_err(|e| StoreError::io(&log, e))?;
    super::evidence::create_origin(dir)?;
    Ok(())
}

/// Whether the writer that created this store failed (a full disk) after writing the marker
/// and before the audit log: no log, and nothing but the marker, its temporaries and the lock
/// (a store that ever held data has a log; one without is then `verify`'s to report).
fn creation_interrupted(dir: &Path) -> Result<bool, StoreError> {
    if fs::symlink_metadata(&dir.join(super::audit::AUDIT_LOG_NAME)).is_ok() {
        return Ok(false);
    }
    for e in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let name = e.map_err(|e| StoreError::io(dir, e))?.file_name();
        let name = name.to_string_lossy();
        let ours = name == MARKER_NAME
            || name == super::lock::LOCK_NAME
            || name.starts_with(&format!(".{MARKER_NAME}."));
        if !ours {
            return Ok(false);
        }
    }
    Ok(true)
}

fn exists(p: &Path) -> Result<bool, StoreError> {
    match fs::symlink_metadata(p) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io(p, e)),
    }
}

/// Creating and removing a file is the only honest test of writability (permissions, read-only
/// mounts, ACLs, running as root all change the answer).
fn probe_writable(dir: &Path, writer_id: u32) -> Result<(), StoreError> {
    let p = dir.join(format!(".probe.{writer_id}.{}.tmp", std::process::id()));
    fs::create(&p).map_err(|e| StoreError::Refused {
        path: dir.to_path_buf(),
        reason: format!("cannot write into the store directory: {e}"),
    })?;
    match fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(p, e)),
    }
}
mod builder;
mod mapped;
#[cfg(test)]
mod tests;

pub use builder::{
    build_path, BuiltSegment, SegmentBuilder, SegmentSpec, BUILD_PREFIX, BUILD_SUFFIX,
};
