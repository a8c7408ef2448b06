//! Checking a store end to end: every segment against its own checksums (header, footer, every
//! block's crc32c and decoded length), and the segments on disk against the audit log.

use super::audit::{self, AuditError, ChainProblem};
use super::block::BlockDecoder;
use super::history::{LastWord, Resealed, SegmentHistory};
use super::leases::{decode_lease_block, KIND_LEASES};
use super::segment::SegmentFile;
use super::{OpenSegment, SegmentInfo, Store, StoreError, MARKER_NAME};
use crate::fs;
use std::io;

/// What checking one segment found; `problems` empty means every checksum held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// The segment's format version, when its header could be read.
    pub version: Option<u16>,
    pub blocks_ok: u64,
    pub records: u64,
    /// One line each: path, byte offset, reason.
    pub problems: Vec<String>,
}

/// How a segment on disk compares with the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditFinding {
    /// Its SHA-256 differs from the seal entry's and its length is the same or longer.
    Altered { path: String, line: u64 },
    /// Shorter than when sealed.
    Truncated {
        path: String,
        line: u64,
        sealed_bytes: u64,
        bytes: u64,
    },
    /// Sealed according to the log, not on disk, and no later `expire` entry.
    Missing { path: String, line: u64 },
    /// On disk with no `seal`/`recover` entry (or only entries followed by its expiry).
    Unexplained { path: String },
    /// The file could not be read to hash it.
    Unreadable { path: String, reason: String },
    /// Recovered after it had been sealed: see [`Resealed`].
    Resealed(Resealed),
}

impl std::fmt::Display for AuditFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditFinding::Altered { path, line } => write!(
                f,
                "{path}: altered: SHA-256 differs from its seal entry ({} line {line})",
                audit::AUDIT_LOG_NAME
            ),
            AuditFinding::Truncated {
                path,
                line,
                sealed_bytes,
                bytes,
            } => write!(
                f,
                "{path}: truncated: {bytes} bytes, {sealed_bytes} when sealed ({} line {line})",
                audit::AUDIT_LOG_NAME
            ),
            AuditFinding::Missing { path, line } => write!(
                f,
                "{path}: missing: sealed ({} line {line}) but gone with no expire entry",
                audit::AUDIT_LOG_NAME
            ),
            AuditFinding::Unexplained { path } => write!(
                f,
                "{path}: unexplained: on disk with no seal entry in {}",
                audit::AUDIT_LOG_NAME
            ),
            AuditFinding::Unreadable { path, reason } => {
                write!(f, "{path}: unreadable: {reason}")
            }
            AuditFinding::Resealed(r) => write!(
                f,
                "{}: recovered ({log} line {}, {} records) after it had been sealed ({log} line \
                 {}, {} records): a sealed segment was put back under its temporary name",
                r.path,
                r.line,
                r.records,
                r.sealed_line,
                r.sealed_records,
                log = audit::AUDIT_LOG_NAME
            ),
        }
    }
}

/// Everything `flowkeep verify` checks.
#[derive(Debug, Clone, Default)]
pub struct StoreVerification {
    pub segments: u64,
    pub blocks_ok: u64,
    pub records: u64,
    pub audit_entries: u64,
    /// Imported files (Tor exit lists) checked against their entries.
    pub imported: u64,
    /// The store's own files: a marker that is not what a writer writes, or says an older
    /// format than its segments; an audit log that is gone.
    pub store_problems: Vec<String>,
    /// Checksum problems, by segment.
    pub segment_problems: Vec<String>,
    pub chain_problems: Vec<ChainProblem>,
    pub findings: Vec<AuditFinding>,
    /// Temporary segments read up to their last complete block and left as they are: a live
    /// writer's, or one a stopped writer left for recovery.
    pub open: Vec<OpenSegment>,
    /// Segments the log says were expired that are still on disk, unchanged since sealed: an
    /// expire that appended its entry and then could not unlink (a failed fsync, an I/O
    /// error). Not a problem: the next expire deletes them.
    pub unfinished: Vec<String>,
}

