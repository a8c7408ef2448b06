//! Who looked: the `access` entry every reading command appends once it has answered, and
//! `flowkeep audit`, which lists the log's entries and writes the auditor's report.

use super::admin::human_age;
use super::args::AuditArgs;
use super::query::default_format;
use super::wall_clock;
use anyhow::{bail, Context, Result};
use flowkeep::query::Format;
use flowkeep::store::access::Access;
use flowkeep::store::audit::{self, AuditEntry};
use flowkeep::store::holds;
use flowkeep::store::report::{self, Report};
use flowkeep::store::Store;
use flowkeep::time::{format_rfc3339, Nanos, NANOS_PER_SEC};
use serde_json::json;
use std::io::{self, Write};
use std::path::Path;

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

/// `flowkeep audit`: the entries, or `--report`.
pub(super) fn audit(a: AuditArgs) -> Result<i32> {
    let store = Store::open(&a.store)?;
    let entries = audit::read_all(&a.store)?;
    let selected = report::select(&entries, a.since, a.until, a.kind.map(|k| k.0));
    let stdout = io::stdout();
    // The report is text for a person unless JSON is asked for; a listing is as `query`'s.
    let format = match (a.report, a.format) {
        (true, None) => Format::Table,
        (_, f) => default_format(f, &stdout),
    };
    let mut out = io::BufWriter::new(stdout.lock());
    if a.report {
        let now = a.now.unwrap_or_else(wall_clock);
        let owned: Vec<AuditEntry> = selected.into_iter().cloned().collect();
        let holds = holds::load_holds(&a.store)?;
        let oldest = store.overview()?.first;
        let r = Report::build(&owned, &holds, oldest, now);
        match format {
            Format::Jsonl => {
                serde_json::to_writer(&mut out, &report_json(&r))?;
                writeln!(out)?;
            }
            Format::Table => print_report(&r, &a.store, &mut out)?,
            Format::Csv => bail!("audit --report prints table or jsonl"),
        }
    } else {
        print_entries(&selected, format, &mut out)?;
    }
    out.flush()?;
    Ok(0)
}

/// The names of an entry's fields, as docs/FORMAT.md has them (`_` for spaces).
const FIELD_NAMES: [&str; 14] = [
    "seq",
    "time",
    "action",
    "segment",
    "partition_start",
    "partition_end",
    "first",
    "last",
    "records",
    "bytes",
    "sha256",
    "reason",
    "prev",
    "hash",
];

/// The fields of an entry in [`FIELD_NAMES`]' order, `None` for `-`.
fn fields(e: &AuditEntry) -> [Option<String>; 14] {
    let r = &e.record;
    let s = r.segment.as_ref();
    let t = |v: Option<Nanos>| v.map(format_rfc3339);
    [
        Some(e.seq.to_string()),
        Some(format_rfc3339(r.time)),
        Some(r.action.to_string()),
        s.map(|s| s.path.clone()),
        t(s.map(|s| s.partition_start)),
        t(s.map(|s| s.partition_end)),
        t(s.map(|s| s.first)),
        t(s.map(|s| s.last)),
        s.map(|s| s.records.to_string()),
        s.map(|s| s.bytes.to_string()),
        s.map(|s| s.sha256.clone()),
        (!r.reason.is_empty()).then(|| r.reason.clone()),
        Some(e.prev.clone()),
        Some(e.hash.clone()),
    ]
}

fn print_entries(entries: &[&AuditEntry], format: Format, out: &mut impl Write) -> Result<()> {
    match format {
        Format::Jsonl => {
            for e in entries {
                let mut v = serde_json::Map::new();
                for (k, f) in FIELD_NAMES.into_iter().zip(fields(e)) {
                    let value = match (k, f) {
                        ("seq" | "records" | "bytes", Some(n)) => json!(n.parse::<u64>().ok()),
                        (_, f) => json!(f),
                    };
                    v.insert(k.to_string(), value);
                }
                serde_json::to_writer(&mut *out, &v)?;
                writeln!(out)?;
            }
        }
        Format::Csv => {
            writeln!(out, "{}", FIELD_NAMES.join(","))?;
            for e in entries {
                let row: Vec<String> = fields(e)
                    .into_iter()
                    .map(|f| csv_field(&f.unwrap_or_default()))
                    .collect();
                writeln!(out, "{}", row.join(","))?;
            }
        }
        Format::Table => {
            writeln!(
                out,
                "{:>6}  {:<30}  {:<12}  {:<48}  {:>10}  REASON",
                "SEQ", "TIME", "ACTION", "SEGMENT", "RECORDS"
            )?;
            for e in entries {
                let r = &e.record;
                let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                writeln!(
                    out,
                    "{:>6}  {:<30}  {:<12}  {:<48}  {:>10}  {}",
                    e.seq,
                    format_rfc3339(r.time),
                    r.action.as_str(),
                    dash(r.segment.as_ref().map(|s| s.path.clone())),
                    dash(r.segment.as_ref().map(|s| s.records.to_string())),
                    // One line per entry: a reason's own line breaks are shown escaped.
                    if r.reason.is_empty() {
                        "-".to_string()
                    } else {
                        r.reason.escape_debug().to_string()
                    }
                )?;
            }
        }
    }
    Ok(())
}

