//! The anonymised tier's options (`--anonymize-after`, `--anonymize-key`) on `expire`, `replay`
//! and `capture`, run after retention wherever retention runs; and `key generate --anonymize`.

use super::admin::run_expire;
use super::args::{parse_positive_duration, RetentionArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use flowkeep::anonymize::{self, Key};
use flowkeep::fs;
use flowkeep::retention::{format_duration, Policy};
use flowkeep::store::audit::relative;
use flowkeep::store::{holds, Store};
use flowkeep::time::{format_rfc3339, Nanos};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// `--anonymize-after` / `--anonymize-key`, flattened into the retention options.
#[derive(Args, Debug, Clone, Default)]
pub struct AnonymizeArgs {
    /// Rewrite segments whose newest record is older than this (e.g. 7d) with Crypto-PAn
    /// addresses, no MACs and reduced leases (after retention, wherever it runs).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, requires = "anonymize_key")]
    pub anonymize_after: Option<Nanos>,
    /// The Crypto-PAn key: a file of 32 bytes or 64 hex digits (`key generate --anonymize`).
    #[arg(long, value_name = "FILE", requires = "anonymize_after")]
    pub anonymize_key: Option<PathBuf>,
}

/// What the tier does: its age and its key, read before anything changes.
#[derive(Clone)]
pub(super) struct Anonymize {
    pub after: Nanos,
    pub key: Key,
}

/// The retention policy and the anonymised tier together, as one run applies them.
#[derive(Clone)]
pub(super) struct Tiers {
    pub policy: Option<Policy>,
    pub anonymize: Option<Anonymize>,
}

impl Tiers {
    /// `None` when no option asks for anything. Reads the key file (a missing or malformed key
    /// fails here, before retention deletes anything).
    pub(super) fn from_args(a: &RetentionArgs) -> Result<Option<Tiers>> {
        let anonymize = match (&a.anonymize.anonymize_after, &a.anonymize.anonymize_key) {
            (Some(after), Some(path)) => Some(Anonymize {
                after: *after,
                key: read_key(path)?,
            }),
            _ => None,
        };
        let policy = a.policy();
        Ok((policy.is_some() || anonymize.is_some()).then_some(Tiers { policy, anonymize }))
    }
}

/// Reads an anonymisation key, warning when others may read it.
fn read_key(path: &Path) -> Result<Key> {
    let what = || format!("--anonymize-key {}", path.display());
    let data = std::fs::read(path).with_context(what)?;
    let key = Key::parse(&data)
        .map_err(anyhow::Error::msg)
        .with_context(what)?;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "flowkeep: warning: anonymisation key {} is readable by group or others (chmod 600 it): whoever reads it can undo the anonymisation",
                path.display()
            );
        }
    }
    Ok(key)
}

