//! Legal holds (preservation requests). A hold without a filter keeps every segment that
//! overlaps its time range; a filtered hold keeps copies of only the records it names, in its
//! own segments under `DIR/holds/NAME/` (made by `crate::preserve`), and keeps no live segment
//! once its copy is complete. Stored in `DIR/holds.json`, rewritten whole and atomically
//! (temporary file, fsync, rename, directory fsync) on every change; every change is also
//! appended to the audit log.

use super::audit::{Action, AuditError, AuditLog, AuditRecord};
use crate::fs;
use crate::time::{format_rfc3339, parse_time, Nanos};
use std::io;
use std::path::{Path, PathBuf};

/// File name of the holds list inside a store directory.
/// Lock file taken by hold changes and by expire (`flock`).
pub const HOLDS_LOCK_NAME: &str = ".holds.lock";
pub const HOLDS_NAME: &str = "holds.json";
const HOLDS_VERSION: u32 = 2;
/// Version 1 had no expiry, state or release: its holds stand until released.
const OLDEST_HOLDS_VERSION: u32 = 1;
const MAX_NAME_LEN: usize = 128;
/// Operator-supplied text stays far below the audit log's line limit.
pub const MAX_NOTE_LEN: usize = 1024;
pub const MAX_FILTER_LEN: usize = 8192;
/// Folder, inside a store, of the filtered holds' copies: one folder per hold, laid out like
/// the store (partition folders of segments).
pub const HOLDS_DIR: &str = "holds";
/// `until` of a hold that stays open: it catches every matching record written from now on.
pub const OPEN_UNTIL: Nanos = Nanos::MAX;

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
    #[error("hold '{0}' was released; its copies go at the next expire")]
    Released(String),
    #[error("audit log: {0}")]
    Audit(#[from] AuditError),
}

/// Where a filtered hold's copy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    /// `hold add` is copying: until it completes the hold keeps whole segments, so that expire
    /// cannot delete what is not copied yet. One left by a process that died is rolled back
    /// (its copies deleted, the hold removed) by the next expire or hold change.
    Copying,
    /// Complete (and every hold without a filter).
    Ready,
}

/// A standing preservation request: records in `[from, until)`, all of them (whole segments)
/// or those its filter matches (copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Unique within the store, e.g. a case number; also the name of its copies' folder.
    pub name: String,
    pub from: Nanos,
    /// Exclusive; [`OPEN_UNTIL`] for a hold that stays open.
    pub until: Nanos,
    /// An expression `query` understands; `None` keeps whole segments.
    pub filter: Option<String>,
    pub note: Option<String>,
    /// When it was added (the time the operator's command passed in).
    pub added: Nanos,
    /// When it lapses; `None`: never.
    pub expires: Option<Nanos>,
    pub state: HoldState,
    /// When it was released; its copies are deleted by the next expire, which then forgets it.
    pub released: Option<Nanos>,
}

impl Hold {
    /// A new hold of `[from, until)` added at `added`, standing until `expires`.
    pub fn new(name: &str, from: Nanos, until: Nanos, added: Nanos) -> Hold {
        Hold {
            name: name.to_string(),
            from,
            until,
            filter: None,
            note: None,
            added,
            expires: None,
            state: HoldState::Ready,
            released: None,
        }
    }

    /// Whether it has lapsed or been released by `now`: it keeps nothing any more.
    pub fn ended(&self, now: Nanos) -> bool {
        self.released.is_some() || self.expires.is_some_and(|e| e <= now)
    }

    /// Whether retention must keep every segment it overlaps: a hold without a filter, or a
    /// filtered one whose copy is not complete, until it ends.
    pub fn keeps_whole_segments(&self, now: Nanos) -> bool {
        !self.ended(now) && (self.filter.is_none() || self.state == HoldState::Copying)
    }

