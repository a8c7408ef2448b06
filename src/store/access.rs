//! Who looked: the `access` entries a reading command (`query`, `stats`, `who-had`, `export`)
//! appends to the audit log after it answered, and the `policy` entries that say which
//! retention policy deleted what. The line format is `docs/FORMAT.md`, "Audit log"; the
//! `reason` words are built and parsed here.
//!
//! Nothing here reads a clock or looks up a user: the caller (the command line) fills
//! [`Access`] with the time and the user.

use super::audit::{self, Action, AuditError, AuditLog, AuditRecord};
use super::Store;
use crate::fs;
use crate::time::{format_rfc3339, parse_time, Nanos};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::path::PathBuf;

/// One answered question, as an `access` entry records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// When the answer was complete.
    pub time: Nanos,
    /// The real user id of the process that asked.
    pub uid: u32,
    /// Its name in /etc/passwd; `None` when it has none there (written `-`).
    pub user: Option<String>,
    /// `query`, `stats`, `who-had` or `export`.
    pub command: String,
    /// The time range asked about (`None`: open).
    pub since: Option<Nanos>,
    pub until: Option<Nanos>,
    /// The filter expression as given (empty: every record).
    pub filter: String,
    /// Records in the answer.
    pub records: u64,
    /// SHA-256 (lowercase hex) of the answer's bytes (see `hashed`).
    pub sha256: String,
    /// What `sha256` covers: `stdout`, `files` (the Parquet files, concatenated in the order
    /// listed) or `messages` (the IPFIX messages sent).
    pub hashed: String,
}

impl Access {
    /// The entry's `reason`: `key=value` words, `filter=` last since an expression has spaces.
    pub fn reason(&self) -> String {
        let t = |v: Option<Nanos>| v.map_or_else(|| "-".to_string(), format_rfc3339);
        format!(
            "uid={} user={} command={} since={} until={} records={} sha256={} hashed={} filter={}",
            self.uid,
            self.user.as_deref().unwrap_or("-"),
            self.command,
            t(self.since),
            t(self.until),
            self.records,
            self.sha256,
            self.hashed,
            self.filter
        )
    }

    /// Inverse of [`Access::reason`], with the entry's time; `None` for any other text.
    pub fn parse(time: Nanos, reason: &str) -> Option<Access> {
        let (words, filter) = reason.split_once(" filter=")?;
        let mut it = words.split(' ');
        let mut word = |key: &str| it.next()?.strip_prefix(key)?.strip_prefix('=');
        let uid = word("uid")?.parse().ok()?;
        let user = word("user")?;
        let command = word("command")?.to_string();
        let time_of = |s: &str| -> Option<Option<Nanos>> {
            if s == "-" {
                Some(None)
            } else {
                parse_time(s).ok().map(Some)
            }
        };
        let since = time_of(word("since")?)?;
        let until = time_of(word("until")?)?;
        let records = word("records")?.parse().ok()?;
        let sha256 = word("sha256")?.to_string();
        let hashed = word("hashed")?.to_string();
        Some(Access {
            time,
            uid,
            user: (user != "-").then(|| user.to_string()),
            command,
            since,
            until,
            filter: filter.to_string(),
            records,
            sha256,
            hashed,
        })
    }
}

impl AuditError {
    /// Why the log cannot be appended to by this user when that is so (a read-only copy of a
    /// store, a file owned by another user): the open for append failed with EACCES, EROFS or
    /// EPERM. `None` for every other error.
    pub fn not_writable(&self) -> Option<String> {
        let AuditError::Io { path, source } = self else {
            return None;
        };
        let errno = source.raw_os_error()?;
        [
            rustix::io::Errno::ACCESS,
            rustix::io::Errno::ROFS,
            rustix::io::Errno::PERM,
        ]
        .iter()
        .any(|e| e.raw_os_error() == errno)
        .then(|| format!("{}: {source}", path.display()))
    }
}

/// The `reason` of a `policy` entry: `old=<policy or none> new=<policy>`.
pub fn policy_reason(old: Option<&str>, new: &str) -> String {
    format!("old={} new={new}", old.unwrap_or("none"))
}

/// Inverse of [`policy_reason`]: (old, new), `None` for old when it says `none`.
pub fn parse_policy_reason(reason: &str) -> Option<(Option<&str>, &str)> {
    let (old, new) = reason.strip_prefix("old=")?.split_once(" new=")?;
    Some(((old != "none").then_some(old), new))
}

impl Store {
    /// Appends an `access` entry for `a`. An error whose [`AuditError::not_writable`] says why
    /// is a store this user may read but not change.
    pub fn record_access(&self, a: &Access) -> Result<(), AuditError> {
        AuditLog::open(self.dir()).append(&AuditRecord {
            time: a.time,
            action: Action::Access,
            segment: None,
            reason: a.reason(),
        })?;
        Ok(())
    }

    /// The policy the newest `policy` entry says is in force (its `new`); `None` when none was
    /// recorded. Lines that do not parse are skipped (`verify` reports them).
    pub fn recorded_policy(&self) -> Result<Option<String>, AuditError> {
        let lines = audit::read_lines(self.dir())?;
        Ok(lines
            .iter()
            .rev()
            .filter_map(|l| l.entry.as_ref().ok())
            .filter(|e| e.record.action == Action::Policy)
            .find_map(|e| parse_policy_reason(&e.record.reason).map(|(_, new)| new.to_string())))
    }

