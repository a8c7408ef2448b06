//! What an auditor asks of the audit log on day 31, as pure functions of its parsed entries
//! (and of the holds standing and the oldest record left, which are not in the log): which
//! entries match a listing's selection, deletions per day and what caused them, accesses per
//! user, holds released, the policy history. `flowkeep audit` prints them.

use super::access::{parse_policy_reason, Access};
use super::audit::{Action, AuditEntry};
use super::holds::Hold;
use crate::time::{format_rfc3339, Nanos};
use std::collections::BTreeMap;

/// The entries whose time is in `[since, until)` and whose action is `kind`, each bound
/// optional, in log order.
pub fn select(
    entries: &[AuditEntry],
    since: Option<Nanos>,
    until: Option<Nanos>,
    kind: Option<Action>,
) -> Vec<&AuditEntry> {
    entries
        .iter()
        .filter(|e| since.is_none_or(|s| e.record.time >= s))
        .filter(|e| until.is_none_or(|u| e.record.time < u))
        .filter(|e| kind.is_none_or(|k| e.record.action == k))
        .collect()
}

/// The deletions of one UTC day (by the `expire` entries' time, the "now" retention ran at).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayDeletions {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub segments: u64,
    pub records: u64,
    pub bytes: u64,
    /// Segments per rule of the entries' reason (its first word: `age>30d`, `size>500G`).
    pub rules: BTreeMap<String, u64>,
    /// The policies recorded in force when they were deleted (`none recorded` before the first
    /// `policy` entry), each once, in order.
    pub policies: Vec<String>,
}

/// The accesses of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAccesses {
    pub uid: u32,
    pub user: Option<String>,
    pub count: u64,
    /// Records answered, all accesses together.
    pub records: u64,
    pub last: Nanos,
    /// Accesses per command.
    pub commands: BTreeMap<String, u64>,
}

/// A hold released, from its `hold-release` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    pub time: Nanos,
    pub name: String,
    /// The entry's `reason`: name, range, filter, note.
    pub reason: String,
}

/// A `policy` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyChange {
    pub time: Nanos,
    pub old: Option<String>,
    pub new: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub now: Nanos,
    pub deletions: Vec<DayDeletions>,
    /// The time of the newest `expire` or `policy` entry: the last retention run that deleted
    /// something or changed the policy (a run that did neither leaves no entry).
    pub last_expire: Option<Nanos>,
    /// The oldest record left (the caller's: from the segments) and its age at `now`.
    pub oldest: Option<(Nanos, Nanos)>,
    pub holds: Vec<Hold>,
    pub released: Vec<Released>,
    /// By uid, then name.
    pub accesses: Vec<UserAccesses>,
    pub policies: Vec<PolicyChange>,
}

/// The text a deletion's policy column says before any `policy` entry.
pub const NO_POLICY_RECORDED: &str = "none recorded";

impl Report {
    /// The report at `now` over the log's entries, the holds standing and the oldest record's
    /// time.
    pub fn build(
        entries: &[AuditEntry],
        holds: &[Hold],
        oldest: Option<Nanos>,
        now: Nanos,
    ) -> Report {
        let mut days: BTreeMap<String, DayDeletions> = BTreeMap::new();
        let mut users: BTreeMap<(u32, Option<String>), UserAccesses> = BTreeMap::new();
        let mut report = Report {
            now,
            deletions: Vec::new(),
            last_expire: None,
            oldest: oldest.map(|o| (o, now.saturating_sub(o))),
            holds: holds.to_vec(),
            released: Vec::new(),
            accesses: Vec::new(),
            policies: Vec::new(),
        };
        for e in entries {
            let r = &e.record;
            match r.action {
                Action::Expire => {
                    let in_force = report.policies.last().map(|p| p.new.as_str());
                    deletion(&mut days, e, in_force.unwrap_or(NO_POLICY_RECORDED));
                    report.last_expire = report.last_expire.max(Some(r.time));
                }
                Action::Policy => {
                    if let Some((old, new)) = parse_policy_reason(&r.reason) {
                        report.policies.push(PolicyChange {
                            time: r.time,
                            old: old.map(str::to_string),
                            new: new.to_string(),
                        });
                    }
                    report.last_expire = report.last_expire.max(Some(r.time));
                }
                Action::HoldRelease => report.released.push(Released {
                    time: r.time,
                    name: word(&r.reason, "name").unwrap_or_default().to_string(),
                    reason: r.reason.clone(),
                }),
                Action::Access => {
                    if let Some(a) = Access::parse(r.time, &r.reason) {
                        access(&mut users, &a);
                    }
                }
                Action::Seal
                | Action::Recover
                | Action::HoldAdd
                | Action::HoldRenew
                | Action::Import => {}
            }
        }
        report.deletions = days.into_values().collect();
        report.accesses = users.into_values().collect();
        report
    }
}

