//! End to end against a real IPFIX collector: fixtures are replayed into a store, their records
//! exported to nfdump's `nfcapd` on a loopback port, and what nfcapd stored (read back with
//! `nfdump -o csv`) must add up, per address pair, to flowkeep's own query and so to tshark's
//! counts of the same captures. nfcapd also checks the messages' sequence numbers.

mod common;

use common::{add_reference, pair_totals, records, run, text, PairTotals};
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// IPv4 and IPv6 (1kxun, stun), 802.1Q (stun, vxlan's inner tag), QinQ (eve-flow-vlan-02).
const FILES: [&str; 4] = [
    "nDPI__1kxun.pcap",
    "nDPI__stun.pcap",
    "suricata-verify__eve-flow-vlan-02_input.pcap",
    "nDPI__vxlan.pcap",
];

/// How long to wait for nfcapd to report what it received before calling it lost.
const PATIENCE: Duration = Duration::from_secs(60);

fn replay_args<'a>(store: &'a Path, files: &'a [PathBuf]) -> Vec<&'a str> {
    let mut args = vec!["replay", "--quiet", "--store", store.to_str().unwrap()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args
}

/// `flowkeep export --store STORE --to TARGET EXTRA...`.
fn export(store: &Path, target: &str, extra: &[&str]) -> Output {
    let mut args = vec!["export", "--store", store.to_str().unwrap(), "--to", target];
    args.extend_from_slice(extra);
    run(&args)
}

fn fixture_paths() -> Vec<PathBuf> {
    FILES.iter().map(|f| common::fixtures().join(f)).collect()
}

fn replay_fixtures(store: &Path) {
    let files = fixture_paths();
    let out = run(&replay_args(store, &files));
    assert!(out.status.success(), "replay: {}", text(&out.stderr));
}

fn tshark_totals() -> PairTotals {
    let mut t = PairTotals::new();
    for f in FILES {
        add_reference(&mut t, f);
    }
    t
}

/// A loopback port nothing listens on (for the instant after this returns).
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nfcapd on a loopback port, printing each record it decodes (`-E`, line-buffered), so the
/// test knows when everything sent has arrived without sleeping.
struct Nfcapd {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    decoded: mpsc::Receiver<()>,
    log: mpsc::Receiver<String>,
}

impl Nfcapd {
    fn start() -> Nfcapd {
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        let mut child = Command::new("stdbuf")
            .args(["-oL", "nfcapd", "-E", "-b", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .arg("-w")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nfcapd (Debian package nfdump) must be installed: scripts/deps.sh");
        let (tx, decoded) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("Flow Record:") && tx.send(()).is_err() {
                    break;
                }
            }
        });
        let (log_tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = log_tx.send(line);
            }
        });
        let n = Nfcapd {
            child,
            dir,
            port,
            decoded,
            log,
        };
        // Datagrams queue in the socket from the moment it is bound.
        loop {
            let line = n.log.recv_timeout(PATIENCE).expect("nfcapd did not start");
            if line.starts_with("Bound to") {
                break;
            }
        }
        n
    }

    fn target(&self) -> String {
        format!("ipfix+udp://127.0.0.1:{}", self.port)
    }

    /// Waits until nfcapd has decoded `n` data records, stops it (SIGTERM writes its file)
    /// and returns its log and the file as `nfdump -o csv` rows.
    fn finish(mut self, n: usize) -> (Vec<String>, Vec<Vec<String>>) {
        for i in 0..n {
            if self.decoded.recv_timeout(PATIENCE).is_err() {
                let _ = self.child.kill();
                panic!("nfcapd decoded only {i} of {n} records");
            }
        }
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap();
        // The stderr reader may still be forwarding nfcapd's last lines (its statistics, printed
        // on exit): read until it reaches end of file and drops its sender.
        let mut log = Vec::new();
        loop {
            match self.log.recv_timeout(PATIENCE) {
                Ok(line) => log.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("nfcapd's stderr stayed open"),
            }
        }
        let files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("nfcapd.2")
            })
            .collect();
        assert_eq!(files.len(), 1, "one nfcapd file: {files:?}, log {log:?}");
        let out = Command::new("nfdump")
            .arg("-r")
            .arg(&files[0])
            .args(["-o", "csv", "-q"])
            .output()
            .unwrap();
        assert!(out.status.success(), "nfdump: {}", text(&out.stderr));
        let rows = text(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split(',').map(|c| c.trim().to_string()).collect())
            .collect();
        (log, rows)
    }
}

