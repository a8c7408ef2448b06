//! `flowkeep verify` against someone with write access to the store who wants it not to notice:
//! each attack is run on a store written by `replay`, and verify must name it and exit 1.

mod common;

use common::{fixtures, run, text};
use std::path::Path;
use std::process::Output;

/// A store replayed from two captures into `dir` (several partitions, several segments).
fn replayed(dir: &Path) {
    let (a, b) = (
        fixtures().join("nDPI__android.pcap"),
        fixtures().join("nDPI__iphone.pcap"),
    );
    let out = run(&[
        "replay",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--partition",
        "1m",
        "-q",
        "--workers",
        "2",
        "--store",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn verify(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["verify", "--store", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

/// Lets the test change the store as an attacker would.
fn tamper(dir: &Path, change: impl FnOnce(&Path)) -> Output {
    change(dir);
    verify(dir, &[])
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
    let text = text(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("; 0 problem(s)"), "{text}");
}

#[test]
fn junk_after_the_marker_is_a_problem() {
    let d = tempfile::tempdir().unwrap();
    replayed(d.path());
    let out = tamper(d.path(), |dir| {
        let marker = dir.join("flowkeep-store");
        let mut text = std::fs::read_to_string(&marker).unwrap();
        text.push_str("written by hand\n");
        std::fs::write(&marker, text).unwrap();
    });
    fails_naming(&out, "flowkeep-store: unexpected content");
}

#[test]
fn a_marker_that_says_an_older_format_is_a_problem() {
    let d = tempfile::tempdir().unwrap();
    replayed(d.path());
    let out = tamper(d.path(), |dir| {
        std::fs::write(dir.join("flowkeep-store"), "flowkeep store\nformat 3\n").unwrap()
    });
    fails_naming(&out, "says format 3, but");
}

#[test]
fn a_store_whose_audit_log_is_gone_is_a_problem() {
    let d = tempfile::tempdir().unwrap();
    replayed(d.path());
    let out = tamper(d.path(), |dir| {
        std::fs::remove_file(dir.join("audit.log")).unwrap()
    });
    fails_naming(&out, "audit.log: missing");
}

#[test]
fn deleting_the_audit_log_and_every_segment_is_a_problem() {
    let d = tempfile::tempdir().unwrap();
    replayed(d.path());
    let out = tamper(d.path(), |dir| {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            }
        }
        std::fs::remove_file(dir.join("audit.log")).unwrap();
    });
    fails_naming(&out, "audit.log: missing");
}

#[test]
fn a_store_whose_marker_is_gone_is_a_problem() {
    let d = tempfile::tempdir().unwrap();
    replayed(d.path());
    let out = tamper(d.path(), |dir| {
        std::fs::remove_file(dir.join("flowkeep-store")).unwrap()
    });
    fails_naming(&out, "flowkeep-store: missing");
}
