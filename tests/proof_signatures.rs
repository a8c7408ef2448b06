//! Signed checkpoints checked by an Ed25519 that is not ours: pyca/cryptography (OpenSSL's
//! Ed25519, installed by scripts/deps.sh into /opt/flowkeep-venv), with the signed-note
//! format parsed by a few lines of Python written from the C2SP spec, not from our code. Both
//! ways: Python verifies what flowkeep signs, flowkeep opens what Python signs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::can_run;
use flowkeep::proof::keys::{generate, SigningKey, VerifierKey};
use flowkeep::proof::note::{open, sign, split_notes, Checkpoint, NoteError};

const DEFAULT_PYTHON: &str = "/opt/flowkeep-venv/bin/python";

/// The verifier: argv = verifier key file, then note files; prints one JSON line per note.
const VERIFY: &str = r#"
import base64, hashlib, json, sys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

name, key_id_hex, b64 = open(sys.argv[1]).read().rstrip("\n").split("+", 2)  # base64 may hold "+"
raw = base64.b64decode(b64, validate=True)
assert raw[0] == 1 and len(raw) == 33, "not an Ed25519 verifier key"
key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
assert key_id.hex() == key_id_hex, "key ID does not match"
public = Ed25519PublicKey.from_public_bytes(raw[1:])

for path in sys.argv[2:]:
    note = open(path, "rb").read()
    split = note.rindex(b"\n\n")
    text, sigs = note[: split + 1], note[split + 2 :]
    result = {"valid": 0, "invalid": 0}
    for line in sigs.decode().split("\n")[:-1]:
        assert line.startswith("\u2014 "), line
        signer, sig64 = line[2:].split(" ")
        sig = base64.b64decode(sig64, validate=True)
        if signer != name or sig[:4] != key_id:
            continue
        try:
            public.verify(sig[4:], text)
            result["valid"] += 1
        except InvalidSignature:
            result["invalid"] += 1
    origin, size, root = text.decode().split("\n")[:3]
    result.update(origin=origin, size=int(size), root=base64.b64decode(root).hex())
    print(json.dumps(result))
"#;

/// The signer: argv = key name, origin, size, root hex; prints the private key, the verifier
/// key and the signed checkpoint, as JSON.
const SIGN: &str = r#"
import base64, hashlib, json, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

name, origin, size, root = sys.argv[1:]
private = Ed25519PrivateKey.generate()
raw = serialization.Encoding.Raw
seed = private.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
public = b"\x01" + private.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
key_id = hashlib.sha256(name.encode() + b"\n" + public).digest()[:4]
private64 = base64.b64encode(b"\x01" + seed).decode()
body = f"{origin}\n{size}\n{base64.b64encode(bytes.fromhex(root)).decode()}\n"
sig = base64.b64encode(key_id + private.sign(body.encode())).decode()
print(json.dumps({
    "private": f"PRIVATE+KEY+{name}+{key_id.hex()}+{private64}",
    "verifier": f"{name}+{key_id.hex()}+{base64.b64encode(public).decode()}",
    "note": f"{body}\n\u2014 {name} {sig}\n",
}))
"#;