/// nfdump's csv: sa, da at 3 and 4; ipkt, ibyt, opkt, obyt at 11 to 14 (nfdump 1.7).
fn nfdump_pair_totals(rows: &[Vec<String>]) -> PairTotals {
    let mut totals = PairTotals::new();
    for r in rows {
        let src: IpAddr = r[3].parse().unwrap();
        let dst: IpAddr = r[4].parse().unwrap();
        let n = |i: usize| r[i].parse::<u64>().unwrap();
        let ver = if src.is_ipv4() { 4 } else { 6 };
        let (lo, hi) = if src <= dst { (src, dst) } else { (dst, src) };
        let e = totals.entry((ver, lo, hi)).or_default();
        e.0 += n(11) + n(13);
        e.1 += n(12) + n(14);
    }
    totals
}

/// Data records flowkeep sends for `recs`: one per biflow, or one per direction with packets.
fn data_records(recs: &[serde_json::Value], unidirectional: bool) -> usize {
    if unidirectional {
        recs.len()
            + recs
                .iter()
                .filter(|r| r["rev_packets"].as_u64().unwrap() > 0)
                .count()
    } else {
        recs.len()
    }
}

fn summary_value(stdout: &str, key: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no '{key}' in {stdout}"))
        .trim()
        .parse()
        .unwrap()
}

fn back_fill_matches(unidirectional: bool) {
    let store = tempfile::tempdir().unwrap();
    replay_fixtures(store.path());
    let recs = records(store.path());
    let ours = pair_totals(&recs);
    assert_eq!(ours, tshark_totals(), "flowkeep differs from tshark");
    let vlans = recs
        .iter()
        .filter(|r| r["vlan"].as_u64() != Some(0))
        .count();
    let v6 = recs
        .iter()
        .filter(|r| r["src"].as_str().unwrap().contains(':'))
        .count();
    assert!(vlans > 0 && v6 > 0, "the fixtures cover VLANs and IPv6");

    let nf = Nfcapd::start();
    let target = nf.target();
    // Small messages: many of them, so sequence numbers and template refresh are exercised.
    let mut extra = vec![
        "--ipfix-message-size",
        "600",
        "--template-refresh-messages",
        "5",
    ];
    if unidirectional {
        extra.push("--unidirectional");
    }
    let out = export(store.path(), &target, &extra);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "export: {stdout}{}",
        text(&out.stderr)
    );
    assert_eq!(summary_value(&stdout, "records"), recs.len() as u64);
    assert_eq!(summary_value(&stdout, "sent"), recs.len() as u64);
    assert_eq!(summary_value(&stdout, "not sent"), 0);
    assert!(summary_value(&stdout, "messages") > 10);

    let expected = data_records(&recs, unidirectional);
    let (log, rows) = nf.finish(expected);
    assert_eq!(rows.len(), expected, "records in nfcapd's file");
    assert_eq!(
        nfdump_pair_totals(&rows),
        ours,
        "nfcapd differs from flowkeep"
    );
    let stat = log
        .iter()
        .find(|l| l.contains("Sequence Errors"))
        .unwrap_or_else(|| panic!("no statistics line in {log:?}"));
    assert!(stat.contains("Sequence Errors: 0,"), "{stat}");
    assert!(stat.contains(&format!("Flows: {expected},")), "{stat}");

    // Per record: vlan (svln, column 25) and the initiator's flags survive the trip.
    let flagged = rows.iter().filter(|r| r[25] != "0").count();
    assert!(flagged > 0, "vlan ids reach nfcapd");
    if !unidirectional {
        let tcp_flags: u64 = recs
            .iter()
            .filter(|r| r["proto"] == 6)
            .map(|r| r["tcp_flags"].as_u64().unwrap().count_ones() as u64)
            .sum();
        let nf_flags: u64 = rows
            .iter()
            .filter(|r| r[7] == "TCP")
            .map(|r| r[8].chars().filter(|c| *c != '.').count() as u64)
            .sum();
        assert_eq!(
            nf_flags, tcp_flags,
            "forward TCP flags, not the reverse ones"
        );
    }
}

