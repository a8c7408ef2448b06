//! Files taken into a store from elsewhere: the Tor exit lists of `crate::tor`, kept byte for
//! byte under `DIR/tor/` and explained by `import` audit entries as segments are by seals, so
//! that verify checks them and retention deletes them with the same entries.

use super::audit::{self, Action, AuditLog, AuditRecord, SegmentFacts};
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
/// path relative to the store.
pub fn import_tor_list(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    facts: &ImportFacts,
    now: Nanos,
) -> Result<String, StoreError> {
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
    let logged = written.map_err(|e| StoreError::io(&tmp, e)).and_then(|()| {
        let (sha256, size) = audit::hash_file(&tmp)?;
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
        Ok(())
    });
    if let Err(e) = logged {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
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
