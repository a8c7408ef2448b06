//! Checking a bundle as a sceptic would, from its files alone: the sums, the manifest's
//! signature, the checkpoint's signature, every inclusion proof, and that every segment the
//! records came from was sealed with a fingerprint the checkpoint covers.

use super::*;
use crate::fs;
use crate::proof::keys::VerifierKey;
use crate::proof::merkle::{self, Hash};
use crate::proof::note::{self, Checkpoint};
use crate::store::audit::{self, Action};
use crate::time::{parse_time, Nanos};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What checking a bundle found: `problems` (one line each, naming the file) make it fail;
/// `notes` say what was checked and with which key.
#[derive(Debug, Clone, Default)]
pub struct BundleCheck {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

impl BundleCheck {
    fn problem(&mut self, file: &str, what: impl std::fmt::Display) {
        self.problems.push(format!("{file}: {what}"));
    }
}

/// Checks the bundle in `dir`; `public_key` is the operator's verifier key when the checker
/// has it from elsewhere (else the bundle's own `signing-key.pub` is used, and the note says
/// so).
pub fn check_bundle(dir: &Path, public_key: Option<&VerifierKey>) -> BundleCheck {
    let mut c = BundleCheck::default();
    let files = read_files(dir, &mut c);
    check_files(&files, public_key, c)
}

/// [`check_bundle`] over the bundle's files already read (name to bytes), adding to what
/// reading them found.
pub(crate) fn check_files(
    files: &BTreeMap<String, Vec<u8>>,
    public_key: Option<&VerifierKey>,
    mut c: BundleCheck,
) -> BundleCheck {
    check_sums(files, &mut c);
    let Some(manifest) = check_manifest(files, &mut c) else {
        return c;
    };
    let key = check_signature(files, public_key, &mut c);
    let Some(cp) = check_checkpoint(files, &manifest, key.as_ref(), &mut c) else {
        return c;
    };
    let sealed = check_audit(files, &cp, &mut c);
    check_coverage(files, &sealed, &mut c);
    check_records(files, &sealed, &mut c);
    check_record_segments(files, &sealed, &mut c);
    c
}

/// Every regular file of the bundle by name.
fn read_files(dir: &Path, c: &mut BundleCheck) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            c.problem(
                &dir.display().to_string(),
                format!("cannot read the bundle: {e}"),
            );
            return out;
        }
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        match fs::read(&e.path()) {
            Ok(bytes) => {
                out.insert(name, bytes);
            }
            Err(err) => c.problem(&name, format!("cannot be read: {err}")),
        }
    }
    out
}

fn text<'a>(
    files: &'a BTreeMap<String, Vec<u8>>,
    name: &str,
    c: &mut BundleCheck,
) -> Option<&'a str> {
    match files.get(name).map(|b| std::str::from_utf8(b)) {
        None => {
            c.problem(name, "missing from the bundle");
            None
        }
        Some(Err(_)) => {
            c.problem(name, "not UTF-8 text");
            None
        }
        Some(Ok(t)) => Some(t),
    }
}

/// `SHA256SUMS`: every line `<hex>  <name>`, every hash right, every other file listed.
fn check_sums(files: &BTreeMap<String, Vec<u8>>, c: &mut BundleCheck) {
    let Some(sums) = text(files, SUMS, c) else {
        return;
    };
    let mut listed = BTreeSet::new();
    for (i, line) in sums.lines().enumerate() {
        let Some((hex, name)) = line.split_once("  ") else {
            c.problem(SUMS, format!("line {} is not '<sha256>  <name>'", i + 1));
            continue;
        };
        listed.insert(name.to_string());
        match files.get(name) {
            None => c.problem(SUMS, format!("lists {name}, which is not in the bundle")),
            Some(bytes) if sha256_hex(bytes) != hex => c.problem(
                name,
                format!(
                    "its SHA-256 is not the one {SUMS} states (the file or {SUMS} was changed)"
                ),
            ),
            Some(_) => {}
        }
    }
    if !sums.ends_with('\n') {
        c.problem(SUMS, "does not end with a newline");
    }
    for name in files.keys().filter(|n| *n != SUMS && !listed.contains(*n)) {
        c.problem(name, format!("not listed in {SUMS}"));
    }
}

