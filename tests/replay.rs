//! End to end: `flowkeep replay` every public capture in fixtures/, read the flows back with
//! `flowkeep query --format jsonl`, and compare the per-address-pair totals with what tshark
//! counts in the same files (fixtures/pcaps/reference/*.l3.tsv): an oracle nobody here wrote.

use std::path::Path;

mod common;
use common::{fixtures, pair_totals, pcap, records, reference, replay, run, text};

struct Capture {
    file: String,
    malformed: bool,
}

/// The MANIFEST rows; notes starting with MALFORMED or ODD mark the bad-input set.
fn manifest() -> Vec<Capture> {
    let text = std::fs::read_to_string(fixtures().join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<_> = lines.next().unwrap().split('\t').collect();
    let notes = header.iter().position(|h| *h == "notes").unwrap();
    lines
        .map(|l| {
            let cols: Vec<_> = l.split('\t').collect();
            let note = cols[notes];
            Capture {
                file: cols[0].to_string(),
                malformed: note.starts_with("MALFORMED") || note.starts_with("ODD"),
            }
        })
        .collect()
}

#[test]
fn every_well_formed_capture_matches_tshark_per_address_pair() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for cap in manifest().into_iter().filter(|c| !c.malformed) {
        let dir = tempfile::tempdir().unwrap();
        let out = replay(&fixtures().join(&cap.file), dir.path(), &["--workers", "2"]);
        if !out.status.success() {
            failures.push(format!(
                "{}: replay failed: {}",
                cap.file,
                text(&out.stderr)
            ));
            continue;
        }
        let got = pair_totals(&records(dir.path()));
        let want = reference(&cap.file);
        if got != want {
            let mut diff = Vec::new();
            for k in want.keys().chain(got.keys()) {
                if want.get(k) != got.get(k) {
                    diff.push(format!(
                        "  {k:?}: tshark {:?}, flowkeep {:?}",
                        want.get(k),
                        got.get(k)
                    ));
                }
            }
            diff.dedup();
            failures.push(format!("{}:\n{}", cap.file, diff.join("\n")));
        }
        checked += 1;
    }
    assert_eq!(checked, 61, "the MANIFEST lists 61 well-formed captures");
    assert!(
        failures.is_empty(),
        "{} of {checked} captures differ from tshark:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn malformed_captures_never_panic_and_keep_what_was_good() {
    let mut checked = 0;
    for cap in manifest().into_iter().filter(|c| c.malformed) {
        let dir = tempfile::tempdir().unwrap();
        let path = fixtures().join(&cap.file);
        let out = replay(&path, dir.path(), &[]);
        let stderr = text(&out.stderr);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0) | Some(1)),
            "{}: exit {code:?}\n{stderr}",
            cap.file
        );
        assert!(!stderr.contains("panicked"), "{}: {stderr}", cap.file);
        if code == Some(1) {
            let errors: Vec<_> = stderr.lines().filter(|l| l.contains("error")).collect();
            assert_eq!(
                errors.len(),
                1,
                "{}: want one error line: {stderr}",
                cap.file
            );
            assert!(errors[0].contains(&cap.file), "{}: {stderr}", cap.file);
        }
        // Whatever was stored can be read back.
        if dir.path().join("flowkeep-store").exists() {
            records(dir.path());
        }
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} bad captures");
}

#[test]
fn packets_before_a_corrupt_record_are_kept() {
    // Six good packets, then a record header claiming 4 MB: tshark reads the six.
    let file = "suricata-verify__tls_DER-incomplete-header.pcap";
    let dir = tempfile::tempdir().unwrap();
    let out = replay(&fixtures().join(file), dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(file));
    assert_eq!(pair_totals(&records(dir.path())), reference(file));
}

