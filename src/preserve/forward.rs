//! Forward-looking holds: the writers' seal hook copies each newly sealed segment for every
//! standing filtered hold it overlaps.
//!
//! Records are tested when their segment is sealed, from the sealed file, with the column
//! filter `query` uses, not as packets arrive: a hold added while a segment is open then still
//! gets that segment's earlier records (which a test at write time would have missed), the
//! per-packet path does no work for holds at all, and a segment no hold's range overlaps
//! costs nothing. The filters are compiled when the holds file changes, not per segment.

use super::copy::copy_for_holds;
use super::PreserveError;
use crate::fs;
use crate::query::Filter;
use crate::store::holds::{load_holds, Hold, HOLDS_NAME};
use crate::store::{SealHook, SealReport, StoreError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What identifies one version of the holds file without reading it.
type Stamp = Option<(u64, u64, Option<SystemTime>)>;

/// The standing filtered holds, each with its compiled filter.
type Standing = Arc<Vec<(Hold, Filter)>>;

/// The seal hook of one store's writers; shared by them (each seal takes the lock only to look
/// at the compiled holds).
pub struct Catcher {
    dir: PathBuf,
    holds: Mutex<(Stamp, Standing)>,
}

impl Catcher {
    pub fn new(dir: &Path) -> Catcher {
        Catcher {
            dir: dir.to_path_buf(),
            // A stamp no file has: the first seal loads the holds.
            holds: Mutex::new((Some((u64::MAX, u64::MAX, None)), Arc::new(Vec::new()))),
        }
    }

    /// The hook for [`crate::store::WriterConfig::on_seal`].
    pub fn hook(self) -> SealHook {
        let c = Arc::new(self);
        SealHook(Arc::new(move |r: &SealReport| {
            c.on_seal(r).map_err(StoreError::from)
        }))
    }

    /// The standing filtered holds, reloaded and compiled when the holds file changed.
    fn standing(&self) -> Result<Standing, PreserveError> {
        let path = self.dir.join(HOLDS_NAME);
        let stamp: Stamp = fs::metadata(&path).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.ino(), m.len(), m.modified().ok())
        });
        let mut cached = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        if cached.0 != stamp {
            let mut list = Vec::new();
            for h in load_holds(&self.dir)? {
                if h.released.is_some() {
                    continue;
                }
                if let Some(text) = &h.filter {
                    let f = Filter::parse(text)?;
                    list.push((h, f));
                }
            }
            *cached = (stamp, Arc::new(list));
        }
        Ok(cached.1.clone())
    }

    fn on_seal(&self, r: &SealReport) -> Result<(), PreserveError> {
        let standing = self.standing()?;
        let due: Vec<(&Hold, &Filter)> = standing
            .iter()
            .filter(|(h, _)| h.overlaps(r.span.0, r.span.1))
            .map(|(h, f)| (h, f))
            .collect();
        if !due.is_empty() {
            copy_for_holds(&self.dir, &due, &r.path, r.time)?;
        }
        Ok(())
    }
}