fn deletion(days: &mut BTreeMap<String, DayDeletions>, e: &AuditEntry, policy: &str) {
    let day = format_rfc3339(e.record.time)
        .get(..10)
        .unwrap_or_default()
        .to_string();
    let d = days.entry(day.clone()).or_insert_with(|| DayDeletions {
        day,
        ..DayDeletions::default()
    });
    d.segments += 1;
    if let Some(s) = &e.record.segment {
        d.records += s.records;
        d.bytes += s.bytes;
    }
    let rule = e.record.reason.split(' ').next().unwrap_or_default();
    *d.rules.entry(rule.to_string()).or_default() += 1;
    if !d.policies.iter().any(|p| p == policy) {
        d.policies.push(policy.to_string());
    }
}

fn access(users: &mut BTreeMap<(u32, Option<String>), UserAccesses>, a: &Access) {
    let u = users
        .entry((a.uid, a.user.clone()))
        .or_insert_with(|| UserAccesses {
            uid: a.uid,
            user: a.user.clone(),
            count: 0,
            records: 0,
            last: a.time,
            commands: BTreeMap::new(),
        });
    u.count += 1;
    u.records = u.records.saturating_add(a.records);
    u.last = u.last.max(a.time);
    *u.commands.entry(a.command.clone()).or_default() += 1;
}

