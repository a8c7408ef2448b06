//! Legal holds (preservation requests): named time ranges whose segments retention must keep.
//! Stored in `DIR/holds.json`, rewritten whole and atomically (temporary file, fsync, rename,
//! directory fsync) on every change; every change is also appended to the audit log.

use super::audit::{Action, AuditError, AuditLog, AuditRecord};
use crate::fs;
use crate::time::{format_rfc3339, parse_time, Nanos};
use std::io;
use std::path::{Path, PathBuf};

/// File name of the holds list inside a store directory.
/// Lock file taken by hold changes and by expire (`flock`).
pub const HOLDS_LOCK_NAME: &str = ".holds.lock";
pub const HOLDS_NAME: &str = "holds.json";
const HOLDS_VERSION: u32 = 1;
const MAX_NAME_LEN: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("invalid hold: {0}")]
    Invalid(String),
    #[error("a hold named '{0}' already exists; names are unique")]
    Duplicate(String),
    #[error("no hold named '{0}'")]
    Unknown(String),
    #[error("audit log: {0}")]
    Audit(#[from] AuditError),
}

/// A standing preservation request: keep every segment holding records in `[from, until)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Unique within the store, e.g. a case number.
    pub name: String,
    pub from: Nanos,
    /// Exclusive.
    pub until: Nanos,
    /// Stored as given; not yet applied: a hold keeps every segment overlapping its range.
    pub filter: Option<String>,
    pub note: Option<String>,
    /// When it was added (the time the operator's command passed in).
    pub added: Nanos,
}

impl Hold {
    /// Whether records spanning `[first, last]` (both inclusive) overlap `[from, until)`.
    pub fn overlaps(&self, first: Nanos, last: Nanos) -> bool {
        first < self.until && last >= self.from
    }

    fn validate(&self) -> Result<(), HoldError> {
        let n = &self.name;
        if n.is_empty() || n.len() > MAX_NAME_LEN {
            return Err(HoldError::Invalid(format!(
                "name must be 1 to {MAX_NAME_LEN} bytes"
            )));
        }
        if n.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(HoldError::Invalid(format!(
                "name '{n}' contains whitespace or control characters"
            )));
        }
        if self.from >= self.until {
            return Err(HoldError::Invalid(format!(
                "from ({}) must be before until ({})",
                format_rfc3339(self.from),
                format_rfc3339(self.until)
            )));
        }
        Ok(())
    }

    /// How the hold appears in its audit entries.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "name={} from={} until={}",
            self.name,
            format_rfc3339(self.from),
            format_rfc3339(self.until)
        );
        if let Some(f) = &self.filter {
            s.push_str(&format!(" filter={f}"));
        }
        if let Some(n) = &self.note {
            s.push_str(&format!(" note={n}"));
        }
        s
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HoldsFile {
    version: u32,
    holds: Vec<HoldJson>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HoldJson {
    name: String,
    from: String,
    until: String,
    filter: Option<String>,
    note: Option<String>,
    added: String,
}

/// The standing holds, in the order they were added; none when there is no holds file.
pub fn load_holds(dir: &Path) -> Result<Vec<Hold>, HoldError> {
    let path = dir.join(HOLDS_NAME);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(HoldError::Io { path, source }),
    };
    let corrupt = |reason: String| HoldError::Corrupt {
        path: path.clone(),
        reason,
    };
    let file: HoldsFile = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if file.version != HOLDS_VERSION {
        return Err(corrupt(format!(
            "holds file version {}, this flowkeep reads {HOLDS_VERSION}",
            file.version
        )));
    }
    let time = |s: &str| parse_time(s).map_err(|e| corrupt(e.to_string()));
    file.holds
        .into_iter()
        .map(|h| {
            Ok(Hold {
                from: time(&h.from)?,
                until: time(&h.until)?,
                added: time(&h.added)?,
                name: h.name,
                filter: h.filter,
                note: h.note,
            })
        })
        .collect()
}

