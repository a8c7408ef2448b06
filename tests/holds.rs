//! Filtered and forward-looking holds end to end: a hold keeps exactly the records it names
//! (and the leases of their addresses) past retention, and nothing else survives; a hold added
//! between two replays catches both; an interrupted copy leaves no hold; copying races expire
//! and replay without loss or duplicates; lifetimes (expiry, renewal, release) are kept.

mod common;

use common::{fixtures, ok, out, records, run};
use flowkeep::query::Filter;
use flowkeep::record::{EndReason, FlowRecord, LeaseObservation};
use flowkeep::store::audit::{self, Action};
use flowkeep::store::holds::Hold;
use flowkeep::store::{Scope, Store, StoreWriter, WriterConfig};
use flowkeep::time::{format_rfc3339, parse_time, Nanos, NANOS_PER_SEC};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

const DAY: Nanos = 86_400 * NANOS_PER_SEC;
const HOUR: Nanos = 3_600 * NANOS_PER_SEC;
const TARGET: &str = "203.0.113.7";

fn fails(args: &[&str]) -> String {
    let o = run(args);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {}", out(&o));
    assert!(!out(&o).contains("panicked"), "{}", out(&o));
    out(&o)
}

fn t0() -> Nanos {
    parse_time("2026-01-01T00:00:00Z").unwrap()
}

fn at(t: Nanos) -> String {
    format_rfc3339(t)
}

fn record(first: Nanos, src: &str, dst: &str, sport: u16) -> FlowRecord {
    FlowRecord {
        first,
        last: first + 30 * NANOS_PER_SEC,
        proto: 6,
        src: src.parse().unwrap(),
        sport,
        dst: dst.parse().unwrap(),
        dport: 443,
        vlan: 0,
        inner_vlan: 0,
        interface: 0,
        src_mac: Some([2, 0, 0, 0, 0, 1]),
        dst_mac: Some([2, 0, 0, 0, 0, 2]),
        packets: 10 + u64::from(sport % 7),
        bytes: 1_000 + u64::from(sport),
        rev_packets: 8,
        rev_bytes: 4_000,
        tcp_flags: 0x1b,
        rev_tcp_flags: 0x1b,
        end: EndReason::Fin,
    }
}

fn lease(time: Nanos, address: &str) -> LeaseObservation {
    LeaseObservation {
        time,
        v6: false,
        message: 5,
        address: address.parse().unwrap(),
        client_mac: Some([2, 0, 0, 0, 0, 9]),
        lease_secs: Some(86_400),
        hostname: Some("phone".into()),
        server: Some("192.0.2.1".parse().unwrap()),
        xid: 7,
    }
}

/// A store of 45 days, one partition a day: every 6 hours the target and two other
/// subscribers talk to a server, and each day the target's and one other's DHCP lease.
fn synthetic_store(dir: &Path) -> Vec<FlowRecord> {
    let mut cfg = WriterConfig::new(dir);
    cfg.partition = DAY;
    let mut w = StoreWriter::create(cfg).unwrap();
    let mut all = Vec::new();
    for day in 0..45 {
        for q in 0..4 {
            let t = t0() + day * DAY + q * 6 * HOUR;
            for (i, host) in [TARGET, "198.51.100.20", "198.51.100.21"]
                .iter()
                .enumerate()
            {
                let r = record(
                    t + i as i64,
                    host,
                    "192.0.2.80",
                    40_000 + (day * 4 + q) as u16,
                );
                w.append(&r).unwrap();
                all.push(r);
            }
        }
        w.append_lease(&lease(t0() + day * DAY + HOUR, TARGET))
            .unwrap();
        w.append_lease(&lease(t0() + day * DAY + HOUR, "198.51.100.20"))
            .unwrap();
    }
    w.finish().unwrap();
    all
}

/// A record as `query --format jsonl` prints it, for comparing answers: first, src, sport.
fn key(v: &serde_json::Value) -> (String, String, u64) {
    (
        v["first"].as_str().unwrap().to_string(),
        v["src"].as_str().unwrap().to_string(),
        v["sport"].as_u64().unwrap(),
    )
}