    /// Appends a `policy` entry at `now` when `policy` (its text, as `expire` prints it) is not
    /// the one recorded last (or none was). Returns whether it did. Called before the
    /// deletions the policy causes.
    pub fn record_policy(&self, policy: &str, now: Nanos) -> Result<bool, AuditError> {
        let old = self.recorded_policy()?;
        if old.as_deref() == Some(policy) {
            return Ok(false);
        }
        AuditLog::open(self.dir()).append(&AuditRecord {
            time: now,
            action: Action::Policy,
            segment: None,
            reason: policy_reason(old.as_deref(), policy),
        })?;
        Ok(true)
    }
}

/// A writer that passes everything on to `W` and keeps the SHA-256 and the count of the bytes
/// it passed: the answer as written to stdout.
pub struct HashingWriter<W: Write> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// SHA-256 (lowercase hex) of the bytes written so far.
    pub fn sha256(&self) -> String {
        audit::hex(&self.hash.clone().finalize())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// SHA-256 (lowercase hex) of the files' bytes one after the other, in the order given (what
/// `cat FILES | sha256sum` prints), and their total length.
pub fn hash_files(paths: &[PathBuf]) -> Result<(String, u64), AuditError> {
    let mut h = HashingWriter::new(io::sink());
    let mut buf = vec![0u8; 256 << 10];
    for path in paths {
        let err = |source| AuditError::Io {
            path: path.clone(),
            source,
        };
        let mut f = fs::open(path).map_err(err)?;
        loop {
            let n = f.read(&mut buf).map_err(err)?;
            if n == 0 {
                break;
            }
            h.write_all(&buf[..n]).map_err(err)?;
        }
    }
    Ok((h.sha256(), h.bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreWriter, WriterConfig};

    fn sample() -> Access {
        Access {
            time: 1_767_225_600_000_000_000,
            uid: 1000,
            user: Some("alice".into()),
            command: "query".into(),
            since: Some(1_767_225_600_000_000_000),
            until: None,
            filter: "host 10.0.0.5 and port 53".into(),
            records: 12,
            sha256: audit::sha256_hex(b"answer"),
            hashed: "stdout".into(),
        }
    }

    #[test]
    fn access_reasons_round_trip() {
        let a = sample();
        let r = a.reason();
        assert_eq!(
            r,
            format!(
                "uid=1000 user=alice command=query since=2026-01-01T00:00:00.000000000Z \
                 until=- records=12 sha256={} hashed=stdout filter=host 10.0.0.5 and port 53",
                a.sha256
            )
        );
        assert_eq!(Access::parse(a.time, &r), Some(a.clone()));
        let b = Access {
            user: None,
            filter: String::new(),
            ..a
        };
        assert!(b.reason().ends_with(" filter="));
        assert_eq!(Access::parse(b.time, &b.reason()), Some(b));
        assert_eq!(Access::parse(0, "name=CASE-1 from=x"), None);
    }

    #[test]
    fn policy_reasons_round_trip() {
        let r = policy_reason(None, "retention 30d, max size 500G");
        assert_eq!(r, "old=none new=retention 30d, max size 500G");
        assert_eq!(
            parse_policy_reason(&r),
            Some((None, "retention 30d, max size 500G"))
        );
        let r = policy_reason(Some("retention 30d"), "retention 7d");
        assert_eq!(
            parse_policy_reason(&r),
            Some((Some("retention 30d"), "retention 7d"))
        );
    }

    #[test]
    fn accesses_and_policies_are_chained_entries() {
        let d = tempfile::tempdir().unwrap();
        StoreWriter::create(WriterConfig::new(d.path()))
            .unwrap()
            .finish()
            .unwrap();
        let store = Store::open(d.path()).unwrap();
        store.record_access(&sample()).unwrap();
        assert!(store.record_policy("retention 30d", 5).unwrap());
        assert!(!store.record_policy("retention 30d", 6).unwrap());
        assert!(store.record_policy("retention 7d", 7).unwrap());
        let all = audit::read_all(d.path()).unwrap();
        let actions: Vec<Action> = all.iter().map(|e| e.record.action).collect();
        assert_eq!(actions, [Action::Access, Action::Policy, Action::Policy]);
        assert_eq!(all[2].record.reason, "old=retention 30d new=retention 7d");
        assert_eq!(
            Access::parse(all[0].record.time, &all[0].record.reason),
            Some(sample())
        );
        let lines = audit::read_lines(d.path()).unwrap();
        assert!(audit::verify_chain(&lines).is_empty());
        assert!(store.verify().unwrap().problem_count() == 0);
    }

    #[test]
    fn hashing_writer_hashes_what_it_passes_on() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"ans").unwrap();
        w.write_all(b"wer").unwrap();
        assert_eq!(w.sha256(), audit::sha256_hex(b"answer"));
        assert_eq!(w.bytes(), 6);
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::write(&a, b"ans").unwrap();
        std::fs::write(&b, b"wer").unwrap();
        assert_eq!(
            hash_files(&[a, b]).unwrap(),
            (audit::sha256_hex(b"answer"), 6)
        );
    }

    #[test]
    fn only_permission_errors_are_not_writable() {
        let e = |errno: rustix::io::Errno| AuditError::Io {
            path: "/s/audit.log".into(),
            source: io::Error::from_raw_os_error(errno.raw_os_error()),
        };
        assert!(e(rustix::io::Errno::ROFS).not_writable().is_some());
        assert!(e(rustix::io::Errno::ACCESS).not_writable().is_some());
        assert!(e(rustix::io::Errno::PERM).not_writable().is_some());
        assert!(e(rustix::io::Errno::NOSPC).not_writable().is_none());
    }
}