fn save_holds(dir: &Path, holds: &[Hold]) -> Result<(), HoldError> {
    let file = HoldsFile {
        version: HOLDS_VERSION,
        holds: holds
            .iter()
            .map(|h| HoldJson {
                name: h.name.clone(),
                from: format_rfc3339(h.from),
                until: format_rfc3339(h.until),
                filter: h.filter.clone(),
                note: h.note.clone(),
                added: format_rfc3339(h.added),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&file).map_err(|e| HoldError::Corrupt {
        path: dir.join(HOLDS_NAME),
        reason: e.to_string(),
    })?;
    text.push('\n');
    let tmp = format!(".{HOLDS_NAME}.{}.tmp", std::process::id());
    fs::write_atomically(dir, &tmp, HOLDS_NAME, text.as_bytes()).map_err(|e| {
        // A failed directory fsync has always been reported with the directory named twice
        // (once as the path, once in the cause); kept so that messages do not change.
        let source = if e.path == dir {
            io::Error::other(e.to_string())
        } else {
            e.source
        };
        HoldError::Io {
            path: e.path,
            source,
        }
    })
}

/// Adds a hold (its `added` time is the audit entry's time) and audits it.
/// Serialises everything that reads the holds and acts on them: adding and releasing (a
/// read-modify-write of `holds.json`) and expiring (a hold added while expire plans must not
/// lose its segments). Held until dropped; other processes wait.
pub struct HoldsLock(#[allow(dead_code)] fs::File);

pub fn lock_holds(dir: &Path) -> Result<HoldsLock, HoldError> {
    let path = dir.join(HOLDS_LOCK_NAME);
    let io = |source| HoldError::Io {
        path: path.clone(),
        source,
    };
    let f = fs::open_or_create(&path).map_err(io)?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io(io::Error::from(e)))?;
    Ok(HoldsLock(f))
}

pub fn add_hold(dir: &Path, hold: Hold) -> Result<(), HoldError> {
    hold.validate()?;
    let _lock = lock_holds(dir)?;
    let mut holds = load_holds(dir)?;
    if holds.iter().any(|h| h.name == hold.name) {
        return Err(HoldError::Duplicate(hold.name));
    }
    let rec = AuditRecord {
        time: hold.added,
        action: Action::HoldAdd,
        segment: None,
        reason: hold.describe(),
    };
    holds.push(hold);
    save_holds(dir, &holds)?;
    AuditLog::open(dir).append(&rec)?;
    Ok(())
}

/// Releases the hold named `name` at time `now`, audits it, and returns it.
pub fn release_hold(dir: &Path, name: &str, now: Nanos) -> Result<Hold, HoldError> {
    let _lock = lock_holds(dir)?;
    let mut holds = load_holds(dir)?;
    let i = holds
        .iter()
        .position(|h| h.name == name)
        .ok_or_else(|| HoldError::Unknown(name.to_string()))?;
    let hold = holds.remove(i);
    save_holds(dir, &holds)?;
    AuditLog::open(dir).append(&AuditRecord {
        time: now,
        action: Action::HoldRelease,
        segment: None,
        reason: hold.describe(),
    })?;
    Ok(hold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::read_all;

    fn hold(name: &str, from: Nanos, until: Nanos) -> Hold {
        Hold {
            name: name.into(),
            from,
            until,
            filter: Some("host 203.0.113.7".into()),
            note: Some("court order 17".into()),
            added: 1_000,
        }
    }

    #[test]
    fn add_list_release_are_persisted_and_audited() {
        let d = tempfile::tempdir().unwrap();
        assert!(load_holds(d.path()).unwrap().is_empty());
        add_hold(d.path(), hold("CASE-1", 10, 20)).unwrap();
        add_hold(d.path(), hold("CASE-2", 30, 40)).unwrap();
        assert!(matches!(
            add_hold(d.path(), hold("CASE-1", 1, 2)),
            Err(HoldError::Duplicate(_))
        ));
        assert!(matches!(
            add_hold(d.path(), hold("BAD", 5, 5)),
            Err(HoldError::Invalid(_))
        ));
        assert!(matches!(
            add_hold(d.path(), hold("has space", 1, 5)),
            Err(HoldError::Invalid(_))
        ));
        let holds = load_holds(d.path()).unwrap();
        assert_eq!(holds, vec![hold("CASE-1", 10, 20), hold("CASE-2", 30, 40)]);
        assert!(matches!(
            release_hold(d.path(), "CASE-9", 2_000),
            Err(HoldError::Unknown(_))
        ));
        assert_eq!(
            release_hold(d.path(), "CASE-1", 2_000).unwrap().name,
            "CASE-1"
        );
        assert_eq!(load_holds(d.path()).unwrap(), vec![hold("CASE-2", 30, 40)]);
        let log = read_all(d.path()).unwrap();
        let actions: Vec<_> = log.iter().map(|e| e.record.action).collect();
        assert_eq!(
            actions,
            vec![Action::HoldAdd, Action::HoldAdd, Action::HoldRelease]
        );
        assert_eq!(log[2].record.time, 2_000);
        assert!(log[2].record.reason.starts_with("name=CASE-1 from="));
        assert!(log[2].record.reason.contains("note=court order 17"));
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn overlap_is_inclusive_of_last_and_exclusive_of_until() {
        let h = hold("H", 100, 200);
        assert!(h.overlaps(50, 100));
        assert!(h.overlaps(199, 300));
        assert!(!h.overlaps(200, 300));
        assert!(!h.overlaps(0, 99));
        assert!(h.overlaps(0, 1_000));
    }

    #[test]
    fn corrupt_holds_file_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(HOLDS_NAME), "{not json").unwrap();
        assert!(matches!(
            load_holds(d.path()),
            Err(HoldError::Corrupt { .. })
        ));
    }
}
