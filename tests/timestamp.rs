//! A trusted time for a checkpoint, as the README's "Proving it" says to get one: an RFC 3161
//! timestamp from `openssl ts`, here from a local time-stamping authority made for the test
//! (a CA and a TSA certificate with the timeStamping usage), so no network is needed.

mod common;

use common::{can_run, fixtures, run, text};
use std::path::Path;
use std::process::Command;

/// Runs openssl in `dir`; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {}: {}{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

const TSA_CONFIG: &str = "\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = .
serial = ./serial
crypto_device = builtin
signer_cert = ./tsa.crt
certs = ./ca.crt
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
[ tsa_ext ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
";

/// A CA, and a TSA certificate it signed, in `dir`.
fn local_tsa(dir: &Path) {
    std::fs::write(dir.join("ts.cnf"), TSA_CONFIG).unwrap();
    std::fs::write(dir.join("serial"), "01\n").unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=test CA",
        "-days",
        "2",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "tsa.key",
        "-out",
        "tsa.csr",
        "-subj",
        "/CN=test TSA",
    ]);
    openssl(dir, &csr);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "tsa.crt",
            "-days",
            "2",
            "-extfile",
            "ts.cnf",
            "-extensions",
            "tsa_ext",
        ],
    );
}

fn verifies(dir: &Path, data: &str) -> bool {
    Command::new("openssl")
        .args(["ts", "-verify", "-in", "checkpoint.tsr", "-data", data])
        .args(["-CAfile", "ca.crt", "-untrusted", "tsa.crt"])
        .current_dir(dir)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn a_checkpoint_is_stamped_by_an_rfc3161_tsa_and_a_changed_one_is_not_covered() {
    let has_openssl = Command::new("openssl").arg("version").output().is_ok();
    if !can_run((!has_openssl).then(|| "openssl is not installed".to_string())) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let store = dir.join("store");
    let out = common::replay(&fixtures().join("nDPI__iphone.pcap"), &store, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = dir.join("k");
    assert!(run(&["key", "generate", "--out", key.to_str().unwrap()])
        .status
        .success());
    let out = run(&[
        "checkpoint",
        "--store",
        store.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(dir.join("checkpoint.txt"), &out.stdout).unwrap();

    local_tsa(dir);
    // What the operator runs, then what the TSA does with the query.
    openssl(
        dir,
        &[
            "ts",
            "-query",
            "-data",
            "checkpoint.txt",
            "-sha256",
            "-cert",
            "-out",
            "checkpoint.tsq",
        ],
    );
    openssl(
        dir,
        &[
            "ts",
            "-reply",
            "-config",
            "ts.cnf",
            "-queryfile",
            "checkpoint.tsq",
            "-out",
            "checkpoint.tsr",
        ],
    );
    assert!(verifies(dir, "checkpoint.txt"), "the stamp verifies");
    let stamp = openssl(dir, &["ts", "-reply", "-in", "checkpoint.tsr", "-text"]);
    assert!(stamp.contains("Time stamp:"), "{stamp}");
    // The stamp covers those bytes only.
    let mut changed = std::fs::read(dir.join("checkpoint.txt")).unwrap();
    changed[0] ^= 1;
    std::fs::write(dir.join("changed.txt"), changed).unwrap();
    assert!(
        !verifies(dir, "changed.txt"),
        "a changed checkpoint is not covered"
    );
}