    /// The folder of its copies.
    pub fn dir(&self, store: &Path) -> PathBuf {
        hold_dir(store, &self.name)
    }

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
        // It names a folder: no separators, nothing hidden, nothing a shell must quote.
        if n.starts_with('.')
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:+@-".contains(c))
        {
            return Err(HoldError::Invalid(format!(
                "name '{n}': use letters, digits and . _ : + @ - (not first '.')"
            )));
        }
        for (what, text, max) in [
            ("note", &self.note, MAX_NOTE_LEN),
            ("filter", &self.filter, MAX_FILTER_LEN),
        ] {
            if let Some(t) = text {
                if t.len() > max {
                    return Err(HoldError::Invalid(format!(
                        "{what} is {} bytes, at most {max} are kept",
                        t.len()
                    )));
                }
                if t.chars().any(|c| c.is_control()) {
                    return Err(HoldError::Invalid(format!(
                        "{what} contains control characters (a newline?)"
                    )));
                }
            }
        }
        if let Some(e) = self.expires.filter(|&e| e <= self.added) {
            return Err(HoldError::Invalid(format!(
                "it would expire ({}) before it is added ({})",
                format_rfc3339(e),
                format_rfc3339(self.added)
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
            format_until(self.until)
        );
        match self.expires {
            Some(e) => s.push_str(&format!(" expires={}", format_rfc3339(e))),
            None if self.added_with_expiry() => s.push_str(" expires=never"),
            None => {}
        }
        if let Some(f) = &self.filter {
            s.push_str(&format!(" filter={f}"));
        }
        if let Some(n) = &self.note {
            s.push_str(&format!(" note={n}"));
        }
        s
    }
}

impl Hold {
    /// Holds added before holds could expire are described as they always were.
    fn added_with_expiry(&self) -> bool {
        self.expires.is_some() || self.filter.is_some()
    }
}

/// `until` as written: a time, or `open`.
pub fn format_until(until: Nanos) -> String {
    if until == OPEN_UNTIL {
        "open".into()
    } else {
        format_rfc3339(until)
    }
}

fn parse_until(s: &str) -> Result<Nanos, crate::time::TimeError> {
    if s == "open" {
        Ok(OPEN_UNTIL)
    } else {
        parse_time(s)
    }
}

/// The folder of hold `name`'s copies.
pub fn hold_dir(store: &Path, name: &str) -> PathBuf {
    store.join(HOLDS_DIR).join(name)
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    copying: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    released: Option<String>,
}

/// The standing holds, in the order they were added; none when there is no holds file.
pub fn load_holds(dir: &Path) -> Result<Vec<Hold>, HoldError> {
    let path = dir.join(HOLDS_NAME);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(HoldError::Io { path, source }),
    };
    parse_holds(&path, &text)
}

/// The holds in the text of a holds file (`path` names it in errors), checked as
/// [`load_holds`] checks them.
pub(crate) fn parse_holds(path: &Path, text: &str) -> Result<Vec<Hold>, HoldError> {
    let corrupt = |reason: String| HoldError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let file: HoldsFile = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    if !(OLDEST_HOLDS_VERSION..=HOLDS_VERSION).contains(&file.version) {
        return Err(corrupt(format!(
            "holds file version {}, this flowkeep reads {OLDEST_HOLDS_VERSION} to {HOLDS_VERSION}; upgrade flowkeep",
            file.version
        )));
    }
    let time = |s: &str| parse_time(s).map_err(|e| corrupt(e.to_string()));
    let opt = |s: &Option<String>| s.as_deref().map(time).transpose();
    let holds: Vec<Hold> = file
        .holds
        .into_iter()
        .map(|h| {
            Ok(Hold {
                from: time(&h.from)?,
                until: parse_until(&h.until).map_err(|e| corrupt(e.to_string()))?,
                added: time(&h.added)?,
                expires: opt(&h.expires)?,
                released: opt(&h.released)?,
                state: if h.copying == Some(true) {
                    HoldState::Copying
                } else {
                    HoldState::Ready
                },
                name: h.name,
                filter: h.filter,
                note: h.note,
            })
        })
        .collect::<Result<_, HoldError>>()?;
    // A hand-edited file must not quietly protect less than it says.
    for (i, h) in holds.iter().enumerate() {
        if h.name.is_empty() || h.name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(corrupt(format!(
                "hold {} has the name {:?}: names are not empty and have no whitespace",
                i + 1,
                h.name
            )));
        }
        if h.from >= h.until {
            return Err(corrupt(format!(
                "hold {} ({}) starts at {} but ends at {}: it would protect nothing",
                i + 1,
                h.name,
                format_rfc3339(h.from),
                format_until(h.until)
            )));
        }
        if holds[..i].iter().any(|o| o.name == h.name) {
            return Err(corrupt(format!("hold name '{}' appears twice", h.name)));
        }
    }
    Ok(holds)
}

