//! Stores for the admin tests (tests/store_admin.rs, tests/hostile.rs): replayed fixtures, their
//! segments and listings, and the verify and hold-add invocations they share.

use super::{fixtures, ok, out, run};
use flowkeep::store::audit;
use flowkeep::store::{SegmentInfo, Store};
use flowkeep::time::{parse_time, Nanos};
use std::path::{Path, PathBuf};

/// A store built by `flowkeep replay --partition 1m` of fixture captures.
pub fn replayed(files: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("s");
    let mut args = vec![
        "replay".to_string(),
        "-q".into(),
        "--store".into(),
        store.to_str().unwrap().into(),
        "--partition".into(),
        "1m".into(),
        // One writer, so one segment per partition: the expectations below count segments.
        "--workers".into(),
        "1".into(),
    ];
    args.extend(
        files
            .iter()
            .map(|f| fixtures().join(f).to_str().unwrap().to_string()),
    );
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&a);
    d
}

pub fn store_of(d: &tempfile::TempDir) -> PathBuf {
    d.path().join("s")
}

pub fn segments(dir: &Path) -> Vec<SegmentInfo> {
    Store::open(dir).unwrap().segments().unwrap()
}

pub fn rel(dir: &Path, s: &SegmentInfo) -> String {
    audit::relative(dir, &s.path)
}

pub fn t(s: &str) -> Nanos {
    parse_time(s).unwrap()
}

/// The arguments of `flowkeep hold add` of a hold NAME over [FROM, UNTIL) in the store `s`,
/// followed by `more`.
pub fn hold_add<'a>(
    s: &'a str,
    name: &'a str,
    from: &'a str,
    until: &'a str,
    more: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "hold", "add", "--store", s, "--name", name, "--from", from, "--until", until,
    ];
    args.extend(more);
    args
}

/// Runs verify, expects exit status 1 and a problem line containing every `needle`.
pub fn verify_fails(dir: &Path, needles: &[&str]) -> String {
    let o = run(&["verify", "--store", dir.to_str().unwrap()]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("PROBLEM") && needles.iter().all(|n| l.contains(n))),
        "{needles:?} not in:\n{text}"
    );
    text
}

pub fn small_store() -> (tempfile::TempDir, PathBuf, Vec<SegmentInfo>) {
    let d = replayed(&["nDPI__stun.pcap"]);
    let dir = store_of(&d);
    let segs = segments(&dir);
    assert!(segs.len() >= 3);
    let o = run(&["verify", "--store", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    (d, dir, segs)
}

pub fn audit_entries(dir: &Path) -> Vec<audit::AuditEntry> {
    audit::read_all(dir).unwrap()
}

pub fn listing(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for e in walk(dir) {
        v.push(e.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
    }
    v.sort();
    v
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        }
        v.push(p);
    }
    v
}
