//! `flowkeep query` and `flowkeep stats` end to end: filters checked against tshark's
//! per-address-pair reference and against the records filtered independently here, statistics
//! against hand-computed totals, block skipping on a 30-day store, times, and closed pipes.

mod common;

use common::{
    epoch_secs, fixtures, out, pair_totals, query_jsonl, records, reference, run, text, PairTotals,
    Rng, BIN,
};
use flowkeep::record::{EndReason, FlowRecord};
use flowkeep::store::{StoreWriter, WriterConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn jsonl(out: &Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn replayed(file: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = common::replay(&fixtures().join(file), dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

fn u(r: &Value, k: &str) -> u64 {
    r[k].as_u64().unwrap()
}

/// The reference restricted to the pairs that have `a` on one side.
fn pairs_with(reference: &PairTotals, a: IpAddr) -> PairTotals {
    reference
        .iter()
        .filter(|((_, lo, hi), _)| *lo == a || *hi == a)
        .map(|(k, v)| (*k, *v))
        .collect()
}

/// The busiest address of a reference by bytes, and one seen in a single pair.
fn busiest_and_quiet(reference: &PairTotals) -> (IpAddr, IpAddr) {
    let mut per_host: BTreeMap<IpAddr, (u64, u64)> = BTreeMap::new();
    for ((_, lo, hi), (_, b)) in reference {
        for a in [lo, hi] {
            let e = per_host.entry(*a).or_default();
            e.0 += 1;
            e.1 += b;
        }
    }
    let busiest = per_host.iter().max_by_key(|(_, v)| v.1).unwrap().0;
    let quiet = per_host.iter().find(|(_, v)| v.0 == 1).unwrap().0;
    (*busiest, *quiet)
}

const FILE: &str = "nDPI__1kxun.pcap";

#[test]
fn host_and_net_queries_match_tshark_per_pair() {
    let store = replayed(FILE);
    let want = reference(FILE);
    let (busiest, quiet) = busiest_and_quiet(&want);
    for a in [busiest, quiet] {
        let got = pair_totals(&query_jsonl(store.path(), &["host", &a.to_string()]));
        assert_eq!(got, pairs_with(&want, a), "host {a}");
    }
    // A /24 around the busiest address: every pair with an address in it.
    let IpAddr::V4(b4) = busiest else {
        panic!("busiest address is IPv6")
    };
    let net = Ipv4Addr::from(u32::from(b4) & 0xffff_ff00);
    let in_net =
        |a: &IpAddr| matches!(a, IpAddr::V4(v) if u32::from(*v) & 0xffff_ff00 == u32::from(net));
    let got = pair_totals(&query_jsonl(store.path(), &["net", &format!("{net}/24")]));
    let expect: PairTotals = want
        .iter()
        .filter(|((_, lo, hi), _)| in_net(lo) || in_net(hi))
        .map(|(k, v)| (*k, *v))
        .collect();
    assert!(!expect.is_empty());
    assert_eq!(got, expect);
    eprintln!(
        "{FILE}: host {busiest}: {} pairs; host {quiet}: 1 pair; net {net}/24: {} pairs",
        pairs_with(&want, busiest).len(),
        expect.len()
    );
}

/// Each expression against the same predicate written over the JSON fields here.
#[test]
fn filters_select_what_an_independent_predicate_selects() {
    let store = replayed(FILE);
    let all = records(store.path());
    let (busiest, _) = busiest_and_quiet(&reference(FILE));
    let b = busiest.to_string();
    let has_ports = |r: &Value| matches!(u(r, "proto"), 6 | 17 | 33 | 132 | 136);
    type Pred<'a> = Box<dyn Fn(&Value) -> bool + 'a>;
    let cases: Vec<(Vec<&str>, Pred)> = vec![
        (vec!["udp"], Box::new(|r| u(r, "proto") == 17)),
        (vec!["proto", "6"], Box::new(|r| u(r, "proto") == 6)),
        (
            vec!["port", "53"],
            Box::new(|r| has_ports(r) && (u(r, "sport") == 53 || u(r, "dport") == 53)),
        ),
        (
            vec!["dst", "port", "80", "or", "dst", "port", "443"],
            Box::new(|r| has_ports(r) && [80, 443].contains(&u(r, "dport"))),
        ),
        (
            vec!["src", "host", &b],
            Box::new(|r| r["src"].as_str() == Some(b.as_str())),
        ),
        (
            vec!["not", "dst", "host", &b, "and", "tcp"],
            Box::new(|r| r["dst"].as_str() != Some(b.as_str()) && u(r, "proto") == 6),
        ),
        (
            vec!["tcp", "and", "packets", ">", "10"],
            Box::new(|r| u(r, "proto") == 6 && u(r, "packets") + u(r, "rev_packets") > 10),
        ),
        (
            vec!["bytes", ">=", "10000", "||", "end", "rst"],
            Box::new(|r| u(r, "bytes") + u(r, "rev_bytes") >= 10000 || r["end"] == "rst"),
        ),
        (
            vec!["flags", "R"],
            Box::new(|r| (u(r, "tcp_flags") | u(r, "rev_tcp_flags")) & 4 != 0),
        ),
        (
            vec!["portrange", "1024-65535", "and", "!", "(udp)"],
            Box::new(|r| {
                has_ports(r)
                    && u(r, "proto") != 17
                    && (1024..=65535).contains(&u(r, "sport"))
                        | (1024..=65535).contains(&u(r, "dport"))
            }),
        ),
    ];
    for (expr, pred) in cases {
        let want: Vec<&Value> = all.iter().filter(|r| pred(r)).collect();
        let got = query_jsonl(store.path(), &expr);
        assert!(!want.is_empty(), "{expr:?} selects nothing in {FILE}");
        assert_eq!(got.len(), want.len(), "{expr:?}");
        assert!(got.iter().zip(&want).all(|(g, w)| g == *w), "{expr:?}");
    }
    // A MAC seen in the capture.
    let mac = all.iter().find_map(|r| r["src_mac"].as_str()).unwrap();
    let want = all
        .iter()
        .filter(|r| r["src_mac"].as_str() == Some(mac) || r["dst_mac"].as_str() == Some(mac))
        .count();
    assert_eq!(query_jsonl(store.path(), &["mac", mac]).len(), want);
}

#[test]
fn community_id_is_in_every_csv_and_jsonl_record() {
    let store = replayed(FILE);
    let recs = records(store.path());
    assert!(recs.iter().all(|r| {
        let id = r["community_id"].as_str().unwrap();
        id.starts_with("1:") && id.len() == 30
    }));
    // One ID per 5-tuple, either way round, and a different one for every other 5-tuple.
    let mut by_tuple: BTreeMap<(u64, String, String), &str> = BTreeMap::new();
    for r in &recs {
        let a = format!("{} {}", r["src"], r["sport"]);
        let b = format!("{} {}", r["dst"], r["dport"]);
        let key = if a <= b {
            (u(r, "proto"), a, b)
        } else {
            (u(r, "proto"), b, a)
        };
        let id = r["community_id"].as_str().unwrap();
        assert_eq!(*by_tuple.entry(key).or_insert(id), id);
    }
    let ids: std::collections::BTreeSet<&&str> = by_tuple.values().collect();
    assert_eq!(ids.len(), by_tuple.len());
    let out = run(&[
        "query",
        "--format",
        "csv",
        "--store",
        store.path().to_str().unwrap(),
    ]);
    let csv = text(&out.stdout);
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .ends_with(",end,community_id,interface,duration,proto_name,flags,rev_flags"));
    // Replay names no interface: the interface column is the number 0; then the duration,
    // the protocol's name and the flag letters (TCP only).
    assert!(csv.lines().skip(1).all(|l| {
        let cols: Vec<&str> = l.split(',').collect();
        let secs = |t: &str| -> f64 {
            let hms = &t[11..t.len() - 1];
            let p: Vec<f64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
            p[0] * 3600.0 + p[1] * 60.0 + p[2]
        };
        let span: f64 = cols[20].parse().unwrap();
        cols.len() == 24
            && cols[19] == "0"
            && cols[18].starts_with("1:")
            && (span - (secs(cols[1]) - secs(cols[0])).rem_euclid(86400.0)).abs() < 1e-6
            && match cols[2] {
                "6" => cols[21] == "tcp" && cols[22].len() == 8 && cols[23].len() == 8,
                "17" => cols[21] == "udp" && cols[22].is_empty() && cols[23].is_empty(),
                _ => cols[22].is_empty(),
            }
    }));
}

fn stats(store: &Path, by: &str, order: &str, top: &str, extra: &[&str]) -> Vec<Value> {
    let s = store.to_str().unwrap();
    let mut args = vec![
        "stats", "--store", s, "--by", by, "--order", order, "--top", top, "--format", "jsonl",
    ];
    args.extend(extra);
    jsonl(&run(&args))
}

/// `stats` against totals computed here: packets and bytes per host and per pair from tshark's
/// reference, flows from the records.
#[test]
fn stats_match_hand_computed_totals() {
    let store = replayed(FILE);
    let want = reference(FILE);
    let recs = records(store.path());
    // host: each pair's traffic counts for both of its addresses.
    let mut host: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for ((_, lo, hi), (p, b)) in &want {
        for a in if lo == hi { vec![lo] } else { vec![lo, hi] } {
            let e = host.entry(a.to_string()).or_default();
            e.1 += p;
            e.2 += b;
        }
    }
    for r in &recs {
        let (s, d) = (r["src"].as_str().unwrap(), r["dst"].as_str().unwrap());
        host.get_mut(s).unwrap().0 += 1;
        if d != s {
            host.get_mut(d).unwrap().0 += 1;
        }
    }
    let got = stats(store.path(), "host", "bytes", "0", &[]);
    assert_eq!(got.len(), host.len());
    for row in &got {
        let k = row["key"].as_str().unwrap();
        assert_eq!(
            (u(row, "flows"), u(row, "packets"), u(row, "bytes")),
            host[k],
            "host {k}"
        );
    }
    assert!(got
        .windows(2)
        .all(|w| u(&w[0], "bytes") >= u(&w[1], "bytes")));
    let total_bytes: u64 = want.values().map(|v| v.1).sum();
    let top = &got[0];
    let pct = u(top, "bytes") as f64 * 100.0 / total_bytes as f64;
    assert!((top["bytes_pct"].as_f64().unwrap() - pct).abs() < 0.006);

    // pair: tshark's rows exactly.
    let got = stats(store.path(), "pair", "packets", "0", &[]);
    let mut pairs = PairTotals::new();
    for row in &got {
        let k = row["key"].as_str().unwrap();
        let (a, b) = k.split_once(" <-> ").unwrap();
        let (a, b): (IpAddr, IpAddr) = (a.parse().unwrap(), b.parse().unwrap());
        assert!(a <= b, "{k}");
        let v = if a.is_ipv4() { 4 } else { 6 };
        pairs.insert((v, a, b), (u(row, "packets"), u(row, "bytes")));
    }
    assert_eq!(pairs, want);

    // port (the responder's, with its protocol), top 5 by flows, from the records.
    let mut port: BTreeMap<String, u64> = BTreeMap::new();
    for r in recs.iter().filter(|r| matches!(u(r, "proto"), 6 | 17)) {
        let name = if u(r, "proto") == 6 { "tcp" } else { "udp" };
        *port.entry(format!("{name}/{}", u(r, "dport"))).or_default() += 1;
    }
    let mut expect: Vec<(u64, String)> = port.into_iter().map(|(k, n)| (n, k)).collect();
    expect.sort_by_key(|e| std::cmp::Reverse(e.0));
    let got = stats(store.path(), "port", "flows", "5", &[]);
    assert_eq!(got.len(), 5);
    for (row, (n, _)) in got.iter().zip(&expect) {
        assert_eq!(u(row, "flows"), *n, "{row}");
        assert!(expect
            .iter()
            .any(|(m, k)| m == n && k == row["key"].as_str().unwrap()));
    }

    // A filter narrows the statistics: udp only, by proto, is one row with every UDP record.
    let got = stats(store.path(), "proto", "flows", "0", &["udp"]);
    let udp = recs.iter().filter(|r| u(r, "proto") == 17).count() as u64;
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0]["key"].as_str(), u(&got[0], "flows")),
        (Some("udp"), udp)
    );
    assert_eq!(got[0]["flows_pct"].as_f64(), Some(100.0));
    eprintln!(
        "{FILE}: {} hosts, {} pairs, {udp} udp flows",
        host.len(),
        want.len()
    );
}

