//! `hold add --filter`: copying what a hold names out of the live store.
//!
//! The hold is saved first, in state `Copying`, under the holds lock that expire plans under:
//! from then on expire keeps every segment the hold's range overlaps, as it does for a hold
//! without a filter, so it can delete nothing that is not copied yet, and it never waits for
//! the copy (the lock is held only to save the hold). The copy then reads only the covered
//! segments, skipping blocks by time and address summary. When every segment is copied the
//! hold becomes `Ready` (and is audited as added): the live segments expire as usual from
//! then on. A copy that fails is rolled back (its copies deleted, the hold removed); one
//! whose process died is rolled back by the next expire or `hold add` (see [`super::sweep`]).

use super::copy::copy_segment;
use super::sweep::{discard_locked, rollback_stale_locked};
use super::PreserveError;
use crate::query::Filter;
use crate::store::holds::{
    self, add_hold_locked, complete_hold, lock_holds, try_lock_copy, Hold, HoldError, HoldState,
};
use crate::store::{Scope, Store, StoreError};
use crate::time::Nanos;
use std::path::{Path, PathBuf};

/// What adding a filtered hold read and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddReport {
    /// Live segments in the store, and those whose records overlap the hold's range (the
    /// others are not read beyond their footer).
    pub segments_in_store: u64,
    pub segments_covered: u64,
    pub blocks_read: u64,
    pub blocks_skipped_by_time: u64,
    pub blocks_skipped_by_address: u64,
    /// Records tested against the filter (those in blocks that were read).
    pub records_tested: u64,
    /// Kept in the hold's copies.
    pub records: u64,
    pub leases: u64,
    pub copies: u64,
    pub bytes: u64,
    /// Covered segments that could not be read (their header or footer is damaged): not
    /// copied. They are never expired either (retention keeps unreadable segments).
    pub unreadable: Vec<PathBuf>,
}

/// Adds `hold` (which has a filter, `filter` parsed from it) at `now` and copies what it
/// names. See the module documentation for how it stays consistent with expire.
pub fn add_filtered_hold(
    dir: &Path,
    hold: Hold,
    filter: &Filter,
    now: Nanos,
) -> Result<AddReport, PreserveError> {
    add_copying(dir, hold, filter, now, None)
}

/// [`add_filtered_hold`] that, with `stop_after: Some(n)`, stops after copying `n` segments
/// as a process killed there would (no rollback, the hold left `Copying`): for tests.
#[doc(hidden)]
pub fn add_copying(
    dir: &Path,
    mut hold: Hold,
    filter: &Filter,
    now: Nanos,
    stop_after: Option<usize>,
) -> Result<AddReport, PreserveError> {
    hold.state = HoldState::Copying;
    let name = hold.name.clone();
    let copy_lock = {
        let _lock = lock_holds(dir)?;
        rollback_stale_locked(dir, &name, now)?;
        if !Store::open(dir)?.hold_segments(&name)?.is_empty() {
            return Err(HoldError::Invalid(format!(
                "holds/{name} still holds copies of an earlier hold of that name; run expire to remove them"
            ))
            .into());
        }
        add_hold_locked(dir, hold.clone())?;
        match try_lock_copy(dir, &name) {
            Ok(Some(l)) => l,
            Ok(None) => {
                holds::forget_hold_locked(dir, &name, None)?;
                return Err(HoldError::Invalid(format!("hold {name} is being copied")).into());
            }
            Err(e) => {
                holds::forget_hold_locked(dir, &name, None)?;
                return Err(e.into());
            }
        }
    };
    let mut report = AddReport::default();
    match copy_all(dir, &hold, filter, now, stop_after, &mut report) {
        Ok(true) => {
            complete_hold(dir, &name, now)?;
        }
        Ok(false) => {
            // Stopped as a crash would: the hold left copying, its copy lock free.
            drop(copy_lock);
            return Ok(report);
        }
        Err(e) => {
            let _lock = lock_holds(dir)?;
            let why = format!("hold={name} not added: copying failed: {e}");
            discard_locked(dir, &name, &why, now)?;
            return Err(e);
        }
    }
    drop(copy_lock);
    Ok(report)
}

/// Copies every covered live segment; `false` when stopped by `stop_after`.
fn copy_all(
    dir: &Path,
    hold: &Hold,
    filter: &Filter,
    now: Nanos,
    stop_after: Option<usize>,
    report: &mut AddReport,
) -> Result<bool, PreserveError> {
    let store = Store::open(dir)?.with_scope(Scope::Live);
    let segments = store.segments()?;
    report.segments_in_store = segments.len() as u64;
    let covered: Vec<_> = segments
        .into_iter()
        .filter(|s| hold.overlaps(s.first, s.last) || s.error.is_some())
        .collect();
    for (i, s) in covered.iter().enumerate() {
        if stop_after == Some(i) {
            return Ok(false);
        }
        if s.error.is_some() {
            report.unreadable.push(s.path.clone());
            continue;
        }
        let c = match copy_segment(dir, hold, filter, &s.path, now) {
            Ok(c) => c,
            // Deleted by an expire that planned before the hold was saved.
            Err(PreserveError::Store(StoreError::Io { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        report.segments_covered += 1;
        report.blocks_read += c.scan.blocks_read;
        report.blocks_skipped_by_time += c.scan.blocks_skipped;
        report.blocks_skipped_by_address += c.scan.blocks_skipped_by_address;
        report.records_tested += c.scan.records;
        if let Some(b) = c.built {
            report.records += b.records;
            report.leases += b.leases;
            report.copies += 1;
            report.bytes += b.bytes;
        }
    }
    Ok(true)
}