/// RFC 4180: quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn print_report(r: &Report, store: &Path, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "audit report for {} (now = {})",
        store.display(),
        format_rfc3339(r.now)
    )?;
    print_deletions(r, out)?;
    writeln!(out)?;
    match r.oldest {
        Some((t, age)) => writeln!(
            out,
            "oldest record left  {} (age {})",
            format_rfc3339(t),
            human_age(age)
        )?,
        None => writeln!(out, "oldest record left  - (the store holds no records)")?,
    }
    match r.last_expire {
        Some(t) => writeln!(
            out,
            "expire last ran     {} (its newest expire or policy entry)",
            format_rfc3339(t)
        )?,
        None => writeln!(out, "expire last ran     never (no expire or policy entry)")?,
    }
    print_holds(r, out)?;
    print_accesses(r, out)?;
    writeln!(out)?;
    writeln!(out, "policy history ({})", r.policies.len())?;
    for p in &r.policies {
        writeln!(
            out,
            "  {}  {} -> {}",
            format_rfc3339(p.time),
            p.old.as_deref().unwrap_or("none"),
            p.new
        )?;
    }
    Ok(())
}

fn print_deletions(r: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "deletions per day ({} day(s))", r.deletions.len())?;
    writeln!(
        out,
        "  {:<10}  {:>8}  {:>12}  {:>14}  {:<24}  POLICY",
        "DAY", "SEGMENTS", "RECORDS", "BYTES", "RULES"
    )?;
    for d in &r.deletions {
        let rules: Vec<String> = d.rules.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        writeln!(
            out,
            "  {:<10}  {:>8}  {:>12}  {:>14}  {:<24}  {}",
            d.day,
            d.segments,
            d.records,
            d.bytes,
            rules.join(", "),
            d.policies.join("; ")
        )?;
    }
    Ok(())
}

fn print_holds(r: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "holds standing ({})", r.holds.len())?;
    for h in &r.holds {
        writeln!(
            out,
            "  {}  {} .. {}  added {}{}",
            h.name,
            format_rfc3339(h.from),
            format_rfc3339(h.until),
            format_rfc3339(h.added),
            h.note
                .as_deref()
                .map(|n| format!("  note: {n}"))
                .unwrap_or_default()
        )?;
    }
    writeln!(out, "holds released ({})", r.released.len())?;
    for h in &r.released {
        writeln!(
            out,
            "  {}  released {}  ({})",
            h.name,
            format_rfc3339(h.time),
            h.reason.escape_debug()
        )?;
    }
    Ok(())
}

fn print_accesses(r: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "accesses per user ({} user(s))", r.accesses.len())?;
    writeln!(
        out,
        "  {:<16}  {:>8}  {:>8}  {:>12}  {:<30}  COMMANDS",
        "USER", "UID", "ACCESSES", "RECORDS", "LAST"
    )?;
    for u in &r.accesses {
        let commands: Vec<String> = u.commands.iter().map(|(c, n)| format!("{c} {n}")).collect();
        writeln!(
            out,
            "  {:<16}  {:>8}  {:>8}  {:>12}  {:<30}  {}",
            u.user.as_deref().unwrap_or("-"),
            u.uid,
            u.count,
            u.records,
            format_rfc3339(u.last),
            commands.join(", ")
        )?;
    }
    Ok(())
}

fn report_json(r: &Report) -> serde_json::Value {
    let t = |v: Nanos| format_rfc3339(v);
    json!({
        "now": t(r.now),
        "deletions": r.deletions.iter().map(|d| json!({
            "day": d.day,
            "segments": d.segments,
            "records": d.records,
            "bytes": d.bytes,
            "rules": d.rules,
            "policies": d.policies,
        })).collect::<Vec<_>>(),
        "oldest_record": r.oldest.map(|(o, _)| t(o)),
        "oldest_age_secs": r.oldest.map(|(_, age)| age / NANOS_PER_SEC),
        "last_expire": r.last_expire.map(t),
        "holds": r.holds.iter().map(|h| json!({
            "name": h.name,
            "from": t(h.from),
            "until": t(h.until),
            "added": t(h.added),
            "filter": h.filter,
            "note": h.note,
        })).collect::<Vec<_>>(),
        "released": r.released.iter().map(|h| json!({
            "name": h.name,
            "time": t(h.time),
            "reason": h.reason,
        })).collect::<Vec<_>>(),
        "accesses": r.accesses.iter().map(|u| json!({
            "uid": u.uid,
            "user": u.user,
            "count": u.count,
            "records": u.records,
            "last": t(u.last),
            "commands": u.commands,
        })).collect::<Vec<_>>(),
        "policies": r.policies.iter().map(|p| json!({
            "time": t(p.time),
            "old": p.old,
            "new": p.new,
        })).collect::<Vec<_>>(),
    })
}