#[test]
fn worker_count_does_not_change_the_records() {
    // Fragments, both directions, ICMP, many flows: a dispatch mistake splits a flow.
    for file in [
        "nDPI__dns_fragmented.pcap",
        "nDPI__1kxun.pcap",
        "nDPI__sites.pcapng",
        // ICMP echo requests and replies: one record whichever worker count.
        "suricata-verify__eve-flow-vlan-02_input.pcap",
        "libpcap__ah-ipip-ping.pcap",
        "tcpdump__mpls-traceroute.pcap",
    ] {
        let mut sets = Vec::new();
        for workers in ["1", "3"] {
            let dir = tempfile::tempdir().unwrap();
            let out = replay(&fixtures().join(file), dir.path(), &["--workers", workers]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            let mut lines: Vec<String> =
                records(dir.path()).iter().map(|r| r.to_string()).collect();
            lines.sort();
            sets.push(lines);
        }
        assert!(!sets[0].is_empty());
        assert_eq!(sets[0], sets[1], "{file}");
    }
}

#[test]
fn a_bounded_flow_table_evicts_but_stores_every_packet() {
    let file = "nDPI__1kxun.pcap";
    let dir = tempfile::tempdir().unwrap();
    let out = replay(
        &fixtures().join(file),
        dir.path(),
        &["--max-flows", "8", "--workers", "1"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let recs = records(dir.path());
    assert_eq!(pair_totals(&recs), reference(file));
    let evicted = recs.iter().filter(|r| r["end"] == "evicted").count();
    assert!(evicted > 0, "no record was evicted");
    assert!(
        text(&out.stdout).contains(&format!("flows evicted  {evicted} ")),
        "{}",
        text(&out.stdout)
    );

    let info = run(&["info", "--store", dir.path().to_str().unwrap()]);
    assert!(info.status.success(), "{}", text(&info.stderr));
    let info = text(&info.stdout);
    assert!(
        info.contains(&format!("; {evicted} flows evicted;")),
        "{evicted} evicted, info says:\n{info}"
    );

    // Without the limit: nothing evicted, the same totals.
    let dir = tempfile::tempdir().unwrap();
    let out = replay(&fixtures().join(file), dir.path(), &["--workers", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let recs = records(dir.path());
    assert!(recs.iter().all(|r| r["end"] != "evicted"));
    assert_eq!(pair_totals(&recs), reference(file));
}

#[test]
fn replay_summary_accounts_for_every_frame() {
    let file = "nDPI__android.pcap";
    let dir = tempfile::tempdir().unwrap();
    let out = replay(&fixtures().join(file), dir.path(), &[]);
    assert!(out.status.success());
    let summary = text(&out.stdout);
    let field = |name: &str| -> u64 {
        summary
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l[name.len()..].trim().split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {summary}"))
    };
    // MANIFEST: 500 frames, 475 of them IPv4 or IPv6 (466 + 9).
    assert_eq!(field("packets"), 500);
    assert_eq!(field("ip packets"), 475);
    assert_eq!(
        field("ip packets") + field("non-ip frames") + field("malformed"),
        500
    );
    let recs = records(dir.path());
    assert_eq!(field("flows written") as usize, recs.len());
    let want: u64 = reference(file).values().map(|v| v.1).sum();
    assert_eq!(field("ip bytes"), want);
}

#[test]
fn query_time_range_selects_overlapping_records() {
    let file = "nDPI__1kxun.pcap";
    let dir = tempfile::tempdir().unwrap();
    assert!(replay(&fixtures().join(file), dir.path(), &[])
        .status
        .success());
    let all = records(dir.path());
    let mut firsts: Vec<&str> = all.iter().map(|r| r["first"].as_str().unwrap()).collect();
    firsts.sort();
    let mid = firsts[firsts.len() / 2];
    let store = dir.path().to_str().unwrap();
    let out = run(&[
        "query", "--store", store, "--format", "jsonl", "--since", mid,
    ]);
    assert!(out.status.success());
    let since: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // RFC 3339 with fixed-width nanoseconds sorts like time.
    let expected = all
        .iter()
        .filter(|r| r["last"].as_str().unwrap() >= mid)
        .count();
    assert_eq!(since.len(), expected);
    assert!(since.len() < all.len() && !since.is_empty());
    let out = run(&[
        "query", "--store", store, "--format", "jsonl", "--until", mid,
    ]);
    let until = text(&out.stdout).lines().count();
    let expected = all
        .iter()
        .filter(|r| r["first"].as_str().unwrap() < mid)
        .count();
    assert_eq!(until, expected);
}

#[test]
fn bad_arguments_get_one_line_and_a_failure_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let store = store.to_str().unwrap();

    let out = run(&["replay", "/nonexistent/x.pcap", "--store", store, "-q"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/x.pcap"), "{err}");
    // Refused before anything was written, even beside a readable capture.
    let ok_pcap = fixtures().join("nDPI__nats.pcap");
    let out = run(&[
        "replay",
        ok_pcap.to_str().unwrap(),
        "/nonexistent/x.pcap",
        "--store",
        store,
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("nothing was written"));
    assert!(!Path::new(store).exists());

    // A store path under a regular file cannot be created.
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let bad_store = file.join("store");
    let pcap = fixtures().join("nDPI__nats.pcap");
    let out = run(&[
        "replay",
        pcap.to_str().unwrap(),
        "--store",
        bad_store.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("plain"), "{err}");

    let out = run(&["query", "--store", store, "--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("last tuesday"));

    let out = run(&["query", "--store", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a flowkeep store"));

    let out = run(&[
        "replay",
        pcap.to_str().unwrap(),
        "--store",
        store,
        "--idle-timeout",
        "0s",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// A classic pcap (LINKTYPE_RAW) of IPv4 packets, one per `(ts_usec, packet)`.
fn raw_ipv4_pcap(packets: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut f = pcap::header(pcap::LINKTYPE_RAW);
    for (usec, p) in packets {
        pcap::push_packet(&mut f, 1_767_225_600, *usec, p.len() as u32, p);
    }
    f
}

fn icmp_echo(src: [u8; 4], dst: [u8; 4], icmp_type: u8) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&[icmp_type, 0, 0, 0, 0, 7, 0, 1]);
    p
}

#[test]
fn icmp_echo_replies_join_their_requests_across_workers() {
    let dir = tempfile::tempdir().unwrap();
    let mut packets = Vec::new();
    for i in 0..60u8 {
        let (a, b) = ([10, 0, 0, i], [192, 0, 2, 200 - i]);
        packets.push((u32::from(i) * 1000, icmp_echo(a, b, 8)));
        packets.push((u32::from(i) * 1000 + 500, icmp_echo(b, a, 0)));
    }
    let pcap = dir.path().join("pings.pcap");
    std::fs::write(&pcap, raw_ipv4_pcap(&packets)).unwrap();
    let store = dir.path().join("store");
    let out = replay(&pcap, &store, &["--workers", "3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let recs = records(&store);
    assert_eq!(recs.len(), 60);
    for r in &recs {
        assert_eq!(
            (r["packets"].as_u64(), r["rev_packets"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(r["dport"], 8 * 256, "echo request type, code 0");
        assert!(r["src"].as_str().unwrap().starts_with("10."));
    }
}

#[test]
fn packets_stamped_before_earlier_ones_are_counted_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = ([10, 0, 0, 1], [192, 0, 2, 1], [192, 0, 2, 2]);
    // Read order: 0.9 s, then 0.1 s and 0.2 s (two files merged out of order), then 1.0 s.
    let packets = [
        (900_000, icmp_echo(a, b, 8)),
        (100_000, icmp_echo(a, c, 8)),
        (200_000, icmp_echo(a, b, 8)),
        (999_000, icmp_echo(a, c, 8)),
    ];
    let pcap = dir.path().join("merged.pcap");
    std::fs::write(&pcap, raw_ipv4_pcap(&packets)).unwrap();
    let out = replay(&pcap, &dir.path().join("store"), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.contains("out of order   2 ("), "{summary}");
    // In order, nothing is said.
    let sorted = [
        packets[1].clone(),
        packets[2].clone(),
        packets[0].clone(),
        packets[3].clone(),
    ];
    std::fs::write(&pcap, raw_ipv4_pcap(&sorted)).unwrap();
    let out = replay(&pcap, &dir.path().join("store2"), &[]);
    assert!(
        !text(&out.stdout).contains("out of order"),
        "{}",
        text(&out.stdout)
    );
}

/// Sorted CSV of every record in `store`, for comparing stores.
fn sorted_csv(store: &std::path::Path) -> Vec<String> {
    let o = std::process::Command::new(common::BIN)
        .args(["query", "--format", "csv", "--store"])
        .arg(store)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    let mut lines: Vec<String> = common::text(&o.stdout).lines().map(String::from).collect();
    lines.sort();
    lines
}

#[test]
fn captures_from_a_fifo_and_stdin_are_read_as_from_the_file_and_a_directory_is_refused() {
    use std::process::{Command, Stdio};
    let d = tempfile::tempdir().unwrap();
    let pcap = common::fixtures().join("nDPI__iphone.pcap");
    let file_store = d.path().join("file");
    assert!(common::replay(&pcap, &file_store, &[]).status.success());
    let want = sorted_csv(&file_store);
    assert!(want.len() > 10);
    // A FIFO: opening it waits for its writer, which starts only after replay did.
    let fifo = d.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let fifo_store = d.path().join("fifo-store");
    let replay = Command::new(common::BIN)
        .args(["replay", "-q", "--store"])
        .arg(&fifo_store)
        .arg(&fifo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(&fifo, std::fs::read(&pcap).unwrap()).unwrap();
    let o = replay.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", common::out(&o));
    assert_eq!(sorted_csv(&fifo_store), want);
    // `-`: standard input.
    let stdin_store = d.path().join("stdin-store");
    let o = Command::new(common::BIN)
        .args(["replay", "-q", "--store"])
        .arg(&stdin_store)
        .arg("-")
        .stdin(std::fs::File::open(&pcap).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::out(&o));
    assert_eq!(sorted_csv(&stdin_store), want);
    // A directory: one clear line, nothing written.
    let dir_store = d.path().join("dir-store");
    let o = common::run(&[
        "replay",
        "-q",
        "--store",
        dir_store.to_str().unwrap(),
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", common::out(&o));
    assert!(
        common::out(&o).contains("is a directory"),
        "{}",
        common::out(&o)
    );
    assert!(!dir_store.exists());
}

/// `path`'s pcap rewritten as a big-endian host would have written it: the file and record
/// headers, and every NFLOG TLV's length and type (in the writer's byte order, unlike the rest).
fn nflog_big_endian(path: &Path) -> Vec<u8> {
    let le = std::fs::read(path).unwrap();
    let swap32 = |v: &mut Vec<u8>, at: usize| v[at..at + 4].reverse();
    let mut be = le.clone();
    swap32(&mut be, 0); // magic
    be[4..6].reverse(); // version major, minor
    be[6..8].reverse();
    for at in [8, 12, 16, 20] {
        swap32(&mut be, at); // thiszone, sigfigs, snaplen, link type
    }
    let mut at = 24;
    while at + 16 <= le.len() {
        let caplen = u32::from_le_bytes(le[at + 8..at + 12].try_into().unwrap()) as usize;
        for f in 0..4 {
            swap32(&mut be, at + 4 * f);
        }
        let frame = at + 16;
        let mut tlv = frame + 4;
        while tlv + 4 <= frame + caplen {
            let len = u16::from_le_bytes([le[tlv], le[tlv + 1]]) as usize;
            be[tlv..tlv + 2].reverse();
            be[tlv + 2..tlv + 4].reverse();
            tlv += len.max(4).next_multiple_of(4);
        }
        at = frame + caplen;
    }
    be
}

/// tcpdump's NFLOG capture, as a big-endian router writes it, gives tshark's numbers too: the
/// TLV headers are read in the file's byte order, not this machine's.
#[test]
fn big_endian_nflog_capture_matches_the_little_endian_reference() {
    let file = "tcpdump__nflog.pcap";
    let dir = tempfile::tempdir().unwrap();
    let be = dir.path().join("nflog-be.pcap");
    std::fs::write(&be, nflog_big_endian(&fixtures().join(file))).unwrap();
    let store = dir.path().join("store");
    let out = replay(&be, &store, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = pair_totals(&records(&store));
    assert_eq!(got, reference(file));
    assert!(!got.is_empty());
}

/// On a terminal, replay draws a progress bar of bytes read over the file's size, with the
/// percentage, packets, packets/s and ETA; `--quiet` draws nothing. The terminal is util-linux's
/// `script`; the capture is 400 000 raw-IP UDP packets, enough for the reader to report.
#[test]
fn replay_shows_a_progress_bar_on_a_terminal() {
    let has_script = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !common::can_run((!has_script).then(|| "util-linux's script is missing".to_string())) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut file = pcap::header(pcap::LINKTYPE_RAW);
    for i in 0..400_000u32 {
        let mut ip = vec![
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 1, 2, 0x30, 0x39, 0, 53,
            0, 8, 0, 0,
        ];
        ip[17] = (i % 200) as u8;
        pcap::push_packet(
            &mut file,
            1_767_225_600 + i / 10_000,
            i % 10_000 * 100,
            28,
            &ip,
        );
    }
    let capture = d.path().join("many.pcap");
    std::fs::write(&capture, &file).unwrap();
    let run_on_tty = |extra: &str| {
        let cmd = format!(
            "{} replay {} --store {} {extra} >/dev/null",
            common::BIN,
            capture.display(),
            d.path().join(format!("s{}", extra.len())).display()
        );
        let o = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .unwrap();
        text(&o.stdout)
    };
    let shown = run_on_tty("");
    assert!(shown.contains("ETA") && shown.contains('%'), "{shown}");
    assert!(
        shown.contains("packets,") && shown.contains("M/s"),
        "{shown}"
    );
    assert!(
        shown.contains(" KiB") || shown.contains(" MiB"),
        "bytes done/total: {shown}"
    );
    let quiet = run_on_tty("--quiet");
    assert!(!quiet.contains("ETA"), "{quiet}");
}
