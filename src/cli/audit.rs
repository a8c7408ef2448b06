//! Who looked: the `access` entry every reading command appends once it has answered, and
//! `flowkeep audit`, which lists the log's entries and writes the auditor's report.

use super::wall_clock;
use anyhow::{Context, Result};
use flowkeep::store::access::Access;
use flowkeep::store::Store;
use flowkeep::time::Nanos;

/// What a reading command answered: the facts of its `access` entry besides who and when.
pub(super) struct Answered<'a> {
    pub command: &'static str,
    pub since: Option<Nanos>,
    pub until: Option<Nanos>,
    pub filter: &'a str,
    pub records: u64,
    pub sha256: String,
    /// `stdout`, `files` or `messages`.
    pub hashed: &'static str,
}

/// Appends the `access` entry for an answer already given in full: the wall-clock time now and
/// the real user. A store this user cannot write to (a read-only copy) is said on stderr and
/// is not an error: the answer stands, unrecorded.
pub(super) fn record_access(store: &Store, a: Answered<'_>) -> Result<()> {
    let uid = rustix::process::getuid().as_raw();
    let access = Access {
        time: wall_clock(),
        uid,
        user: flowkeep::privs::user_name(uid),
        command: a.command.to_string(),
        since: a.since,
        until: a.until,
        filter: a.filter.to_string(),
        records: a.records,
        sha256: a.sha256,
        hashed: a.hashed.to_string(),
    };
    match store.record_access(&access) {
        Ok(()) => Ok(()),
        Err(e) => match e.not_writable() {
            Some(why) => {
                eprintln!("flowkeep: note: this access is not recorded: {why}");
                Ok(())
            }
            None => Err(e).context("recording this access in the audit log"),
        },
    }
}