const T0: i64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z
const DAY: i64 = 86_400_000_000_000;
const TARGET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 77);

/// A store spanning 30 days, hourly partitions, 64-record blocks: 200 000 records between
/// 20 000 clients and 500 servers, and TARGET in 12 records on three days.
fn thirty_day_store(dir: &Path) -> usize {
    let mut cfg = WriterConfig::new(dir);
    cfg.block_records = 64;
    cfg.zstd_level = 1;
    let mut w = StoreWriter::create(cfg).unwrap();
    let mut rng = Rng(7);
    let n = 200_000i64;
    let step = 30 * DAY / n;
    let mut per_day = [0usize; 30];
    for i in 0..n {
        let first = T0 + i * step;
        let mut src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + rng.next() as u32 % 20_000));
        let dst = IpAddr::V4(Ipv4Addr::from(0xc633_6400 + rng.next() as u32 % 500));
        // Four records on each of days 3, 11 and 27 (counted from 0).
        let day = (i * 30 / n) as usize;
        if [3, 11, 27].contains(&day) && i % 997 == 0 && per_day[day] < 4 {
            src = IpAddr::V4(TARGET);
            per_day[day] += 1;
        }
        w.append(&FlowRecord {
            first,
            last: first + 1_000_000_000,
            proto: 6,
            src,
            sport: 40_000 + (i % 20_000) as u16,
            dst,
            dport: 443,
            vlan: 0,
            inner_vlan: 0,
            interface: 0,
            src_mac: None,
            dst_mac: None,
            packets: 10,
            bytes: 1000,
            rev_packets: 8,
            rev_bytes: 8000,
            tcp_flags: 0x1b,
            rev_tcp_flags: 0x1b,
            end: EndReason::Fin,
        })
        .unwrap();
    }
    w.finish().unwrap();
    per_day.iter().sum()
}

