//! Open segments: reading a temporary segment file up to its last complete block, and
//! recovering the temporary files a dead writer left behind (keep every complete block, drop the
//! torn tail, seal). See "Crash safety and recovery" in `docs/FORMAT.md`.
//!
//! Temporary files are read with `pread`, never mapped: a live writer truncates its file when it
//! seals it, and a mapping of the old length would then fault (SIGBUS) instead of reading short.

use super::address_filter::build_for_records;
use super::block::{BlockDecoder, BlockHeader, BLOCK_HEADER_LEN};
use super::history::SegmentHistory;
use super::leases::{decode_lease_block, CODEC_LEASES_ZSTD, KIND_FLOWS, KIND_LEASES};
use super::lock::{try_lock, Acquired};
use super::segment::{
    encode_footer_and_trailer, BlockEntry, CaptureStats, SegmentFile, SegmentHeader, SegmentTotals,
    HEADER_LEN, SEGMENT_EXT, TEMP_SUFFIX,
};
use super::{check_marker, parse_partition_dir_name, StoreError};
use crate::fs::{self, File};
use crate::record::{FlowRecord, LeaseObservation};
use crate::time::Nanos;
use std::fmt;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// No block of any encoding this format allows comes near this (65 536 records, each well
/// under 256 bytes before compression); a header claiming more is damage, and this bounds what
/// one read allocates whatever a damaged header says.
const MAX_BLOCK_BYTES: u64 = 16 << 20;

/// One temporary segment that recovery dealt with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredSegment {
    /// The temporary file as the dead writer left it.
    pub temp: PathBuf,
    /// The sealed segment it became; `None` when it held no complete block and was removed.
    pub sealed: Option<PathBuf>,
    /// Complete blocks kept, and their records.
    pub blocks: u64,
    pub records: u64,
    /// Bytes of the torn tail: from the end of the last complete block to the last non-zero
    /// byte of the file (a block the writer had begun but not finished).
    pub torn_bytes: u64,
    /// The file's length before and after (the difference is mostly preallocated zeros).
    pub len_before: u64,
    pub len_after: u64,
    /// The audit log had this path sealed already, with another file: (the seal's line, its
    /// records). A writer never leaves that; someone put a sealed segment back under its
    /// temporary name, and what it lost since is gone.
    pub sealed_before: Option<(u64, u64)>,
}

impl fmt::Display for RecoveredSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "recovered {}: kept {} blocks ({} records), dropped {} bytes of torn block data",
            self.temp.display(),
            self.blocks,
            self.records,
            self.torn_bytes
        )?;
        match &self.sealed {
            Some(p) => write!(f, "; sealed as {}", p.display())?,
            None => write!(f, "; nothing to keep, removed")?,
        }
        if let Some((line, records)) = self.sealed_before {
            write!(
                f,
                "; PROBLEM: it had been sealed before ({} line {line}, {records} records): a \
                 sealed segment was put back under its temporary name",
                super::audit::AUDIT_LOG_NAME
            )?;
        }
        Ok(())
    }
}

/// What opening a store did about temporary segments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub segments: Vec<RecoveredSegment>,
    /// Imports (Tor exit lists) that stopped half way, completed or removed: a line each.
    pub imports: Vec<String>,
    /// Temporary files that could not be recovered (left in place; readers still read their
    /// complete blocks), and a lock that could not be taken, one line each.
    pub problems: Vec<String>,
    /// A live writer holds the store lock: its temporary segments were left alone.
    pub live_writer: bool,
}

/// What reading an open segment found.
#[derive(Debug)]
pub(crate) struct OpenScan {
    pub entries: Vec<BlockEntry>,
    /// End of the last complete block.
    pub end: u64,
    pub file_len: u64,
}

/// The sealed name of a temporary segment path (`.seg-X-S.fks.tmp` → `seg-X-S.fks`).
pub(crate) fn sealed_name(temp: &Path) -> Option<PathBuf> {
    let name = temp.file_name()?.to_str()?;
    let stem = name.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
    Some(temp.with_file_name(format!("{stem}{SEGMENT_EXT}")))
}