fn keys(recs: &[serde_json::Value]) -> Vec<(String, String, u64)> {
    let mut k: Vec<_> = recs.iter().map(key).collect();
    k.sort();
    k
}

fn query(store: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    common::query_jsonl(store, extra)
}

fn verify_clean(store: &Path) {
    let o = run(&["verify", "--store", store.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
}

#[test]
fn a_filtered_hold_over_a_45_day_store_keeps_only_what_it_names() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("s");
    let all = synthetic_store(&dir);
    let s = dir.to_str().unwrap();
    let (from, until) = (t0() + 2 * DAY, t0() + 20 * DAY);
    let now = t0() + 45 * DAY;
    let added = ok(&[
        "hold",
        "add",
        "--store",
        s,
        "--name",
        "CASE-7",
        "--from",
        &at(from),
        "--until",
        &at(until),
        "--filter",
        &format!("host {TARGET}"),
        "--explain",
        "--now",
        &at(now - DAY),
    ]);
    let wanted: Vec<&FlowRecord> = all
        .iter()
        .filter(|r| r.src.to_string() == TARGET && r.last >= from && r.first < until)
        .collect();
    assert_eq!(wanted.len(), 18 * 4);
    assert!(
        added.contains(&format!(
            "{} records and 18 lease observations",
            wanted.len()
        )),
        "{added}"
    );
    // One address over 45 one-block segments: the 18 that overlap the range are read, the
    // other 27 not opened beyond their footer.
    assert!(
        added.contains("45 segments in the store, 18 overlap the range; blocks: 18 read"),
        "{added}"
    );
    ok(&[
        "expire",
        "--store",
        s,
        "--retention",
        "30d",
        "--now",
        &at(now),
    ]);
    let kept = query(&dir, &[]);
    let cutoff = now - 30 * DAY - DAY;
    let mut expect: Vec<(String, String, u64)> = all
        .iter()
        .filter(|r| r.last >= cutoff || wanted.contains(r))
        .map(|r| (at(r.first), r.src.to_string(), u64::from(r.sport)))
        .collect();
    expect.sort();
    // Some of the newest 31 days survive by age; of the older ones only the target's in range.
    let got = keys(&kept);
    for r in &wanted {
        let k = (at(r.first), r.src.to_string(), u64::from(r.sport));
        assert!(got.contains(&k), "held record {k:?} lost");
    }
    for (first, src, _) in &got {
        let first = parse_time(first).unwrap();
        assert!(
            first >= cutoff || (src == TARGET && first < until && first >= from - DAY),
            "{src} at {} survived",
            at(first)
        );
    }
    assert!(got.iter().all(|k| expect.contains(k)), "unexpected records");
    // The hold's copies alone: exactly the named records, and the target's leases only.
    let held = query(&dir, &["--hold", "CASE-7"]);
    assert_eq!(held.len(), wanted.len());
    // stats reads the same copies: the target's flows, packets and bytes, nobody else.
    let stats = ok(&[
        "stats", "--store", s, "--hold", "CASE-7", "--by", "host", "--format", "jsonl",
    ]);
    let rows: Vec<serde_json::Value> = stats
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let target = rows.iter().find(|r| r["key"] == TARGET).unwrap();
    assert_eq!(target["flows"].as_u64().unwrap(), wanted.len() as u64);
    let packets: u64 = wanted.iter().map(|r| r.packets + r.rev_packets).sum();
    assert_eq!(target["packets"].as_u64().unwrap(), packets);
    assert_eq!(rows.len(), 2, "{stats}"); // the target and its server
    assert!(held.iter().all(|r| r["src"] == TARGET));
    let store = Store::open(&dir)
        .unwrap()
        .with_scope(Scope::Hold("CASE-7".into()));
    let mut leases = Vec::new();
    store
        .scan_leases(None, None, |l| {
            leases.push(l.address);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(leases.len(), 18);
    assert!(leases.iter().all(|a| a.to_string() == TARGET));
    // Plain reads see each record once although live segments and copies overlap in time.
    let live = Store::open(&dir).unwrap().segments().unwrap();
    assert!(
        live.iter().all(|s| s.last >= cutoff),
        "an old live segment survived"
    );
    assert_eq!(kept.len(), got.len());
    let mut dedup = got.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), got.len(), "a record is passed twice");
    verify_clean(&dir);
    let list = ok(&["hold", "list", "--store", s, "--now", &at(now)]);
    assert!(
        list.contains("standing") && list.contains(&format!(" {} ", wanted.len())),
        "{list}"
    );
}

/// Splits a classic pcap file after `n` packets.
fn split_pcap(src: &Path, n: usize, a: &Path, b: &Path) {
    let bytes = std::fs::read(src).unwrap();
    let (head, mut rest) = bytes.split_at(24);
    let le = head[0] == 0xd4;
    let mut parts = [head.to_vec(), head.to_vec()];
    let mut i = 0;
    while rest.len() >= 16 {
        let f = [rest[8], rest[9], rest[10], rest[11]];
        let incl = if le {
            u32::from_le_bytes(f)
        } else {
            u32::from_be_bytes(f)
        } as usize;
        let (pkt, r) = rest.split_at(16 + incl);
        parts[usize::from(i >= n)].extend_from_slice(pkt);
        rest = r;
        i += 1;
    }
    std::fs::write(a, &parts[0]).unwrap();
    std::fs::write(b, &parts[1]).unwrap();
}

fn replay_into(store: &Path, file: &Path) {
    ok(&[
        "replay",
        "-q",
        "--store",
        store.to_str().unwrap(),
        "--partition",
        "1m",
        file.to_str().unwrap(),
    ]);
}

/// What the held records are in tests over the two halves of a real capture.
const HELD: &str = "host 192.168.2.17";

/// The two halves of a capture with DHCP, in `dir`, and what a hold on [`HELD`] must keep of
/// them: the matching records of both halves replayed into a store without holds.
fn halves(dir: &Path) -> (PathBuf, PathBuf, Vec<(String, String, u64)>) {
    let (a, b) = (dir.join("a.pcap"), dir.join("b.pcap"));
    split_pcap(&fixtures().join("nDPI__iphone.pcap"), 250, &a, &b);
    let reference = dir.join("ref");
    replay_into(&reference, &a);
    replay_into(&reference, &b);
    let want = keys(&query(&reference, &[HELD]));
    let everything = records(&reference).len();
    assert!(want.len() > 10 && want.len() < everything, "{}", want.len());
    (a, b, want)
}

#[test]
fn a_forward_hold_catches_what_is_written_after_it() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, want) = halves(d.path());
    let dir = d.path().join("s");
    let s = dir.to_str().unwrap();
    replay_into(&dir, &a);
    let first_half = query(&dir, &[HELD]).len();
    assert!(first_half > 0 && first_half < want.len());
    ok(&[
        "hold",
        "add",
        "--store",
        s,
        "--name",
        "OPEN-1",
        "--from",
        "2020-01-01T00:00:00Z",
        "--until",
        "open",
        "--filter",
        HELD,
        "--expires",
        "never",
        "--now",
        "2026-12-01T00:00:00Z",
    ]);
    replay_into(&dir, &b);
    // Everything expires by age: only the hold's copies are left, all of both halves.
    ok(&[
        "expire",
        "--store",
        s,
        "--retention",
        "1d",
        "--now",
        "2026-12-02T00:00:00Z",
    ]);
    assert!(Store::open(&dir).unwrap().segments().unwrap().is_empty());
    assert_eq!(keys(&query(&dir, &[])), want);
    assert_eq!(keys(&query(&dir, &["--hold", "OPEN-1"])), want);
    verify_clean(&dir);
}