/// `manifest.json`: well-formed, of this format, and every file's hash right.
fn check_manifest(files: &BTreeMap<String, Vec<u8>>, c: &mut BundleCheck) -> Option<Value> {
    let text = text(files, MANIFEST, c)?;
    let m: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            c.problem(MANIFEST, format!("not JSON: {e}"));
            return None;
        }
    };
    if m["format"] != FORMAT {
        c.problem(MANIFEST, format!("format is not {FORMAT}"));
    }
    let Some(sums) = m["files"].as_object() else {
        c.problem(MANIFEST, "no 'files' object");
        return None;
    };
    let required = [
        RECORDS_CSV,
        RECORDS_JSONL,
        LEASES,
        COVERAGE,
        POLICY,
        AUDIT,
        CHECKPOINT,
        REPORT,
    ];
    for name in required {
        if !sums.contains_key(name) {
            c.problem(MANIFEST, format!("does not list {name}"));
        }
    }
    for (name, hex) in sums {
        match files.get(name) {
            None => c.problem(name, format!("listed in {MANIFEST} but missing")),
            Some(bytes) if Some(sha256_hex(bytes).as_str()) != hex.as_str() => c.problem(
                name,
                format!("its SHA-256 is not the one {MANIFEST} states (the file was changed)"),
            ),
            Some(_) => {}
        }
    }
    let unlisted = files
        .keys()
        .filter(|n| ![MANIFEST, SIGNATURE, SUMS].contains(&n.as_str()) && !sums.contains_key(*n));
    for name in unlisted {
        c.problem(name, format!("not listed in {MANIFEST}"));
    }
    Some(m)
}

/// `manifest.sig` over `manifest.json`'s bytes; returns the key the bundle is checked with.
fn check_signature(
    files: &BTreeMap<String, Vec<u8>>,
    given: Option<&VerifierKey>,
    c: &mut BundleCheck,
) -> Option<VerifierKey> {
    let bundled = files
        .get(PUBLIC_KEY)
        .map(|b| VerifierKey::parse(&String::from_utf8_lossy(b)).map_err(|e| e.to_string()));
    let (key, whose) = match (given, bundled) {
        (Some(k), _) => (k.clone(), "the key given with --public-key"),
        (None, Some(Ok(k))) => (k, "the bundle's own signing-key.pub"),
        (None, Some(Err(e))) => {
            c.problem(PUBLIC_KEY, format!("not a verifier key: {e}"));
            return None;
        }
        (None, None) => {
            if files.contains_key(SIGNATURE) {
                c.problem(PUBLIC_KEY, "missing: the signature cannot be checked");
            } else {
                c.notes.push(
                    "the bundle is unsigned: its sums and proofs can hold together, but nothing \
                     ties it to the operator's key"
                        .into(),
                );
            }
            return None;
        }
    };
    let Some(sig) = files.get(SIGNATURE) else {
        c.problem(SIGNATURE, format!("missing, but {whose} was to check it"));
        return Some(key);
    };
    let sig = String::from_utf8_lossy(sig);
    let raw = BASE64
        .decode(sig.trim_end_matches('\n'))
        .unwrap_or_default();
    let manifest = files.get(MANIFEST).map(Vec::as_slice).unwrap_or_default();
    if key.verify(manifest, &raw) {
        c.notes.push(format!(
            "the signature on {MANIFEST} verified with {whose} ({})",
            key.name()
        ));
        if given.is_none() {
            c.notes.push("note: a bundle's own key shows only that it is whole; give --public-key (the operator's key, obtained elsewhere) to show who signed it".into());
        }
    } else {
        c.problem(
            SIGNATURE,
            format!("the signature on {MANIFEST} does not verify with {whose}"),
        );
    }
    Some(key)
}

/// `checkpoint.txt`: the manifest's, well-formed, and signed by the key when there is one.
fn check_checkpoint(
    files: &BTreeMap<String, Vec<u8>>,
    manifest: &Value,
    key: Option<&VerifierKey>,
    c: &mut BundleCheck,
) -> Option<Checkpoint> {
    let text = text(files, CHECKPOINT, c)?;
    if manifest["checkpoint"].as_str() != Some(text) {
        c.problem(
            CHECKPOINT,
            format!("is not the checkpoint {MANIFEST} states"),
        );
    }
    let signed = text.contains("\n\n");
    let parsed = match (signed, key) {
        (true, Some(k)) => note::open(text, k).map_err(|e| e.to_string()),
        (true, None) => Err("signed, but there is no key to check it with".into()),
        (false, _) => Checkpoint::parse(text).map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(cp) => {
            if manifest["store_origin"].as_str() != Some(cp.origin.as_str()) {
                c.problem(
                    CHECKPOINT,
                    format!("is for {}, not the manifest's store", cp.origin),
                );
            }
            if signed {
                c.notes.push(format!(
                    "the checkpoint (size {}) is signed by {}",
                    cp.size,
                    key.map(|k| k.name()).unwrap_or("")
                ));
            } else {
                c.notes
                    .push(format!("the checkpoint (size {}) is unsigned", cp.size));
            }
            Some(cp)
        }
        Err(e) => {
            c.problem(CHECKPOINT, e);
            None
        }
    }
}