/// Retention (if asked), then the anonymised tier (if asked), at `now`.
/// Runs retention, then the anonymised tier; returns how many segments retention could not
/// decide (unreadable, with no seal entry to say their age): kept, and worth an exit status.
pub(super) fn run_tiers(
    dir: &Path,
    tiers: &Tiers,
    now: Nanos,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<usize> {
    let mut skip = Vec::new();
    let mut undecided = 0;
    if let Some(policy) = &tiers.policy {
        let plan = run_expire(dir, policy, now, dry_run, out)?;
        undecided = plan.problems.len();
        if dry_run {
            skip = plan.delete.into_iter().map(|d| d.segment.path).collect();
        }
    }
    if let Some(a) = &tiers.anonymize {
        run_anonymize(dir, a, now, dry_run, &skip, out)?;
    }
    Ok(undecided)
}

/// Plans, prints and (unless `dry_run`) applies the anonymised tier at `now`; `skip`: segments
/// a dry run's retention would have deleted.
fn run_anonymize(
    dir: &Path,
    a: &Anonymize,
    now: Nanos,
    dry_run: bool,
    skip: &[PathBuf],
    out: &mut dyn Write,
) -> Result<()> {
    let store = Store::open(dir)?;
    // No hold may be added meanwhile, and no other rewriter runs.
    let _holds_lock = holds::lock_holds(dir)?;
    let plan = anonymize::plan(
        &store.segments()?,
        &holds::load_holds(dir)?,
        a.after,
        now,
        skip,
    );
    let rel = |p: &Path| relative(dir, p);
    writeln!(
        out,
        "anonymize: segments older than {} (cutoff {}), key {}{}",
        format_duration(a.after),
        format_rfc3339(now.saturating_sub(a.after)),
        a.key.fingerprint(),
        if dry_run { " (dry run)" } else { "" }
    )?;
    for (s, holds) in &plan.kept_for_hold {
        writeln!(
            out,
            "not anonymized  {}  held whole by {}",
            rel(&s.path),
            holds.join(", ")
        )?;
    }
    if dry_run {
        for (s, anon) in &plan.repair {
            let (s, anon) = (rel(&s.path), rel(anon));
            writeln!(out, "would delete  {s}  (already rewritten as {anon})")?;
        }
        for s in &plan.rewrite {
            writeln!(
                out,
                "would anonymize  {}  records {}  {} .. {}  {} bytes",
                rel(&s.path),
                s.records,
                format_rfc3339(s.first),
                format_rfc3339(s.last),
                s.bytes
            )?;
        }
        writeln!(
            out,
            "would anonymize {} segment(s); {} kept whole for holds",
            plan.rewrite.len(),
            plan.kept_for_hold.len()
        )?;
        return Ok(());
    }
    // Nothing a standing filtered hold names loses its raw copy (a seal hook that failed).
    flowkeep::preserve::catch_up(dir, plan.rewrite.iter(), now)
        .with_context(|| format!("copying for holds before anonymizing in {}", dir.display()))?;
    let done = anonymize::apply(&store, &plan, &a.key, now)
        .with_context(|| format!("anonymizing in {}", dir.display()))?;
    for p in &done.stale_removed {
        writeln!(out, "removed  {}  (an interrupted rewrite)", rel(p))?;
    }
    for p in &done.repaired {
        writeln!(out, "deleted  {}  (its rewrite was already sealed)", rel(p))?;
    }
    for r in &done.rewritten {
        writeln!(
            out,
            "anonymized  {} -> {}  records {}  leases {}  addresses {}  {} -> {} bytes",
            rel(&r.source),
            rel(&r.anon),
            r.records,
            r.leases,
            r.addresses,
            r.bytes_before,
            r.bytes_after
        )?;
    }
    for (p, why) in &done.failed {
        writeln!(out, "problem  {}  not anonymized: {why}", rel(p))?;
    }
    writeln!(
        out,
        "anonymized {} segment(s); {} kept whole for holds; {} problem(s)",
        done.rewritten.len(),
        plan.kept_for_hold.len(),
        done.failed.len()
    )?;
    out.flush()?;
    if !done.failed.is_empty() {
        bail!("{} segment(s) could not be anonymized", done.failed.len());
    }
    Ok(())
}

/// `key generate --anonymize --out FILE`: 32 random bytes, as 64 hex digits and a newline, in a
/// new file of mode 0600.
pub(super) fn generate_key(out: &Path) -> Result<()> {
    let mut k = [0u8; 32];
    flowkeep::proof::random(&mut k).map_err(anyhow::Error::msg)?;
    let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
    let what = || format!("writing {}", out.display());
    let f = fs::create_new_with_mode(out, 0o600).with_context(what)?;
    fs::write_all(&f, format!("{hex}\n").as_bytes()).with_context(what)?;
    fs::sync(&f).with_context(what)?;
    eprintln!(
        "flowkeep: anonymisation key written to {} (mode 0600), fingerprint {}",
        out.display(),
        Key::from_bytes(k).fingerprint()
    );
    Ok(())
}