/// The numbers of `--explain`'s lines, by their first word after `explain:`.
fn explain_numbers(stderr: &str, what: &str) -> Vec<u64> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&format!("explain: {what}:")))
        .unwrap_or_else(|| panic!("no '{what}' line in {stderr}"));
    line.split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter(|w| !w.is_empty() && !w.contains('.'))
        .map(|w| w.parse().unwrap())
        .collect()
}

/// `flowkeep query --format jsonl --explain` of `expr` over the store `s`.
fn explained(s: &str, expr: &[&str]) -> Output {
    let mut args = vec!["query", "--store", s, "--format", "jsonl", "--explain"];
    args.extend(expr);
    run(&args)
}

#[test]
fn one_address_over_thirty_days_reads_few_blocks_and_times_select() {
    let dir = tempfile::tempdir().unwrap();
    let target = thirty_day_store(dir.path());
    assert_eq!(target, 12);
    let s = dir.path().to_str().unwrap();
    let t = TARGET.to_string();
    let out = explained(s, &["host", &t]);
    assert_eq!(jsonl(&out).len(), 12);
    let err = text(&out.stderr);
    let blocks = explain_numbers(&err, "blocks");
    // read, skipped by time, skipped by address, total
    let (read, by_time, by_addr, total) = (blocks[0], blocks[1], blocks[2], blocks[3]);
    assert_eq!(read + by_time + by_addr, total, "{err}");
    assert!(total > 3000, "{err}");
    assert!(
        read * 20 <= total,
        "read {read} of {total} blocks: more than 5 %\n{err}"
    );
    assert_eq!(explain_numbers(&err, "records")[1], 12, "{err}");
    eprintln!(
        "30 days, one address: read {read} of {total} blocks ({:.2} %)",
        read as f64 * 100.0 / total as f64
    );

    // The same with a time range: day 11 only (a date alone is midnight UTC).
    let out = explained(
        s,
        &[
            "--since",
            "2026-01-12",
            "--until",
            "2026-01-13T00:00:00Z",
            "host",
            &t,
        ],
    );
    assert_eq!(jsonl(&out).len(), 4);
    let err = text(&out.stderr);
    let segs = explain_numbers(&err, "segments");
    assert_eq!(
        segs,
        [24, 30 * 24 - 24],
        "a day of hourly partitions\n{err}"
    );

    // A filter with no address cannot use the index; a full scan reads every block.
    let out = explained(s, &["packets", "=", "1"]);
    assert!(jsonl(&out).is_empty());
    let blocks = explain_numbers(&text(&out.stderr), "blocks");
    assert_eq!(blocks[0], blocks[3]);

    // Relative times are relative to the wall clock: 100 years back holds everything, and
    // nothing is older than that.
    let n = |args: &[&str]| {
        let mut a = vec!["stats", "--store", s, "--by", "proto", "--format", "jsonl"];
        a.extend(args);
        jsonl(&run(&a)).first().map_or(0, |r| u(r, "flows"))
    };
    assert_eq!(n(&["--since", "-36500d"]), 200_000);
    assert_eq!(n(&["--until", "-36500d"]), 0);
    let step = 30 * DAY / 200_000;
    let last_day = (0..200_000i64)
        .filter(|i| T0 + i * step + 1_000_000_000 >= T0 + 29 * DAY)
        .count() as u64;
    assert_eq!(n(&["--since", "2026-01-30"]), last_day);
}

