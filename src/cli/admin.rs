//! Store administration commands: `expire`, `hold`, `verify`, `info`, and the retention options
//! of `replay` and `capture`.

use super::anonymize::{run_tiers, Tiers};
use super::args::{ExpireArgs, InfoArgs, RecoverArgs, VerifyArgs};
use super::evidence::Signer;
use super::{print_recovery, wall_clock};
use anyhow::{bail, Context, Result};
use flowkeep::preserve;
use flowkeep::retention::{self, format_duration, format_size, Plan, Policy};
use flowkeep::store::holds;
use flowkeep::store::{SegmentInfo, Store};
use flowkeep::time::{format_rfc3339, Nanos, NANOS_PER_SEC};
use std::io::{self, Write};
use std::path::Path;

pub(super) fn expire(a: ExpireArgs) -> Result<i32> {
    let Some(tiers) = Tiers::from_args(&a.policy)? else {
        bail!("give --retention, --max-size and/or --anonymize-after");
    };
    let now = a.now.unwrap_or_else(wall_clock);
    let signer = Signer::new(&a.signing, &a.store)?;
    let undecided = run_tiers(&a.store, &tiers, now, a.dry_run, &mut io::stdout().lock())?;
    if let Some(s) = signer.filter(|_| !a.dry_run) {
        s.sign_if_changed()?;
    }
    if undecided > 0 {
        eprintln!(
            "flowkeep: error: {undecided} unreadable file(s) (segments, Tor exit lists) could not \
             be decided and were kept (see the problem lines); `flowkeep verify` says more"
        );
        return Ok(1);
    }
    Ok(0)
}

