//! `disclose` (a bundle for a case) and `verify --bundle` (checking one): arguments in, the
//! library's `disclose` called, one line per finding printed.

use super::args::DiscloseArgs;
use super::wall_clock;
use anyhow::{bail, Context, Result};
use flowkeep::disclose::{self, Request};
use flowkeep::proof::keys;
use flowkeep::query::Filter;
use flowkeep::store::Store;
use flowkeep::time::{self, format_rfc3339};
use std::io::{self, Write};
use std::path::Path;

/// Who runs this: `uid=N(name)`, the name from the password file (else `$USER`).
fn asked_by() -> String {
    let uid = rustix::process::getuid().as_raw();
    let from_passwd = std::fs::read_to_string("/etc/passwd").ok().and_then(|t| {
        t.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
        })
    });
    let name = from_passwd
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "?".into());
    format!("uid={uid}({name})")
}

pub(super) fn disclose(a: DiscloseArgs) -> Result<i32> {
    let now = wall_clock();
    let since = time::parse_time_at(&a.since, now).context("--since")?;
    let until = time::parse_time_at(&a.until, now).context("--until")?;
    if until <= since {
        bail!("--until must be later than --since");
    }
    let filter = Filter::parse(&a.expr.join(" "))?;
    if std::fs::symlink_metadata(&a.out).is_ok() {
        bail!(
            "--out {}: exists already; a bundle is never written over anything",
            a.out.display()
        );
    }
    let signing_key = match &a.signing_key {
        Some(path) => {
            let (key, warning) = keys::read_signing_key(path)
                .with_context(|| format!("--signing-key {}", path.display()))?;
            if let Some(w) = warning {
                eprintln!("flowkeep: {w}");
            }
            Some(key)
        }
        None => None,
    };
    let store = Store::open(&a.store)?;
    let store = super::holds::scoped(store, a.hold.as_deref())?;
    let req = Request {
        case: a.case,
        since,
        until,
        filter,
        asked_at: now,
        asked_by: asked_by(),
        signing_key,
    };
    let s = disclose::write_bundle(&store, &req, &a.out)?;
    for p in &s.scan_problems {
        eprintln!("flowkeep: warning: {p}");
    }
    // The manifest names every file of the bundle with its SHA-256: its hash is the answer's.
    let manifest = a.out.join("manifest.json");
    let manifest =
        std::fs::read(&manifest).with_context(|| format!("reading back {}", manifest.display()))?;
    super::audit::record_access(
        &store,
        super::audit::Answered {
            command: "disclose",
            since: Some(since),
            until: Some(until),
            filter: &a.expr.join(" "),
            records: s.records,
            sha256: flowkeep::store::audit::sha256_hex(&manifest),
            hashed: "manifest",
        },
    )?;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "{}: {} record(s), {} lease observation(s), {} segment(s), {} audit entries proven \
         against checkpoint size {}, {} ({} to {})",
        a.out.display(),
        s.records,
        s.leases,
        s.segments,
        s.audit_entries,
        s.checkpoint_size,
        if s.signed { "signed" } else { "unsigned" },
        format_rfc3339(since),
        format_rfc3339(until),
    )?;
    out.flush()?;
    if !s.scan_problems.is_empty() {
        super::warn_incomplete(s.scan_problems.len());
        return Ok(super::INCOMPLETE);
    }
    Ok(0)
}

/// `verify --bundle BUNDLE [--public-key PUB]`: a `PROBLEM` line per finding, exit 1 if any.
pub(super) fn verify_bundle(bundle: &Path, public_key: Option<&str>) -> Result<i32> {
    let key = public_key
        .map(|k| keys::read_verifier_key(k).with_context(|| format!("--public-key {k}")))
        .transpose()?;
    if !bundle.is_dir() {
        bail!("--bundle {}: not a directory", bundle.display());
    }
    let c = disclose::check_bundle(bundle, key.as_ref());
    let mut out = io::stdout().lock();
    for p in &c.problems {
        writeln!(out, "PROBLEM {p}")?;
    }
    for n in &c.notes {
        writeln!(out, "{n}")?;
    }
    writeln!(out, "{}: {} problem(s)", bundle.display(), c.problems.len())?;
    out.flush()?;
    Ok(if c.problems.is_empty() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::super::args::{Cli, Command};
    use clap::Parser;

    fn verify(args: &[&str]) -> Result<super::super::args::VerifyArgs, clap::Error> {
        let cli = Cli::try_parse_from([&["flowkeep", "verify"], args].concat())?;
        let Command::Verify(a) = cli.command else {
            panic!("not verify")
        };
        Ok(a)
    }

    #[test]
    fn verify_takes_a_store_or_a_bundle() {
        let a = verify(&["--store", "/s"]).unwrap();
        assert_eq!((a.store.is_some(), a.bundle.is_none()), (true, true));
        let a = verify(&["--bundle", "/b", "--public-key", "k.pub"]).unwrap();
        assert_eq!(
            (a.store.is_none(), a.public_key.as_deref()),
            (true, Some("k.pub"))
        );
        assert!(verify(&["--store", "/s", "--checkpoint", "c", "--public-key", "k"]).is_ok());
        assert!(verify(&[]).is_err());
        assert!(verify(&["--store", "/s", "--bundle", "/b"]).is_err());
        assert!(verify(&["--store", "/s", "--public-key", "k"]).is_err());
        assert!(verify(&["--bundle", "/b", "--checkpoint", "c", "--public-key", "k"]).is_err());
    }
}