#[test]
fn bad_expressions_and_times_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    StoreWriter::create(WriterConfig::new(dir.path()))
        .unwrap()
        .finish()
        .unwrap();
    let s = dir.path().to_str().unwrap();
    let out = run(&[
        "query", "--store", s, "host", "10.0.0.1", "and", "prot", "tcp",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("'prot'") && err.contains("position 19"),
        "{err}"
    );
    assert!(err.contains("\n  host 10.0.0.1 and prot tcp\n"), "{err}");
    assert!(
        err.contains(&format!("\n  {}^^^^", " ".repeat(18))),
        "{err}"
    );
    let out = run(&["stats", "--store", s, "--by", "host", "port", "99999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("'99999' is not a port number"));
    // A time that cannot be parsed is a usage error, like any bad argument.
    let out = run(&["query", "--store", s, "--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("--since") && err.contains("'last tuesday'"),
        "{err}"
    );
    let out = run(&[
        "query",
        "--store",
        s,
        "--since",
        "2026-01-02",
        "--until",
        "2026-01-01",
    ]);
    assert!(text(&out.stderr).contains("--until must be later than --since"));
    // The filter is checked before the store is opened.
    let out = run(&["query", "--store", "/nonexistent", "hots", "1.1.1.1"]);
    assert!(text(&out.stderr).contains("'hots'"));
}

/// `| head`: the reader goes away after a line; the writer must end quietly with status 0.
#[test]
fn closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    thirty_day_store(dir.path());
    let s = dir.path().to_str().unwrap();
    for args in [
        vec!["query", "--store", s, "--format", "jsonl"],
        vec!["query", "--store", s, "--format", "table", "tcp"],
        vec![
            "stats", "--store", s, "--by", "pair", "--top", "0", "--format", "csv",
        ],
    ] {
        let mut child = Command::new(BIN)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty());
        // The reader (and the pipe's only read end) is dropped here.
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr), "", "{args:?}");
    }
}