/// A sealed segment as its audit entry states it: the time its records span.
struct Sealed {
    first: Nanos,
    last: Nanos,
    records: u64,
}

/// `audit.jsonl`: each line's proof against the checkpoint; returns the seal and recover
/// entries by segment path.
fn check_audit(
    files: &BTreeMap<String, Vec<u8>>,
    cp: &Checkpoint,
    c: &mut BundleCheck,
) -> BTreeMap<String, Sealed> {
    let mut sealed = BTreeMap::new();
    let Some(text) = text(files, AUDIT, c) else {
        return sealed;
    };
    let mut verified = 0usize;
    for (i, line) in text.lines().enumerate() {
        let at = format!("line {}", i + 1);
        match check_audit_line(line, cp) {
            Ok(Some((path, s))) => {
                verified += 1;
                sealed.insert(path, s);
            }
            Ok(None) => verified += 1,
            Err(why) => c.problem(AUDIT, format!("{at}: {why}")),
        }
    }
    c.notes.push(format!(
        "{verified} audit entries verified against the checkpoint by their inclusion proofs"
    ));
    sealed
}

fn check_audit_line(line: &str, cp: &Checkpoint) -> Result<Option<(String, Sealed)>, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let text = v["text"].as_str().ok_or("no 'text'")?;
    let number = v["line"].as_u64().ok_or("no 'line'")?;
    let index = v["leaf_index"].as_u64().ok_or("no 'leaf_index'")?;
    if number == 0 || index != number - 1 {
        return Err("leaf_index is not line - 1".into());
    }
    if v["tree_size"].as_u64() != Some(cp.size) {
        return Err("tree_size is not the checkpoint's".into());
    }
    let proof: Vec<Hash> = v["proof"]
        .as_array()
        .ok_or("no 'proof'")?
        .iter()
        .map(|h| {
            let raw = BASE64.decode(h.as_str().unwrap_or("")).unwrap_or_default();
            <Hash>::try_from(raw.as_slice()).map_err(|_| "a proof hash is not 32 bytes".to_string())
        })
        .collect::<Result<_, _>>()?;
    let leaf = merkle::leaf_hash(text.as_bytes());
    if !merkle::verify_inclusion(index, cp.size, &leaf, &proof, &cp.root) {
        return Err(format!(
            "audit line {number}: its inclusion proof does not verify against the checkpoint"
        ));
    }
    let entry = audit::parse_line(text).map_err(|e| format!("audit line {number}: {e}"))?;
    let seg = entry.record.segment.as_ref();
    if v["action"].as_str() != Some(entry.record.action.as_str())
        || v["segment"].as_str() != seg.map(|s| s.path.as_str())
        || v["sha256"].as_str() != seg.map(|s| s.sha256.as_str())
    {
        return Err(format!(
            "audit line {number}: action, segment or sha256 differ from its text"
        ));
    }
    Ok(match (entry.record.action, seg) {
        (Action::Seal | Action::Recover, Some(s)) => Some((
            s.path.clone(),
            Sealed {
                first: s.first,
                last: s.last,
                records: s.records,
            },
        )),
        _ => None,
    })
}

/// Every segment of `coverage.tsv` has its seal (or recover) entry in `audit.jsonl`.
fn check_coverage(
    files: &BTreeMap<String, Vec<u8>>,
    sealed: &BTreeMap<String, Sealed>,
    c: &mut BundleCheck,
) {
    let Some(text) = text(files, COVERAGE, c) else {
        return;
    };
    let mut lines = text.lines();
    if lines.next() != Some(COVERAGE_HEADER) {
        c.problem(COVERAGE, "the header row is not flowkeep's");
    }
    for (i, row) in lines.enumerate() {
        let path = row.split('\t').next().unwrap_or("");
        if !sealed.contains_key(path) {
            c.problem(
                COVERAGE,
                format!(
                    "row {}: segment {path} has no seal entry (with its SHA-256) in {AUDIT}",
                    i + 2
                ),
            );
        }
    }
}

