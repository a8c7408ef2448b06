//! Checking a store end to end: every segment against its own checksums (header, footer, every
//! block's crc32c and decoded length), and the segments on disk against the audit log.

use super::audit::{self, Action, AuditError, ChainProblem};
use super::block::BlockDecoder;
use super::leases::{decode_lease_block, KIND_LEASES};
use super::segment::SegmentFile;
use super::{SegmentInfo, Store, StoreError, MARKER_NAME};
use crate::fs;
use std::collections::BTreeMap;
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

/// The log's last word on each path: the line of its latest seal/recover entry (with its
/// hash and size), or that it was expired after that.
enum State {
    Sealed {
        line: u64,
        sha256: String,
        bytes: u64,
    },
    /// With the hash of the seal entry before, if any.
    Expired(Option<String>),
}

/// The log's last word on each path it names.
fn last_word(lines: &[audit::AuditLine]) -> BTreeMap<String, State> {
    let mut state: BTreeMap<String, State> = BTreeMap::new();
    for l in lines {
        let Ok(e) = &l.entry else { continue };
        let Some(seg) = &e.record.segment else {
            continue;
        };
        match e.record.action {
            Action::Seal | Action::Recover => {
                state.insert(
                    seg.path.clone(),
                    State::Sealed {
                        line: l.number,
                        sha256: seg.sha256.clone(),
                        bytes: seg.bytes,
                    },
                );
            }
            Action::Expire => {
                let sealed = match state.remove(&seg.path) {
                    Some(State::Sealed { sha256, .. }) => Some(sha256),
                    Some(State::Expired(sha)) => sha,
                    None => None,
                };
                state.insert(seg.path.clone(), State::Expired(sealed));
            }
            // Holds, accesses and policy changes say nothing about a segment file.
            Action::HoldAdd
            | Action::HoldRelease
            | Action::HoldRenew
            | Action::Access
            | Action::Policy => {}
        }
    }
    state
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
    /// The store's own files: a marker that is not what a writer writes, or says an older
    /// format than its segments; an audit log that is gone.
    pub store_problems: Vec<String>,
    /// Checksum problems, by segment.
    pub segment_problems: Vec<String>,
    pub chain_problems: Vec<ChainProblem>,
    pub findings: Vec<AuditFinding>,
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
        // A temporary segment that recovery could not seal when this store was opened is a
        // file nothing explains (and that reading commands report as damage).
        // (A read-only store, whose lock cannot be taken, has nothing to say here unless it
        // holds temporary segments.)
        if !self.temporary_segments()?.is_empty() {
            v.store_problems.extend(
                self.recovery()
                    .problems
                    .iter()
                    .map(|p| format!("temporary segment: {p}")),
            );
        }
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
        (v.findings, v.unfinished) = self.audit_findings(&segments, &lines);
        Ok(v)
    }

    /// The segments on disk against the log.
    fn audit_findings(
        &self,
        segments: &[SegmentInfo],
        lines: &[audit::AuditLine],
    ) -> (Vec<AuditFinding>, Vec<String>) {
        let (mut findings, mut unfinished) = (Vec::new(), Vec::new());
        let mut state = last_word(lines);
        for info in segments {
            let path = audit::relative(self.dir(), &info.path);
            match state.remove(&path) {
                Some(State::Sealed {
                    line,
                    sha256,
                    bytes: sealed_bytes,
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
                Some(State::Expired(_)) if !fs::exists(&info.path) => {}
                Some(State::Expired(Some(sha)))
                    if audit::hash_file(&info.path).is_ok_and(|(h, _)| h == sha) =>
                {
                    unfinished.push(path)
                }
                Some(State::Expired(_)) | None => findings.push(AuditFinding::Unexplained { path }),
            }
        }
        for (path, s) in state {
            if let State::Sealed { line, .. } = s {
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