/// Reads the header of a temporary segment. `Ok(None)` when the writer had not written it yet
/// (file shorter than a header, or all zeros): nothing is in the file.
pub(crate) fn read_temp_header(
    path: &Path,
    file: &File,
) -> Result<Option<SegmentHeader>, StoreError> {
    let mut h = [0u8; HEADER_LEN];
    match file.read_exact_at(&mut h, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(StoreError::io(path, e)),
    }
    if h.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    SegmentHeader::parse(path, &h).map(Some)
}

/// What a temporary segment holds up to its last complete block, read without changing it:
/// (complete blocks, flow records in them). An error when its header is damaged (recovery
/// could not seal it either).
pub(crate) fn inspect_temp(path: &Path) -> Result<(u64, u64), StoreError> {
    let file = fs::open(path).map_err(|e| StoreError::io(path, e))?;
    if read_temp_header(path, &file)?.is_none() {
        return Ok((0, 0));
    }
    let mut decoder =
        BlockDecoder::new().map_err(|e| StoreError::io(path, io::Error::other(e.reason)))?;
    let (mut buf, mut recs, mut leases) = (Vec::new(), Vec::new(), Vec::new());
    let scan = read_open_blocks(
        path,
        &file,
        &mut decoder,
        &mut buf,
        &mut recs,
        &mut leases,
        |_, _| ControlFlow::Continue(()),
    )?;
    let records = scan
        .entries
        .iter()
        .filter(|e| e.kind == KIND_FLOWS)
        .map(|e| u64::from(e.records))
        .sum();
    Ok((scan.entries.len() as u64, records))
}

/// [`read_open_blocks`] for flow records only: lease blocks are walked over unseen.
pub(crate) fn read_open_segment(
    path: &Path,
    file: &File,
    decoder: &mut BlockDecoder,
    buf: &mut Vec<u8>,
    recs: &mut Vec<FlowRecord>,
    mut on_block: impl FnMut(&BlockEntry, &[FlowRecord]) -> ControlFlow<()>,
) -> Result<OpenScan, StoreError> {
    let mut leases = Vec::new();
    read_open_blocks(
        path,
        file,
        decoder,
        buf,
        recs,
        &mut leases,
        |e, b| match b {
            OpenBlock::Flows(r) => on_block(e, r),
            OpenBlock::Leases(_) => ControlFlow::Continue(()),
        },
    )
}

