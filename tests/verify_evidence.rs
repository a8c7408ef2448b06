//! `flowkeep verify` against someone with write access to the store who wants it not to notice:
//! each attack is run on a store written by `replay`, and verify must name it and exit 1.

mod common;

use common::{fixtures, BIN};
use std::path::Path;
use std::process::{Command, Output};

/// A store replayed from two captures into `dir` (several partitions, several segments).
fn replayed(dir: &Path) {
    let out = Command::new(BIN)
        .arg("replay")
        .arg(fixtures().join("nDPI__android.pcap"))
        .arg(fixtures().join("nDPI__iphone.pcap"))
        .args(["--partition", "1m", "-q", "--workers", "2", "--store"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn verify(dir: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("verify")
        .arg("--store")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

/// Verify's stdout, after checking it failed with at least one PROBLEM line containing `what`.
fn fails_naming(out: &Output, what: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("PROBLEM ") && l.contains(what)),
        "no PROBLEM line naming '{what}':\n{text}"
    );
    assert!(!text.contains(" 0 problem(s)"), "{text}");
    text
}

#[test]
fn an_untouched_store_verifies() {
    let d = tempfile::tempdir().unwrap();
    replayed(d.path());
    let out = verify(d.path(), &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("; 0 problem(s)"), "{text}");
}

#[test]
fn junk_after_the_marker_is_a_problem() {
    let d = tempfile::tempdir().unwrap();
    replayed(d.path());
    let marker = d.path().join("flowkeep-store");
    let mut text = std::fs::read_to_string(&marker).unwrap();
    text.push_str("written by hand\n");
    std::fs::write(&marker, text).unwrap();
    fails_naming(&verify(d.path(), &[]), "flowkeep-store: unexpected content");
}

#[test]
fn a_marker_that_says_an_older_format_is_a_problem() {
    let d = tempfile::tempdir().unwrap();
    replayed(d.path());
    std::fs::write(
        d.path().join("flowkeep-store"),
        "flowkeep store\nformat 3\n",
    )
    .unwrap();
    fails_naming(&verify(d.path(), &[]), "says format 3, but");
}

#[test]
fn a_store_whose_audit_log_is_gone_is_a_problem() {
    let d = tempfile::tempdir().unwrap();
    replayed(d.path());
    std::fs::remove_file(d.path().join("audit.log")).unwrap();
    fails_naming(&verify(d.path(), &[]), "audit.log: missing");
}

#[test]
fn deleting_the_audit_log_and_every_segment_is_a_problem() {
    let d = tempfile::tempdir().unwrap();
    replayed(d.path());
    for e in std::fs::read_dir(d.path()).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        }
    }
    std::fs::remove_file(d.path().join("audit.log")).unwrap();
    fails_naming(&verify(d.path(), &[]), "audit.log: missing");
}

#[test]
fn a_store_whose_marker_is_gone_is_a_problem() {
    let d = tempfile::tempdir().unwrap();
    replayed(d.path());
    std::fs::remove_file(d.path().join("flowkeep-store")).unwrap();
    fails_naming(&verify(d.path(), &[]), "flowkeep-store: missing");
}
