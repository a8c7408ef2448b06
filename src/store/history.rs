//! What the audit log says became of each segment file: verify explains the files on disk by it,
//! and recovery tells a writer's crash from a sealed segment put back under its temporary name.

use super::audit::{Action, AuditLine};
use super::holds::{Hold, HoldState, HOLDS_NAME};
use std::collections::BTreeMap;

/// The log's last word on one segment path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastWord {
    /// Sealed (or recovered) at `line`, with the file's hash, size and record count then.
    Sealed {
        line: u64,
        sha256: String,
        bytes: u64,
        records: u64,
    },
    /// Expired after its last seal, whose SHA-256 it keeps (none when the log never sealed it):
    /// a file still on disk and unchanged is one whose unlink failed after the entry.
    Expired { sealed_sha256: Option<String> },
}

/// A `recover` entry for a path the log already had sealed, with a different file: recovery
/// only ever seals what a writer never did, so the sealed file was put back under its
/// temporary name (and usually cut short) before this recovery sealed what was left of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resealed {
    pub path: String,
    /// The `recover` entry's line, and the earlier seal's.
    pub line: u64,
    pub sealed_line: u64,
    pub sealed_records: u64,
    pub records: u64,
}

#[derive(Debug, Clone, Default)]
pub struct SegmentHistory {
    /// Keyed by the path relative to the store, as entries write it.
    pub last: BTreeMap<String, LastWord>,
    pub resealed: Vec<Resealed>,
}

impl SegmentHistory {
    /// Reads the entries in order; lines that do not parse are the chain check's business.
    pub fn of(lines: &[AuditLine]) -> SegmentHistory {
        let mut h = SegmentHistory::default();
        for l in lines {
            let Ok(e) = &l.entry else { continue };
            let Some(seg) = &e.record.segment else {
                continue;
            };
            match e.record.action {
                // An imported file (a Tor exit list) is explained as a sealed segment is.
                Action::Seal | Action::Recover | Action::Import => {
                    let before = h.last.insert(
                        seg.path.clone(),
                        LastWord::Sealed {
                            line: l.number,
                            sha256: seg.sha256.clone(),
                            bytes: seg.bytes,
                            records: seg.records,
                        },
                    );
                    // A writer killed between its seal entry and its rename leaves the very
                    // file it sealed; older versions logged a `recover` for that too, with the
                    // same hash: that is no second sealing.
                    if let (
                        Action::Recover,
                        Some(LastWord::Sealed {
                            line: sealed_line,
                            sha256,
                            records: sealed_records,
                            ..
                        }),
                    ) = (e.record.action, before)
                    {
                        if sha256 != seg.sha256 {
                            h.resealed.push(Resealed {
                                path: seg.path.clone(),
                                line: l.number,
                                sealed_line,
                                sealed_records,
                                records: seg.records,
                            });
                        }
                    }
                }
                Action::Expire => {
                    let sealed_sha256 = match h.last.remove(&seg.path) {
                        Some(LastWord::Sealed { sha256, .. }) => Some(sha256),
                        Some(LastWord::Expired { sealed_sha256 }) => sealed_sha256,
                        None => None,
                    };
                    h.last
                        .insert(seg.path.clone(), LastWord::Expired { sealed_sha256 });
                }
                // Holds, accesses and policy changes say nothing about a segment file.
                Action::HoldAdd
                | Action::HoldRelease
                | Action::HoldRenew
                | Action::Access
                | Action::Policy => {}
            }
        }
        h
    }

    /// The latest seal of `path` not followed by its expiry: (line, sha256, records).
    pub fn sealed(&self, path: &str) -> Option<(u64, &str, u64)> {
        match self.last.get(path)? {
            LastWord::Sealed {
                line,
                sha256,
                records,
                ..
            } => Some((*line, sha256, *records)),
            LastWord::Expired { .. } => None,
        }
    }
}

/// Where the holds file disagrees with the audit log, one line each. Every change to a hold
/// is logged with the hold's [`Hold::describe`] (`hold-add` when it starts to keep,
/// `hold-renew`, `hold-release` on release or lapse), so the log alone says which holds stand
/// and what they say: a hold edited, added or removed by hand shows here. A hold still
/// copying has no entry yet and is not checked.
pub fn holds_against_log(holds: &[Hold], lines: &[AuditLine]) -> Vec<String> {
    // The last word of the log on each hold name: its describe text, or released.
    let mut last: BTreeMap<&str, (u64, Option<&str>)> = BTreeMap::new();
    for l in lines {
        let Ok(e) = &l.entry else { continue };
        let reason = e.record.reason.as_str();
        let Some(name) = reason
            .strip_prefix("name=")
            .and_then(|r| r.split(' ').next())
        else {
            continue;
        };
        match e.record.action {
            Action::HoldAdd | Action::HoldRenew => {
                last.insert(name, (l.number, Some(reason)));
            }
            Action::HoldRelease => {
                last.insert(name, (l.number, None));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for h in holds.iter().filter(|h| h.state == HoldState::Ready) {
        let said = last.remove(h.name.as_str());
        let problem = match (said, h.released) {
            (None, _) => Some("no hold-add entry for it in the audit log".to_string()),
            (Some((line, None)), None) => Some(format!(
                "the audit log released it (line {line}) but it stands in {HOLDS_NAME}"
            )),
            (Some((line, Some(_))), Some(_)) => Some(format!(
                "released in {HOLDS_NAME}, never in the audit log (last entry line {line})"
            )),
            (Some((line, Some(text))), None) if !same_hold(text, &h.describe()) => Some(format!(
                "{HOLDS_NAME} says '{}', the audit log (line {line}) says '{text}'",
                h.describe()
            )),
            _ => None,
        };
        if let Some(p) = problem {
            out.push(format!("{HOLDS_NAME}: hold '{}': {p}", h.name));
        }
    }
    let copying: Vec<&str> = holds
        .iter()
        .filter(|h| h.state != HoldState::Ready)
        .map(|h| h.name.as_str())
        .collect();
    for (name, (line, text)) in last {
        if text.is_some() && !copying.contains(&name) {
            out.push(format!(
                "{HOLDS_NAME}: hold '{name}' (added or renewed at audit log line {line}, never \
                 released) is missing from it"
            ));
        }
    }
    out
}

/// Filtered holds of holds-file version 1 were logged without `expires=never`, which their
/// description now carries.
fn same_hold(logged: &str, now: &str) -> bool {
    logged == now || logged == now.replacen(" expires=never", "", 1)
}
