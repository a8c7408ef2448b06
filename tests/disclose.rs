//! Disclosure bundles end to end: written from a replayed capture, checked by `verify
//! --bundle`, and checked again by tools that are not flowkeep: coreutils' `sha256sum -c`,
//! OpenSSL's (through pyca/cryptography, else the `openssl` command) Ed25519, a few lines of
//! Python's hashlib implementing RFC 9162's inclusion proof verification, and a real headless
//! browser rendering REPORT.html.

mod common;

use common::{can_run, fixtures, replay, run, text};
use std::path::{Path, PathBuf};
use std::process::Command;

const SINCE: &str = "2020-02-23T10:00:00Z";
const UNTIL: &str = "2020-02-23T12:00:00Z";
/// The iPhone's DHCP exchange with 192.168.2.1 is in it, so leases.jsonl is not empty.
const EXPR: &[&str] = &["host", "192.168.2.1", "or", "port", "67"];
const CASE: &str = "Order 17/2026 <A&B> \"x\"";

/// A store of nDPI__iphone.pcap and a signing key (`DIR/key`, `DIR/key.pub`).
fn store_and_key() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = replay(&fixtures().join("nDPI__iphone.pcap"), &store, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Another capture (other days) and a hold make a larger tree, so that the proofs have
    // more than one step and the entries in the bundle are not its first ones.
    let out = replay(&fixtures().join("nDPI__1kxun.pcap"), &store, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = store.to_str().unwrap();
    let hold = [
        "hold", "add", "--store", s, "--name", "CASE-17", "--from", SINCE, "--until", UNTIL,
    ];
    let out = run(&[&hold[..], &["--note", "court order 17"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = dir.path().join("key");
    let out = run(&["key", "generate", "--out", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    (dir, store, key)
}

fn disclose(store: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "disclose",
        "--store",
        store.to_str().unwrap(),
        "--case",
        CASE,
        "--since",
        SINCE,
        "--until",
        UNTIL,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(EXPR);
    run(&args)
}

fn signed_bundle() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (dir, store, key) = store_and_key();
    let bundle = dir.path().join("bundle");
    let out = disclose(&store, &bundle, &["--signing-key", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    (dir, store, bundle)
}

fn verify(bundle: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["verify", "--bundle", bundle.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

/// A Python with pyca/cryptography (scripts/deps.sh puts one in /opt/flowkeep-venv).
fn python_with_cryptography() -> Option<PathBuf> {
    let python = PathBuf::from(
        std::env::var_os("FLOWKEEP_PYTHON")
            .unwrap_or_else(|| "/opt/flowkeep-venv/bin/python".into()),
    );
    Command::new(&python)
        .args([
            "-c",
            "import cryptography.hazmat.primitives.asymmetric.ed25519",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
        .then_some(python)
}

fn python(script: &str, args: &[&Path]) -> Result<String, String> {
    let python = python_with_cryptography().unwrap_or_else(|| "python3".into());
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| format!("no python: {e}"))?;
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}

/// RFC 9162 section 2.1.3.2, written from the RFC, not from our code: argv = bundle. Prints
/// how many proofs verified against checkpoint.txt's root.
const INCLUSION: &str = r#"
import base64, hashlib, json, sys, os
d = sys.argv[1]
lines = open(os.path.join(d, "checkpoint.txt"), encoding="utf-8").read().split("\n")
size, root = int(lines[1]), base64.b64decode(lines[2])
def h(b): return hashlib.sha256(b).digest()
n = 0
for line in open(os.path.join(d, "audit.jsonl"), encoding="utf-8"):
    e = json.loads(line)
    fn, sn = e["leaf_index"], size - 1
    assert fn < size and e["tree_size"] == size
    r = h(b"\x00" + e["text"].encode())
    for p in map(base64.b64decode, e["proof"]):
        assert sn != 0
        if fn & 1 or fn == sn:
            r = h(b"\x01" + p + r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1; sn >>= 1
        else:
            r = h(b"\x01" + r + p)
        fn >>= 1; sn >>= 1
    assert sn == 0 and r == root, "proof of line %d does not verify" % e["line"]
    n += 1
print(n)
"#;

/// argv = bundle: the Ed25519 signatures on manifest.json (manifest.sig, base64) and on the
/// checkpoint (a C2SP signed note), by the key in signing-key.pub, with pyca/cryptography.
const SIGNATURES: &str = r#"
import base64, hashlib, os, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
d = sys.argv[1]
name, key_id, b64 = open(os.path.join(d, "signing-key.pub")).read().rstrip("\n").split("+", 2)
raw = base64.b64decode(b64)
assert raw[0] == 1 and hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() == key_id
key = Ed25519PublicKey.from_public_bytes(raw[1:])
key.verify(base64.b64decode(open(os.path.join(d, "manifest.sig")).read()),
           open(os.path.join(d, "manifest.json"), "rb").read())
note = open(os.path.join(d, "checkpoint.txt"), "rb").read()
split = note.rindex(b"\n\n")
sig = base64.b64decode(note[split + 2:].decode().rstrip("\n").split(" ")[-1])
assert sig[:4].hex() == key_id
key.verify(sig[4:], note[: split + 1])
print("ok")
"#;

/// The manifest's signature checked with the `openssl` command: the public key as SPKI PEM.
fn openssl_verifies(bundle: &Path, scratch: &Path) -> Result<(), String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let public = std::fs::read_to_string(bundle.join("signing-key.pub")).unwrap();
    let raw = b64
        .decode(public.trim_end().splitn(3, '+').nth(2).unwrap())
        .unwrap();
    let mut spki = hex_bytes("302a300506032b6570032100");
    spki.extend_from_slice(&raw[1..]);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        b64.encode(spki)
    );
    std::fs::write(scratch.join("pub.pem"), pem).unwrap();
    let sig = std::fs::read_to_string(bundle.join("manifest.sig")).unwrap();
    std::fs::write(scratch.join("sig.bin"), b64.decode(sig.trim_end()).unwrap()).unwrap();
    let out = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
        .arg(scratch.join("pub.pem"))
        .arg("-sigfile")
        .arg(scratch.join("sig.bin"))
        .arg("-in")
        .arg(bundle.join("manifest.json"))
        .output()
        .map_err(|e| format!("no openssl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", text(&out.stdout), text(&out.stderr)))
    }
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_signed_bundle_verifies_with_flowkeep_and_without_it() {
    let (dir, store, bundle) = signed_bundle();
    let out = verify(&bundle, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("bundle's own signing-key.pub"),
        "{}",
        text(&out.stdout)
    );
    let public = dir.path().join("key.pub");
    let out = verify(&bundle, &["--public-key", public.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("--public-key"),
        "{}",
        text(&out.stdout)
    );

    // The records are what `query` answers, byte for byte.
    for (format, file) in [("csv", "records.csv"), ("jsonl", "records.jsonl")] {
        let mut args = vec![
            "query",
            "--store",
            store.to_str().unwrap(),
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--format",
            format,
        ];
        args.extend_from_slice(EXPR);
        let q = run(&args);
        assert!(q.status.success(), "{}", text(&q.stderr));
        assert!(
            q.stdout.len() > 100,
            "{file}: query answered almost nothing"
        );
        assert_eq!(
            std::fs::read(bundle.join(file)).unwrap(),
            q.stdout,
            "{file}"
        );
    }
    let leases = std::fs::read_to_string(bundle.join("leases.jsonl")).unwrap();
    assert!(leases.contains("\"192.168.2.17\""), "{leases}");

    // coreutils checks the sums.
    let out = Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout).lines().count(),
        12,
        "{}",
        text(&out.stdout)
    );

    // OpenSSL checks the manifest's signature.
    let openssl = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if can_run((!openssl).then(|| "no openssl (scripts/deps.sh installs it)".to_string())) {
        openssl_verifies(&bundle, dir.path()).unwrap();
    }
    // RFC 9162 from the RFC checks every inclusion proof.
    let n: usize = python(INCLUSION, &[&bundle])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        n,
        std::fs::read_to_string(bundle.join("audit.jsonl"))
            .unwrap()
            .lines()
            .count()
    );
    assert!(n >= 3, "{n} proofs");
    let audit = std::fs::read_to_string(bundle.join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"action\":\"hold-add\""), "{audit}");
    let policy = std::fs::read_to_string(bundle.join("policy.txt")).unwrap();
    assert!(
        policy.contains("name=CASE-17") && policy.contains("overlaps the range"),
        "{policy}"
    );
    // pyca/cryptography checks both signatures.
    if can_run(
        python_with_cryptography()
            .is_none()
            .then(|| "no Python with cryptography (scripts/deps.sh)".to_string()),
    ) {
        assert_eq!(python(SIGNATURES, &[&bundle]).unwrap().trim(), "ok");
    }
}

#[test]
fn every_changed_byte_is_a_problem_naming_its_file() {
    let (dir, _store, bundle) = signed_bundle();
    let mut names: Vec<String> = std::fs::read_dir(&bundle)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 13, "{names:?}");
    for name in &names {
        let copy = dir.path().join(format!("changed-{name}"));
        common::copy_dir(&bundle, &copy);
        let path = copy.join(name);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
        let out = verify(&copy, &[]);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("PROBLEM ") && l.contains(name.as_str())),
            "{name}: {stdout}"
        );
    }
    // A file added, and one removed.
    let copy = dir.path().join("added");
    common::copy_dir(&bundle, &copy);
    std::fs::write(copy.join("extra.txt"), "x").unwrap();
    std::fs::remove_file(copy.join("leases.jsonl")).unwrap();
    let stdout = text(&verify(&copy, &[]).stdout);
    assert!(stdout.contains("PROBLEM extra.txt"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("PROBLEM") && l.contains("leases.jsonl")),
        "{stdout}"
    );
    // Another key than the one given.
    let other = dir.path().join("other");
    assert!(run(&["key", "generate", "--out", other.to_str().unwrap()])
        .status
        .success());
    let other_pub = dir.path().join("other.pub");
    let out = verify(&bundle, &["--public-key", other_pub.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("PROBLEM manifest.sig"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn an_unsigned_bundle_says_so() {
    let (dir, store, _key) = store_and_key();
    let bundle = dir.path().join("unsigned");
    let out = disclose(&store, &bundle, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!bundle.join("manifest.sig").exists());
    let out = verify(&bundle, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("unsigned"),
        "{}",
        text(&out.stdout)
    );
    let report = std::fs::read_to_string(bundle.join("REPORT.html")).unwrap();
    assert!(report.contains("This bundle is unsigned"));
    let cp = std::fs::read_to_string(bundle.join("checkpoint.txt")).unwrap();
    assert_eq!(cp.lines().count(), 3, "{cp}");
}

#[test]
fn an_existing_out_directory_is_refused_and_left_alone() {
    let (dir, store, key) = store_and_key();
    let out_dir = dir.path().join("taken");
    std::fs::create_dir(&out_dir).unwrap();
    std::fs::write(out_dir.join("keep"), "mine").unwrap();
    let out = disclose(&store, &out_dir, &["--signing-key", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("exists already"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
    assert_eq!(left.len(), 1);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("keep")).unwrap(),
        "mine"
    );
    assert!(!dir.path().join(".taken.partial").exists());
}

#[test]
fn bad_input_is_one_clear_line_and_nothing_written() {
    let (dir, store, _key) = store_and_key();
    let out_dir = dir.path().join("never");
    let s = store.to_str().unwrap();
    let o = out_dir.to_str().unwrap();
    let base = ["disclose", "--store", s, "--case", "c", "--out", o];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--since",
                SINCE,
                "--until",
                UNTIL,
                "--signing-key",
                "/nonexistent/key",
            ],
            "--signing-key",
        ),
        (
            vec!["--since", SINCE, "--until", UNTIL, "host", "1.2.3"],
            "bad filter expression",
        ),
        (
            vec!["--since", UNTIL, "--until", SINCE],
            "--until must be later than --since",
        ),
    ];
    for (extra, says) in cases {
        let mut args = base.to_vec();
        args.extend(extra);
        let out = run(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("flowkeep:"))
            .collect();
        assert_eq!(errors.len(), 1, "{args:?}: {stderr}");
        assert!(
            errors[0].starts_with("flowkeep: error: ") && errors[0].contains(says),
            "{stderr}"
        );
        assert!(!out_dir.exists(), "{args:?} wrote {o}");
        assert!(!dir.path().join(".never.partial").exists());
    }
}

#[test]
fn the_report_renders_in_a_headless_browser() {
    let Some(browser) = common::chromium() else {
        can_run(Some("no chromium (scripts/deps.sh installs it)".into()));
        return;
    };
    let (_dir, _store, bundle) = signed_bundle();
    let report = std::fs::read_to_string(bundle.join("REPORT.html")).unwrap();
    // The case name is the user's: escaped, never markup.
    assert!(
        report.contains("Order 17/2026 &lt;A&amp;B&gt; &quot;x&quot;"),
        "{report}"
    );
    assert!(!report.contains("<A&B>"));
    assert!(
        !report.contains("http://")
            || report
                .matches("http://")
                .all(|_| report.contains("xmlns=\"http://www.w3.org/2000/svg\""))
    );
    assert!(!report.contains("<script") && !report.contains("<link") && !report.contains("src="));
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("disclose-REPORT.png");
    let png = common::screenshot(browser, &bundle.join("REPORT.html"), &shot, 1200, 1600);
    // A blank page of one colour compresses to a few kilobytes; text, tables and a chart do not.
    assert!(
        png.len() > 30_000,
        "{} bytes: the page looks blank",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn every_record_is_tied_to_a_proven_segment() {
    let (dir, _store, bundle) = signed_bundle();
    let rows = std::fs::read_to_string(bundle.join("record-segments.tsv")).unwrap();
    let records = std::fs::read_to_string(bundle.join("records.jsonl")).unwrap();
    assert_eq!(rows.lines().count() - 1, records.lines().count());
    let out = run(&["verify", "--bundle", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("each record tied to a segment"),
        "{}",
        text(&out.stdout)
    );
    // Whoever rewrites the mapping and every hash and signature it reaches still cannot name
    // a segment the log did not seal: here, with the sums redone but no key, the signature
    // fails; the mapping's own check fails too.
    let copy = dir.path().join("remapped");
    common::copy_dir(&bundle, &copy);
    let moved: String = rows
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 1 {
                let (_, rest) = l.split_once('\t').unwrap();
                format!("2099-01-01T00-00Z/seg-00000000-00000000.fks\t{rest}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(copy.join("record-segments.tsv"), moved).unwrap();
    let out = run(&["verify", "--bundle", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out.stdout);
    assert!(
        t.lines()
            .any(|l| l.starts_with("PROBLEM") && l.contains("no seal entry proven")),
        "{t}"
    );
}
