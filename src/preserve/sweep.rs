//! Expire's part of filtered holds, run under the holds lock: copies of holds that ended go,
//! copies a dead `hold add` left are rolled back, and nothing a standing hold names leaves
//! the live store uncopied.

use super::copy::copy_for_holds;
use super::PreserveError;
use crate::fs;
use crate::query::Filter;
use crate::store::audit::{Action, AuditRecord};
use crate::store::holds::{
    forget_hold_locked, hold_dir, load_holds, try_lock_copy, Hold, HoldState, COPY_LOCK_NAME,
    HOLDS_DIR,
};
use crate::store::{SegmentInfo, Store};
use crate::time::{format_rfc3339, Nanos};
use std::path::{Path, PathBuf};

/// What [`sweep`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Each hold copy deleted, with the reason its audit entry gives.
    pub deleted: Vec<(PathBuf, String)>,
    pub bytes_freed: u64,
    /// Holds removed from the holds file: released or lapsed with their copies gone, or
    /// rolled back.
    pub forgotten: Vec<String>,
}

/// Deletes, at `now`, the copies of every hold that was released or has lapsed and forgets
/// it (a lapse is audited as a `hold-release`); rolls back every hold left `Copying` by a
/// process that died; and removes hold folders the holds file does not name. Every deleted
/// copy gets an `expire` entry saying why. The caller holds the holds lock.
pub fn sweep(dir: &Path, now: Nanos) -> Result<Swept, PreserveError> {
    let mut swept = Swept::default();
    let holds = load_holds(dir)?;
    for h in &holds {
        if h.state == HoldState::Copying {
            if try_lock_copy(dir, &h.name)?.is_some() {
                let why = interrupted(&h.name);
                discard(dir, &h.name, &why, now, None, &mut swept)?;
            }
            continue;
        }
        let audit = match (h.released, h.expires) {
            (Some(t), _) => Some((format!("hold={} released at {}", h.name, rfc(t)), None)),
            (None, Some(e)) if e <= now => Some((
                format!("hold={} lapsed at {}", h.name, rfc(e)),
                Some(AuditRecord {
                    time: now,
                    action: Action::HoldRelease,
                    segment: None,
                    reason: format!("{} lapsed", h.describe()),
                }),
            )),
            _ => None,
        };
        if let Some((why, audit)) = audit {
            discard(dir, &h.name, &why, now, audit, &mut swept)?;
        }
    }
    let holds_dir = dir.join(HOLDS_DIR);
    if fs::is_dir(&holds_dir) {
        let entries =
            fs::read_dir(&holds_dir).map_err(|e| crate::store::StoreError::io(&holds_dir, e))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !holds.iter().any(|h| h.name == name) && fs::is_dir(&e.path()) {
                let why = format!("hold={name} not in the holds file");
                discard(dir, &name, &why, now, None, &mut swept)?;
            }
        }
    }
    Ok(swept)
}

fn rfc(t: Nanos) -> String {
    format_rfc3339(t)
}

fn interrupted(name: &str) -> String {
    format!("hold={name} not added: its copy was interrupted (the process copying it ended)")
}

/// Rolls back hold `name` if it was left `Copying` by a process that died (under the holds
/// lock, before a hold of that name is added again).
pub(super) fn rollback_stale_locked(
    dir: &Path,
    name: &str,
    now: Nanos,
) -> Result<(), PreserveError> {
    let stale = load_holds(dir)?
        .iter()
        .any(|h| h.name == name && h.state == HoldState::Copying);
    if stale && try_lock_copy(dir, name)?.is_some() {
        discard(
            dir,
            name,
            &interrupted(name),
            now,
            None,
            &mut Swept::default(),
        )?;
    }
    Ok(())
}

/// Deletes hold `name`'s copies (each audited with `why`) and its folder, then forgets it
/// (appending `audit` first). The caller holds the holds lock.
pub(super) fn discard_locked(
    dir: &Path,
    name: &str,
    why: &str,
    now: Nanos,
) -> Result<(), PreserveError> {
    discard(dir, name, why, now, None, &mut Swept::default())
}

fn discard(
    dir: &Path,
    name: &str,
    why: &str,
    now: Nanos,
    audit: Option<AuditRecord>,
    swept: &mut Swept,
) -> Result<(), PreserveError> {
    let store = Store::open(dir)?;
    let copies = store.hold_segments(name)?;
    let done = store.delete_segments(copies.iter().map(|s| (s, why.to_string())), now)?;
    for &i in &done.deleted {
        swept
            .deleted
            .push((copies[i].path.clone(), why.to_string()));
    }
    swept.bytes_freed += done.bytes_freed;
    remove_folder(&hold_dir(dir, name))?;
    forget_hold_locked(dir, name, audit)?;
    swept.forgotten.push(name.to_string());
    Ok(())
}

/// Removes what is left of a hold's folder once its copies are deleted: its copy lock,
/// temporary files of interrupted copies (never sealed, never audited), empty partition
/// folders. A sealed segment still inside (one that could not be deleted) keeps it.
fn remove_folder(hdir: &Path) -> Result<(), PreserveError> {
    let Ok(entries) = fs::read_dir(hdir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let p = e.path();
        if fs::is_dir(&p) {
            if let Ok(inner) = fs::read_dir(&p) {
                for f in inner.flatten() {
                    let n = f.file_name().to_string_lossy().into_owned();
                    if n.starts_with(crate::store::writer::BUILD_PREFIX) {
                        let _ = fs::remove_file(&f.path());
                    }
                }
            }
            let _ = fs::remove_dir(&p);
        } else if e.file_name() == COPY_LOCK_NAME {
            let _ = fs::remove_file(&p);
        }
    }
    let _ = fs::remove_dir(hdir);
    if let Some(parent) = hdir.parent() {
        let _ = fs::sync_dir(parent);
    }
    Ok(())
}

/// Before `segments` leave the live store (expired, or replaced by a rewrite), makes sure every
/// standing filtered hold has its copy of each one it overlaps: a writer's seal hook normally
/// made it, but one that failed, or died while copying, did not. Copies exist already in the
/// usual case, and cost one file check each. The caller holds the holds lock.
pub fn catch_up<'a>(
    dir: &Path,
    segments: impl IntoIterator<Item = &'a SegmentInfo>,
    now: Nanos,
) -> Result<u64, PreserveError> {
    let standing: Vec<(Hold, Filter)> = load_holds(dir)?
        .into_iter()
        .filter(|h| !h.ended(now) && h.state == HoldState::Ready)
        .filter_map(|h| {
            let f = h.filter.as_deref().map(Filter::parse)?;
            Some(f.map(|f| (h, f)))
        })
        .collect::<Result<_, _>>()?;
    let mut made = 0;
    if standing.is_empty() {
        return Ok(0);
    }
    for s in segments {
        let due: Vec<(&Hold, &Filter)> = standing
            .iter()
            .filter(|(h, _)| h.overlaps(s.first, s.last))
            .map(|(h, f)| (h, f))
            .collect();
        if !due.is_empty() {
            let copied = copy_for_holds(dir, &due, &s.path, now)?;
            made += copied.iter().filter(|c| c.built.is_some()).count() as u64;
        }
    }
    Ok(made)
}
