//! Writing a bundle: every file into a new directory under a temporary name, renamed into
//! place at the end, so that a bundle either is whole or is not there.

use super::report::{self, Findings, Pair};
use super::*;
use crate::fs;
use crate::proof::keys::SigningKey;
use crate::proof::merkle::{self, Tree};
use crate::proof::note::Checkpoint;
use crate::query::attribution::observation_json;
use crate::query::{self, Filter, Format, Printer};
use crate::record::dhcp::LeaseObservation;
use crate::record::FlowRecord;
use crate::store::audit::{self, Action, AuditEntry, AuditLine};
use crate::store::segment::CAPTURE_MACS_NOT_STORED;
use crate::store::{SegmentInfo, Store};
use crate::time::{format_rfc3339, parse_time, Nanos};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// What is asked, and by whom: the library is handed the wall clock's time and the user.
pub struct Request {
    pub case: String,
    pub since: Nanos,
    pub until: Nanos,
    pub filter: Filter,
    /// When it was asked (the wall clock, read by the caller).
    pub asked_at: Nanos,
    /// Who asked: `uid=N(user)`.
    pub asked_by: String,
    pub signing_key: Option<SigningKey>,
}

/// What a written bundle holds, for the caller to print.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub records: u64,
    pub leases: usize,
    pub segments: usize,
    pub audit_entries: usize,
    pub checkpoint_size: u64,
    pub signed: bool,
    /// Parts of the store that could not be read (the answer may be incomplete).
    pub scan_problems: Vec<String>,
}

/// Writes the bundle for `req` to the new directory `out`.
pub fn write_bundle(store: &Store, req: &Request, out: &Path) -> Result<Summary, DiscloseError> {
    if req.until <= req.since {
        return Err(DiscloseError::EmptyRange);
    }
    if fs::symlink_metadata(out).is_ok() {
        return Err(DiscloseError::Exists(out.to_path_buf()));
    }
    let tmp = temporary_name(out);
    fs::create_dir(&tmp).map_err(|source| DiscloseError::Io {
        path: tmp.clone(),
        source,
    })?;
    let files = match contents(store, req) {
        Ok(f) => f,
        Err(e) => {
            let _ = fs::remove_dir(&tmp);
            return Err(e);
        }
    };
    let result = write_files(&tmp, &files.0).and_then(|()| {
        if fs::symlink_metadata(out).is_ok() {
            return Err(DiscloseError::Exists(out.to_path_buf()));
        }
        fs::rename(&tmp, out).map_err(|source| DiscloseError::Io {
            path: out.to_path_buf(),
            source,
        })?;
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
        fs::sync_dir(parent.unwrap_or(Path::new("."))).map_err(|source| DiscloseError::Io {
            path: out.to_path_buf(),
            source,
        })
    });
    if let Err(e) = result {
        for (name, _) in &files.0 {
            let _ = fs::remove_file(&tmp.join(name));
        }
        let _ = fs::remove_dir(&tmp);
        return Err(e);
    }
    Ok(files.1)
}

/// `DIR/.NAME.partial`, beside the bundle (so that the rename stays in one file system).
fn temporary_name(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    out.with_file_name(format!(".{name}.partial"))
}

fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), DiscloseError> {
    for (name, bytes) in files {
        let path = dir.join(name);
        let io = |source| DiscloseError::Io {
            path: path.clone(),
            source,
        };
        let f = fs::create_new_with_mode(&path, 0o644).map_err(io)?;
        fs::write_all(&f, bytes)
            .and_then(|()| fs::sync(&f))
            .map_err(io)?;
    }
    fs::sync_dir(dir).map_err(|source| DiscloseError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// The query's answer printed in one of the formats `flowkeep query` prints.
fn printed(store: &Store, req: &Request, format: Format) -> Result<Vec<u8>, DiscloseError> {
    let mut p = Printer::new(format, Vec::new());
    query::print_matching(store, Some(req.since), Some(req.until), &req.filter, &mut p)?;
    p.finish().map_err(|e| DiscloseError::Query(e.into()))
}

/// A bundle's files by name, in the order they are written.
type Files = Vec<(String, Vec<u8>)>;

/// Every file of the bundle, in order, with the summary.
fn contents(store: &Store, req: &Request) -> Result<(Files, Summary), DiscloseError> {
    let mut files = Files::new();
    files.push((RECORDS_CSV.into(), printed(store, req, Format::Csv)?));
    files.push((RECORDS_JSONL.into(), printed(store, req, Format::Jsonl)?));
    let mut findings = gather(store, req)?;
    let leases = lease_observations(store, req, &findings.addresses)?;
    files.push((LEASES.into(), jsonl(leases.iter().map(observation_json))));
    let segments = covering(store, req)?;
    files.push((COVERAGE.into(), coverage_tsv(store, &segments).into_bytes()));
    files.push((RECORD_SEGMENTS.into(), record_segments(store, req)?));
    let (cp, tree, lines) = checkpoint_and_log(store)?;
    let entries = selected_entries(store, req, &segments, &lines);
    files.push((
        POLICY.into(),
        policy_text(req, &segments, &lines).into_bytes(),
    ));
    files.push((AUDIT.into(), audit_jsonl(&entries, &tree, &cp)?));
    let checkpoint = match &req.signing_key {
        Some(key) => cp.sign(key),
        None => cp.to_note_body(),
    };
    files.push((CHECKPOINT.into(), checkpoint.clone().into_bytes()));
    findings.leases = leases.len();
    findings.segments = segments.clone();
    findings.audit_entries = entries.len();
    findings.holds = entries
        .iter()
        .filter(|(_, e)| matches!(e.record.action, Action::HoldAdd | Action::HoldRelease))
        .map(|(l, e)| {
            format!(
                "audit line {}: {} at {}: {}",
                l.number,
                e.record.action,
                format_rfc3339(e.record.time),
                e.record.reason
            )
        })
        .collect();
    findings.checkpoint = checkpoint.clone();
    findings.signed = req.signing_key.is_some();
    files.push((REPORT.into(), report::html(req, &findings).into_bytes()));
    if let Some(key) = &req.signing_key {
        files.push((
            PUBLIC_KEY.into(),
            format!("{}\n", key.verifier()).into_bytes(),
        ));
    }
    let manifest = manifest(req, &cp, &checkpoint, &files);
    files.push((MANIFEST.into(), manifest.clone()));
    if let Some(key) = &req.signing_key {
        let sig = BASE64.encode(key.sign(&manifest));
        files.push((SIGNATURE.into(), format!("{sig}\n").into_bytes()));
    }
    let sums: String = files
        .iter()
        .map(|(name, bytes)| format!("{}  {name}\n", sha256_hex(bytes)))
        .collect();
    files.push((SUMS.into(), sums.into_bytes()));
    let summary = Summary {
        records: findings.records,
        leases: leases.len(),
        segments: segments.len(),
        audit_entries: entries.len(),
        checkpoint_size: cp.size,
        signed: req.signing_key.is_some(),
        scan_problems: findings.scan_problems.clone(),
    };
    Ok((files, summary))
}

fn jsonl(values: impl Iterator<Item = Value>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(v.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

fn manifest(
    req: &Request,
    cp: &Checkpoint,
    checkpoint: &str,
    files: &[(String, Vec<u8>)],
) -> Vec<u8> {
    let sums: serde_json::Map<String, Value> = files
        .iter()
        .map(|(name, bytes)| (name.clone(), Value::String(sha256_hex(bytes))))
        .collect();
    let m = json!({
        "format": FORMAT,
        "case": req.case,
        "query": {
            "since": format_rfc3339(req.since),
            "until": format_rfc3339(req.until),
            "expression": req.filter.text(),
        },
        "asked_at": format_rfc3339(req.asked_at),
        "asked_by": req.asked_by,
        "flowkeep_version": env!("CARGO_PKG_VERSION"),
        "store_origin": cp.origin,
        "checkpoint": checkpoint,
        "signed": req.signing_key.is_some(),
        "files": sums,
    });
    let mut text = serde_json::to_string_pretty(&m).unwrap_or_default();
    text.push('\n');
    text.into_bytes()
}

/// One pass over the matching records for the report: counts, pairs, bytes over time and the
/// addresses whose leases go in the bundle.
fn gather(store: &Store, req: &Request) -> Result<Findings, DiscloseError> {
    let mut f = Findings::new(req.since, req.until);
    let mut pairs: HashMap<(IpAddr, IpAddr), Pair> = HashMap::new();
    let stats = query::scan_matching(
        store,
        Some(req.since),
        Some(req.until),
        &req.filter,
        |_, r: &FlowRecord| {
            f.records += 1;
            // 0.0.0.0 and :: name no one: a lease observation of them names no address.
            f.addresses
                .extend([r.src, r.dst].into_iter().filter(|a| !a.is_unspecified()));
            let bytes = r.bytes.saturating_add(r.rev_bytes);
            f.add_bytes(r.first, r.last, bytes);
            let key = if r.src <= r.dst {
                (r.src, r.dst)
            } else {
                (r.dst, r.src)
            };
            let p = pairs.entry(key).or_insert_with(|| Pair {
                a: key.0,
                b: key.1,
                ..Pair::default()
            });
            p.flows += 1;
            p.bytes = p.bytes.saturating_add(bytes);
            p.packets = p
                .packets
                .saturating_add(r.packets.saturating_add(r.rev_packets));
            ControlFlow::Continue(())
        },
    )?;
    f.scan_problems = stats.scan.problems.iter().map(|p| p.to_string()).collect();
    let mut pairs: Vec<Pair> = pairs.into_values().collect();
    pairs.sort_by(|x, y| {
        y.bytes
            .cmp(&x.bytes)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    f.pair_count = pairs.len();
    pairs.truncate(10);
    f.top_pairs = pairs;
    Ok(f)
}

/// The lease observations of the records' addresses: those inside the range, and for each
/// address the last one before it (which says who held the address when the range began).
fn lease_observations(
    store: &Store,
    req: &Request,
    addresses: &BTreeSet<IpAddr>,
) -> Result<Vec<LeaseObservation>, DiscloseError> {
    let mut inside = Vec::new();
    let mut before: BTreeMap<IpAddr, LeaseObservation> = BTreeMap::new();
    store.scan_leases(None, Some(req.until), |l| {
        if addresses.contains(&l.address) {
            if l.time >= req.since {
                inside.push(l.clone());
            } else if before.get(&l.address).is_none_or(|b| b.time <= l.time) {
                before.insert(l.address, l.clone());
            }
        }
        ControlFlow::Continue(())
    })?;
    let mut all: Vec<LeaseObservation> = before.into_values().chain(inside).collect();
    all.sort_by_key(|l| l.time);
    Ok(all)
}

/// The sealed segments whose partition overlaps the range.
fn covering(store: &Store, req: &Request) -> Result<Vec<SegmentInfo>, DiscloseError> {
    Ok(store
        .segments()?
        .into_iter()
        .filter(|s| s.partition_end > req.since && s.partition_start < req.until)
        .collect())
}

fn coverage_tsv(store: &Store, segments: &[SegmentInfo]) -> String {
    let mut out = format!("{COVERAGE_HEADER}\n");
    for s in segments {
        let c = &s.capture;
        let row = [
            audit::relative(store.dir(), &s.path),
            format_rfc3339(s.first),
            format_rfc3339(s.last),
            s.interfaces.join(","),
            c.frames.to_string(),
            c.kernel_drops.to_string(),
            c.interface_drops.to_string(),
            c.malformed.to_string(),
            c.flow_evictions.to_string(),
            c.records_not_stored.to_string(),
            if c.flags & CAPTURE_MACS_NOT_STORED != 0 {
                "no"
            } else {
                "yes"
            }
            .to_string(),
        ];
        let row: Vec<String> = row.iter().map(|v| tsv_field(v)).collect();
        out.push_str(&row.join("\t"));
        out.push('\n');
    }
    out
}

/// A value with its tabs, newlines and backslashes escaped, as the audit log does.
/// `record-segments.tsv`: for every matching record, the segment (path relative to the store)
/// it was read from, so that `verify --bundle` can tie each record to a segment whose seal, and
/// SHA-256, the audit log proves. Rows sorted, so that the file depends only on the answer.
fn record_segments(store: &Store, req: &Request) -> Result<Vec<u8>, DiscloseError> {
    let required = req.filter.required_addresses();
    let mut rows = Vec::new();
    store.scan_where_in(
        Some(req.since),
        Some(req.until),
        required.as_deref(),
        &req.filter,
        |path, _, _, r| {
            let key = record_key(
                &format_rfc3339(r.first),
                &format_rfc3339(r.last),
                u64::from(r.proto),
                &r.src.to_string(),
                u64::from(r.sport),
                &r.dst.to_string(),
                u64::from(r.dport),
            );
            rows.push(format!(
                "{}\t{key}\n",
                tsv_field(&audit::relative(store.dir(), path))
            ));
            ControlFlow::Continue(())
        },
    )?;
    rows.sort();
    let mut out = format!("{RECORD_SEGMENTS_HEADER}\n");
    rows.iter().for_each(|r| out.push_str(r));
    Ok(out.into_bytes())
}

fn tsv_field(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

/// The store's checkpoint, the tree it is the head of, and the log's lines up to its size
/// (entries appended meanwhile are left out: the checkpoint does not cover them).
fn checkpoint_and_log(store: &Store) -> Result<(Checkpoint, Tree, Vec<AuditLine>), DiscloseError> {
    let cp = store.checkpoint()?;
    let leaves = audit::leaf_hashes(store.dir()).map_err(crate::store::StoreError::from)?;
    let mut lines = audit::read_lines(store.dir()).map_err(crate::store::StoreError::from)?;
    let size = usize::try_from(cp.size).unwrap_or(usize::MAX);
    if leaves.len() < size || lines.len() < size {
        return Err(DiscloseError::Refused(
            "the audit log lost entries while the bundle was being written".into(),
        ));
    }
    let tree = Tree::from_leaves(&leaves[..size]);
    if tree.root() != cp.root {
        return Err(DiscloseError::Refused(
            "the audit log changed while the bundle was being written".into(),
        ));
    }
    lines.truncate(size);
    Ok((cp, tree, lines))
}

/// A hold's `from=` and `until=` out of its audit entry's reason.
fn hold_range(reason: &str) -> Option<(Nanos, Nanos)> {
    let word = |key: &str| {
        reason
            .split(' ')
            .find_map(|w| w.strip_prefix(key))
            .and_then(|t| match t {
                "open" => Some(crate::store::holds::OPEN_UNTIL),
                t => parse_time(t).ok(),
            })
    };
    Some((word("from=")?, word("until=")?))
}

/// The entries of the covering segments (seal, recover), of segments of the range that were
/// expired, and of holds overlapping the range.
fn selected_entries<'a>(
    store: &Store,
    req: &Request,
    segments: &[SegmentInfo],
    lines: &'a [AuditLine],
) -> Vec<(&'a AuditLine, &'a AuditEntry)> {
    let paths: BTreeSet<String> = segments
        .iter()
        .map(|s| audit::relative(store.dir(), &s.path))
        .collect();
    let overlaps = |from: Nanos, until: Nanos| until > req.since && from < req.until;
    lines
        .iter()
        .filter_map(|l| l.entry.as_ref().ok().map(|e| (l, e)))
        .filter(|(_, e)| {
            let seg = e.record.segment.as_ref();
            match e.record.action {
                Action::Seal | Action::Recover => seg.is_some_and(|s| paths.contains(&s.path)),
                Action::Expire => seg.is_some_and(|s| overlaps(s.partition_start, s.partition_end)),
                Action::HoldAdd | Action::HoldRelease | Action::HoldRenew => {
                    hold_range(&e.record.reason).is_some_and(|(f, u)| overlaps(f, u))
                }
                // The retention in force is part of what was kept; who else looked is not
                // this request's business.
                Action::Policy => true,
                // Who else looked is not this request's business; a bundle carries no Tor
                // exit lists, so neither their imports.
                Action::Access | Action::Import => false,
            }
        })
        .collect()
}

fn audit_jsonl(
    entries: &[(&AuditLine, &AuditEntry)],
    tree: &Tree,
    cp: &Checkpoint,
) -> Result<Vec<u8>, DiscloseError> {
    let mut values = Vec::new();
    for (line, entry) in entries {
        let index = line.number - 1;
        let proof = tree.inclusion_proof(index, cp.size).ok_or_else(|| {
            DiscloseError::Refused(format!("no inclusion proof for audit line {}", line.number))
        })?;
        debug_assert!(merkle::verify_inclusion(
            index,
            cp.size,
            &merkle::leaf_hash(line.text.as_bytes()),
            &proof,
            &cp.root
        ));
        values.push(json!({
            "line": line.number,
            "action": entry.record.action.as_str(),
            "segment": entry.record.segment.as_ref().map(|s| s.path.clone()),
            "sha256": entry.record.segment.as_ref().map(|s| s.sha256.clone()),
            "text": line.text,
            "leaf_index": index,
            "tree_size": cp.size,
            "proof": proof.iter().map(|h| BASE64.encode(h)).collect::<Vec<_>>(),
        }));
    }
    Ok(jsonl(values.into_iter()))
}

/// The settings in force over the range, as the audit log and the segments state them.
fn policy_text(req: &Request, segments: &[SegmentInfo], lines: &[AuditLine]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Settings in force from {} until {}",
        format_rfc3339(req.since),
        format_rfc3339(req.until)
    );
    let _ = writeln!(out, "\n[retention]");
    let mut reasons = BTreeMap::<String, (u64, Nanos)>::new();
    let mut holds = Vec::new();
    let mut policies = Vec::new();
    for l in lines {
        let Ok(e) = &l.entry else { continue };
        match e.record.action {
            Action::Expire => {
                let kind = e.record.reason.split(' ').next().unwrap_or("").to_string();
                let r = reasons.entry(kind).or_insert((0, e.record.time));
                r.0 += 1;
                r.1 = e.record.time;
            }
            Action::HoldAdd | Action::HoldRelease => holds.push((l.number, e)),
            Action::Policy => policies.push((l.number, e)),
            _ => {}
        }
    }
    if policies.is_empty() {
        let _ = writeln!(
            out,
            "# This store's audit log has no 'policy' entries (written by flowkeep before they \
             existed, or no retention ever ran): the retention below is derived from the reasons \
             of its 'expire' entries (the policy each deletion was made under)."
        );
    }
    for (n, e) in &policies {
        let _ = writeln!(
            out,
            "audit line {n}: policy at {}: {}",
            format_rfc3339(e.record.time),
            e.record.reason
        );
    }
    if reasons.is_empty() {
        let _ = writeln!(out, "no segment was ever expired (no retention policy ran)");
    }
    for (kind, (n, last)) in &reasons {
        let _ = writeln!(
            out,
            "{kind}: {n} segment(s) expired, the last at {}",
            format_rfc3339(*last)
        );
    }
    let _ = writeln!(out, "\n[holds]");
    if holds.is_empty() {
        let _ = writeln!(out, "no legal hold was ever added");
    }
    for (n, e) in holds {
        let inside =
            hold_range(&e.record.reason).is_some_and(|(f, u)| u > req.since && f < req.until);
        let _ = writeln!(
            out,
            "audit line {n}: {} at {}: {}{}",
            e.record.action,
            format_rfc3339(e.record.time),
            e.record.reason,
            if inside { " (overlaps the range)" } else { "" }
        );
    }
    let _ = writeln!(out, "\n[capture]");
    let kept = segments
        .iter()
        .filter(|s| s.capture.flags & CAPTURE_MACS_NOT_STORED == 0)
        .count();
    let _ = writeln!(
        out,
        "segments covering the range: {}; MAC addresses kept in {kept}, not kept in {}",
        segments.len(),
        segments.len() - kept
    );
    let interfaces: BTreeSet<&str> = segments
        .iter()
        .flat_map(|s| s.interfaces.iter().map(String::as_str))
        .collect();
    let list: Vec<&str> = interfaces.into_iter().collect();
    let _ = writeln!(
        out,
        "interfaces: {}",
        if list.is_empty() {
            "(not recorded)".to_string()
        } else {
            list.join(", ")
        }
    );
    out
}
