//! The anonymised tier end to end: `flowkeep expire --anonymize-after --anonymize-key` over a
//! store of ten days, its addresses held to an independent Crypto-PAn (Python's yacryptopan,
//! IPv4 and its IPv6 mode), per-host totals kept, MACs and lease details gone, every change
//! audited and verified, bad keys refused before anything changes, an interrupted rewrite
//! finished by the next run.

mod common;

use common::{copy_dir, ok, out, run, skip_or_fail, text};
use flowkeep::record::{EndReason, FlowRecord, LeaseObservation};
use flowkeep::store::audit;
use flowkeep::store::segment::CAPTURE_ANONYMIZED;
use flowkeep::store::{AllRecords, SegmentInfo, Store, StoreWriter, WriterConfig};
use flowkeep::time::{parse_time, Nanos, NANOS_PER_SEC};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::ControlFlow;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const DEFAULT_PYTHON: &str = "/opt/flowkeep-venv/bin/python";
const KEY: &[u8; 32] = b"boojahyoo3vaeToong0Eijee7Ahz3yee";
const DAY: Nanos = 86_400 * NANOS_PER_SEC;
const NOW: &str = "2026-11-11T00:00:00Z";

fn t(s: &str) -> Nanos {
    parse_time(s).unwrap()
}

fn day0() -> Nanos {
    t("2026-11-01T00:00:00Z")
}

/// Addresses that share prefixes of many lengths, IPv4 and IPv6.
fn address(i: u64) -> IpAddr {
    match i % 6 {
        0 => IpAddr::V4(Ipv4Addr::new(10, 1, (i % 3) as u8, (i % 17) as u8)),
        1 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 29) as u8)),
        2 => IpAddr::V4(Ipv4Addr::new(198, 51, 100, 128 + (i % 5) as u8)),
        3 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, (i % 4) as u16, 0, 0, 0, 1)),
        4 => IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xff,
            0,
            0,
            0,
            0,
            (i % 7) as u16,
        )),
        _ => IpAddr::V4(Ipv4Addr::new(203, 0, 113, (i % 11) as u8)),
    }
}

fn record(day: u64, i: u64) -> FlowRecord {
    let first = day0() + day as i64 * DAY + i as i64 * 60 * NANOS_PER_SEC;
    let v6 = i % 6 == 3 || i % 6 == 4;
    let dst = if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xbeef,
            0,
            0,
            0,
            0,
            (i % 3) as u16,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(93, 184, 216, (i % 4) as u8))
    };
    FlowRecord {
        first,
        last: first + 5 * NANOS_PER_SEC,
        proto: if i % 2 == 0 { 6 } else { 17 },
        src: address(i + day),
        sport: 10_000 + (day * 100 + i) as u16,
        dst,
        dport: 443,
        vlan: 0,
        inner_vlan: 0,
        interface: 0,
        src_mac: Some([2, 0, 0, 0, day as u8, i as u8]),
        dst_mac: Some([2, 0, 0, 1, day as u8, i as u8]),
        packets: 3 + i,
        bytes: 200 + 17 * i + day,
        rev_packets: 2 + i % 5,
        rev_bytes: 100 + 13 * i,
        tcp_flags: 0x1b,
        rev_tcp_flags: 0x12,
        end: EndReason::Fin,
    }
}

fn lease(day: u64, i: u64) -> LeaseObservation {
    LeaseObservation {
        time: day0() + day as i64 * DAY + (i as i64 * 60 + 30) * NANOS_PER_SEC,
        v6: i % 2 == 1,
        message: 5,
        address: address(i * 3 + day),
        client_mac: Some([2, 0, 0, 2, day as u8, i as u8]),
        lease_secs: Some(3600),
        hostname: Some(format!("laptop-{day}-{i}")),
        server: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1))),
        xid: 0xdead_0000 + i as u32,
    }
}

/// A store with one segment a day for ten days from 2026-11-01 (daily partitions), 30 records
/// and 4 lease observations each.
fn build(dir: &Path) {
    let mut cfg = WriterConfig::new(dir);
    cfg.partition = DAY;
    cfg.interfaces = vec!["eth1".into()];
    let mut w = StoreWriter::create(cfg).unwrap();
    for day in 0..10 {
        for i in 0..30 {
            w.append(&record(day, i)).unwrap();
        }
        for i in 0..4 {
            w.append_lease(&lease(day, i)).unwrap();
        }
    }
    w.finish().unwrap();
}