/// Plans, prints and (unless `dry_run`) applies retention at `now`.
pub(super) fn run_expire(
    dir: &Path,
    policy: &Policy,
    now: Nanos,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<Plan> {
    let store = Store::open(dir)?;
    // Expire is a writer: what a stopped writer left is sealed first, so that retention can
    // age it (a temporary segment is never deleted).
    if !dry_run {
        print_recovery(&flowkeep::store::recover(dir)?);
    }
    // No hold may be added between reading the holds and deleting what they do not cover.
    let _holds_lock = holds::lock_holds(dir)?;
    // Released and lapsed holds' copies go first, and copies a dead `hold add` left.
    let swept = if dry_run {
        preserve::Swept::default()
    } else {
        preserve::sweep(dir, now).with_context(|| format!("sweeping holds in {}", dir.display()))?
    };
    let mut segments = store.segments()?;
    let decided = store.spans_from_log(&mut segments)?;
    let holds = holds::load_holds(dir)?;
    // What protects records must be what the log says was asked: a hold removed or narrowed
    // by hand must not let retention delete what it kept.
    let disagree = flowkeep::store::history::holds_against_log(
        &holds,
        &flowkeep::store::audit::read_lines(dir)?,
    );
    if !disagree.is_empty() {
        bail!(
            "not expiring anything: the holds file disagrees with the audit log:\n  {}\n\
             restore {} from a backup or from the log's hold entries (`flowkeep audit --kind \
             hold-add`), then run verify",
            disagree.join("\n  "),
            dir.join(holds::HOLDS_NAME).display()
        );
    }
    let mut plan = retention::plan(&segments, &holds, policy, now);
    let verb = if dry_run { "would delete" } else { "deleted" };
    writeln!(
        out,
        "policy: {}; now = {}{}",
        describe_policy(policy),
        format_rfc3339(now),
        if dry_run {
            " (dry run: nothing is changed)"
        } else {
            ""
        }
    )?;
    let (deleted, freed) = if dry_run {
        (plan.delete.clone(), plan.bytes_before - plan.bytes_after)
    } else {
        // Which policy caused the deletions: recorded when it changed, before them.
        store
            .record_policy(&describe_policy(policy), now)
            .with_context(|| format!("recording the retention policy in {}", dir.display()))?;
        // Nothing a standing filtered hold names leaves uncopied (a seal hook that failed).
        preserve::catch_up(dir, plan.delete.iter().map(|d| &d.segment), now)
            .with_context(|| format!("copying for holds before expiring in {}", dir.display()))?;
        let done = retention::apply(&store, &plan, now)
            .with_context(|| format!("expiring in {}", dir.display()))?;
        (done.deleted, done.bytes_freed)
    };
    print_deleted(dir, verb, "records", &deleted, out)?;
    print_kept(
        dir,
        (&swept, &decided),
        &plan,
        ("seal", "no seal entry says its age"),
        out,
    )?;
    plan.problems
        .extend(expire_tor_lists(&store, &holds, policy, now, dry_run, out)?);
    print_summary(dry_run, deleted.len(), freed, &plan, out)?;
    out.flush()?;
    Ok(plan)
}

/// The last line of a retention run.
fn print_summary(
    dry_run: bool,
    deleted: usize,
    freed: u64,
    plan: &Plan,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(
        out,
        "{} {} segment(s), {} bytes; {} kept for holds; store {} -> {} bytes{}",
        if dry_run { "would delete" } else { "deleted" },
        deleted,
        freed,
        plan.kept_for_hold.len(),
        plan.bytes_before,
        plan.bytes_before.saturating_sub(freed),
        if plan.over_size {
            " (still over --max-size: holds or unreadable segments)"
        } else {
            ""
        }
    )?;
    Ok(())
}

/// The imported Tor exit lists, under the same age limit as the segments and every standing
/// hold (not under --max-size: they are the Tor Project's public lists, about a megabyte each). Returns
/// the lists that could not be read, which are kept.
fn expire_tor_lists(
    store: &Store,
    holds: &[holds::Hold],
    policy: &Policy,
    now: Nanos,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<Vec<(SegmentInfo, String)>> {
    let dir = store.dir();
    let mut lists = flowkeep::tor::stored_lists(dir)?;
    if policy.retention.is_none() || lists.is_empty() {
        return Ok(Vec::new());
    }
    let decided = store.spans_from_log(&mut lists)?;
    let age_only = Policy {
        max_size: None,
        ..*policy
    };
    // Every standing hold keeps the lists of its range in place, a filtered one too: a list
    // is the Tor Project's public document, not a subscriber's record, and the marks on the
    // held records need it.
    let standing: Vec<holds::Hold> = holds
        .iter()
        .filter(|h| !h.ended(now))
        .map(|h| holds::Hold {
            filter: None,
            ..h.clone()
        })
        .collect();
    let plan = retention::plan(&lists, &standing, &age_only, now);
    let deleted = if dry_run {
        plan.delete.clone()
    } else {
        retention::apply(store, &plan, now)
            .with_context(|| format!("expiring Tor exit lists in {}", dir.display()))?
            .deleted
    };
    let verb = if dry_run { "would delete" } else { "deleted" };
    print_deleted(dir, verb, "exits", &deleted, out)?;
    print_kept(
        dir,
        (&preserve::Swept::default(), &decided),
        &plan,
        ("import", "no import entry says the span it covers"),
        out,
    )?;
    Ok(plan.problems)
}

/// One line per file deleted (or that would be): its path, its `unit`s, span, size and why.
fn print_deleted(
    dir: &Path,
    verb: &str,
    unit: &str,
    deleted: &[retention::Deletion],
    out: &mut dyn Write,
) -> io::Result<()> {
    for d in deleted {
        let s = &d.segment;
        writeln!(
            out,
            "{verb}  {}  {unit} {}  {} .. {}  {} bytes  ({})",
            rel_path(dir, &s.path),
            s.records,
            format_rfc3339(s.first),
            format_rfc3339(s.last),
            s.bytes,
            d.reason
        )?;
    }
    Ok(())
}

/// The lines of a retention run besides its deletions: hold copies swept, segments kept for
/// holds, unreadable files aged by their audit entry or kept undecided. `entry` names the
/// entry that holds a file's span (`seal` for segments, `import` for Tor lists) and
/// `undecided` says why a file without one could not be aged.
fn print_kept(
    dir: &Path,
    (swept, decided): (&preserve::Swept, &[(std::path::PathBuf, String)]),
    plan: &Plan,
    (entry, undecided): (&str, &str),
    out: &mut dyn Write,
) -> io::Result<()> {
    for (path, why) in &swept.deleted {
        writeln!(out, "deleted  {}  ({why})", rel_path(dir, path))?;
    }
    for k in &plan.kept_for_hold {
        writeln!(
            out,
            "kept  {}  held by {}  (would go: {})",
            rel_path(dir, &k.segment.path),
            k.holds.join(", "),
            k.reason
        )?;
    }
    for (p, e) in decided {
        writeln!(
            out,
            "note  {}  unreadable ({e}); its age is taken from its {entry} entry",
            rel_path(dir, p)
        )?;
    }
    for (s, e) in &plan.problems {
        writeln!(
            out,
            "problem  {}  unreadable and {undecided}: kept: {e}",
            rel_path(dir, &s.path)
        )?;
    }
    Ok(())
}

fn rel_path(dir: &Path, p: &Path) -> String {
    flowkeep::store::audit::relative(dir, p)
}

/// Retention after a replay: "now" is the newest trusted packet time (`trusted`: not more than
/// [`flowkeep::pipeline::CLOCK_TOLERANCE`] after the wall clock), so that one packet stamped in
/// the future cannot expire the store's history; the wall clock `wall` only when every packet
/// is stamped after it (`future` of them). What it did is written to `out`.
pub(super) fn after_replay(
    dir: &Path,
    tiers: Option<&Tiers>,
    (trusted, future): (Option<Nanos>, u64),
    wall: Nanos,
    out: &mut dyn Write,
) -> Result<()> {
    let Some(tiers) = tiers else {
        return Ok(());
    };
    let now = match (trusted, future) {
        (Some(newest), 0) => {
            writeln!(
                out,
                "expire (now = newest packet time {})",
                format_rfc3339(newest)
            )?;
            newest
        }
        (Some(newest), n) => {
            writeln!(
                out,
                "expire (now = newest packet time {}, leaving out the {n} packets stamped after the wall clock)",
                format_rfc3339(newest)
            )?;
            newest
        }
        (None, 0) => return Ok(()),
        (None, _) => {
            writeln!(
                out,
                "expire (now = wall clock {}: every packet is stamped after it)",
                format_rfc3339(wall)
            )?;
            wall
        }
    };
    run_tiers(dir, tiers, now, false, out)?;
    Ok(())
}

pub(super) fn verify(a: VerifyArgs) -> Result<i32> {
    if let Some(bundle) = &a.bundle {
        return super::disclose::verify_bundle(bundle, a.public_key.as_deref());
    }
    let Some(dir) = &a.store else {
        anyhow::bail!("verify: --store or --bundle is needed");
    };
    let store = match Store::open(dir) {
        Ok(s) => s,
        // A directory that was a store and lost its marker is a finding, not a usage error.
        Err(flowkeep::store::StoreError::NotAStore { path })
            if path.join(flowkeep::store::audit::AUDIT_LOG_NAME).exists() =>
        {
            println!(
                "PROBLEM {}: missing: {} has an audit log but no store marker",
                flowkeep::store::MARKER_NAME,
                path.display()
            );
            println!("0 segment(s) checked; 1 problem(s)");
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let kept = super::evidence::kept_checkpoints(&a)?;
    let checked = match &kept {
        Some((text, key)) => Some(store.check_checkpoints(text, key)?),
        None => None,
    };
    let v = store.verify()?;
    let mut out = io::stdout().lock();
    let mut problems = v.problem_count();
    if let Some(c) = &checked {
        for p in &c.problems {
            writeln!(out, "PROBLEM {p}")?;
        }
        problems += c.problems.len();
    }
    for line in v.problem_lines() {
        writeln!(out, "PROBLEM {line}")?;
    }
    for path in &v.unfinished {
        writeln!(
            out,
            "NOTE {path}: expired in {} but still on disk, unchanged since sealed: an expire \
             could not delete it (the next expire will)",
            flowkeep::store::audit::AUDIT_LOG_NAME
        )?;
    }
    if let Some(c) = &checked {
        if let Some(newest) = c.verified.iter().map(|cp| cp.size).max() {
            writeln!(
                out,
                "{} checkpoint(s) verified: the audit log still holds the first {newest} entries as signed",
                c.verified.len()
            )?;
        }
    }
    for o in &v.open {
        writeln!(
            out,
            "OPEN {}: {} complete block(s), {} record(s), read and left as they are",
            o.path, o.blocks, o.records
        )?;
    }
    if v.imported > 0 {
        writeln!(
            out,
            "{} Tor exit list(s) checked against their import entries",
            v.imported
        )?;
    }
    writeln!(
        out,
        "{} segment(s), {} block(s) and {} record(s) checked, {} open segment(s), {} audit \
         entries; {problems} problem(s)",
        v.segments,
        v.blocks_ok,
        v.records,
        v.open.len(),
        v.audit_entries,
    )?;
    out.flush()?;
    if !v.open.is_empty() {
        eprintln!(
            "flowkeep: note: open segments are a running writer's, or were left by one that \
             stopped: `flowkeep recover` (or the next capture or replay) seals those"
        );
    }
    if checked.is_none() {
        eprintln!(
            "flowkeep: note: no --checkpoint given: that the newest audit entries were not \
             removed, or the whole log rewritten, cannot be excluded (see README, Proving it)"
        );
    }
    Ok(if problems == 0 { 0 } else { 1 })
}

/// `flowkeep recover`: what a writer start does first, on its own. Exit 1 when something could
/// not be recovered or was found sealed before.
pub(super) fn recover(a: RecoverArgs) -> Result<i32> {
    Store::open(&a.store)?;
    let r = flowkeep::store::recover(&a.store)?;
    print_recovery(&r);
    if r.live_writer {
        println!(
            "a writer is running on {}: its temporary segments are open, not left behind; \
             nothing to recover",
            a.store.display()
        );
        return Ok(0);
    }
    let kept: u64 = r.segments.iter().map(|s| s.records).sum();
    let torn: u64 = r.segments.iter().map(|s| s.torn_bytes).sum();
    let problems = r.problems.len()
        + r.segments
            .iter()
            .filter(|s| s.sealed_before.is_some())
            .count();
    println!(
        "{} temporary segment(s) recovered: {kept} record(s) kept, {torn} byte(s) of torn \
         blocks dropped; {problems} problem(s)",
        r.segments.len(),
    );
    Ok(if problems == 0 { 0 } else { 1 })
}

/// Not in `info`'s counts (which come from sealed footers): what open segments hold so far.
fn print_open(store: &Store, out: &mut dyn Write) -> Result<()> {
    let open = store.open_segments()?;
    if !open.is_empty() {
        writeln!(
            out,
            "open segments  {} ({} records in complete blocks, not sealed yet)",
            open.len(),
            open.iter().map(|s| s.records).sum::<u64>()
        )?;
    }
    Ok(())
}

pub(super) fn info(a: InfoArgs) -> Result<i32> {
    let store = Store::open(&a.store)?;
    let now = a.now.unwrap_or_else(wall_clock);
    let o = store.overview()?;
    let holds = holds::load_holds(&a.store)?;
    let mut out = io::stdout().lock();
    writeln!(out, "store          {}", a.store.display())?;
    writeln!(out, "partitions     {}", o.partitions)?;
    writeln!(out, "segments       {}", o.segments.len())?;
    writeln!(out, "records        {}", o.records)?;
    print_open(&store, &mut out)?;
    writeln!(out, "dhcp leases    {}", o.leases)?;
    writeln!(out, "bytes          {} ({})", o.bytes, human_bytes(o.bytes))?;
    let t = |v: Option<Nanos>| v.map_or_else(|| "-".to_string(), format_rfc3339);
    writeln!(out, "first record   {}", t(o.first))?;
    writeln!(out, "last record    {}", t(o.last))?;
    writeln!(
        out,
        "oldest age     {} (now = {})",
        o.first
            .map_or_else(|| "-".into(), |f| human_age(now.saturating_sub(f))),
        format_rfc3339(now)
    )?;
    let c = &o.capture;
    writeln!(
        out,
        "captured       {} frames, {} IP packets, {} non-IP, {} malformed; dropped {} by the \
         kernel, {} by the interface; {} flows evicted; {} records not stored",
        c.frames,
        c.ip_packets,
        c.non_ip,
        c.malformed,
        c.kernel_drops,
        c.interface_drops,
        c.flow_evictions,
        c.records_not_stored
    )?;
    for (name, t) in [("raw", &o.raw), ("anonymized", &o.anonymized)] {
        writeln!(
            out,
            "{name:<15}{} segments, {} records, {} bytes",
            t.segments, t.records, t.bytes
        )?;
    }
    if o.no_mac > 0 {
        writeln!(
            out,
            "macs           not stored (--no-mac) in {} of {} segments",
            o.no_mac, o.readable
        )?;
    }
    writeln!(
        out,
        "interfaces     {}",
        if o.interfaces.is_empty() {
            "-".to_string()
        } else {
            o.interfaces.join(", ")
        }
    )?;
    if o.unreadable() > 0 {
        writeln!(out, "unreadable     {} segment(s)", o.unreadable())?;
    }
    writeln!(out, "holds          {}", holds.len())?;
    for h in &holds {
        // A filtered hold's copies are outside the sums above: they are not the live store.
        let kept = if h.filter.is_some() {
            let copies = store.hold_segments(&h.name)?;
            format!(
                "  copies: {} segments, {} records, {} bytes",
                copies.len(),
                copies.iter().map(|c| c.records).sum::<u64>(),
                copies.iter().map(|c| c.bytes).sum::<u64>()
            )
        } else {
            "  whole segments".to_string()
        };
        writeln!(
            out,
            "  {}  {} .. {}{kept}  {}",
            h.name,
            format_rfc3339(h.from),
            holds::format_until(h.until),
            h.note.as_deref().unwrap_or("")
        )?;
    }
    if a.segments {
        print_segments(&a.store, &o.segments, &mut out)?;
    }
    out.flush()?;
    Ok(0)
}

/// `info --segments`: one line per segment.
fn print_segments(store: &Path, segs: &[SegmentInfo], out: &mut dyn Write) -> io::Result<()> {
    writeln!(out)?;
    // Capture statistics are those the pipeline counted while the segment was open; a
    // segment sealed by crash recovery has none (its counts died with the writer).
    writeln!(
        out,
        "{:<48}  {:>10}  {:<30}  {:<30}  {:>12}  {:>10}  {:>8}  {:>9}  INTERFACES",
        "SEGMENT", "RECORDS", "FIRST", "LAST", "BYTES", "PACKETS", "DROPS", "MALFORMED"
    )?;
    for s in segs {
        let (f, l) = match &s.error {
            Some(_) => ("unreadable".to_string(), "-".to_string()),
            None => (format_rfc3339(s.first), format_rfc3339(s.last)),
        };
        writeln!(
            out,
            "{:<48}  {:>10}  {:<30}  {:<30}  {:>12}  {:>10}  {:>8}  {:>9}  {}",
            flowkeep::store::audit::relative(store, &s.path),
            s.records,
            f,
            l,
            s.bytes,
            s.capture.frames,
            s.capture.kernel_drops + s.capture.interface_drops,
            s.capture.malformed,
            // Index order: the records' interface numbers.
            if s.interfaces.is_empty() {
                "-".to_string()
            } else {
                s.interfaces.join(",")
            }
        )?;
    }
    Ok(())
}

fn human_bytes(b: u64) -> String {
    let (v, u) = match b {
        b if b >= 1 << 40 => (b as f64 / (1u64 << 40) as f64, "TiB"),
        b if b >= 1 << 30 => (b as f64 / (1u64 << 30) as f64, "GiB"),
        b if b >= 1 << 20 => (b as f64 / (1u64 << 20) as f64, "MiB"),
        b if b >= 1 << 10 => (b as f64 / (1u64 << 10) as f64, "KiB"),
        b => return format!("{b} B"),
    };
    format!("{v:.1} {u}")
}

pub(super) fn human_age(ns: Nanos) -> String {
    if ns < 0 {
        return format!("-{}", human_age(ns.saturating_neg()));
    }
    let s = ns / NANOS_PER_SEC;
    format!(
        "{}d {:02}h {:02}m {:02}s",
        s / 86_400,
        s % 86_400 / 3600,
        s % 3600 / 60,
        s % 60
    )
}

pub(super) fn describe_policy(p: &Policy) -> String {
    let mut parts = Vec::new();
    if let Some(r) = p.retention {
        parts.push(format!("retention {}", format_duration(r)));
    }
    if let Some(m) = p.max_size {
        parts.push(format!("max size {}", format_size(m)));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_print_days_hours_minutes_seconds() {
        assert_eq!(human_age(90_061 * NANOS_PER_SEC), "1d 01h 01m 01s");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