impl StoreVerification {
    pub fn problem_count(&self) -> usize {
        self.store_problems.len()
            + self.segment_problems.len()
            + self.chain_problems.len()
            + self.findings.len()
    }

    /// Every problem, one line each.
    pub fn problem_lines(&self) -> Vec<String> {
        self.store_problems
            .iter()
            .chain(&self.segment_problems)
            .cloned()
            .chain(self.chain_problems.iter().map(|p| p.to_string()))
            .chain(self.findings.iter().map(|f| f.to_string()))
            .collect()
    }
}

impl Store {
    /// The marker must be exactly what a writer writes for its version: anything else in it was
    /// put there by hand.
    fn marker_problem(&self, version: u32) -> Option<String> {
        let path = self.dir().join(MARKER_NAME);
        let text = fs::read(&path).ok()?;
        (text != super::marker_text_for(version).as_bytes()).then(|| {
            format!(
                "{MARKER_NAME}: unexpected content: a store's marker is exactly 'flowkeep store', \
                 then 'format {version}' ({} bytes here)",
                text.len()
            )
        })
    }

    /// Whether the segment at `rel` (relative to the store) is on disk now, or still under the
    /// temporary name its writer or builder renames it from.
    fn being_sealed(&self, rel: &str) -> bool {
        let path = self.dir().join(rel);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = name
            .strip_suffix(super::segment::SEGMENT_EXT)
            .map(|stem| path.with_file_name(format!(".{stem}{}", super::segment::TEMP_SUFFIX)));
        fs::exists(&path)
            || temp.is_some_and(|t| fs::exists(&t))
            || fs::exists(&super::writer::build_path(&path))
            // An imported list between its entry and its rename.
            || fs::exists(&path.with_file_name(format!(".{name}.tmp")))
    }

