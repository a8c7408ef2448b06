//! Deleting whole sealed segments, the only way records leave the store: `retention` decides
//! which (a pure plan), the store carries it out and audits each deletion.

use super::audit::{self, Action, AuditLog, AuditRecord};
use super::{SegmentInfo, Store, StoreError};
use crate::fs;
use crate::time::Nanos;
use std::path::PathBuf;

/// What [`Store::delete_segments`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Indexes, into the list given, of the segments deleted (one already gone is not).
    pub deleted: Vec<usize>,
    pub bytes_freed: u64,
    /// Partition directories removed because they became empty.
    pub removed_dirs: Vec<PathBuf>,
}

impl Store {
    /// Fills in, for segments whose header or footer cannot be read, the span their latest
    /// `seal` or `recover` entry recorded (for an imported Tor exit list that no longer parses,
    /// its `import` entry's), so that retention can decide them by age like any
    /// other: a damaged byte must not keep records past the promised retention. Their `error`
    /// is cleared and returned with them, for the caller to report; those still undecidable (no
    /// such entry) keep theirs, and retention keeps them.
    pub fn spans_from_log(
        &self,
        segments: &mut [SegmentInfo],
    ) -> Result<Vec<(PathBuf, String)>, StoreError> {
        if segments.iter().all(|s| s.error.is_none()) {
            return Ok(Vec::new());
        }
        let mut latest: std::collections::HashMap<String, audit::SegmentFacts> =
            std::collections::HashMap::new();
        for e in audit::read_all(self.dir())? {
            // An imported Tor exit list's `import` entry holds its span as a seal entry holds
            // a segment's (their paths differ: `tor/` is no partition).
            if let (Action::Seal | Action::Recover | Action::Import, Some(f)) =
                (e.record.action, e.record.segment)
            {
                latest.insert(f.path.clone(), f);
            }
        }
        let mut decided = Vec::new();
        for s in segments.iter_mut().filter(|s| s.error.is_some()) {
            if let Some(f) = latest.get(&audit::relative(self.dir(), &s.path)) {
                s.partition_start = f.partition_start;
                s.partition_end = f.partition_end;
                s.first = f.first;
                s.last = f.last;
                s.records = f.records;
                decided.push((s.path.clone(), s.error.take().unwrap_or_default()));
            }
        }
        Ok(decided)
    }

    /// Deletes the segments, in order, each for its reason: hashes it, appends an `expire`
    /// entry (time `now`, the reason) to the audit log, then unlinks it and fsyncs its
    /// directory, so that no file is ever gone without an entry (when the unlink fails after
    /// the entry, the file stays, `verify` reports it as unexplained, and the next expire,
    /// which plans it again, deletes it with a second entry). Partition directories left empty
    /// are removed afterwards. A segment already gone is skipped (another expire got there
    /// first).
    pub fn delete_segments<'a>(
        &self,
        segments: impl IntoIterator<Item = (&'a SegmentInfo, String)>,
        now: Nanos,
    ) -> Result<Deleted, StoreError> {
        let dir = self.dir();
        let log = AuditLog::open(dir);
        let mut done = Deleted::default();
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (i, (s, reason)) in segments.into_iter().enumerate() {
            let facts = match audit::segment_facts(
                dir,
                &s.path,
                s.partition_start,
                s.partition_end,
                s.first,
                s.last,
                s.records,
            ) {
                Ok(f) => f,
                Err(audit::AuditError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue
                }
                Err(e) => return Err(e.into()),
            };
            // The entry first: a log that cannot take it (a full disk, a poisoned log) keeps
            // the file, and no file is ever gone without an entry that explains it.
            log.append(&AuditRecord {
                time: now,
                action: Action::Expire,
                segment: Some(facts),
                reason,
            })?;
            fs::remove_synced(&s.path)?;
            if let Some(parent) = s.path.parent() {
                if !dirs.iter().any(|p| p == parent) {
                    dirs.push(parent.to_path_buf());
                }
            }
            done.bytes_freed = done.bytes_freed.saturating_add(s.bytes);
            done.deleted.push(i);
        }
        for d in dirs {
            // Fails while anything (another segment, a writer's temporary file) is still
            // inside: then the directory stays, as it should.
            if fs::remove_dir(&d).is_ok() {
                done.removed_dirs.push(d);
            }
        }
        if !done.removed_dirs.is_empty() {
            fs::sync_dir(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        Ok(done)
    }
}