/// One complete block of an open segment, decoded.
pub(crate) enum OpenBlock<'a> {
    Flows(&'a [FlowRecord]),
    Leases(&'a [LeaseObservation]),
}

/// Walks the blocks of a temporary segment from the header on and stops at the first one that is
/// not complete: an all-zero block header is the clean end (the preallocated rest of the file),
/// anything else that fails the block checks is a torn tail. `on_block` gets each complete
/// block's records or lease observations (the codec in its header says which) and may stop
/// the walk.
pub(crate) fn read_open_blocks(
    path: &Path,
    file: &File,
    decoder: &mut BlockDecoder,
    buf: &mut Vec<u8>,
    recs: &mut Vec<FlowRecord>,
    leases: &mut Vec<LeaseObservation>,
    mut on_block: impl FnMut(&BlockEntry, OpenBlock<'_>) -> ControlFlow<()>,
) -> Result<OpenScan, StoreError> {
    let file_len = fs::file_metadata(file)
        .map_err(|e| StoreError::io(path, e))?
        .len();
    let mut scan = OpenScan {
        entries: Vec::new(),
        end: HEADER_LEN as u64,
        file_len,
    };
    loop {
        let at = scan.end;
        let mut bh = [0u8; BLOCK_HEADER_LEN];
        match file.read_exact_at(&mut bh, at) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(StoreError::io(path, e)),
        }
        if bh.iter().all(|&b| b == 0) {
            break;
        }
        let Ok(h) = BlockHeader::parse(&bh) else {
            break;
        };
        let len = BLOCK_HEADER_LEN as u64 + u64::from(h.payload_len);
        if h.payload_len == 0 || len > MAX_BLOCK_BYTES || at.saturating_add(len) > file_len {
            break;
        }
        // Bounded by MAX_BLOCK_BYTES and by bytes that exist in the file.
        buf.resize(len as usize, 0);
        match file.read_exact_at(buf, at) {
            Ok(()) => {}
            // A live writer truncated the file while sealing it: what was read so far stands.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(StoreError::io(path, e)),
        }
        let (entry, block) = if h.codec == CODEC_LEASES_ZSTD {
            if decode_lease_block(buf, leases).is_err() {
                break;
            }
            (
                lease_entry_for(at, len as u32, leases),
                OpenBlock::Leases(leases),
            )
        } else {
            if decoder.decode_into(buf, recs).is_err() {
                break;
            }
            (entry_for(at, len as u32, recs), OpenBlock::Flows(recs))
        };
        scan.entries.push(entry);
        scan.end = at + len;
        if on_block(&entry, block).is_break() {
            break;
        }
    }
    Ok(scan)
}

/// The index entry of a recovered block, from its decoded records.
fn entry_for(offset: u64, len: u32, recs: &[FlowRecord]) -> BlockEntry {
    BlockEntry {
        offset,
        len,
        records: recs.len() as u32,
        min_first: recs.iter().map(|r| r.first).min().unwrap_or(Nanos::MAX),
        max_last: recs.iter().map(|r| r.last).max().unwrap_or(Nanos::MIN),
        // Readers of an open segment read every block; recovery rebuilds the real filter.
        filter_len: 0,
        filter_hashes: 0,
        kind: KIND_FLOWS,
    }
}

fn lease_entry_for(offset: u64, len: u32, leases: &[LeaseObservation]) -> BlockEntry {
    BlockEntry {
        offset,
        len,
        records: leases.len() as u32,
        min_first: leases.iter().map(|l| l.time).min().unwrap_or(Nanos::MAX),
        max_last: leases.iter().map(|l| l.time).max().unwrap_or(Nanos::MIN),
        filter_len: 0,
        filter_hashes: 0,
        kind: KIND_LEASES,
    }
}

fn totals(entries: &[BlockEntry]) -> SegmentTotals {
    SegmentTotals {
        records: entries
            .iter()
            .filter(|e| e.kind == KIND_FLOWS)
            .map(|e| u64::from(e.records))
            .sum(),
        leases: entries
            .iter()
            .filter(|e| e.kind == KIND_LEASES)
            .fold(0u32, |n, e| n.saturating_add(e.records)),
        min_first: entries
            .iter()
            .map(|e| e.min_first)
            .min()
            .unwrap_or(Nanos::MAX),
        max_last: entries
            .iter()
            .map(|e| e.max_last)
            .max()
            .unwrap_or(Nanos::MIN),
    }
}

/// Offset just past the last non-zero byte in `[from, to)`, or `from` if all are zero.
fn end_of_nonzero(path: &Path, file: &File, from: u64, to: u64) -> Result<u64, StoreError> {
    let mut chunk = vec![0u8; 64 << 10];
    let mut last = from;
    let mut at = from;
    while at < to {
        let n = (to - at).min(chunk.len() as u64) as usize;
        let Some(c) = chunk.get_mut(..n) else { break };
        file.read_exact_at(c, at)
            .map_err(|e| StoreError::io(path, e))?;
        if let Some(i) = c.iter().rposition(|&b| b != 0) {
            last = at + i as u64 + 1;
        }
        at += n as u64;
    }
    Ok(last)
}

/// Recovers every temporary segment of the store if no writer is live (the lock is free).
/// Never fails for what it finds in the files: those go to `problems`.
pub fn recover(dir: &Path) -> Result<Recovery, StoreError> {
    if !check_marker(dir)? {
        return Ok(Recovery::default());
    }
    let _recovering = super::lock::RECOVERING
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let mut r = match try_lock(dir) {
        Ok(Acquired::Fresh(_lock)) => return Ok(recover_locked(dir)),
        Ok(Acquired::Shared(_) | Acquired::Busy) => Recovery {
            live_writer: true,
            ..Recovery::default()
        },
        // No lock file and no right to create one: a read-only store nobody can be writing
        // with this version; reading its open segments is all that can be done.
        Err(e) => Recovery {
            problems: vec![format!("not recovering open segments: {e}")],
            ..Recovery::default()
        },
    };
    // Imports are not a writer's: what one left is finished whether or not a writer runs.
    let (imports, problems) = super::imports::recover_imports(dir);
    r.imports = imports;
    r.problems.extend(problems);
    Ok(r)
}

/// Recovers every temporary segment in the store. The caller holds the store lock, freshly
/// taken: every temporary file belongs to a writer that is gone.
pub(crate) fn recover_locked(dir: &Path) -> Recovery {
    let (imports, problems) = super::imports::recover_imports(dir);
    let mut out = Recovery {
        imports,
        problems,
        ..Recovery::default()
    };
    let paths = match temp_files(dir) {
        Ok(paths) => paths,
        Err(e) => {
            out.problems.push(e.to_string());
            return out;
        }
    };
    if paths.is_empty() {
        return out;
    }
    let history = match super::audit::read_lines(dir) {
        Ok(lines) => SegmentHistory::of(&lines),
        Err(e) => {
            // Without the log, a crash cannot be told from a sealed file put back: keep both.
            out.problems.push(format!(
                "not recovering {} temporary segment(s): {e}",
                paths.len()
            ));
            return out;
        }
    };
    for p in paths {
        match recover_temp(&p, |r, sealed| audit_recovered(dir, &history, r, sealed)) {
            Ok(r) => out.segments.push(r),
            Err(e) => out.problems.push(format!("cannot recover: {e}")),
        }
    }
    out
}

/// A recovered segment enters the audit chain like a sealed one (`recover`, with what was
/// dropped), so `verify` can explain it. Its time is its newest record's: packet time, as for
/// seals. Like a seal entry, it is appended while the segment, complete and fsynced, still has
/// its temporary name: if appending fails the file stays temporary, for the next writer to
/// recover, rather than sealed with no entry that explains it. A file its seal entry already
/// describes (the writer died between that entry and the rename) needs no second entry.
fn audit_recovered(
    dir: &Path,
    history: &SegmentHistory,
    r: &mut RecoveredSegment,
    sealed: &Path,
) -> Result<(), StoreError> {
    let rel = super::audit::relative(dir, sealed);
    if let Some((line, sha256, records)) = history.sealed(&rel) {
        let (now, _) = super::audit::hash_file(&r.temp).map_err(StoreError::from)?;
        if now == sha256 {
            return Ok(());
        }
        r.sealed_before = Some((line, records));
    }
    let seg = SegmentFile::open(&r.temp)?;
    let (start, end) = (seg.header.partition_start, seg.header.partition_end);
    let (first, last, records) = (
        seg.totals.min_first,
        seg.totals.max_last,
        seg.totals.records,
    );
    drop(seg);
    let mut facts = super::audit::segment_facts(dir, &r.temp, start, end, first, last, records)?;
    facts.path = rel;
    let reason = match r.sealed_before {
        None => format!(
            "kept {} blocks, dropped {} torn bytes",
            r.blocks, r.torn_bytes
        ),
        Some((line, records)) => format!(
            "kept {} blocks, dropped {} torn bytes; sealed before at line {line} with \
             {records} records",
            r.blocks, r.torn_bytes
        ),
    };
    super::audit::AuditLog::open(dir).append(&super::audit::AuditRecord {
        time: last,
        action: super::audit::Action::Recover,
        segment: Some(facts),
        reason,
    })?;
    Ok(())
}

/// Temporary segment files in every partition directory, in time then name order.
fn temp_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut parts: Vec<(Nanos, PathBuf)> = Vec::new();
    for ent in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let ent = ent.map_err(|e| StoreError::io(dir, e))?;
        // A link named like a partition is not one: the store never follows links.
        let real = ent.file_type().is_ok_and(|t| t.is_dir());
        if let Some(start) = ent.file_name().to_str().and_then(parse_partition_dir_name) {
            if real {
                parts.push((start, ent.path()));
            }
        }
    }
    parts.sort();
    let mut out = Vec::new();
    for (_, pdir) in parts {
        let Ok(rd) = fs::read_dir(&pdir) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(".seg-") && n.ends_with(TEMP_SUFFIX))
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|n| pdir.join(n)));
    }
    Ok(out)
}

