//! Stores written by earlier releases (formats 3 and 4, fixtures/stores/format3 and format4,
//! made by the commits named in fixtures/stores/README.md from the same captures) against this
//! build: each must verify, read back the same records and leases as a store this build writes
//! from the same captures, answer filtered queries the same, and take new segments (marker
//! then `format 5`) without losing the old ones.

mod common;
#[path = "common/leases.rs"]
mod leases;

use common::{copy_dir, fixtures, BIN};
use flowkeep::record::LeaseObservation;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

/// The old stores: their folder under fixtures/stores and the format their marker says.
const OLD_STORES: [(&str, u32); 2] = [("format3", 3), ("format4", 4)];

/// What every old store was replayed from, in the same order and with the same options.
const OLD_CAPTURES: &[&str] = &[
    "nDPI__iphone.pcap",
    "nDPI__android.pcap",
    "tcpdump__dhcpv4v6-rfc5970-rfc8572.pcap",
];
const REPLAY_OPTIONS: &[&str] = &["--workers", "2"];
const OLD_RECORDS: usize = 121;
const OLD_LEASES: usize = 22;

/// Appended by this build: one more DHCP exchange, then IPv4 and IPv6 flows from 2019-2023
/// (pcap and pcapng) in partitions the fixture does not have.
const APPENDED_CAPTURES: &[&str] = &[
    "tcpdump__dhcp-rfc3004.pcap",
    "nDPI__stun.pcap",
    "nDPI__sites.pcapng",
];

fn old_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/stores")
        .join(name)
}

/// An old store, copied so that nothing the test runs can change the fixture.
fn old_copy(name: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let store = dir.path().join("store");
    copy_dir(&old_fixture(name), &store);
    (dir, store)
}

fn run(args: &[&str], store: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap()
}

/// stdout of a command that must succeed.
fn ok(args: &[&str], store: &Path) -> String {
    let out = run(args, store);
    assert!(
        out.status.success(),
        "flowkeep {args:?} on {}: {}{}",
        store.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn replay(store: &Path, captures: &[&str]) {
    let mut args = vec!["replay", "-q"];
    args.extend_from_slice(REPLAY_OPTIONS);
    let paths: Vec<String> = captures
        .iter()
        .map(|f| fixtures().join(f).to_str().unwrap().to_owned())
        .collect();
    args.extend(paths.iter().map(String::as_str));
    ok(&args, store);
}

/// A store this build writes from the same captures as the fixture.
fn fresh_store(captures: &[&str]) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let store = dir.path().join("store");
    replay(&store, captures);
    (dir, store)
}

/// The output's data lines, sorted (workers write records in no fixed order), header apart.
fn sorted_csv(text: &str) -> (String, Vec<String>) {
    let mut lines = text.lines().map(str::to_owned);
    let header = lines.next().unwrap_or_default();
    let mut rows: Vec<String> = lines.collect();
    rows.sort();
    (header, rows)
}

fn query_csv(store: &Path, filter: &[&str]) -> (String, Vec<String>) {
    let mut args = vec!["query", "--format", "csv"];
    args.extend_from_slice(filter);
    sorted_csv(&ok(&args, store))
}

fn marker(store: &Path) -> String {
    std::fs::read_to_string(store.join(flowkeep::store::MARKER_NAME)).unwrap()
}

/// Every lease observation, in a fixed order.
fn sorted_leases(store: &Path) -> Vec<LeaseObservation> {
    let mut v = leases::stored(store);
    v.sort_by_key(|l| (leases::key(l), l.xid));
    v
}

fn verify_summary(store: &Path) -> String {
    let out = ok(&["verify"], store);
    let last = out.lines().last().unwrap_or_default().to_owned();
    assert!(last.ends_with(" 0 problem(s)"), "verify: {out}");
    last
}

#[test]
fn old_store_verifies_and_info_reports_its_records() {
    for (name, version) in OLD_STORES {
        let (_dir, store) = old_copy(name);
        assert_eq!(
            marker(&store),
            format!("flowkeep store\nformat {version}\n")
        );
        assert_eq!(
            verify_summary(&store),
            format!(
                "6 segment(s), 11 block(s) and {OLD_RECORDS} record(s) checked, 0 open segment(s), \
                 6 audit entries; 0 problem(s)"
            )
        );
        let info = ok(&["info"], &store);
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_else(|| panic!("no {name} in info: {info}"))
                .to_owned()
        };
        assert_eq!(field("partitions"), "4");
        assert_eq!(field("segments"), "6");
        assert_eq!(field("records"), OLD_RECORDS.to_string());
        assert_eq!(field("dhcp leases"), OLD_LEASES.to_string());
        assert_eq!(field("first record"), "2020-02-23T10:42:32.576659000Z");
        assert_eq!(field("last record"), "2022-04-06T08:08:32.009292000Z");
        assert!(field("captured").starts_with("1014 frames, 975 IP packets, 39 non-IP"));
        // Reading never upgrades: an old binary can still open the store afterwards.
        assert_eq!(
            marker(&store),
            format!("flowkeep store\nformat {version}\n")
        );
    }
}

