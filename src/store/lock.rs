//! The store lock: `DIR/.lock`, held with `flock(LOCK_EX)` by every process that writes the
//! store, for as long as it has a writer open. It tells a reader whether the temporary segments
//! it sees belong to a live writer (leave them alone, read their complete blocks) or to a dead
//! one (recover them). The kernel drops an `flock` when its holder dies, also on `kill -9`, so a
//! stale lock cannot outlive its process.
//!
//! `flock` belongs to an open file description: a second `open` + `flock` in the same process
//! would conflict with the first. So the lock is shared per process through a registry keyed by
//! the directory's device and inode; every `StoreWriter` of a store holds an `Arc` of it and the
//! last one to go releases it (by closing the file).

use super::StoreError;
use crate::fs::{self, File};
use rustix::fs::{flock, FlockOperation};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Name of the lock file at the top of a store directory.
pub const LOCK_NAME: &str = ".lock";

/// How long a writer waits for the lock before giving up: a reader recovering dead writers'
/// segments holds it for a moment; a live writer holds it for hours and is reported.
const WRITER_WAIT: Duration = Duration::from_secs(5);
const RETRY_EVERY: Duration = Duration::from_millis(10);

/// The held lock; dropping the last `Arc` closes the file and so releases it.
#[derive(Debug)]
pub struct StoreLock {
    path: PathBuf,
    _file: File,
}

impl StoreLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

type Key = (u64, u64);

static HELD: Mutex<Vec<(Key, Weak<StoreLock>)>> = Mutex::new(Vec::new());

/// Held from taking the store lock until recovery has finished, by whoever may recover: a
/// second writer (or reader) of this process that finds the lock already held must not create
/// temporary segments while the first one's recovery is still sealing "dead" temporary files,
/// or recovery would seal a live writer's file from under it.
pub(crate) static RECOVERING: Mutex<()> = Mutex::new(());

/// How a lock was obtained.
pub enum Acquired {
    /// This call took the lock from the kernel: no other process writes the store, and no other
    /// holder in this process existed, so temporary segments belong to dead writers.
    Fresh(Arc<StoreLock>),
    /// Another holder in this process already had it: its writers are live.
    Shared(Arc<StoreLock>),
    /// Another process holds it (only returned when not waiting).
    Busy,
}

fn key(dir: &Path) -> Result<Key, StoreError> {
    let m = fs::metadata(dir).map_err(|e| StoreError::io(dir, e))?;
    Ok((m.dev(), m.ino()))
}

/// Takes the store lock for a writer, waiting a few seconds for a reader that is recovering;
/// fails naming the holder's process when another writer has it.
pub fn lock_for_writing(dir: &Path) -> Result<Acquired, StoreError> {
    acquire(dir, true)
}

/// Takes the store lock if nobody holds it, without waiting. `Busy` (or `Shared`) means a live
/// writer: its temporary segments must not be touched.
pub fn try_lock(dir: &Path) -> Result<Acquired, StoreError> {
    acquire(dir, false)
}

fn acquire(dir: &Path, writer: bool) -> Result<Acquired, StoreError> {
    let key = key(dir)?;
    // Held across the flock attempts so that two threads of one process never both open the
    // file and lock each other out.
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    held.retain(|(_, w)| w.strong_count() > 0);
    if let Some(lock) = held
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, w)| w.upgrade())
    {
        return Ok(Acquired::Shared(lock));
    }
    let path = dir.join(LOCK_NAME);
    let file = match fs::open_or_create(&path) {
        Ok(f) => f,
        // A reader of a read-only store can still learn whether a writer is live.
        Err(e) if !writer => fs::open(&path).map_err(|_| StoreError::io(&path, e))?,
        Err(e) => return Err(StoreError::io(&path, e)),
    };
    // Counted, not timed: the store reads no clock, and each retry sleeps at least this long,
    // so the wait is at least WRITER_WAIT.
    let mut tries = 0u32;
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => break,
            Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {
                if !writer {
                    return Ok(Acquired::Busy);
                }
                if tries >= WRITER_WAIT.as_millis() as u32 / RETRY_EVERY.as_millis() as u32 {
                    let holder = fs::read_to_string(&path).unwrap_or_default();
                    let holder = holder.trim();
                    return Err(StoreError::Refused {
                        path: dir.to_path_buf(),
                        reason: format!(
                            "the store is locked by another running flowkeep writer{}; one writing process per store",
                            if holder.is_empty() { String::new() } else { format!(" ({holder})") }
                        ),
                    });
                }
                std::thread::sleep(RETRY_EVERY);
                tries += 1;
            }
            Err(e) => return Err(StoreError::io(&path, io::Error::from(e))),
        }
    }
    if writer {
        // Informational only (for the message above); the flock is the lock.
        let _ = fs::set_len(&file, 0).and_then(|()| {
            fs::write_all(&file, format!("pid {}\n", std::process::id()).as_bytes())
        });
    }
    let lock = Arc::new(StoreLock { path, _file: file });
    held.push((key, Arc::downgrade(&lock)));
    Ok(Acquired::Fresh(lock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_in_process_and_released_with_the_last_holder() {
        let d = tempfile::tempdir().unwrap();
        let a = match lock_for_writing(d.path()).unwrap() {
            Acquired::Fresh(l) => l,
            _ => panic!("first lock must be fresh"),
        };
        let b = match lock_for_writing(d.path()).unwrap() {
            Acquired::Shared(l) => l,
            _ => panic!("second lock in the same process must be shared"),
        };
        assert!(matches!(try_lock(d.path()).unwrap(), Acquired::Shared(_)));
        // Another open file description, as another process would have, is refused.
        let other = File::open(d.path().join(LOCK_NAME)).unwrap();
        assert!(flock(&other, FlockOperation::NonBlockingLockExclusive).is_err());
        drop(a);
        assert!(flock(&other, FlockOperation::NonBlockingLockExclusive).is_err());
        drop(b);
        flock(&other, FlockOperation::NonBlockingLockExclusive).unwrap();
        assert!(matches!(try_lock(d.path()).unwrap(), Acquired::Busy));
        drop(other);
        assert!(matches!(try_lock(d.path()).unwrap(), Acquired::Fresh(_)));
    }
}