/// Seals one temporary segment of a dead writer: keeps its complete blocks, drops the torn
/// tail, writes the footer, fsyncs, calls `audit` (the report so far, the sealed name), renames,
/// fsyncs the directory. A file with no complete block is removed. The caller must hold the
/// store lock.
pub fn recover_temp(
    temp: &Path,
    audit: impl FnOnce(&mut RecoveredSegment, &Path) -> Result<(), StoreError>,
) -> Result<RecoveredSegment, StoreError> {
    let io_err = |e| StoreError::io(temp, e);
    let sealed = sealed_name(temp).ok_or_else(|| StoreError::Refused {
        path: temp.to_path_buf(),
        reason: "not a temporary segment name".into(),
    })?;
    let file = fs::open_read_write(temp).map_err(io_err)?;
    let len_before = fs::file_metadata(&file).map_err(io_err)?.len();
    let mut report = RecoveredSegment {
        temp: temp.to_path_buf(),
        sealed: None,
        blocks: 0,
        records: 0,
        torn_bytes: 0,
        len_before,
        len_after: 0,
        sealed_before: None,
    };
    let Some(header) = read_temp_header(temp, &file)? else {
        report.torn_bytes = end_of_nonzero(temp, &file, 0, len_before)?;
        drop(file);
        fs::remove_synced(temp)?;
        return Ok(report);
    };
    // Killed after truncating but before renaming: the file is a whole sealed segment.
    if let Ok(seg) = SegmentFile::open(temp) {
        report.blocks = seg.entries.len() as u64;
        report.records = seg.totals.records;
        report.len_after = seg.file_len;
        drop(seg);
        fs::sync(&file).map_err(io_err)?;
        return finish_rename(temp, &sealed, report, audit);
    }
    let mut decoder = BlockDecoder::new().map_err(|e| io_err(io::Error::other(e.reason)))?;
    let (mut buf, mut recs, mut leases) = (Vec::new(), Vec::new(), Vec::new());
    // The sealed segment gets the same address filters the writer would have written.
    let (mut filters, mut filter_meta, mut one) = (Vec::new(), Vec::new(), Vec::new());
    let mut scan = read_open_blocks(
        temp,
        &file,
        &mut decoder,
        &mut buf,
        &mut recs,
        &mut leases,
        |_, block| {
            match block {
                OpenBlock::Flows(recs) => {
                    let hashes = build_for_records(recs, &mut one);
                    filters.extend_from_slice(&one);
                    filter_meta.push((one.len() as u32, hashes));
                }
                // Lease blocks have no address filter.
                OpenBlock::Leases(_) => filter_meta.push((0, 0)),
            }
            ControlFlow::Continue(())
        },
    )?;
    for (e, (len, hashes)) in scan.entries.iter_mut().zip(filter_meta) {
        e.filter_len = len;
        e.filter_hashes = hashes;
    }
    report.blocks = scan.entries.len() as u64;
    report.records = scan
        .entries
        .iter()
        .filter(|e| e.kind == KIND_FLOWS)
        .map(|e| u64::from(e.records))
        .sum();
    report.torn_bytes = end_of_nonzero(temp, &file, scan.end, scan.file_len)? - scan.end;
    if scan.entries.is_empty() {
        drop(file);
        fs::remove_synced(temp)?;
        return Ok(report);
    }
    let mut footer = Vec::new();
    // The capture statistics lived in the dead writer's memory: the footer says none.
    encode_footer_and_trailer(
        &scan.entries,
        &filters,
        &totals(&scan.entries),
        &CaptureStats::default(),
        // The names, like the statistics, died with the writer: a format-3 footer then lists
        // none, and the records' interface indexes stay as they were.
        (header.version >= 3).then_some(&[][..]),
        scan.end,
        &mut footer,
    );
    // Truncate first: if recovery itself is interrupted, the file is blocks then (part of) a
    // footer, which the next recovery reads as blocks then a torn tail.
    fs::set_len(&file, scan.end).map_err(io_err)?;
    fs::write_all_at(&file, &footer, scan.end).map_err(io_err)?;
    fs::sync(&file).map_err(io_err)?;
    report.len_after = scan.end + footer.len() as u64;
    finish_rename(temp, &sealed, report, audit)
}

fn finish_rename(
    temp: &Path,
    sealed: &Path,
    mut report: RecoveredSegment,
    audit: impl FnOnce(&mut RecoveredSegment, &Path) -> Result<(), StoreError>,
) -> Result<RecoveredSegment, StoreError> {
    // The sealing protocol never lets a sealed name exist beside its temporary name; if it does,
    // something else made it, and it is not overwritten.
    if fs::symlink_metadata(sealed).is_ok() {
        return Err(StoreError::Refused {
            path: temp.to_path_buf(),
            reason: format!("{} already exists; left unrecovered", sealed.display()),
        });
    }
    audit(&mut report, sealed)?;
    fs::rename_synced(temp, sealed)?;
    report.sealed = Some(sealed.to_path_buf());
    Ok(report)
}

#[cfg(test)]
mod tests;
