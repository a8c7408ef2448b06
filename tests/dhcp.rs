//! DHCP attribution end to end, against what tshark reads in real captures: every DHCP fixture
//! is replayed into a store, and the lease observations stored, `who-had`'s answers and
//! `query --leases` are compared with expectations computed from tshark's field dump of the
//! same capture (fixtures/pcaps/reference/FILE.leases.tsv, made by scripts/dhcp_reference.sh),
//! following the semantics documented in `record::LeaseObservation` and `query::attribution`.

mod common;
#[path = "common/leases.rs"]
mod leases;

use common::{fixtures, BIN};
use flowkeep::store::Store;
use leases::{expected, key, rows, stored, Key, NS};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

/// Every fixture in which tshark sees DHCP or DHCPv6.
const FILES: &[&str] = &[
    "gopacket__be_test202.pcapng",
    "gopacket__le_test008.pcapng",
    "gopacket__le_test100.pcapng",
    "gopacket__le_test901.pcapng",
    "nDPI__1kxun.pcap",
    "nDPI__android.pcap",
    "nDPI__fuzz-2006-06-26-2594.pcap",
    "nDPI__iphone.pcap",
    "tcpdump__bootp_asan.pcap",
    "tcpdump__dhcp-rfc3004.pcap",
    "tcpdump__dhcp-rfc4388.pcap",
    "tcpdump__dhcp6_reconf_asan.pcap",
    "tcpdump__dhcpv4v6-rfc5970-rfc8572.pcap",
    "tcpdump__dhcpv6-ia-na.pcap",
    "tcpdump__dhcpv6-ia-pd.pcap",
];

fn replay(file: &str, store: &Path, extra: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["replay", "-q", "--store"])
        .arg(store)
        .args(extra)
        .arg(fixtures().join(file))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn who_had(store: &Path, addr: IpAddr, at: i64, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(BIN)
        .args(["who-had", "--format", "jsonl", "--store"])
        .arg(store)
        .arg(addr.to_string())
        .arg("--at")
        .arg(flowkeep::time::format_rfc3339(at))
        .args(extra)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "who-had output: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

/// The hostname who-had should give for an assignment: its own, else the latest hint from the
/// same MAC from an hour before it up to `at`.
fn expected_hostname(exp: &[Key], a: &Key, at: i64) -> Option<String> {
    a.6.clone().or_else(|| {
        exp.iter()
            .filter(|h| {
                h.4 == a.4
                    && h.6.is_some()
                    && h.0 >= a.0 - 3600 * NS
                    && h.0 <= at
                    && matches!((h.1, h.2), (false, 1 | 3 | 8) | (true, 1 | 3 | 5 | 6))
            })
            .max_by_key(|h| h.0)
            .and_then(|h| h.6.clone())
    })
}

#[test]
fn stored_observations_match_tshark_and_who_had_answers_from_them() {
    let mut assignments = 0;
    let mut hostnames_from_hints = 0;
    let mut observations = 0;
    for file in FILES {
        let dir = tempfile::tempdir().unwrap();
        let summary = replay(file, dir.path(), &[]);
        let reference = rows(file);
        let exp = expected(&reference);
        let mut got: Vec<Key> = stored(dir.path()).iter().map(key).collect();
        got.sort();
        assert_eq!(got, exp, "{file}");
        observations += got.len();
        // What tshark calls malformed is what flowkeep could not parse, and nothing else.
        // tshark does not call a message cut by the snap length malformed; flowkeep cannot
        // parse it either.
        // flowkeep reads DHCP between DHCP ports only (67/68, 546/547), tshark by either port.
        let malformed = leases::malformed(&reference);
        let not_parsed = summary
            .lines()
            .find_map(|l| l.strip_prefix("dhcp leases"))
            .and_then(|l| l.split(", ").nth(1)?.split(' ').next()?.parse().ok())
            .unwrap_or(0usize);
        assert_eq!(not_parsed, malformed, "{file}: {summary}");
        // Every assignment is who-had's answer just after it, until the next one of its
        // address or the end of its lease.
        for a in exp
            .iter()
            .filter(|k| (!k.1 && k.2 == 5) || (k.1 && k.2 == 7 && k.5 > Some(0)))
        {
            let next = exp
                .iter()
                .filter(|k| k.3 == a.3 && k.0 > a.0)
                .map(|k| k.0)
                .min();
            let at = a.0 + 1;
            if next.is_some_and(|n| n <= at) {
                continue;
            }
            let (code, v) = who_had(dir.path(), a.3, at, &[]);
            assert_eq!(
                (code, v["source"].as_str()),
                (0, Some("dhcp")),
                "{file}: {v}"
            );
            assert_eq!(v["mac"].as_str().map(str::to_string), a.4, "{file}: {v}");
            let host = expected_hostname(&exp, a, at);
            if host.is_some() && a.6.is_none() {
                hostnames_from_hints += 1;
            }
            assert_eq!(
                v["hostname"].as_str().map(str::to_string),
                host,
                "{file}: {v}"
            );
            assert_eq!(v["lease"]["lease_secs"].as_u64(), a.5.map(u64::from));
            assert_eq!(
                v["lease"]["server"].as_str(),
                a.7.map(|s| s.to_string()).as_deref()
            );
            assignments += 1;
            // After the lease (when nothing came in between): not the lease's answer any more.
            let end = a.0 + i64::from(a.5.unwrap()) * NS;
            if next.is_none() {
                let (_, v) = who_had(dir.path(), a.3, end, &["--window", "1s"]);
                assert_ne!(v["source"], "dhcp", "{file}: {v}");
                assert!(
                    v["last_lease_ended"]
                        .as_str()
                        .unwrap()
                        .starts_with("lease expired"),
                    "{file}: {v}"
                );
            }
        }
    }
    eprintln!(
        "{observations} observations, {assignments} assignments asked, {hostnames_from_hints} hostnames from the client's own message"
    );
    // The fixtures hold this much DHCP; the numbers guard against a silently empty test.
    assert!(observations >= 40, "{observations}");
    assert!(assignments >= 20, "{assignments}");
    assert!(hostnames_from_hints >= 1, "{hostnames_from_hints}");
}

#[test]
fn who_had_falls_back_to_flows_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    replay("nDPI__iphone.pcap", dir.path(), &[]);
    let reference = rows("nDPI__iphone.pcap");
    let exp = expected(&reference);
    let ack = exp.iter().find(|k| k.2 == 5).unwrap();
    // Before the ACK no lease says anything; the flows of the address within the window do,
    // and their MAC is the one tshark's chaddr gives.
    // A guess: no lease confirms it, and its own exit status says so.
    let (code, v) = who_had(dir.path(), ack.3, ack.0 - NS, &[]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["source"], "flows", "{v}");
    assert_eq!(v["confirmed"], false, "{v}");
    assert_eq!(v["window_secs"], 3600);
    assert_eq!(v["mac"].as_str().map(str::to_string), ack.4);
    assert!(v["flow_records"].as_u64().unwrap() > 0);
    // Nothing at all: exit status 1.
    let (code, v) = who_had(dir.path(), "198.51.100.1".parse().unwrap(), ack.0, &[]);
    assert_eq!((code, v["source"].as_str()), (1, Some("none")), "{v}");
    // Table output names the source and the evidence.
    let out = Command::new(BIN)
        .args(["who-had", "--format", "table", "--store"])
        .arg(dir.path())
        .arg(ack.3.to_string())
        .arg("--at")
        .arg(flowkeep::time::format_rfc3339(ack.0 + NS))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("source     dhcp lease"), "{text}");
    assert!(text.contains("DHCPv4 ACK at"), "{text}");
}