fn save_holds(dir: &Path, holds: &[Hold]) -> Result<(), HoldError> {
    let file = HoldsFile {
        version: HOLDS_VERSION,
        holds: holds
            .iter()
            .map(|h| HoldJson {
                name: h.name.clone(),
                from: format_rfc3339(h.from),
                until: format_until(h.until),
                filter: h.filter.clone(),
                note: h.note.clone(),
                added: format_rfc3339(h.added),
                expires: h.expires.map(format_rfc3339),
                copying: (h.state == HoldState::Copying).then_some(true),
                released: h.released.map(format_rfc3339),
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

/// Saves `new` and appends `rec`, so that the file and the audit log agree (verify and expire
/// check them against each other) whatever fails: a save whose rename happened (only the
/// directory fsync failed) is in place and gets its entry; an entry whose write reached the
/// log (only its fsync failed) keeps the new file; otherwise `old` is put back, as far as the
/// disk allows. The error is returned either way: the change is not known to be durable.
fn commit(
    dir: &Path,
    old: &[Hold],
    new: &[Hold],
    rec: Option<&AuditRecord>,
) -> Result<(), HoldError> {
    let saved = save_holds(dir, new);
    let in_place = match &saved {
        Ok(()) => true,
        Err(HoldError::Io { path, .. }) => path == dir,
        Err(_) => false,
    };
    if !in_place {
        let _ = save_holds(dir, old);
        return saved;
    }
    let Some(rec) = rec else { return saved };
    if let Err(e) = AuditLog::open(dir).append(rec) {
        let logged = super::audit::read_all(dir)
            .ok()
            .and_then(|all| all.last().cloned());
        if !logged.is_some_and(|l| l.record.action == rec.action && l.record.reason == rec.reason) {
            let _ = save_holds(dir, old);
        }
        return Err(e.into());
    }
    saved
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

/// Adds a hold (its `added` time is the audit entry's time) and audits it. A filtered hold is
/// added in state [`HoldState::Copying`] and audited when [`complete_hold`] marks it ready.
/// Held by the process copying a filtered hold's records, for as long as it copies: a hold in
/// state [`HoldState::Copying`] whose lock is free was left by a process that died.
pub struct CopyLock(#[allow(dead_code)] fs::File);

/// Name of the copy lock inside a hold's folder.
pub const COPY_LOCK_NAME: &str = ".copy.lock";

/// Takes hold `name`'s copy lock without waiting (creating its folder); `None` when another
/// process holds it.
pub fn try_lock_copy(dir: &Path, name: &str) -> Result<Option<CopyLock>, HoldError> {
    let hdir = hold_dir(dir, name);
    let path = hdir.join(COPY_LOCK_NAME);
    let io = |source| HoldError::Io {
        path: path.clone(),
        source,
    };
    fs::create_dir_all(&hdir).map_err(io)?;
    let f = fs::open_or_create(&path).map_err(io)?;
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(CopyLock(f))),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(io(io::Error::from(e))),
    }
}

pub fn add_hold(dir: &Path, hold: Hold) -> Result<(), HoldError> {
    let _lock = lock_holds(dir)?;
    add_hold_locked(dir, hold)
}

/// [`add_hold`] for a caller that holds the holds lock.
pub fn add_hold_locked(dir: &Path, hold: Hold) -> Result<(), HoldError> {
    hold.validate()?;
    let mut holds = load_holds(dir)?;
    if let Some(h) = holds.iter().find(|h| h.name == hold.name) {
        return Err(match h.released {
            Some(_) => HoldError::Released(hold.name),
            None => HoldError::Duplicate(hold.name),
        });
    }
    let audited = hold.state == HoldState::Ready;
    let rec = AuditRecord {
        time: hold.added,
        action: Action::HoldAdd,
        segment: None,
        reason: hold.describe(),
    };
    let old = holds.clone();
    holds.push(hold);
    commit(dir, &old, &holds, audited.then_some(&rec))
}

/// Changes hold `name` with `change` (which may refuse), saves, and appends the audit entry
/// `audit` makes of the changed hold (none for `None`). Returns the changed hold.
fn change_hold(
    dir: &Path,
    name: &str,
    change: impl FnOnce(&mut Hold) -> Result<(), HoldError>,
    audit: impl FnOnce(&Hold) -> Option<AuditRecord>,
) -> Result<Hold, HoldError> {
    let _lock = lock_holds(dir)?;
    let mut holds = load_holds(dir)?;
    let old = holds.clone();
    let h = holds
        .iter_mut()
        .find(|h| h.name == name)
        .ok_or_else(|| HoldError::Unknown(name.to_string()))?;
    change(h)?;
    let h = h.clone();
    commit(dir, &old, &holds, audit(&h).as_ref())?;
    Ok(h)
}

/// Marks a filtered hold's copy complete and audits the hold as added (at `now`).
pub fn complete_hold(dir: &Path, name: &str, now: Nanos) -> Result<Hold, HoldError> {
    change_hold(
        dir,
        name,
        |h| {
            h.state = HoldState::Ready;
            Ok(())
        },
        |h| {
            Some(AuditRecord {
                time: now,
                action: Action::HoldAdd,
                segment: None,
                reason: h.describe(),
            })
        },
    )
}

/// Moves the expiry of hold `name` to `expires` (audited at `now`).
pub fn renew_hold(dir: &Path, name: &str, expires: Nanos, now: Nanos) -> Result<Hold, HoldError> {
    change_hold(
        dir,
        name,
        |h| {
            if h.released.is_some() {
                return Err(HoldError::Released(h.name.clone()));
            }
            if expires <= now {
                return Err(HoldError::Invalid(format!(
                    "the new expiry {} is not after now ({})",
                    format_rfc3339(expires),
                    format_rfc3339(now)
                )));
            }
            h.expires = Some(expires);
            Ok(())
        },
        |h| {
            Some(AuditRecord {
                time: now,
                action: Action::HoldRenew,
                segment: None,
                reason: h.describe(),
            })
        },
    )
}

/// Releases the hold named `name` at time `now`, audits it, and returns it. A hold with copies
/// stays listed as released until expire has deleted them; one without is forgotten now.
pub fn release_hold(dir: &Path, name: &str, now: Nanos) -> Result<Hold, HoldError> {
    let _lock = lock_holds(dir)?;
    let mut holds = load_holds(dir)?;
    let i = holds
        .iter()
        .position(|h| h.name == name)
        .ok_or_else(|| HoldError::Unknown(name.to_string()))?;
    if holds[i].released.is_some() {
        return Err(HoldError::Released(name.to_string()));
    }
    let old = holds.clone();
    let hold = if holds[i].filter.is_some() {
        holds[i].released = Some(now);
        holds[i].clone()
    } else {
        holds.remove(i)
    };
    let rec = AuditRecord {
        time: now,
        action: Action::HoldRelease,
        segment: None,
        reason: hold.describe(),
    };
    commit(dir, &old, &holds, Some(&rec))?;
    Ok(hold)
}

/// Removes hold `name` from the list, under the holds lock the caller holds, once nothing of
/// it is left on disk, with `audit` (a lapse, a rolled-back copy).
pub fn forget_hold_locked(
    dir: &Path,
    name: &str,
    audit: Option<AuditRecord>,
) -> Result<(), HoldError> {
    let old = load_holds(dir)?;
    let mut holds = old.clone();
    holds.retain(|h| h.name != name);
    commit(dir, &old, &holds, audit.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::read_all;

    fn hold(name: &str, from: Nanos, until: Nanos) -> Hold {
        Hold {
            filter: None,
            note: Some("court order 17".into()),
            ..Hold::new(name, from, until, 1_000)
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
    fn a_hand_edited_holds_file_that_protects_less_than_it_says_is_refused() {
        let d = tempfile::tempdir().unwrap();
        add_hold(d.path(), hold("CASE-1", 10, 20)).unwrap();
        let path = d.path().join(HOLDS_NAME);
        let good = std::fs::read_to_string(&path).unwrap();
        let from = "\"from\": \"1970-01-01T00:00:00.000000010Z\"";
        assert!(good.contains(from), "{good}");
        for (edit, says) in [
            (
                good.replace(from, "\"from\": \"1970-01-01T00:00:00.000000030Z\""),
                "would protect nothing",
            ),
            (good.replace("CASE-1", "CASE 1"), "no whitespace"),
            (
                good.replacen(
                    "  ]",
                    &format!(
                        ",{}  ]",
                        &good[good.find("    {").unwrap()..good.rfind("  ]").unwrap()]
                    ),
                    1,
                ),
                "appears twice",
            ),
        ] {
            std::fs::write(&path, &edit).unwrap();
            let e = load_holds(d.path()).unwrap_err().to_string();
            assert!(e.contains(says), "{e}\n{edit}");
        }
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
