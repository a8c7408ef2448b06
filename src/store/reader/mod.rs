//! Reading: list sealed segments from their footers, and scan records by time, skipping whole
//! segments and blocks by the min/max times their footer records. Damage is reported and stepped
//! over: one bad block must not hide the rest of the store.

mod leases;
mod listing;
mod problem;
mod records;
#[cfg(test)]
mod tests;
mod unsealed;
mod walk;

pub use listing::{OpenSegment, Scope, SegmentInfo};
pub use problem::{BlockDamage, ScanProblem};
pub use records::{AllRecords, RecordFilter};

use super::{check_marker, StoreError};
use crate::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Segments whose blocks were looked at.
    pub segments_read: u64,
    /// Segments skipped whole because their time range is outside the query.
    pub segments_skipped: u64,
    /// Blocks decoded successfully.
    pub blocks_read: u64,
    /// Blocks skipped by their time range.
    pub blocks_skipped: u64,
    /// Blocks in the time range skipped because their address summary rules out every address
    /// of the query ([`Store::scan_filtered`]).
    pub blocks_skipped_by_address: u64,
    /// Records that passed the time and address checks (those the record filter, if any,
    /// was tested on); the callback gets the ones the filter also matched.
    pub records: u64,
    /// Unreadable segments and damaged blocks, each displayed as one line: path, byte offset,
    /// reason.
    pub problems: Vec<ScanProblem>,
    /// Open segments (still under their temporary name: a live writer's, or a dead one's not
    /// recovered yet): read up to their last complete block, a torn tail ignored.
    pub unsealed: Vec<PathBuf>,
}

/// A store directory opened for reading.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    scope: Scope,
}

impl Store {
    pub fn open(dir: impl AsRef<Path>) -> Result<Store, StoreError> {
        let dir = dir.as_ref();
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(StoreError::NotAStore {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) => return Err(StoreError::io(dir, e)),
        }
        if !check_marker(dir)? {
            return Err(StoreError::NotAStore {
                path: dir.to_path_buf(),
            });
        }
        // Reading never changes the store: a dead writer's temporary segments are read up to
        // their last complete block, as a live one's are, and left for a writer starting or
        // `flowkeep recover` to seal (which says what it dropped).
        Ok(Store {
            dir: dir.to_path_buf(),
            scope: Scope::default(),
        })
    }

    /// The same store, scanning `scope` (by default, [`Scope::Everything`]).
    pub fn with_scope(mut self, scope: Scope) -> Store {
        self.scope = scope;
        self
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
