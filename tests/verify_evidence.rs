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

/// Replays `capture` into `store`, signing with `key` and shipping the checkpoint to `shipped`.
fn replay_signed(capture: &str, store: &Path, key: &Path, shipped: &Path) {
    let out = common::replay(
        &fixtures().join(capture),
        store,
        &[
            "--signing-key",
            key.to_str().unwrap(),
            "--checkpoint-to",
            shipped.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A signing key, a store replayed with it, and the checkpoints it shipped outside the store:
/// (tempdir, store, shipped checkpoints, verifier key file).
struct Signed {
    _dir: tempfile::TempDir,
    store: std::path::PathBuf,
    shipped: std::path::PathBuf,
    public: std::path::PathBuf,
}

fn signed_store() -> Signed {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("site.key");
    let out = run(&[
        "key",
        "generate",
        "--out",
        key.to_str().unwrap(),
        "--name",
        "site-a",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let store = dir.path().join("store");
    replayed(&store);
    let shipped = dir.path().join("shipped");
    // A second run signs the log as it is after both: the shipped file holds that checkpoint.
    replay_signed("nDPI__iphone.pcap", &store, &key, &shipped);
    Signed {
        public: dir.path().join("site.key.pub"),
        _dir: dir,
        store,
        shipped,
    }
}

impl Signed {
    fn verify(&self) -> Output {
        verify(
            &self.store,
            &[
                "--checkpoint",
                self.shipped.to_str().unwrap(),
                "--public-key",
                self.public.to_str().unwrap(),
            ],
        )
    }

    fn log(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.store.join("audit.log")).unwrap();
        text.lines().map(str::to_string).collect()
    }

    fn write_log(&self, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(self.store.join("audit.log"), text).unwrap();
    }
}

#[test]
fn a_signed_store_verifies_against_its_shipped_checkpoint() {
    let s = signed_store();
    let out = s.verify();
    let t = text(&out.stdout);
    assert!(out.status.success(), "{t}{}", text(&out.stderr));
    assert!(t.contains("1 checkpoint(s) verified"), "{t}");
}

/// The segment an audit line names, if it names one.
fn segment_of(line: &str) -> Option<String> {
    line.split('\t')
        .nth(3)
        .filter(|p| *p != "-")
        .map(str::to_string)
}

#[test]
fn deleting_the_newest_segments_and_their_audit_lines_is_caught_by_the_checkpoint() {
    let s = signed_store();
    let mut lines = s.log();
    for line in lines.split_off(lines.len() - 3) {
        if let Some(seg) = segment_of(&line) {
            let _ = std::fs::remove_file(s.store.join(seg));
        }
    }
    s.write_log(&lines);
    // The log alone cannot tell: what is left is a consistent history.
    let alone = verify(&s.store, &[]);
    assert!(alone.status.success(), "{}", text(&alone.stdout));
    fails_naming(&s.verify(), "entries were removed");
}

/// Rewrites the chain fields (seq, prev, hash) of `lines` as a writer would have written them.
fn rechain(lines: &mut [String]) {
    use sha2::{Digest, Sha256};
    let hex = |b: &[u8]| -> String { b.iter().map(|x| format!("{x:02x}")).collect() };
    let mut prev = "0".repeat(64);
    for (i, line) in lines.iter_mut().enumerate() {
        let mut f: Vec<String> = line.split('\t').map(str::to_string).collect();
        f[0] = (i + 1).to_string();
        f[12] = prev.clone();
        let body = f[..13].join("\t");
        f[13] = hex(&Sha256::digest(body.as_bytes()));
        *line = f.join("\t");
        prev = hex(&Sha256::digest(line.as_bytes()));
    }
}

#[test]
fn deleting_one_segment_and_rewriting_the_chain_is_caught_by_the_checkpoint() {
    let s = signed_store();
    let mut lines = s.log();
    let victim = lines.iter().position(|l| segment_of(l).is_some()).unwrap();
    std::fs::remove_file(s.store.join(segment_of(&lines[victim]).unwrap())).unwrap();
    lines.remove(victim);
    // Padded back to the signed size, so that only the tree can tell: a policy entry, which
    // names no segment and no hold (a hold entry would have to be matched in holds.json).
    let policy =
        "0\t2026-01-01T00:00:00.000000000Z\tpolicy\t-\t-\t-\t-\t-\t-\t-\t-\tretention 30d\tp\th";
    lines.push(policy.to_string());
    rechain(&mut lines);
    s.write_log(&lines);
    let alone = verify(&s.store, &[]);
    assert!(
        alone.status.success(),
        "the rewrite is consistent: {}",
        text(&alone.stdout)
    );
    fails_naming(&s.verify(), "no longer holds");
}

#[test]
fn deleting_the_log_and_every_segment_is_caught_by_the_checkpoint() {
    let s = signed_store();
    for e in std::fs::read_dir(&s.store).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        }
    }
    std::fs::remove_file(s.store.join("audit.log")).unwrap();
    let out = s.verify();
    fails_naming(&out, "entries were removed");
    fails_naming(&out, "audit.log: missing");
}

#[test]
fn a_changed_marker_fails_with_a_checkpoint_too() {
    let s = signed_store();
    std::fs::write(s.store.join("flowkeep-store"), "flowkeep store\nformat 3\n").unwrap();
    fails_naming(&s.verify(), "says format 3");
}

#[test]
fn a_checkpoint_signed_by_another_key_is_refused() {
    let s = signed_store();
    let other = s.store.parent().unwrap().join("other.key");
    let out = run(&[
        "key",
        "generate",
        "--out",
        other.to_str().unwrap(),
        "--name",
        "site-a",
    ]);
    assert!(out.status.success());
    let out = verify(
        &s.store,
        &[
            "--checkpoint",
            s.shipped.to_str().unwrap(),
            "--public-key",
            other.with_extension("key.pub").to_str().unwrap(),
        ],
    );
    fails_naming(&out, "checkpoint 1 of 1");
}

#[test]
fn a_checkpoint_of_another_store_is_refused() {
    let a = signed_store();
    let b = signed_store();
    let out = verify(
        &a.store,
        &[
            "--checkpoint",
            b.shipped.to_str().unwrap(),
            "--public-key",
            b.public.to_str().unwrap(),
        ],
    );
    fails_naming(&out, "but this store is flowkeep/");
}

#[test]
fn a_store_of_the_previous_release_gets_checkpoints_from_its_first_signed_append() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/stores/format3"),
        &store,
    );
    let plain = verify(&store, &[]);
    assert!(plain.status.success(), "{}", text(&plain.stdout));
    let key = dir.path().join("k");
    assert!(run(&["key", "generate", "--out", key.to_str().unwrap()])
        .status
        .success());
    let shipped = dir.path().join("shipped");
    replay_signed("nDPI__android.pcap", &store, &key, &shipped);
    let pubkey = dir.path().join("k.pub");
    let out = verify(
        &store,
        &[
            "--checkpoint",
            shipped.to_str().unwrap(),
            "--public-key",
            pubkey.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
}

#[test]
fn bad_keys_and_checkpoints_are_one_clear_line_and_change_nothing() {
    let s = signed_store();
    let before = std::fs::read(s.store.join("audit.log")).unwrap();
    let missing = s.store.parent().unwrap().join("nope.key");
    let out = common::replay(
        &fixtures().join("nDPI__android.pcap"),
        &s.store,
        &["--signing-key", missing.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("--signing-key") && err.contains("nope.key"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(s.store.join("audit.log")).unwrap(),
        before,
        "nothing stored changed"
    );
    // A checkpoint file that is not one: a PROBLEM, not a crash.
    let junk = s.store.parent().unwrap().join("junk");
    std::fs::write(&junk, "not a checkpoint\n").unwrap();
    let out = verify(
        &s.store,
        &[
            "--checkpoint",
            junk.to_str().unwrap(),
            "--public-key",
            s.public.to_str().unwrap(),
        ],
    );
    fails_naming(&out, "checkpoint 1 of 1");
    // A key that will not overwrite a file.
    let out = run(&["key", "generate", "--out", s.shipped.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("exists"),
        "{}",
        text(&out.stderr)
    );
}