/// Every record lies within a sealed segment's time span, and the CSV and JSON lines hold as
/// many records.
fn check_records(
    files: &BTreeMap<String, Vec<u8>>,
    sealed: &BTreeMap<String, Sealed>,
    c: &mut BundleCheck,
) {
    let (Some(jsonl), Some(csv)) = (text(files, RECORDS_JSONL, c), text(files, RECORDS_CSV, c))
    else {
        return;
    };
    let mut n = 0usize;
    for (i, line) in jsonl.lines().enumerate() {
        n += 1;
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                c.problem(RECORDS_JSONL, format!("line {}: not JSON: {e}", i + 1));
                continue;
            }
        };
        let t = |k: &str| v[k].as_str().and_then(|s| parse_time(s).ok());
        let (Some(first), Some(last)) = (t("first"), t("last")) else {
            c.problem(RECORDS_JSONL, format!("line {}: no first/last time", i + 1));
            continue;
        };
        if !sealed.values().any(|s| s.first <= first && last <= s.last) {
            c.problem(
                RECORDS_JSONL,
                format!("line {}: in no sealed segment's time span", i + 1),
            );
        }
    }
    let rows = csv.lines().count().saturating_sub(1);
    if rows != n {
        c.problem(
            RECORDS_CSV,
            format!("{rows} record(s), but {RECORDS_JSONL} has {n}"),
        );
    }
    c.notes.push(format!(
        "{n} record(s), each within a segment sealed in the audit log"
    ));
}

/// `record-segments.tsv` names, for exactly the records of `records.jsonl`, a segment whose
/// seal (with its SHA-256) `audit.jsonl` proves, whose time span holds the record, and which
/// was sealed with at least as many records as the bundle takes from it.
fn check_record_segments(
    files: &BTreeMap<String, Vec<u8>>,
    sealed: &BTreeMap<String, Sealed>,
    c: &mut BundleCheck,
) {
    let (Some(jsonl), Some(tsv)) = (
        text(files, RECORDS_JSONL, c),
        text(files, RECORD_SEGMENTS, c),
    ) else {
        return;
    };
    let mut wanted: BTreeMap<String, usize> = BTreeMap::new();
    for line in jsonl.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue; // check_records names it
        };
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let n = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
        let key = record_key(
            &s("first"),
            &s("last"),
            n("proto"),
            &s("src"),
            n("sport"),
            &s("dst"),
            n("dport"),
        );
        *wanted.entry(key).or_default() += 1;
    }
    let mut lines = tsv.lines();
    if lines.next() != Some(RECORD_SEGMENTS_HEADER) {
        c.problem(RECORD_SEGMENTS, "the header row is not flowkeep's");
    }
    let mut taken: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, row) in lines.enumerate() {
        let at = format!("row {}", i + 2);
        let Some((segment, key)) = row.split_once('\t') else {
            c.problem(RECORD_SEGMENTS, format!("{at}: not a row"));
            continue;
        };
        match wanted.get_mut(key) {
            Some(n) if *n > 0 => *n -= 1,
            _ => c.problem(
                RECORD_SEGMENTS,
                format!("{at}: a record {RECORDS_JSONL} does not hold"),
            ),
        }
        let Some(seal) = sealed.get(segment) else {
            c.problem(
                RECORD_SEGMENTS,
                format!("{at}: segment {segment} has no seal entry proven in {AUDIT} (not sealed when the bundle was made?)"),
            );
            continue;
        };
        let times: Vec<Nanos> = key
            .split('\t')
            .take(2)
            .filter_map(|t| parse_time(t).ok())
            .collect();
        if times.len() != 2 || times[0] < seal.first || times[1] > seal.last {
            c.problem(
                RECORD_SEGMENTS,
                format!("{at}: outside segment {segment}'s sealed time span"),
            );
        }
        let n = taken.entry(segment).or_default();
        *n += 1;
        if *n == seal.records + 1 {
            c.problem(
                RECORD_SEGMENTS,
                format!(
                    "more records from {segment} than it was sealed with ({})",
                    seal.records
                ),
            );
        }
    }
    let missing: usize = wanted.values().sum();
    if missing > 0 {
        c.problem(
            RECORD_SEGMENTS,
            format!("{missing} record(s) of {RECORDS_JSONL} are in no row"),
        );
    }
    c.notes.push(format!(
        "each record tied to a segment whose seal and SHA-256 the audit log proves ({} segment(s))",
        taken.len()
    ));
}