#[test]
fn old_records_equal_what_this_build_writes() {
    for (name, _) in OLD_STORES {
        let (_old_dir, old) = old_copy(name);
        let (_new_dir, new) = fresh_store(OLD_CAPTURES);
        assert_eq!(marker(&new), "flowkeep store\nformat 5\n");
        let (old_header, old_rows) = query_csv(&old, &[]);
        let (new_header, new_rows) = query_csv(&new, &[]);
        assert_eq!(old_header, new_header);
        assert_eq!(old_rows.len(), OLD_RECORDS);
        // Every column, the interface and community id included: the same packets make the
        // same flows whichever format keeps them.
        assert_eq!(old_rows, new_rows);

        let with_leases = |store: &Path| {
            let mut v: Vec<String> = ok(&["query", "--format", "jsonl", "--leases"], store)
                .lines()
                .map(str::to_owned)
                .collect();
            v.sort();
            v
        };
        let old_jsonl = with_leases(&old);
        assert_eq!(old_jsonl, with_leases(&new));
        let attributed = old_jsonl
            .iter()
            .filter(|l| l.contains("\"src_lease\":{") || l.contains("\"dst_lease\":{"))
            .count();
        assert!(attributed >= 80, "only {attributed} records with a lease");
    }
}

#[test]
fn old_leases_equal_what_this_build_writes() {
    for (name, _) in OLD_STORES {
        let (_old_dir, old) = old_copy(name);
        let (_new_dir, new) = fresh_store(OLD_CAPTURES);
        let old_leases = sorted_leases(&old);
        assert_eq!(old_leases.len(), OLD_LEASES);
        assert!(old_leases.iter().any(|l| l.v6) && old_leases.iter().any(|l| !l.v6));
        assert_eq!(old_leases, sorted_leases(&new));

        // who-had at each assignment (DHCPv4 ACK, DHCPv6 Reply): the same answer from both.
        let mut asked = 0;
        for l in old_leases
            .iter()
            .filter(|l| l.message == if l.v6 { 7 } else { 5 })
        {
            if l.address.is_unspecified() {
                continue;
            }
            let at = flowkeep::time::format_rfc3339(l.time);
            let addr = l.address.to_string();
            let args = ["who-had", "--format", "jsonl", "--at", at.as_str(), &addr];
            let (o, n) = (run(&args, &old), run(&args, &new));
            assert_eq!(o.status.code(), Some(0), "who-had {addr} at {at}");
            assert_eq!(o.status.code(), n.status.code(), "who-had {addr} at {at}");
            assert_eq!(o.stdout, n.stdout, "who-had {addr} at {at}");
            asked += 1;
        }
        assert!(asked >= 4, "only {asked} assignments asked about");
    }
}

#[test]
fn old_filtered_queries_equal_what_this_build_writes() {
    for (name, _) in OLD_STORES {
        let (_old_dir, old) = old_copy(name);
        let (_new_dir, new) = fresh_store(OLD_CAPTURES);
        let filters: &[&[&str]] = &[
            &["host", "192.168.2.17"],
            &["proto", "udp"],
            &["host", "fe80::823:3f17:8298:a29c"],
            &["src", "net", "192.168.2.0/24", "and", "proto", "tcp"],
            &["port", "53", "and", "not", "host", "192.168.2.16"],
            &[
                "--since",
                "2020-02-23T10:45:00Z",
                "--until",
                "2020-02-23T10:47:00Z",
            ],
        ];
        for filter in filters {
            let (_, old_rows) = query_csv(&old, filter);
            let (_, new_rows) = query_csv(&new, filter);
            assert!(!old_rows.is_empty(), "{filter:?} matched nothing");
            assert!(old_rows.len() < OLD_RECORDS, "{filter:?} matched all");
            assert_eq!(old_rows, new_rows, "{filter:?}");
        }
        // The filter is applied to the old blocks too, not only to this build's columns.
        let (_, udp) = query_csv(&old, &["proto", "udp"]);
        assert!(udp.iter().all(|r| r.split(',').nth(2) == Some("17")));
        let (_, host) = query_csv(&old, &["host", "192.168.2.17"]);
        let addr: IpAddr = "192.168.2.17".parse().unwrap();
        assert!(host
            .iter()
            .all(|r| r.split(',').any(|c| c.parse::<IpAddr>().ok() == Some(addr))));
    }
}