    /// Symbolic links at the top of the store or in its partition folders: a store holds none
    /// (it never follows them), so one there was put by someone else.
    fn links(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut dirs = vec![self.dir().to_path_buf()];
        let mut i = 0;
        while let Some(d) = dirs.get(i).cloned() {
            i += 1;
            let Ok(entries) = fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(t) = e.file_type() else { continue };
                let rel = audit::relative(self.dir(), &e.path());
                if t.is_symlink() {
                    out.push(format!(
                        "{rel}: a symbolic link; a store holds none and never follows one"
                    ));
                } else if t.is_dir() && d == self.dir() {
                    dirs.push(e.path());
                }
            }
        }
        out.sort();
        out
    }

    /// Reads every block of a segment and checks header, footer and block checksums, the
    /// decoded lengths and record counts against the footer index.
    pub fn verify_segment(&self, info: &SegmentInfo) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let seg = match SegmentFile::open(&info.path) {
            Ok(s) => s,
            Err(e) => {
                report.problems.push(e.to_string());
                return Ok(report);
            }
        };
        report.version = Some(seg.header.version);
        let mut decoder = BlockDecoder::new()
            .map_err(|e| StoreError::io(&info.path, io::Error::other(e.reason)))?;
        let mut recs = Vec::new();
        let mut leases = Vec::new();
        for e in &seg.entries {
            let problem =
                |offset: u64, reason: String| StoreError::corrupt(&info.path, offset, reason);
            let Some(bytes) = seg.block(e) else {
                report
                    .problems
                    .push(problem(e.offset, "block outside the file".into()).to_string());
                continue;
            };
            if e.kind == KIND_LEASES {
                match decode_lease_block(bytes, &mut leases) {
                    Err(be) => report
                        .problems
                        .push(problem(e.offset.saturating_add(be.offset), be.reason).to_string()),
                    Ok(()) if leases.len() as u64 != u64::from(e.records) => report.problems.push(
                        problem(
                            e.offset,
                            format!(
                                "lease block holds {} observations, the index says {}",
                                leases.len(),
                                e.records
                            ),
                        )
                        .to_string(),
                    ),
                    Ok(()) => report.blocks_ok += 1,
                }
                continue;
            }
            if let Err(be) = decoder.decode_into(bytes, &mut recs) {
                report
                    .problems
                    .push(problem(e.offset.saturating_add(be.offset), be.reason).to_string());
                continue;
            }
            if recs.len() as u64 != u64::from(e.records) {
                report.problems.push(
                    problem(
                        e.offset,
                        format!(
                            "block holds {} records, the index says {}",
                            recs.len(),
                            e.records
                        ),
                    )
                    .to_string(),
                );
                continue;
            }
            report.blocks_ok += 1;
            report.records += recs.len() as u64;
        }
        Ok(report)
    }

    /// Checks every segment and the audit log (see `docs/FORMAT.md`, "Audit log").
    pub fn verify(&self) -> Result<StoreVerification, StoreError> {
        let mut v = StoreVerification::default();
        let segments = self.all_segments()?;
        let marker = super::marker_version(self.dir())?.unwrap_or(0);
        for info in &segments {
            let r = self.verify_segment(info)?;
            if !r.problems.is_empty() && !fs::exists(&info.path) {
                // Expired while verify ran: nothing left to check.
                continue;
            }
            v.segments += 1;
            v.blocks_ok += r.blocks_ok;
            v.records += r.records;
            v.segment_problems.extend(r.problems);
            if let Some(version) = r.version.filter(|&f| u32::from(f) > marker) {
                // An older flowkeep trusts the marker and would misread this segment.
                v.store_problems.push(format!(
                    "{MARKER_NAME}: says format {marker}, but {} is format {version}",
                    audit::relative(self.dir(), &info.path)
                ));
            }
        }
        v.store_problems.extend(self.marker_problem(marker));
        v.store_problems.extend(self.links());
        // Listed before the log is read, as the sealed segments are: a temporary segment sealed
        // in between then has its seal entry in what is read.
        let temps = self.temporary_segments()?;
        if !fs::exists(&self.dir().join(audit::AUDIT_LOG_NAME)) {
            v.store_problems.push(format!(
                "{}: missing: every store has one from its creation (a store that an older \
                 flowkeep made and never sealed a segment in excepted)",
                audit::AUDIT_LOG_NAME
            ));
        }
        let lines = audit::read_lines(self.dir()).map_err(StoreError::from)?;
        v.audit_entries = lines.len() as u64;
        v.chain_problems = audit::verify_chain(&lines);
        match super::holds::load_holds(self.dir()) {
            Ok(holds) => v
                .store_problems
                .extend(super::history::holds_against_log(&holds, &lines)),
            Err(e) => v.store_problems.push(e.to_string()),
        }
        let history = SegmentHistory::of(&lines);
        // Imported Tor exit lists are explained by their `import` entries as segments are by
        // their seals: altered, missing and unexplained alike.
        let mut files = segments;
        for path in super::imports::tor_lists(self.dir())? {
            v.imported += 1;
            files.push(SegmentInfo {
                path,
                ..SegmentInfo::default()
            });
        }
        (v.findings, v.unfinished) = self.audit_findings(&files, &history);
        self.check_temporary(&temps, &history, &mut v);
        Ok(v)
    }

    /// Temporary segments, read and left as they are (reading never recovers). One whose name
    /// the log has sealed must be that very file, between its seal entry and its rename; any
    /// other is an open segment, reported with what its complete blocks hold.
    fn check_temporary(
        &self,
        temps: &[std::path::PathBuf],
        history: &SegmentHistory,
        v: &mut StoreVerification,
    ) {
        for temp in temps {
            let rel = audit::relative(self.dir(), temp);
            let Some(sealed) = super::recover::sealed_name(temp) else {
                continue;
            };
            // Looked at in this order because a rename is atomic: a temporary name still there
            // after its sealed name was seen means both were there at once.
            if fs::symlink_metadata(&sealed).is_ok() {
                if fs::symlink_metadata(temp).is_err() {
                    continue;
                }
                v.store_problems.push(format!(
                    "{rel}: a temporary segment beside its sealed name {}: a writer never \
                     leaves both",
                    audit::relative(self.dir(), &sealed)
                ));
                continue;
            }
            let sealed_rel = audit::relative(self.dir(), &sealed);
            if let Some(LastWord::Sealed {
                line,
                sha256,
                bytes: sealed_bytes,
                ..
            }) = history.last.get(&sealed_rel)
            {
                let (line, sealed_bytes) = (*line, *sealed_bytes);
                match audit::hash_file(temp) {
                    Ok((sha, _)) if &sha == sha256 => {}
                    Ok((_, bytes)) if bytes < sealed_bytes => {
                        v.findings.push(AuditFinding::Truncated {
                            path: rel,
                            line,
                            sealed_bytes,
                            bytes,
                        })
                    }
                    Ok(_) => v.findings.push(AuditFinding::Altered { path: rel, line }),
                    // Renamed into place since the listing.
                    Err(AuditError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => v.findings.push(AuditFinding::Unreadable {
                        path: rel,
                        reason: e.to_string(),
                    }),
                }
                continue;
            }
            match super::recover::inspect_temp(temp) {
                Ok((blocks, records)) => v.open.push(OpenSegment {
                    path: rel,
                    blocks,
                    records,
                }),
                Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => v.store_problems.push(format!(
                    "temporary segment: {e}: neither sealed nor recoverable"
                )),
            }
        }
    }

    /// The segments on disk against the log.
    fn audit_findings(
        &self,
        segments: &[SegmentInfo],
        history: &SegmentHistory,
    ) -> (Vec<AuditFinding>, Vec<String>) {
        let mut findings: Vec<AuditFinding> = history
            .resealed
            .iter()
            .cloned()
            .map(AuditFinding::Resealed)
            .collect();
        let mut unfinished = Vec::new();
        let mut state = history.last.clone();
        for info in segments {
            let path = audit::relative(self.dir(), &info.path);
            match state.remove(&path) {
                Some(LastWord::Sealed {
                    line,
                    sha256,
                    bytes: sealed_bytes,
                    ..
                }) => match audit::hash_file(&info.path) {
                    Ok((sha, _)) if sha == sha256 => {}
                    Ok((_, bytes)) if bytes < sealed_bytes => {
                        findings.push(AuditFinding::Truncated {
                            path,
                            line,
                            sealed_bytes,
                            bytes,
                        })
                    }
                    Ok(_) => findings.push(AuditFinding::Altered { path, line }),
                    // Expired since the listing (a retention run beside verify).
                    Err(AuditError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound => {}
                    Err(AuditError::Io { source, .. }) => findings.push(AuditFinding::Unreadable {
                        path,
                        reason: source.to_string(),
                    }),
                    Err(e) => findings.push(AuditFinding::Unreadable {
                        path,
                        reason: e.to_string(),
                    }),
                },
                // An expire appends its entry before it unlinks: one between the listing and
                // the reading of the log leaves the file listed and the log saying it is gone.
                Some(LastWord::Expired { .. }) if !fs::exists(&info.path) => {}
                Some(LastWord::Expired {
                    sealed_sha256: Some(sha),
                }) if audit::hash_file(&info.path).is_ok_and(|(h, _)| h == sha) => {
                    unfinished.push(path)
                }
                Some(LastWord::Expired { .. }) | None => {
                    findings.push(AuditFinding::Unexplained { path })
                }
            }
        }
        for (path, s) in state {
            if let LastWord::Sealed { line, .. } = s {
                // A writer appends a seal entry before it renames the file into place: one
                // sealed between the listing and the reading of the log is there now.
                if !self.being_sealed(&path) {
                    findings.push(AuditFinding::Missing { path, line });
                }
            }
        }
        (findings, unfinished)
    }
}