#[test]
fn back_fill_biflows_to_nfcapd_match_the_query_and_tshark() {
    back_fill_matches(false);
}

#[test]
fn back_fill_unidirectional_to_nfcapd_matches_the_query_and_tshark() {
    back_fill_matches(true);
}

#[test]
fn replay_exports_every_record_as_it_is_written() {
    let store = tempfile::tempdir().unwrap();
    let nf = Nfcapd::start();
    let target = nf.target();
    let files = fixture_paths();
    let mut args = replay_args(store.path(), &files);
    args.extend(["--export", &target, "--workers", "2"]);
    let out = run(&args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let recs = records(store.path());
    assert!(
        stdout.contains(&format!(
            "exported       {} records to {target}",
            recs.len()
        )),
        "{stdout}"
    );
    let (_, rows) = nf.finish(recs.len());
    assert_eq!(nfdump_pair_totals(&rows), pair_totals(&recs));
    assert_eq!(pair_totals(&recs), tshark_totals());
}

#[test]
fn tcp_collector_not_listening_is_an_error_and_the_store_keeps_everything() {
    let port = free_tcp_port();
    let target = format!("ipfix+tcp://127.0.0.1:{port}");
    let store = tempfile::tempdir().unwrap();
    let files = fixture_paths();
    let mut args = replay_args(store.path(), &files);
    args.extend(["--export", &target]);
    let out = run(&args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let recs = records(store.path());
    assert_eq!(
        pair_totals(&recs),
        tshark_totals(),
        "every record is stored"
    );
    assert!(
        stderr.contains(&format!(
            "{} records could not be exported to {target}",
            recs.len()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("refused"), "{stderr}");

    let out = export(store.path(), &target, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot connect to the IPFIX collector {target}; nothing was sent"
        )) && stderr.contains("refused"),
        "{stderr}"
    );
}

#[test]
fn udp_with_nobody_listening_counts_every_record_once() {
    let store = tempfile::tempdir().unwrap();
    replay_fixtures(store.path());
    let total = records(store.path()).len() as u64;
    let target = format!("ipfix+udp://127.0.0.1:{}", free_udp_port());
    let out = export(store.path(), &target, &[]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    // UDP cannot know whether anyone listens; the port-unreachable answers the kernel gets
    // make later sends fail, and those are reported.
    let sent = summary_value(&stdout, "sent");
    let failed = summary_value(&stdout, "not sent");
    assert_eq!(sent + failed, total, "{stdout}");
    if failed > 0 {
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr.contains(&format!(
                "{failed} of {total} records could not be sent to {target}"
            )),
            "{stderr}"
        );
    } else {
        assert!(out.status.success(), "{stderr}");
    }
}

#[test]
fn tcp_stream_is_a_sequence_of_whole_messages_with_templates_first() {
    let store = tempfile::tempdir().unwrap();
    replay_fixtures(store.path());
    let total = records(store.path()).len() as u32;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut bytes = Vec::new();
        conn.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let out = export(
        store.path(),
        &format!("ipfix+tcp://127.0.0.1:{port}"),
        &["--observation-domain", "77"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bytes = reader.join().unwrap();
    // RFC 7011 section 3.1 and 3.3, read independently of the encoder.
    let be16 = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]) as usize;
    let be32 = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    let (mut at, mut seq, mut messages, mut template_sets) = (0, 0u32, 0, 0);
    while at < bytes.len() {
        assert_eq!(be16(at), 10, "version at byte {at}");
        let len = be16(at + 2);
        assert!(len <= 1400);
        assert_eq!(be32(at + 8), seq, "sequence number of message {messages}");
        assert_eq!(be32(at + 12), 77, "observation domain");
        let mut set = at + 16;
        while set < at + len {
            let (id, set_len) = (be16(set), be16(set + 2));
            match id {
                2 => {
                    assert_eq!(messages, 0, "templates once, in the first message");
                    template_sets += 1;
                }
                256 => seq += ((set_len - 4) / 82) as u32,
                257 => seq += ((set_len - 4) / 106) as u32,
                _ => panic!("set id {id}"),
            }
            set += set_len;
        }
        assert_eq!(set, at + len, "sets fill message {messages} exactly");
        at += len;
        messages += 1;
    }
    assert_eq!(template_sets, 1);
    assert_eq!(seq, total, "every record, once");
}