/// The value of `key=` in a hold entry's reason (its words before `filter=`/`note=` have no
/// spaces).
fn word<'a>(reason: &'a str, key: &str) -> Option<&'a str> {
    reason
        .split(' ')
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::access::policy_reason;
    use crate::store::audit::{sha256_hex, AuditRecord, SegmentFacts, GENESIS_PREV};

    const DAY: Nanos = 86_400 * 1_000_000_000;
    const T0: Nanos = 1_767_225_600 * 1_000_000_000; // 2026-01-01T00:00:00Z

    fn entry(seq: u64, time: Nanos, action: Action, reason: &str, records: u64) -> AuditEntry {
        let segment = (action == Action::Expire || action == Action::Seal).then(|| SegmentFacts {
            path: format!("p/seg-{seq}.fks"),
            partition_start: 0,
            partition_end: 1,
            first: 0,
            last: 1,
            records,
            bytes: 100,
            sha256: sha256_hex(b"x"),
        });
        AuditEntry {
            seq,
            record: AuditRecord {
                time,
                action,
                segment,
                reason: reason.into(),
            },
            prev: GENESIS_PREV.into(),
            hash: GENESIS_PREV.into(),
        }
    }

    fn access_reason(uid: u32, user: &str, command: &str, records: u64) -> String {
        Access {
            time: 0,
            uid,
            user: Some(user.into()),
            command: command.into(),
            since: None,
            until: None,
            filter: "host 10.0.0.1".into(),
            records,
            sha256: sha256_hex(b""),
            hashed: "stdout".into(),
        }
        .reason()
    }

    fn log() -> Vec<AuditEntry> {
        vec![
            entry(1, T0, Action::Seal, "", 10),
            entry(2, T0 + DAY, Action::Expire, "size>1G total=5", 10),
            entry(
                3,
                T0 + 2 * DAY,
                Action::Policy,
                &policy_reason(None, "retention 30d"),
                0,
            ),
            entry(
                4,
                T0 + 2 * DAY + 5,
                Action::Expire,
                "age>30d now=x cutoff=y",
                7,
            ),
            entry(
                5,
                T0 + 2 * DAY + 6,
                Action::Expire,
                "age>30d now=x cutoff=y",
                3,
            ),
            entry(
                6,
                T0 + 3 * DAY,
                Action::Access,
                &access_reason(1000, "alice", "query", 4),
                0,
            ),
            entry(
                7,
                T0 + 4 * DAY,
                Action::Access,
                &access_reason(1000, "alice", "who-had", 1),
                0,
            ),
            entry(
                8,
                T0 + 4 * DAY,
                Action::Access,
                &access_reason(0, "root", "export", 9),
                0,
            ),
            entry(
                9,
                T0 + 5 * DAY,
                Action::HoldRelease,
                "name=CASE-7 from=a until=b note=closed",
                0,
            ),
        ]
    }

    #[test]
    fn deletions_are_summed_per_day_with_their_rules_and_policies() {
        let r = Report::build(&log(), &[], Some(T0 + DAY), T0 + 31 * DAY);
        assert_eq!(r.deletions.len(), 2);
        let d1 = &r.deletions[0];
        assert_eq!(
            (d1.day.as_str(), d1.segments, d1.records),
            ("2026-01-02", 1, 10)
        );
        assert_eq!(d1.rules.get("size>1G"), Some(&1));
        assert_eq!(d1.policies, [NO_POLICY_RECORDED]);
        let d2 = &r.deletions[1];
        assert_eq!(
            (d2.day.as_str(), d2.segments, d2.records, d2.bytes),
            ("2026-01-03", 2, 10, 200)
        );
        assert_eq!(d2.rules.get("age>30d"), Some(&2));
        assert_eq!(d2.policies, ["retention 30d"]);
        assert_eq!(r.last_expire, Some(T0 + 2 * DAY + 6));
        assert_eq!(r.oldest, Some((T0 + DAY, 30 * DAY)));
        assert_eq!(
            r.policies,
            [PolicyChange {
                time: T0 + 2 * DAY,
                old: None,
                new: "retention 30d".into()
            }]
        );
    }

    #[test]
    fn accesses_are_counted_per_user_and_releases_listed() {
        let r = Report::build(&log(), &[], None, T0);
        assert_eq!(r.accesses.len(), 2);
        let (root, alice) = (&r.accesses[0], &r.accesses[1]);
        assert_eq!((root.uid, root.count, root.records), (0, 1, 9));
        assert_eq!(alice.user.as_deref(), Some("alice"));
        assert_eq!(
            (alice.count, alice.records, alice.last),
            (2, 5, T0 + 4 * DAY)
        );
        assert_eq!(alice.commands.get("who-had"), Some(&1));
        assert_eq!(r.released.len(), 1);
        assert_eq!(r.released[0].name, "CASE-7");
        assert_eq!(r.oldest, None);
    }

    #[test]
    fn a_listing_selects_by_time_and_kind() {
        let l = log();
        let seqs = |v: Vec<&AuditEntry>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(
            seqs(select(&l, None, None, Some(Action::Access))),
            [6, 7, 8]
        );
        assert_eq!(
            seqs(select(&l, Some(T0 + 2 * DAY), Some(T0 + 3 * DAY), None)),
            [3, 4, 5]
        );
        assert_eq!(
            seqs(select(&l, Some(T0 + 4 * DAY), None, Some(Action::Expire))),
            Vec::<u64>::new()
        );
    }
}