#[test]
fn an_interrupted_copy_leaves_no_hold() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("s");
    synthetic_store(&dir);
    let s = dir.to_str().unwrap();
    let hold = Hold {
        filter: Some(format!("host {TARGET}")),
        ..Hold::new("CUT", t0(), t0() + 40 * DAY, t0() + 44 * DAY)
    };
    let f = Filter::parse(hold.filter.as_deref().unwrap()).unwrap();
    // Stopped after 5 of 40 segments, as a kill -9 there leaves it.
    flowkeep::preserve::add::add_copying(&dir, hold, &f, t0() + 44 * DAY, Some(5)).unwrap();
    let copies = Store::open(&dir).unwrap().hold_segments("CUT").unwrap();
    assert_eq!(copies.len(), 5);
    let list = ok(&["hold", "list", "--store", s, "--now", &at(t0() + 44 * DAY)]);
    assert!(list.contains("copying"), "{list}");
    // Half-copied: plain reads do not see its copies, and it still protects its range.
    assert_eq!(query(&dir, &[]).len(), 45 * 12);
    verify_clean(&dir);
    let o = ok(&[
        "expire",
        "--store",
        s,
        "--retention",
        "30d",
        "--now",
        &at(t0() + 45 * DAY),
    ]);
    assert!(o.contains("its copy was interrupted"), "{o}");
    assert_eq!(ok(&["hold", "list", "--store", s]).lines().count(), 1);
    assert!(!dir.join("holds/CUT").exists());
    // Rolled back before the plan: retention then deleted by age as if it never was.
    assert!(Store::open(&dir)
        .unwrap()
        .segments()
        .unwrap()
        .iter()
        .all(|s| s.last >= t0() + 14 * DAY));
    verify_clean(&dir);
    // The name is free again.
    ok(&[
        "hold",
        "add",
        "--store",
        s,
        "--name",
        "CUT",
        "--from",
        &at(t0()),
        "--until",
        &at(t0() + 40 * DAY),
        "--filter",
        &format!("host {TARGET}"),
        "--now",
        &at(t0() + 45 * DAY),
    ]);
}

