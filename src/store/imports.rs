//! Files taken into a store from elsewhere: the Tor exit lists of `crate::tor`, kept byte for
//! byte under `DIR/tor/` and explained by `import` audit entries as segments are by seals, so
//! that verify checks them and retention deletes them with the same entries.

use super::audit::{self, Action, AuditLog, AuditRecord, SegmentFacts};
use super::history::{LastWord, SegmentHistory};
use super::holds::{lock_holds, HoldError, HoldsLock};
use super::StoreError;
use crate::fs;
use crate::time::Nanos;
use std::path::{Path, PathBuf};

/// The folder of a store that holds the imported Tor exit lists.
pub const TOR_DIR: &str = "tor";
pub const TOR_PREFIX: &str = "exit-list-";
pub const TOR_EXT: &str = ".txt";

/// What an `import` entry says of the file, besides its hash and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportFacts {
    /// The span of time the file is about (audited as its partition and its first/last).
    pub first: Nanos,
    pub last: Nanos,
    /// Its entries (a list's exit addresses).
    pub records: u64,
    pub reason: String,
}

/// Writes `bytes` as `DIR/tor/NAME` at `now`: a temporary file, fsynced, then the `import`
/// entry, then the rename into place, so a file under its name always has its entry (as a
/// segment's seal). An entry that cannot be appended removes the temporary file. Returns the
/// path relative to the store. Runs under the holds lock, as expire's deletions and
/// [`recover_imports`] do: neither sees an import half done.
pub fn import_tor_list(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    facts: &ImportFacts,
    now: Nanos,
) -> Result<String, StoreError> {
    // What an earlier import left half done is finished first: its temporary file would
    // otherwise stand in this one's way.
    let (_, problems) = recover_imports(dir);
    if let Some(p) = problems.first() {
        return Err(StoreError::io(dir, std::io::Error::other(p.clone())));
    }
    let _lock = holds_lock(dir)?;
    // An `import` entry is format 5's: an older store's marker must say so first, so that an
    // older flowkeep refuses the store rather than calls the entry damage.
    if super::marker_version(dir)?.is_some_and(|v| v < super::FORMAT_VERSION) {
        super::write_marker(dir)?;
    }
    let folder = dir.join(TOR_DIR);
    fs::create_dir_all(&folder).map_err(|e| StoreError::io(&folder, e))?;
    let tmp = folder.join(format!(".{name}.tmp"));
    let rel = format!("{TOR_DIR}/{name}");
    let f = fs::create_new(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
    let written = fs::write_all(&f, bytes).and_then(|()| fs::sync(&f));
    drop(f);
    if let Err(e) = written {
        // No entry can name it yet: nothing was promised.
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io(&tmp, e));
    }
    let (sha256, size) = audit::hash_file(&tmp)?;
    // An append that fails may still have put the line in the log (its fsync failed): the
    // temporary file stays, and recovery ([`recover_imports`]) renames it or removes it by
    // what the log says.
    AuditLog::open(dir).append(&AuditRecord {
        time: now,
        action: Action::Import,
        segment: Some(SegmentFacts {
            path: rel.clone(),
            partition_start: facts.first,
            partition_end: facts.last,
            first: facts.first,
            last: facts.last,
            records: facts.records,
            bytes: size,
            sha256,
        }),
        reason: facts.reason.clone(),
    })?;
    fs::rename_synced(&tmp, &folder.join(name))?;
    Ok(rel)
}

/// The imported Tor exit lists on disk, sorted (not an import's temporary file).
pub fn tor_lists(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let folder = dir.join(TOR_DIR);
    let entries = match fs::read_dir(&folder) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(&folder, e)),
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(TOR_PREFIX) && n.ends_with(TOR_EXT))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn holds_lock(dir: &Path) -> Result<HoldsLock, StoreError> {
    lock_holds(dir).map_err(|e| match e {
        HoldError::Io { path, source } => StoreError::io(&path, source),
        other => StoreError::io(dir, std::io::Error::other(other.to_string())),
    })
}

/// Finishes what an import that stopped (a crash, a kill) left in `DIR/tor/`: a temporary
/// file whose `import` entry was appended, with the same SHA-256, is renamed into place (the
/// entry promised it); one with no entry is removed (nothing was promised, and nothing read
/// it). Anything else is left and reported. Returns a line per file recovered or removed, and
/// the problems.
pub fn recover_imports(dir: &Path) -> (Vec<String>, Vec<String>) {
    let folder = dir.join(TOR_DIR);
    let temps: Vec<PathBuf> = match fs::read_dir(&folder) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with(&format!(".{TOR_PREFIX}")) && n.ends_with(".tmp")
                })
            })
            .collect(),
        Err(_) => return (Vec::new(), Vec::new()),
    };
    if temps.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let (mut done, mut problems) = (Vec::new(), Vec::new());
    let _lock = match holds_lock(dir) {
        Ok(l) => l,
        Err(e) => return (done, vec![format!("not recovering imports: {e}")]),
    };
    let history = match audit::read_lines(dir) {
        Ok(lines) => SegmentHistory::of(&lines),
        Err(e) => return (done, vec![format!("not recovering imports: {e}")]),
    };
    for tmp in temps {
        let Some(name) = tmp
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix('.'))
            .and_then(|n| n.strip_suffix(".tmp"))
            .map(str::to_string)
        else {
            continue;
        };
        let rel = format!("{TOR_DIR}/{name}");
        let fin = folder.join(&name);
        let outcome = match (history.last.get(&rel), audit::hash_file(&tmp)) {
            (Some(LastWord::Sealed { sha256, .. }), Ok((sha, _)))
                if *sha256 == sha && !fs::exists(&fin) =>
            {
                fs::rename_synced(&tmp, &fin)
                    .map(|()| {
                        format!("{rel}: an interrupted import completed (its entry was appended)")
                    })
                    .map_err(|e| e.to_string())
            }
            (None, Ok(_)) => fs::remove_synced(&tmp)
                .map(|()| format!("{rel}: an interrupted import removed (it had no entry yet)"))
                .map_err(|e| e.to_string()),
            (_, Err(e)) => Err(e.to_string()),
            _ => Err(format!(
                "{}: a temporary list that its entry does not explain: left in place",
                audit::relative(dir, &tmp)
            )),
        };
        match outcome {
            Ok(line) => done.push(line),
            Err(p) => problems.push(p),
        }
    }
    (done, problems)
}
