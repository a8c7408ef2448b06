//! What a scan stepped over. A scan does not stop at damage: it describes it and reads on, so
//! that one bad block does not hide the rest of the store.

use crate::store::block::BlockError;
use crate::store::StoreError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One unreadable segment or damaged block. Displays as one line: the file, the byte offset
/// for a damaged block, and what is wrong.
#[derive(Debug, Clone)]
pub enum ScanProblem {
    /// A segment that could not be opened, or whose reading failed partway: the rest of it was
    /// not read. Shared, because [`StoreError`] (an `io::Error` inside) cannot be cloned.
    Segment {
        path: PathBuf,
        error: Arc<StoreError>,
    },
    /// A damaged block of a sealed segment, dropped whole before any of its records or
    /// observations reached the caller.
    Block {
        path: PathBuf,
        /// File offset of the block.
        offset: u64,
        damage: BlockDamage,
    },
}

/// What is wrong with a block a scan dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockDamage {
    /// What decoding the block found; its offset counts from the start of the block.
    Decode(BlockError),
    /// The segment's index puts the block (partly) outside the file.
    OutsideFile,
    /// The block decodes to another number of records than the index says.
    RecordCount { found: usize, indexed: u32 },
    /// A lease block decodes to another number of observations than the index says.
    LeaseCount { found: usize, indexed: u32 },
}

impl ScanProblem {
    pub(super) fn segment(path: &Path, error: StoreError) -> ScanProblem {
        ScanProblem::Segment {
            path: path.to_path_buf(),
            error: Arc::new(error),
        }
    }

    pub(super) fn block(path: &Path, offset: u64, damage: BlockDamage) -> ScanProblem {
        ScanProblem::Block {
            path: path.to_path_buf(),
            offset,
            damage,
        }
    }

    /// The segment file the problem is in.
    pub fn path(&self) -> &Path {
        match self {
            ScanProblem::Segment { path, .. } | ScanProblem::Block { path, .. } => path,
        }
    }

    /// File offset of the damage, where a block's is known.
    pub fn offset(&self) -> Option<u64> {
        match self {
            ScanProblem::Segment { .. } => None,
            ScanProblem::Block { offset, damage, .. } => Some(match damage {
                BlockDamage::Decode(e) => offset.saturating_add(e.offset),
                _ => *offset,
            }),
        }
    }
}

impl fmt::Display for ScanProblem {
    /// The text of the [`StoreError`] the problem is, or would be for a damaged block
    /// ([`StoreError::Corrupt`] at the damage's file offset): `flowkeep` prints these lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanProblem::Segment { error, .. } => error.fmt(f),
            ScanProblem::Block { path, damage, .. } => {
                let at = self.offset().unwrap_or_default();
                write!(f, "{}: corrupt at byte {at}: {damage}", path.display())
            }
        }
    }
}

impl fmt::Display for BlockDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockDamage::Decode(e) => f.write_str(&e.reason),
            BlockDamage::OutsideFile => f.write_str("block outside the file"),
            BlockDamage::RecordCount { found, indexed } => {
                write!(f, "block holds {found} records, the index says {indexed}")
            }
            BlockDamage::LeaseCount { found, indexed } => write!(
                f,
                "lease block holds {found} observations, the index says {indexed}"
            ),
        }
    }
}

/// Problems are equal when they are about the same place and say the same: an `io::Error`
/// has no equality of its own.
impl PartialEq for ScanProblem {
    fn eq(&self, other: &ScanProblem) -> bool {
        match (self, other) {
            (ScanProblem::Segment { path, error }, ScanProblem::Segment { path: p, error: e }) => {
                path == p && (Arc::ptr_eq(error, e) || error.to_string() == e.to_string())
            }
            (
                ScanProblem::Block {
                    path,
                    offset,
                    damage,
                },
                ScanProblem::Block {
                    path: p,
                    offset: o,
                    damage: d,
                },
            ) => path == p && offset == o && damage == d,
            _ => false,
        }
    }
}

impl Eq for ScanProblem {}