#[test]
fn hold_add_racing_expire_and_replay_loses_and_duplicates_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, want) = halves(d.path());
    for round in 0..3 {
        let dir = d.path().join(format!("s{round}"));
        let s = dir.to_str().unwrap().to_string();
        // Old traffic (2005..2013 captures) that the concurrent expire deletes, and the first
        // half of the held traffic.
        replay_into(&dir, &fixtures().join("tcpdump__dns_tcp.pcap"));
        replay_into(&dir, &a);
        let spawn = |args: Vec<String>| {
            std::process::Command::new(common::BIN)
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let kids = vec![
            spawn(v(&[
                "hold",
                "add",
                "--store",
                &s,
                "--name",
                "RACE",
                "--from",
                "2020-01-01T00:00:00Z",
                "--until",
                "open",
                "--filter",
                HELD,
                "--now",
                "2026-12-01T00:00:00Z",
            ])),
            spawn(v(&[
                "expire",
                "--store",
                &s,
                "--retention",
                "1000d",
                "--now",
                "2022-01-01T00:00:00Z",
            ])),
            spawn(v(&[
                "replay",
                "-q",
                "--store",
                &s,
                "--partition",
                "1m",
                b.to_str().unwrap(),
            ])),
        ];
        for k in kids {
            let o = k.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", out(&o));
        }
        // Any writes of the replay sealed after the hold was added, and the old capture went.
        ok(&[
            "expire",
            "--store",
            &s,
            "--retention",
            "1000d",
            "--now",
            "2022-01-01T00:00:00Z",
        ]);
        let held = keys(&query(&dir, &["--hold", "RACE"]));
        assert_eq!(held, want, "round {round}");
        verify_clean(&dir);
        // Everything else by age: the copies alone remain, once each.
        ok(&[
            "expire",
            "--store",
            &s,
            "--retention",
            "1d",
            "--now",
            "2026-12-02T00:00:00Z",
        ]);
        assert_eq!(keys(&query(&dir, &[])), want, "round {round}");
        verify_clean(&dir);
    }
}

fn audit_reasons(dir: &Path, action: Action) -> Vec<String> {
    audit::read_all(dir)
        .unwrap()
        .into_iter()
        .filter(|e| e.record.action == action)
        .map(|e| e.record.reason)
        .collect()
}