/// `stats --by time`: every record in the bin of its first packet, empty bins between, the
/// totals those of tshark's reference; and `--by src --interval` the top source of each bin.
#[test]
fn stats_by_time_bins_the_records_by_their_first_packet() {
    let store = replayed(FILE);
    let recs = records(store.path());
    let mut want: BTreeMap<i64, (u64, u64, u64)> = BTreeMap::new();
    for r in &recs {
        let bin = epoch_secs(r["first"].as_str().unwrap()).div_euclid(3600) * 3600;
        let e = want.entry(bin).or_default();
        e.0 += 1;
        e.1 += u(r, "packets") + u(r, "rev_packets");
        e.2 += u(r, "bytes") + u(r, "rev_bytes");
    }
    let rows = stats(store.path(), "time", "flows", "10", &["--interval", "1h"]);
    let (lo, hi) = (*want.keys().next().unwrap(), *want.keys().last().unwrap());
    assert_eq!(
        rows.len() as i64,
        (hi - lo) / 3600 + 1,
        "every hour from first to last (the capture spans 2016 to 2022)"
    );
    for row in &rows {
        let bin = epoch_secs(row["bin"].as_str().unwrap());
        let (f, p, b) = want.get(&bin).copied().unwrap_or_default();
        assert_eq!(
            (u(row, "flows"), u(row, "packets"), u(row, "bytes")),
            (f, p, b),
            "{row}"
        );
        assert_eq!(row["interval_s"], 3600.0);
        let bps = row["bps"].as_f64().unwrap();
        assert!((bps - b as f64 * 8.0 / 3600.0).abs() < 0.001, "{row}");
    }
    let packets: u64 = rows.iter().map(|r| u(r, "packets")).sum();
    let tshark: u64 = reference(FILE).values().map(|v| v.0).sum();
    assert_eq!(packets, tshark, "the bins hold every packet tshark counted");
    // Top source per bin, by bytes.
    let top = stats(store.path(), "src", "bytes", "1", &["--interval", "1h"]);
    assert_eq!(top.len(), want.len(), "one row per non-empty bin");
    for row in &top {
        let bin = epoch_secs(row["bin"].as_str().unwrap());
        let mut per_src: BTreeMap<&str, u64> = BTreeMap::new();
        for r in recs
            .iter()
            .filter(|r| epoch_secs(r["first"].as_str().unwrap()).div_euclid(3600) * 3600 == bin)
        {
            *per_src.entry(r["src"].as_str().unwrap()).or_default() +=
                u(r, "bytes") + u(r, "rev_bytes");
        }
        let best = per_src.values().max().unwrap();
        assert_eq!(u(row, "bytes"), *best, "{row}");
    }
    // A bin count beyond the limit is refused before anything is printed.
    let o = run(&[
        "stats",
        "--store",
        store.path().to_str().unwrap(),
        "--by",
        "time",
        "--interval",
        "1ns",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("give a longer --interval"), "{}", out(&o));
    assert!(o.stdout.is_empty());
}

/// `--by src/24` (nfdump's `-A srcip4/24`): flows, packets and bytes per initiator /24 (and
/// /64 for IPv6), computed here from the records.
#[test]
fn stats_aggregate_addresses_to_prefixes() {
    let store = replayed(FILE);
    let recs = records(store.path());
    let mut want: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for r in &recs {
        let key = match r["src"].as_str().unwrap().parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => format!("{}/24", Ipv4Addr::from(u32::from(a) & 0xffff_ff00)),
            IpAddr::V6(a) => {
                let net = u128::from(a) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(net))
            }
        };
        let e = want.entry(key).or_default();
        e.0 += 1;
        e.1 += u(r, "packets") + u(r, "rev_packets");
        e.2 += u(r, "bytes") + u(r, "rev_bytes");
    }
    let rows = stats(store.path(), "src/24", "flows", "0", &[]);
    let got: BTreeMap<String, (u64, u64, u64)> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["by"], "src/24,64");
            (
                r["key"].as_str().unwrap().to_string(),
                (u(r, "flows"), u(r, "packets"), u(r, "bytes")),
            )
        })
        .collect();
    assert!(got.len() < recs.len(), "prefixes merge sources");
    assert_eq!(got, want);
    for (by, says) in [
        ("proto/24", "takes no prefix length"),
        ("src/33", "not a prefix length (0-32)"),
        ("src/24,129", "(0-128)"),
        ("nope", "is not one of src, dst"),
    ] {
        let o = run(&[
            "stats",
            "--store",
            store.path().to_str().unwrap(),
            "--by",
            by,
        ]);
        assert_eq!(o.status.code(), Some(2), "{by}: {}", out(&o));
        assert!(out(&o).contains(says), "{by}: {}", out(&o));
    }
}

