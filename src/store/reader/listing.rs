//! Which segments a store holds: partition directories by name, segment files by name, and
//! what each sealed segment's footer says.

use super::Store;
use crate::fs::{self, DirEntry};
use crate::store::holds::{hold_dir, load_holds, HoldError, HoldState, HOLDS_DIR, HOLDS_NAME};
use crate::store::segment::{CaptureStats, SegmentFile, SEGMENT_EXT, TEMP_SUFFIX};
use crate::store::{parse_partition_dir_name, StoreError};
use crate::time::Nanos;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One sealed segment, as its footer describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentInfo {
    pub path: PathBuf,
    pub partition_start: Nanos,
    pub partition_end: Nanos,
    pub writer_id: u32,
    pub records: u64,
    pub blocks: u64,
    /// Smallest `first` and largest `last` of the segment's records.
    pub first: Nanos,
    pub last: Nanos,
    /// File size.
    pub bytes: u64,
    /// What the capture saw while the segment was open (all zero if unreadable).
    pub capture: CaptureStats,
    /// Names of the interfaces its records' `interface` indexes refer to (format 3; empty for
    /// format 2, recovered or unreadable segments).
    pub interfaces: Vec<String>,
    /// Set when the segment's header or footer cannot be read: the segment is then unusable and
    /// the other fields hold only what its location says (partition start from the directory
    /// name, end = start, zero counts, first = last = partition start).
    pub error: Option<String>,
}

/// Which segments a [`Store`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// The live store and the copies of every standing filtered hold, each record once: a
    /// copy is read only once its source segment is gone, and records that several holds'
    /// copies of one source share are passed once.
    #[default]
    Everything,
    /// Only the live store's segments.
    Live,
    /// Only the copies of the named hold (`query --hold`).
    Hold(String),
}

/// Hold copies of one source segment (its partition and file name) that more than one hold
/// keeps: a scan passes records they share once.
pub(super) type CopyGroup = (Nanos, String);

/// One segment file a scan reads.
pub(super) struct Listed {
    pub(super) partition: Nanos,
    pub(super) path: PathBuf,
    /// A live writer's open segment, under its temporary name.
    pub(super) temp: bool,
    /// Set for a hold copy whose source other holds' copies share.
    pub(super) shared: Option<CopyGroup>,
}

pub(super) struct Listing {
    /// (partition start from the directory name, path), in time then name order.
    pub(super) sealed: Vec<(Nanos, PathBuf)>,
    /// Sealed and temporary segments together, in time then name order: a scan goes
    /// partition by partition.
    pub(super) all: Vec<Listed>,
}

impl Store {
    /// The segments of the store's [`Scope`].
    pub(super) fn list(&self) -> Result<Listing, StoreError> {
        match self.scope() {
            Scope::Live => list_root(self.dir(), true),
            Scope::Hold(name) => list_root(&hold_dir(self.dir(), name), false),
            Scope::Everything => {
                let mut listing = list_root(self.dir(), true)?;
                let live: HashSet<CopyGroup> = listing
                    .all
                    .iter()
                    .filter_map(|l| Some((l.partition, source_name(&l.path, l.temp)?)))
                    .collect();
                let mut copies: Vec<(Nanos, String, PathBuf)> = Vec::new();
                for h in load_holds(self.dir()).map_err(hold_error)? {
                    if h.filter.is_none() || h.state != HoldState::Ready || h.released.is_some() {
                        continue;
                    }
                    for (partition, path) in list_root(&h.dir(self.dir()), false)?.sealed {
                        let name = source_name(&path, false).unwrap_or_default();
                        if !live.contains(&(partition, name.clone())) {
                            copies.push((partition, name, path));
                        }
                    }
                }
                copies.sort();
                for (i, (partition, name, path)) in copies.iter().enumerate() {
                    let same = |j: usize| {
                        copies
                            .get(j)
                            .is_some_and(|c| (c.0, &c.1) == (*partition, name))
                    };
                    let shared =
                        (same(i + 1) || (i > 0 && same(i - 1))).then(|| (*partition, name.clone()));
                    listing.sealed.push((*partition, path.clone()));
                    listing.all.push(Listed {
                        partition: *partition,
                        path: path.clone(),
                        temp: false,
                        shared,
                    });
                }
                // Stable: live before copies within a partition, copies of a source together.
                listing.sealed.sort_by_key(|s| s.0);
                listing.all.sort_by_key(|l| l.partition);
                Ok(listing)
            }
        }
    }

    /// Sealed segments in time order (partition start, then smallest `first`, then path). A
    /// segment whose header or footer is unreadable is listed with `error` set.
    /// The live store's, whatever the scope: what retention, `info` and the metrics count.
    pub fn segments(&self) -> Result<Vec<SegmentInfo>, StoreError> {
        Ok(describe(list_root(self.dir(), true)?.sealed))
    }

    /// The sealed segments a scan of this store's [`Scope`] reads.
    pub fn scoped_segments(&self) -> Result<Vec<SegmentInfo>, StoreError> {
        Ok(describe(self.list()?.sealed))
    }

    /// The copies hold `name` keeps (none when it has no folder).
    pub fn hold_segments(&self, name: &str) -> Result<Vec<SegmentInfo>, StoreError> {
        Ok(describe(
            list_root(&hold_dir(self.dir(), name), false)?.sealed,
        ))
    }