#[test]
fn query_leases_names_the_holder_of_each_side() {
    let dir = tempfile::tempdir().unwrap();
    replay("nDPI__1kxun.pcap", dir.path(), &[]);
    let exp = expected(&rows("nDPI__1kxun.pcap"));
    let out = Command::new(BIN)
        .args(["query", "--format", "jsonl", "--leases", "--store"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut annotated = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let t = flowkeep::time::parse_time(v["first"].as_str().unwrap()).unwrap();
        for (side, field) in [("src", "src_lease"), ("dst", "dst_lease")] {
            let addr: IpAddr = v[side].as_str().unwrap().parse().unwrap();
            // The latest ACK of the address at or before the record, if its lease covers it.
            let holder = exp
                .iter()
                .filter(|k| k.3 == addr && k.2 == 5 && k.0 <= t)
                .max_by_key(|k| k.0)
                .filter(|k| t < k.0 + i64::from(k.5.unwrap()) * NS);
            match holder {
                Some(k) => {
                    assert_eq!(v[field]["mac"].as_str().map(str::to_string), k.4, "{line}");
                    annotated += 1;
                }
                None => assert!(v[field].is_null(), "{line}"),
            }
        }
    }
    assert!(annotated > 0);
    // Any other format is refused: the fields exist only in JSON lines.
    let out = Command::new(BIN)
        .args(["query", "--format", "csv", "--leases", "--store"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format jsonl"));
}

#[test]
fn no_mac_keeps_addresses_and_times_but_no_macs_or_hostnames() {
    let dir = tempfile::tempdir().unwrap();
    replay("nDPI__iphone.pcap", dir.path(), &["--no-mac"]);
    let leases = stored(dir.path());
    assert!(!leases.is_empty());
    assert!(leases
        .iter()
        .all(|l| l.client_mac.is_none() && l.hostname.is_none()));
    let exp = expected(&rows("nDPI__iphone.pcap"));
    let ack = exp.iter().find(|k| k.2 == 5).unwrap();
    let (code, v) = who_had(dir.path(), ack.3, ack.0 + NS, &[]);
    assert_eq!(code, 0);
    assert_eq!(v["source"], "dhcp");
    assert!(v["mac"].is_null() && v["hostname"].is_null(), "{v}");
    assert_eq!(v["lease"]["lease_secs"].as_u64(), ack.5.map(u64::from));
    for r in common::records(dir.path()) {
        assert!(r["src_mac"].is_null() && r["dst_mac"].is_null(), "{r}");
    }
    let info = Command::new(BIN)
        .args(["info", "--store"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    let segs: usize = Store::open(dir.path()).unwrap().segments().unwrap().len();
    assert!(
        text.contains(&format!(
            "macs           not stored (--no-mac) in {segs} of {segs} segments"
        )),
        "{text}"
    );
    // verify checks lease blocks like record blocks.
    let verify = Command::new(BIN)
        .args(["verify", "--store"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn query_leases_over_a_damaged_lease_block_is_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    replay("nDPI__1kxun.pcap", dir.path(), &[]);
    let segs = Store::open(dir.path()).unwrap().segments().unwrap();
    let (path, offset, len) = segs
        .iter()
        .find_map(|s| {
            let f = flowkeep::store::segment::SegmentFile::open(&s.path).unwrap();
            f.entries
                .iter()
                .find(|e| e.kind == flowkeep::store::leases::KIND_LEASES)
                .map(|e| (s.path.clone(), e.offset, e.len))
        })
        .expect("a lease block");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(offset + u64::from(len) / 2) as usize] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new(BIN)
        .args(["query", "--format", "jsonl", "--leases", "--store"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("incomplete"), "{err}");
}