/// A Python with pyca/cryptography, or why there is none.
fn python() -> Result<PathBuf, String> {
    let python =
        PathBuf::from(std::env::var_os("FLOWKEEP_PYTHON").unwrap_or_else(|| DEFAULT_PYTHON.into()));
    let ok = Command::new(&python)
        .args([
            "-c",
            "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Ok(python)
    } else {
        Err(format!(
            "no Python with cryptography at {} (set FLOWKEEP_PYTHON, or run scripts/deps.sh)",
            python.display()
        ))
    }
}

fn run(python: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn checkpoint(size: u64) -> Checkpoint {
    let mut root = [0u8; 32];
    for (i, b) in root.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(size as u8);
    }
    Checkpoint {
        origin: "flowkeep.example/store-a".into(),
        size,
        root,
        extensions: vec![],
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn python_verifies_what_flowkeep_signs() {
    let python = python();
    if !can_run(python.as_ref().err().cloned()) {
        return;
    }
    let python = python.unwrap();
    let d = tempfile::tempdir().unwrap();
    let (log, log_v) = generate("flowkeep.example/store-a").unwrap();
    let (witness, _) = generate("witness.example").unwrap();
    std::fs::write(d.path().join("key.pub"), format!("{log_v}\n")).unwrap();

    // A plain checkpoint; one cosigned by another key first; one altered after signing.
    let plain = checkpoint(0).sign(&log);
    let body = checkpoint(123_456_789).to_note_body();
    let cosigned = format!(
        "{}{}",
        sign(&body, &witness),
        sign(&body, &log).rsplit("\n\n").next().unwrap()
    );
    let altered = checkpoint(7).sign(&log).replacen("\n7\n", "\n8\n", 1);
    let mut args = vec![d.path().join("key.pub")];
    for (name, note) in [
        ("plain", &plain),
        ("cosigned", &cosigned),
        ("altered", &altered),
    ] {
        args.push(d.path().join(name));
        std::fs::write(args.last().unwrap(), note).unwrap();
    }
    let args: Vec<&str> = args.iter().map(|p| p.to_str().unwrap()).collect();
    let lines: Vec<serde_json::Value> = run(&python, VERIFY, &args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let expect = |i: usize, c: &Checkpoint, valid: u64, invalid: u64| {
        let l = &lines[i];
        assert_eq!(
            (l["valid"].as_u64(), l["invalid"].as_u64()),
            (Some(valid), Some(invalid)),
            "{l}"
        );
        assert_eq!(l["origin"], c.origin.as_str());
        assert_eq!(l["root"], hex(&c.root).as_str());
    };
    expect(0, &checkpoint(0), 1, 0);
    expect(1, &checkpoint(123_456_789), 1, 0);
    assert_eq!(lines[1]["size"], 123_456_789);
    expect(2, &checkpoint(7), 0, 1);
    assert_eq!(lines[2]["size"], 8);
    // And ours agrees on all three.
    assert_eq!(open(&plain, &log_v).unwrap(), checkpoint(0));
    assert_eq!(open(&cosigned, &log_v).unwrap(), checkpoint(123_456_789));
    assert!(matches!(
        open(&altered, &log_v),
        Err(NoteError::BadSignature { .. })
    ));
}

#[test]
fn flowkeep_opens_what_python_signs() {
    let python = python();
    if !can_run(python.as_ref().err().cloned()) {
        return;
    }
    let python = python.unwrap();
    let mut log = String::new();
    let mut verifier = None;
    for size in [0u64, 1, 1 << 40] {
        let c = checkpoint(size);
        let out: serde_json::Value = serde_json::from_str(&run(
            &python,
            SIGN,
            &[
                "py.example/log",
                &c.origin,
                &size.to_string(),
                &hex(&c.root),
            ],
        ))
        .unwrap();
        let v = VerifierKey::parse(out["verifier"].as_str().unwrap()).unwrap();
        let note = out["note"].as_str().unwrap();
        assert_eq!(open(note, &v).unwrap(), c);
        // Ed25519 is deterministic: with Python's key, our signature is Python's, byte for byte.
        let s = SigningKey::parse(out["private"].as_str().unwrap()).unwrap();
        assert_eq!(s.verifier(), v);
        assert_eq!(c.sign(&s), note);
        log.push_str(note);
        verifier = Some(v);
    }
    // Appended, the last key opens only the last note: each run had a key of its own.
    let v = verifier.unwrap();
    let notes = split_notes(&log);
    assert_eq!(notes.len(), 3);
    assert!(matches!(
        open(notes[0], &v),
        Err(NoteError::NoSignature { .. })
    ));
    assert_eq!(open(notes[2], &v).unwrap().size, 1 << 40);
}