    /// Every sealed segment file on disk: the live store's and every hold folder's, listed or
    /// not in the holds file (what `verify` must explain).
    pub fn all_segments(&self) -> Result<Vec<SegmentInfo>, StoreError> {
        let mut sealed = list_root(self.dir(), true)?.sealed;
        let holds = self.dir().join(HOLDS_DIR);
        if fs::is_real_dir(&holds) {
            let mut names: Vec<PathBuf> = read_dir(&holds)?
                .into_iter()
                .map(|e| e.path())
                .filter(|p| fs::is_real_dir(p))
                .collect();
            names.sort();
            for d in names {
                sealed.extend(list_root(&d, false)?.sealed);
            }
        }
        Ok(describe(sealed))
    }

    /// The live store's temporary segments (open, or left by a writer that died).
    pub(crate) fn temporary_segments(&self) -> Result<Vec<PathBuf>, StoreError> {
        Ok(list_root(self.dir(), true)?
            .all
            .into_iter()
            .filter(|l| l.temp)
            .map(|l| l.path)
            .collect())
    }

    /// The live store's open segments with what their complete blocks hold, read without
    /// changing them; one that disappears meanwhile was sealed and is left out.
    pub fn open_segments(&self) -> Result<Vec<OpenSegment>, StoreError> {
        let mut out = Vec::new();
        for p in self.temporary_segments()? {
            match crate::store::recover::inspect_temp(&p) {
                Ok((blocks, records)) => out.push(OpenSegment {
                    path: crate::store::audit::relative(self.dir(), &p),
                    blocks,
                    records,
                }),
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Lease observations in the live store's sealed segments, from their footers.
    pub fn lease_count(&self) -> Result<u64, StoreError> {
        Ok(list_root(self.dir(), true)?
            .sealed
            .iter()
            .filter_map(|(_, p)| SegmentFile::open(p).ok())
            .map(|s| u64::from(s.totals.leases))
            .sum())
    }
}

/// A temporary segment read without sealing it: a live writer's, or one a stopped writer left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSegment {
    /// Relative to the store.
    pub path: String,
    /// Complete blocks, and the flow records in them.
    pub blocks: u64,
    pub records: u64,
}

/// What each segment's footer says, in time order (partition start, then smallest `first`,
/// then path). A segment whose header or footer is unreadable is listed with `error` set.
fn describe(sealed: Vec<(Nanos, PathBuf)>) -> Vec<SegmentInfo> {
    let mut out: Vec<SegmentInfo> = sealed
        .into_iter()
        .map(|(start, path)| match SegmentFile::open(&path) {
            Ok(seg) => SegmentInfo {
                partition_start: seg.header.partition_start,
                partition_end: seg.header.partition_end,
                writer_id: seg.header.writer_id,
                records: seg.totals.records,
                blocks: seg.entries.len() as u64,
                first: seg.totals.min_first,
                last: seg.totals.max_last,
                bytes: seg.file_len,
                capture: seg.capture,
                interfaces: seg.interfaces,
                error: None,
                path,
            },
            Err(e) => SegmentInfo {
                partition_start: start,
                partition_end: start,
                writer_id: 0,
                records: 0,
                blocks: 0,
                first: start,
                last: start,
                bytes: fs::metadata(&path).map_or(0, |m| m.len()),
                capture: CaptureStats::default(),
                interfaces: Vec::new(),
                error: Some(e.to_string()),
                path,
            },
        })
        .collect();
    out.sort_by(|a, b| {
        (a.partition_start, a.first, &a.path).cmp(&(b.partition_start, b.first, &b.path))
    });
    out
}

/// The partition folders and segments under `root` (the store, or a hold's copies), by
/// name; other entries are not the store's and are left alone. `temp`: also a live writer's
/// open segments (a hold's folder has none a reader may read).
fn list_root(root: &Path, temp: bool) -> Result<Listing, StoreError> {
    let entries = match fs::read_dir(root) {
        // A hold that has copied nothing yet has no folder.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !temp => Vec::new(),
        _ => read_dir(root)?,
    };
    let mut parts = Vec::new();
    for ent in entries {
        let name = ent.file_name();
        let Some(start) = name.to_str().and_then(parse_partition_dir_name) else {
            continue;
        };
        let path = ent.path();
        if fs::is_real_dir(&path) {
            parts.push((start, path));
        }
    }
    parts.sort();
    let mut sealed = Vec::new();
    let mut all = Vec::new();
    for (start, pdir) in parts {
        let mut names: Vec<String> = read_dir(&pdir)?
            .into_iter()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            let is_temp = name.starts_with(".seg-") && name.ends_with(TEMP_SUFFIX);
            let is_sealed = name.starts_with("seg-") && name.ends_with(SEGMENT_EXT);
            if is_sealed {
                sealed.push((start, pdir.join(&name)));
            }
            if is_sealed || temp && is_temp {
                all.push(Listed {
                    partition: start,
                    path: pdir.join(name),
                    temp: is_temp,
                    shared: None,
                });
            }
        }
    }
    Ok(Listing { sealed, all })
}

/// The sealed name a segment has or will have: what a hold's copy of it is named.
fn source_name(path: &Path, temp: bool) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if temp {
        let stem = name.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
        Some(format!("{stem}{SEGMENT_EXT}"))
    } else {
        Some(name.to_string())
    }
}

fn hold_error(e: HoldError) -> StoreError {
    match e {
        HoldError::Io { path, source } => StoreError::Io { path, source },
        e => StoreError::Refused {
            path: PathBuf::from(HOLDS_NAME),
            reason: e.to_string(),
        },
    }
}

fn read_dir(dir: &Path) -> Result<Vec<DirEntry>, StoreError> {
    fs::read_dir(dir)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| StoreError::io(dir, e))
}