#[test]
fn holds_lapse_renew_and_release_and_their_copies_go_with_receipts() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("s");
    synthetic_store(&dir);
    let s = dir.to_str().unwrap();
    let now = t0() + 45 * DAY;
    let add = |name: &str, host: &str, expires: &str| {
        ok(&[
            "hold",
            "add",
            "--store",
            s,
            "--name",
            name,
            "--from",
            &at(t0()),
            "--until",
            &at(t0() + 10 * DAY),
            "--filter",
            &format!("host {host}"),
            "--expires",
            expires,
            "--now",
            &at(now),
        ])
    };
    add("LAPSES", TARGET, "10d");
    add("RENEWED", TARGET, "10d");
    add("RELEASED", "198.51.100.20", "90d");
    let o = run(&[
        "hold",
        "add",
        "--store",
        s,
        "--name",
        "NEVER",
        "--from",
        &at(t0()),
        "--until",
        &at(t0() + DAY),
        "--filter",
        "port 444",
        "--expires",
        "never",
        "--now",
        &at(now),
    ]);
    assert!(out(&o).contains("never expires"), "{}", out(&o));
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    ok(&[
        "hold",
        "renew",
        "--store",
        s,
        "RENEWED",
        "--by",
        "5d",
        "--now",
        &at(now + DAY),
    ]);
    ok(&[
        "hold",
        "release",
        "--store",
        s,
        "RELEASED",
        "--now",
        &at(now + DAY),
    ]);
    // Two holds copied the target's records: plain reads pass them once.
    ok(&[
        "expire",
        "--store",
        s,
        "--retention",
        "20d",
        "--now",
        &at(now + DAY),
    ]);
    assert!(!dir.join("holds/RELEASED").exists());
    let early = |recs: Vec<serde_json::Value>| {
        let mut k: Vec<_> = keys(&recs)
            .into_iter()
            .filter(|(f, _, _)| parse_time(f).unwrap() < t0() + 10 * DAY)
            .collect();
        k.dedup();
        (recs.len(), k.len())
    };
    let (_, target_early) = early(query(&dir, &["--hold", "LAPSES"]));
    assert_eq!(target_early, 40);
    let plain = query(&dir, &[&format!("host {TARGET}")]);
    let n = plain.len();
    let mut k = keys(&plain);
    k.dedup();
    assert_eq!(
        k.len(),
        n,
        "a record shared by two holds' copies is passed twice"
    );
    let released = query(&dir, &["host", "198.51.100.20"]);
    let oldest = released
        .iter()
        .map(|r| parse_time(r["first"].as_str().unwrap()).unwrap())
        .min()
        .unwrap();
    assert!(
        oldest >= now + DAY - 21 * DAY,
        "{} {:?}",
        at(oldest),
        released
            .iter()
            .find(|r| parse_time(r["first"].as_str().unwrap()).unwrap() == oldest)
    );
    // Day 11 after adding: LAPSES lapsed, RENEWED (15 days) stands.
    let o = ok(&[
        "expire",
        "--store",
        s,
        "--retention",
        "20d",
        "--now",
        &at(now + 11 * DAY),
    ]);
    assert!(o.contains("hold=LAPSES lapsed at"), "{o}");
    assert!(!dir.join("holds/LAPSES").exists());
    assert!(dir.join("holds/RENEWED").exists());
    let list = ok(&["hold", "list", "--store", s, "--now", &at(now + 11 * DAY)]);
    assert!(
        !list.contains("LAPSES") && list.contains("RENEWED"),
        "{list}"
    );
    assert_eq!(query(&dir, &["--hold", "RENEWED"]).len(), 40);
    let expired = audit_reasons(&dir, Action::Expire);
    for want in ["hold=RELEASED released at", "hold=LAPSES lapsed at"] {
        assert!(
            expired.iter().any(|r| r.starts_with(want)),
            "{want}: {expired:?}"
        );
    }
    assert!(audit_reasons(&dir, Action::HoldRenew)
        .iter()
        .any(|r| r.contains("name=RENEWED")));
    assert!(audit_reasons(&dir, Action::HoldRelease)
        .iter()
        .any(|r| r.contains("name=LAPSES") && r.ends_with("lapsed")));
    verify_clean(&dir);
}