#[test]
fn this_build_appends_to_an_old_store() {
    for (name, _) in OLD_STORES {
        let (_dir, store) = old_copy(name);
        let (_, before) = query_csv(&store, &[]);
        let leases_before = sorted_leases(&store);
        replay(&store, APPENDED_CAPTURES);
        assert_eq!(marker(&store), "flowkeep store\nformat 5\n");

        // The old segments are still there, byte for byte: appending only adds segments.
        for part in std::fs::read_dir(old_fixture(name)).unwrap() {
            let part = part.unwrap();
            if !part.file_type().unwrap().is_dir() {
                continue;
            }
            for seg in std::fs::read_dir(part.path()).unwrap() {
                let seg = seg.unwrap().path();
                let copied = store.join(part.file_name()).join(seg.file_name().unwrap());
                assert_eq!(
                    std::fs::read(&seg).unwrap(),
                    std::fs::read(&copied).unwrap(),
                    "{} changed",
                    copied.display()
                );
            }
        }

        // Old records plus exactly what this build makes of the appended captures on its own.
        let (_new_dir, appended_only) = fresh_store(APPENDED_CAPTURES);
        let (_, added) = query_csv(&appended_only, &[]);
        assert!(added.len() >= 70, "only {} records appended", added.len());
        let mut expected = before.clone();
        expected.extend(added.iter().cloned());
        expected.sort();
        let (_, after) = query_csv(&store, &[]);
        assert_eq!(after.len(), OLD_RECORDS + added.len());
        assert_eq!(after, expected);

        let mut expected_leases = leases_before;
        expected_leases.extend(sorted_leases(&appended_only));
        expected_leases.sort_by_key(|l| (leases::key(l), l.xid));
        assert!(expected_leases.len() > OLD_LEASES);
        assert_eq!(sorted_leases(&store), expected_leases);

        let summary = verify_summary(&store);
        assert!(
            summary.contains(&format!(" and {} record(s) checked", after.len())),
            "{summary}"
        );
        // Filters see old and new segments alike.
        let (_, udp) = query_csv(&store, &["proto", "udp"]);
        let is_udp = |r: &&String| r.split(',').nth(2) == Some("17");
        let expected_udp: Vec<String> = expected.iter().filter(is_udp).cloned().collect();
        assert!(before.iter().any(|r| is_udp(&r)) && added.iter().any(|r| is_udp(&r)));
        assert_eq!(udp, expected_udp);
    }
}

#[test]
fn this_build_adds_segments_beside_old_ones_in_a_partition() {
    for (name, _) in OLD_STORES {
        let (_dir, store) = old_copy(name);
        let (_, before) = query_csv(&store, &[]);
        // The same capture again: its flows land in the partition the old binary wrote, as new
        // segments next to the format-3 ones (a store holds each replay's records, twice here).
        replay(&store, &["nDPI__iphone.pcap"]);
        let partition = store.join("2020-02-23T10-00Z");
        let mut segments: Vec<String> = std::fs::read_dir(&partition)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".fks"))
            .collect();
        segments.sort();
        assert!(segments.len() > 2, "{segments:?}");
        assert!(segments.contains(&"seg-00000000-00000000.fks".to_owned()));
        assert!(segments.contains(&"seg-00000001-00000000.fks".to_owned()));

        let (_new_dir, iphone_only) = fresh_store(&["nDPI__iphone.pcap"]);
        let (_, iphone) = query_csv(&iphone_only, &[]);
        assert!(!iphone.is_empty());
        let mut expected = before;
        expected.extend(iphone);
        expected.sort();
        let (_, after) = query_csv(&store, &[]);
        assert_eq!(after, expected);
        let summary = verify_summary(&store);
        assert!(
            summary.contains(&format!(" and {} record(s) checked", after.len())),
            "{summary}"
        );
    }
}