/// `query --limit N` (`-c`, as nfdump): the first N records of the full answer in time order,
/// a note on stderr when more matched, none when not; 0 is refused.
#[test]
fn query_limit_prints_the_first_records_and_says_when_more_matched() {
    let store = replayed(FILE);
    let s = store.path().to_str().unwrap();
    let all = records(store.path());
    assert!(all.len() > 7);
    let o = run(&["query", "--store", s, "--format", "jsonl", "--limit", "7"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(jsonl(&o), all[..7].to_vec());
    assert!(
        text(&o.stderr).contains("more records match"),
        "{}",
        out(&o)
    );
    let n = all.len().to_string();
    let o = run(&["query", "--store", s, "--format", "jsonl", "-c", &n, "tcp"]);
    let tcp = query_jsonl(store.path(), &["tcp"]);
    assert_eq!(jsonl(&o), tcp);
    assert!(
        !text(&o.stderr).contains("more records match"),
        "{}",
        out(&o)
    );
    let o = run(&["query", "--store", s, "--limit", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
}

/// `query --fields` (nfdump's `-o fmt:`): the chosen columns, in the chosen order, the same
/// values as the full records; an unknown name is refused with the list.
#[test]
fn query_fields_choose_the_columns() {
    let store = replayed(FILE);
    let s = store.path().to_str().unwrap();
    let all = records(store.path());
    let o = run(&[
        "query",
        "--store",
        s,
        "--format",
        "jsonl",
        "--fields",
        "dst,first,bytes",
    ]);
    let picked = jsonl(&o);
    assert_eq!(picked.len(), all.len());
    for (p, r) in picked.iter().zip(&all) {
        let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3);
        assert_eq!(
            (&p["dst"], &p["first"], &p["bytes"]),
            (&r["dst"], &r["first"], &r["bytes"])
        );
    }
    let o = run(&[
        "query",
        "--store",
        s,
        "--format",
        "csv",
        "--fields",
        "proto_name,dport",
    ]);
    let csv = text(&o.stdout);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("proto_name,dport"));
    for (l, r) in lines.zip(&all) {
        let name = match u(r, "proto") {
            6 => "tcp",
            17 => "udp",
            1 => "icmp",
            58 => "icmp6",
            _ => continue,
        };
        assert_eq!(l, format!("{name},{}", u(r, "dport")));
    }
    let o = run(&["query", "--store", s, "--fields", "src,nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("'nope' is not a field"), "{}", out(&o));
}

/// Piped into `head` or `less` from a terminal, the answer is JSON lines and stderr says so
/// (and how to get the table); a script, whose stderr is no terminal, is not told. The terminal
/// is util-linux's `script`.
#[test]
fn a_piped_answer_says_its_format_on_a_terminal_stderr() {
    let has_script = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !common::can_run((!has_script).then(|| "util-linux's script is missing".to_string())) {
        return;
    }
    let store = replayed(FILE);
    let cmd = format!(
        "{BIN} query --store {} | head -1 >/dev/null",
        store.path().display()
    );
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    assert!(
        text(&o.stdout).contains("--format table for the table"),
        "{}",
        out(&o)
    );
    let o = Command::new(BIN)
        .args(["query", "--store", store.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!text(&o.stderr).contains("--format table"), "{}", out(&o));
    assert!(text(&o.stdout).starts_with('{'));
}