#[test]
fn bad_hold_input_gets_one_clear_line() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("s");
    synthetic_store(&dir);
    let s = dir.to_str().unwrap();
    let base = |name: &str, from: &str, until: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "hold", "add", "--store", s, "--name", name, "--from", from, "--until", until,
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let r = |v: Vec<String>| fails(&v.iter().map(String::as_str).collect::<Vec<_>>());
    let (a, b) = ("2026-01-02T00:00:00Z", "2026-01-05T00:00:00Z");
    assert!(r(base("X", b, a, &[])).contains("must be later than --from"));
    assert!(r(base("X", a, b, &["--filter", "host 1.2.3.4 andd port 5"])).contains("'andd'"));
    // A service name's number comes from the machine's /etc/services; a hold's text must not.
    if std::path::Path::new("/etc/services").exists() {
        let e = r(base("X", a, b, &["--filter", "tcp port https"]));
        assert!(e.contains("write the port number"), "{e}");
        assert!(ok(&["hold", "list", "--store", s])
            .lines()
            .all(|l| !l.contains(" X ")));
    }
    assert!(r(base("bad/name", a, b, &[])).contains("use letters, digits"));
    let o = run(&base("X", a, b, &["--expires", "0s"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("positive duration"), "{}", out(&o));
    let long = "n".repeat(70_000);
    assert!(r(base("X", a, b, &["--note", &long])).contains("at most 1024"));
    for args in [
        vec!["query", "--store", s, "--hold", "NOPE"],
        vec!["hold", "release", "--store", s, "NOPE"],
        vec!["hold", "renew", "--store", s, "NOPE", "--by", "90d"],
    ] {
        assert!(fails(&args).contains("no hold named 'NOPE'"), "{args:?}");
    }
    // A range the store does not cover: said, and the hold kept.
    let o = ok(&base(
        "FUTURE",
        "2030-01-01T00:00:00Z",
        "open",
        &[
            "--filter",
            "host 192.0.2.99",
            "--now",
            "2026-03-01T00:00:00Z",
        ],
    )
    .iter()
    .map(String::as_str)
    .collect::<Vec<_>>());
    assert!(o.contains("the store holds nothing in"), "{o}");
    assert!(ok(&["hold", "list", "--store", s]).contains("FUTURE"));
    // Renewing to a time already past.
    let o = fails(&[
        "hold",
        "renew",
        "--store",
        s,
        "FUTURE",
        "--by",
        "1d",
        "--now",
        "2027-01-01T00:00:00Z",
    ]);
    assert!(o.contains("not after now"), "{o}");
}

#[test]
fn a_filtered_hold_keeps_its_records_raw_while_the_live_store_is_anonymised() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("s");
    let all = synthetic_store(&dir);
    let s = dir.to_str().unwrap();
    let now = t0() + 45 * DAY;
    ok(&[
        "hold",
        "add",
        "--store",
        s,
        "--name",
        "RAW",
        "--from",
        &at(t0() + 2 * DAY),
        "--until",
        &at(t0() + 20 * DAY),
        "--filter",
        &format!("host {TARGET}"),
        "--now",
        &at(now),
    ]);
    let key = d.path().join("anon.key");
    ok(&[
        "key",
        "generate",
        "--anonymize",
        "--out",
        key.to_str().unwrap(),
    ]);
    ok(&[
        "expire",
        "--store",
        s,
        "--anonymize-after",
        "7d",
        "--anonymize-key",
        key.to_str().unwrap(),
        "--now",
        &at(now),
    ]);
    // The live store's old records lost the target's address; the hold's copies kept it.
    let old_live_target = query(&dir, &[&format!("host {TARGET}")])
        .iter()
        .filter(|r| parse_time(r["last"].as_str().unwrap()).unwrap() < now - 8 * DAY)
        .count();
    let held = all
        .iter()
        .filter(|r| {
            r.src.to_string() == TARGET && r.first < t0() + 20 * DAY && r.last >= t0() + 2 * DAY
        })
        .count();
    assert_eq!(old_live_target, held, "only the hold's raw copies name it");
    assert_eq!(query(&dir, &["--hold", "RAW"]).len(), held);
    let anonymised = Store::open(&dir)
        .unwrap()
        .segments()
        .unwrap()
        .iter()
        .filter(|s| s.path.to_string_lossy().ends_with(".anon.fks"))
        .count();
    assert!(anonymised >= 37, "{anonymised}");
    verify_clean(&dir);
}