fn key_file(dir: &Path, bytes: &[u8]) -> PathBuf {
    let p = dir.join(format!("key-{}", bytes.len()));
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn segments(dir: &Path) -> Vec<SegmentInfo> {
    Store::open(dir).unwrap().segments().unwrap()
}

fn contents(path: &Path) -> (Vec<FlowRecord>, Vec<LeaseObservation>) {
    let mut r = Vec::new();
    let stats = Store::scan_segment(path, None, None, None, &AllRecords, |_, x| {
        r.push(x.clone());
        ControlFlow::Continue(())
    })
    .unwrap();
    assert!(stats.problems.is_empty(), "{:?}", stats.problems);
    let mut l = Store::segment_leases(path).unwrap();
    // Unique per record, and untouched by anonymisation.
    r.sort_by_key(|x| (x.first, x.sport));
    l.sort_by_key(|x| x.time);
    (r, l)
}

/// Every file below `dir` (relative) with its SHA-256, but for the holds lock (created empty
/// by a first expire).
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(
                    rel,
                    format!("{:x}", Sha256::digest(std::fs::read(&p).unwrap())),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out.remove(".holds.lock");
    out
}

/// yacryptopan's anonymisation of each address with the key, or `None` (skipped, or failed
/// under CI) when the package is missing.
fn yacryptopan(addrs: &BTreeSet<IpAddr>) -> Option<HashMap<IpAddr, IpAddr>> {
    let python =
        PathBuf::from(std::env::var_os("FLOWKEEP_PYTHON").unwrap_or_else(|| DEFAULT_PYTHON.into()));
    let has = Command::new(&python)
        .args(["-c", "import yacryptopan"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        skip_or_fail(&format!(
            "no Python with yacryptopan at {} (set FLOWKEEP_PYTHON, or run scripts/deps.sh)",
            python.display()
        ));
        return None;
    }
    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let script = "import sys\nfrom yacryptopan import CryptoPAn\nc = CryptoPAn(sys.argv[1].encode())\nfor a in sys.argv[2:]:\n    print(a, c.anonymize(a))\n";
    let o = Command::new(&python)
        .args(["-c", script, std::str::from_utf8(KEY).unwrap()])
        .args(&list)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    let map: HashMap<IpAddr, IpAddr> = text(&o.stdout)
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert_eq!(map.len(), addrs.len());
    Some(map)
}

/// `stats --by host --top 0` as key → (flows, packets, bytes).
fn host_totals(dir: &Path) -> BTreeMap<IpAddr, (u64, u64, u64)> {
    let s = dir.to_str().unwrap();
    let o = ok(&[
        "stats", "--store", s, "--by", "host", "--top", "0", "--format", "jsonl",
    ]);
    o.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["key"].as_str().unwrap().parse().unwrap(),
                (
                    v["flows"].as_u64().unwrap(),
                    v["packets"].as_u64().unwrap(),
                    v["bytes"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

fn expected_host_totals(
    recs: &[(FlowRecord, bool)],
    map: &HashMap<IpAddr, IpAddr>,
) -> BTreeMap<IpAddr, (u64, u64, u64)> {
    let mut out: BTreeMap<IpAddr, (u64, u64, u64)> = BTreeMap::new();
    for (r, anonymized) in recs {
        for a in [r.src, r.dst] {
            let key = if *anonymized { map[&a] } else { a };
            let e = out.entry(key).or_default();
            e.0 += 1;
            e.1 += r.packets + r.rev_packets;
            e.2 += r.bytes + r.rev_bytes;
        }
    }
    out
}

fn fingerprint() -> String {
    Sha256::digest(KEY)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `expire --anonymize-after 7d --anonymize-key KEY --now NOW EXTRA`, which must succeed.
fn anonymize(dir: &Path, key: &Path, now: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "expire",
        "--store",
        dir.to_str().unwrap(),
        "--anonymize-after",
        "7d",
        "--anonymize-key",
        key.to_str().unwrap(),
        "--now",
        now,
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

#[test]
fn old_segments_are_anonymized_as_yacryptopan_does_and_nothing_else_changes() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("s");
    build(&dir);
    let key = key_file(d.path(), KEY);
    let before = segments(&dir);
    assert_eq!(before.len(), 10);
    let cutoff = t(NOW) - 7 * DAY;
    let old: Vec<&SegmentInfo> = before.iter().filter(|s| s.last < cutoff).collect();
    assert_eq!(old.len(), 3, "days 1 to 3 are older than 7 days");
    let originals: HashMap<PathBuf, _> = before
        .iter()
        .map(|s| (s.path.clone(), contents(&s.path)))
        .collect();
    // (A reading command appends an `access` entry: so before the snapshot.)
    let totals_before = host_totals(&dir);
    let snap_before = snapshot(&dir);

    // Dry run: lists the three, changes nothing.
    let s = dir.to_str().unwrap();
    let dry = anonymize(&dir, &key, NOW, &["--dry-run"]);
    for o in &old {
        let rel = audit::relative(&dir, &o.path);
        assert!(dry.contains(&format!("would anonymize  {rel}")), "{dry}");
    }
    assert!(dry.contains("would anonymize 3 segment(s)"), "{dry}");
    assert_eq!(snapshot(&dir), snap_before);

    let text = anonymize(&dir, &key, NOW, &[]);
    assert!(text.contains("anonymized 3 segment(s)"), "{text}");
    let after = segments(&dir);
    assert_eq!(after.len(), 10);
    let snap_after = snapshot(&dir);

    // (g) newer segments untouched, byte for byte.
    for s in before.iter().filter(|s| s.last >= cutoff) {
        let rel = audit::relative(&dir, &s.path);
        assert_eq!(snap_after.get(&rel), snap_before.get(&rel), "{rel}");
    }

    // (a) every address, IPv4 and IPv6, as yacryptopan maps it.
    let mut addrs = BTreeSet::new();
    for (recs, leases) in originals.values() {
        addrs.extend(recs.iter().flat_map(|r| [r.src, r.dst]));
        addrs.extend(leases.iter().map(|l| l.address));
    }
    assert!(addrs.iter().any(IpAddr::is_ipv6) && addrs.iter().any(IpAddr::is_ipv4));
    let Some(map) = yacryptopan(&addrs) else {
        return;
    };
    let mut all: Vec<(FlowRecord, bool)> = Vec::new();
    for o in &old {
        let anon_path = o.path.with_file_name(
            o.path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .replace(".fks", ".anon.fks"),
        );
        assert!(!o.path.exists(), "source deleted");
        let info = after.iter().find(|s| s.path == anon_path).unwrap();
        assert_ne!(info.capture.flags & CAPTURE_ANONYMIZED, 0);
        assert_eq!(
            (info.first, info.last, info.records),
            (o.first, o.last, o.records)
        );
        assert_eq!(info.interfaces, o.interfaces);
        let (recs, leases) = contents(&anon_path);
        let (orig_recs, orig_leases) = &originals[&o.path];
        assert_eq!(recs.len(), orig_recs.len());
        for (a, b) in recs.iter().zip(orig_recs) {
            assert_eq!((a.src, a.dst), (map[&b.src], map[&b.dst]));
            // (c) MACs gone; counters and times as they were.
            assert_eq!((a.src_mac, a.dst_mac), (None, None));
            let same = FlowRecord {
                src: b.src,
                dst: b.dst,
                src_mac: b.src_mac,
                dst_mac: b.dst_mac,
                ..a.clone()
            };
            assert_eq!(&same, b);
            all.push((b.clone(), true));
        }
        // (c) leases reduced to address (anonymised), time, lease time.
        assert_eq!(leases.len(), orig_leases.len());
        for (a, b) in leases.iter().zip(orig_leases) {
            assert_eq!(a.address, map[&b.address]);
            assert_eq!((a.time, a.lease_secs, a.v6), (b.time, b.lease_secs, b.v6));
            assert_eq!(
                (a.client_mac, &a.hostname, a.server, a.xid),
                (None, &None, None, 0)
            );
        }
    }
    for s in before.iter().filter(|s| s.last >= cutoff) {
        all.extend(originals[&s.path].0.iter().map(|r| (r.clone(), false)));
    }
    // The MACs of the rest are still there.
    assert!(all.iter().all(|(r, _)| r.src_mac.is_some()));

    // (b) per-host totals: the same once the anonymised hosts are mapped.
    let totals_after = host_totals(&dir);
    assert_eq!(totals_after, expected_host_totals(&all, &map));
    let sum = |m: &BTreeMap<IpAddr, (u64, u64, u64)>| {
        m.values()
            .fold((0, 0, 0), |a, v| (a.0 + v.0, a.1 + v.1, a.2 + v.2))
    };
    assert_eq!(sum(&totals_after), sum(&totals_before));

    // (d) verify passes; the log has each rewrite's seal and its source's expire entry.
    let v = ok(&["verify", "--store", s]);
    assert!(v.contains("; 0 problem(s)"), "{v}");
    let reasons: Vec<String> = audit::read_all(&dir)
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {}", e.record.action, e.record.reason))
        .collect();
    for o in &old {
        let src = audit::relative(&dir, &o.path);
        let anon = src.replace(".fks", ".anon.fks");
        let seal = format!("seal tier=anonymized source={src} key={}", fingerprint());
        let expire = format!("expire tier=anonymized replaced-by={anon}");
        assert!(reasons.contains(&seal), "{seal}\n{reasons:?}");
        assert!(reasons.contains(&expire), "{expire}\n{reasons:?}");
    }
    let info = ok(&["info", "--store", s]);
    assert!(
        info.contains("anonymized     3 segments, 90 records"),
        "{info}"
    );
    assert!(
        info.contains("raw            7 segments, 210 records"),
        "{info}"
    );

    // (g) a second run, ten minutes later, rewrites nothing anonymised already (and the
    // next day is not old enough yet).
    let again = anonymize(&dir, &key, "2026-11-11T00:10:00Z", &[]);
    assert!(again.contains("anonymized 0 segment(s)"), "{again}");
    let segment_files = |m: BTreeMap<String, String>| -> Vec<(String, String)> {
        m.into_iter().filter(|(k, _)| k.contains('/')).collect()
    };
    assert_eq!(segment_files(snapshot(&dir)), segment_files(snap_after));
    let tier_entries = audit::read_all(&dir)
        .unwrap()
        .iter()
        .filter(|e| e.record.reason.starts_with("tier="))
        .count();
    assert_eq!(tier_entries, 6);
}

#[test]
fn a_missing_or_malformed_key_is_one_line_and_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("s");
    build(&dir);
    let snap = snapshot(&dir);
    let s = dir.to_str().unwrap();
    let missing = d.path().join("no-such-key");
    let short = key_file(d.path(), &KEY[..31]);
    let long = key_file(d.path(), &[b'x'; 40]);
    for (key, says) in [
        (&missing, "No such file"),
        (&short, "31 bytes"),
        (&long, "40 bytes"),
    ] {
        // With --retention too: retention must not have run either.
        let o = run(&[
            "expire",
            "--store",
            s,
            "--retention",
            "8d",
            "--anonymize-after",
            "7d",
            "--anonymize-key",
            key.to_str().unwrap(),
            "--now",
            NOW,
        ]);
        assert_ne!(o.status.code(), Some(0));
        let err = text(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("--anonymize-key") && err.contains(says),
            "{err}"
        );
        assert_eq!(text(&o.stdout), "");
        assert_eq!(snapshot(&dir), snap, "{}", key.display());
    }
    // A good key that others may read: used, with a warning.
    let open_key = key_file(d.path(), KEY);
    std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = anonymize(&dir, &open_key, NOW, &["--dry-run"]);
    assert!(text.contains("readable by group or others"), "{text}");
    assert!(text.contains("would anonymize 3 segment(s)"), "{text}");
}

#[test]
fn a_rewrite_interrupted_before_its_source_went_is_finished_by_the_next_run() {
    let d = tempfile::tempdir().unwrap();
    let done = d.path().join("done");
    build(&done);
    let crashed = d.path().join("crashed");
    copy_dir(&done, &crashed);
    let key = key_file(d.path(), KEY);
    let log_len = audit::read_all(&done).unwrap().len();
    anonymize(&done, &key, NOW, &[]);
    // The state a crash after the first seal leaves: the rewrite and its seal entry, the
    // source still there (and a half-built rewrite of the next one).
    let entries = std::fs::read_to_string(done.join("audit.log")).unwrap();
    let lines: Vec<&str> = entries.lines().collect();
    let first_seal = &lines[log_len];
    assert!(first_seal.contains("\tseal\t"), "{first_seal}");
    let anon_rel = first_seal.split('\t').nth(3).unwrap();
    std::fs::copy(done.join(anon_rel), crashed.join(anon_rel)).unwrap();
    std::fs::write(
        crashed.join("audit.log"),
        lines[..=log_len].join("\n") + "\n",
    )
    .unwrap();
    let source = crashed.join(anon_rel.replace(".anon.fks", ".fks"));
    assert!(source.exists());
    let stale = source.with_file_name(".build-seg-00000000-00000099.anon.fks.tmp");
    std::fs::write(&stale, b"half a segment").unwrap();

    let text = anonymize(&crashed, &key, NOW, &[]);
    let src_rel = anon_rel.replace(".anon.fks", ".fks");
    assert!(text.contains(&format!("deleted  {src_rel}")), "{text}");
    assert!(text.contains("anonymized 2 segment(s)"), "{text}");
    assert!(!source.exists() && !stale.exists());
    let v = ok(&["verify", "--store", crashed.to_str().unwrap()]);
    assert!(v.contains("; 0 problem(s)"), "{v}");
    let expire = format!("tier=anonymized replaced-by={anon_rel}");
    let entries = audit::read_all(&crashed).unwrap();
    assert_eq!(
        entries.iter().filter(|e| e.record.reason == expire).count(),
        1
    );
    // The same store as an uninterrupted run leaves.
    let names = |dir: &Path| -> BTreeSet<String> { snapshot(dir).into_keys().collect() };
    assert_eq!(names(&crashed), names(&done));
}
