//! Every capture in fixtures/pcaps read to the end: good files deliver exactly the packets the
//! manifest counts; bad ones never panic and report errors that name the file.

use flowkeep::capture::{CaptureError, FileSource, LinkType, Next, PacketSource};
use std::path::{Path, PathBuf};

struct Row {
    file: String,
    format: String,
    link_type: String,
    packets: String,
    notes: String,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcaps")
}

fn manifest() -> Vec<Row> {
    let text = std::fs::read_to_string(fixtures().join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (f, fmt, lt, p, n) = (
        col("file"),
        col("format"),
        col("link_type"),
        col("packets"),
        col("notes"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Row {
                file: c[f].to_string(),
                format: c[fmt].to_string(),
                link_type: c[lt].to_string(),
                packets: c[p].to_string(),
                notes: c.get(n).unwrap_or(&"").to_string(),
            }
        })
        .collect()
}

fn is_bad(row: &Row) -> bool {
    row.notes.starts_with("MALFORMED") || row.notes.starts_with("ODD")
}

/// "EN10MB(1)" -> 1; "NULL(0)[upper bits 0x4000]" -> 0; "unknown" -> None.
fn manifest_link(s: &str) -> Option<u16> {
    let open = s.find('(')?;
    let close = s[open..].find(')')? + open;
    s[open + 1..close].parse().ok()
}

/// "pcapng blocks: EPB=6, ..., custom=3" -> 3.
fn custom_blocks(notes: &str) -> u64 {
    notes
        .split([';', ','])
        .filter_map(|part| part.trim().strip_prefix("custom="))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

struct Outcome {
    packets: u64,
    links: Vec<LinkType>,
    first_ts: Option<i64>,
    /// (timestamp, wire length, captured length) of every packet.
    seen: Vec<(i64, u32, usize)>,
    error: Option<CaptureError>,
}

fn read_all(path: &Path) -> Result<Outcome, CaptureError> {
    let mut src = FileSource::open(path)?;
    let mut out = Outcome {
        packets: 0,
        links: Vec::new(),
        first_ts: None,
        seen: Vec::new(),
        error: None,
    };
    loop {
        match src.next_packet() {
            Ok(Next::Packet(p)) => {
                out.packets += 1;
                assert!(p.wire_len as usize >= p.data.len());
                if !out.links.contains(&p.link) {
                    out.links.push(p.link);
                }
                out.first_ts.get_or_insert(p.ts);
                out.seen.push((p.ts, p.wire_len, p.data.len()));
            }
            Ok(Next::Idle) => panic!("{}: a file never idles", path.display()),
            Ok(Next::End) => break,
            Err(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    // Finished sources stay finished.
    assert!(matches!(src.next_packet(), Ok(Next::End)));
    Ok(out)
}

#[test]
fn good_fixtures_deliver_every_packet() {
    let rows = manifest();
    assert!(rows.len() >= 90, "manifest has {} rows", rows.len());
    let mut checked = 0;
    for row in rows.iter().filter(|r| !is_bad(r)) {
        let path = fixtures().join(&row.file);
        let out = read_all(&path).unwrap_or_else(|e| panic!("{}: {e}", row.file));
        if let Some(e) = &out.error {
            panic!(
                "{}: unexpected error after {} packets: {e}",
                row.file, out.packets
            );
        }
        // The manifest counts what tshark lists as records, which includes pcapng custom blocks
        // (gopacket__be_test202 has 8 packets and 3 custom blocks): those are not packets.
        let want: u64 =
            row.packets.parse::<u64>().expect("packet count") - custom_blocks(&row.notes);
        assert_eq!(out.packets, want, "{}", row.file);
        // Classic pcap has one link type per file; check it against the manifest.
        if row.format == "pcap" {
            if let Some(lt) = manifest_link(&row.link_type) {
                assert_eq!(out.links, vec![LinkType(lt)], "{}", row.file);
            }
        }
        assert!(out.first_ts.is_some(), "{}", row.file);
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} good fixtures");
}

#[test]
fn bad_fixtures_never_panic_and_name_the_file() {
    for row in manifest().iter().filter(|r| is_bad(r)) {
        let path = fixtures().join(&row.file);
        let (packets, error) = match read_all(&path) {
            Ok(out) => (out.packets, out.error),
            Err(e) => (0, Some(e)),
        };
        let text = error.as_ref().map(|e| e.to_string());
        println!(
            "{}\tmanifest={}\tdelivered={}\terror={}",
            row.file,
            row.packets,
            packets,
            text.as_deref().unwrap_or("-")
        );
        if let Some(t) = &text {
            assert!(t.contains(&row.file), "error does not name the file: {t}");
            assert!(!t.contains('\n'), "multi-line error: {t}");
        }
    }
}

/// Specific outcomes for the damaged files: what a careful reader must deliver.
#[test]
fn damaged_fixtures_outcomes() {
    let check = |file: &str, packets: u64, kind: &str, needle: &str| {
        let path = fixtures().join(file);
        let (n, err) = match read_all(&path) {
            Ok(o) => (o.packets, o.error),
            Err(e) => (0, Some(e)),
        };
        assert_eq!(n, packets, "{file}");
        let err = err.unwrap_or_else(|| panic!("{file}: expected an error"));
        let got_kind = match &err {
            CaptureError::Format { .. } => "format",
            CaptureError::Corrupt { .. } => "corrupt",
            CaptureError::Io { .. } => "io",
            CaptureError::Live { .. } => "live",
        };
        assert_eq!(got_kind, kind, "{file}: {err}");
        assert!(err.to_string().contains(needle), "{file}: {err}");
    };
    check(
        "libpcap__pcap-invalid-version-1.pcap",
        0,
        "format",
        "pcap version 1.4 unsupported",
    );
    check(
        "libpcap__pcapng-invalid-vers-1.pcapng",
        0,
        "format",
        "pcapng version 0.1 unsupported",
    );
    check(
        "libpcap__shb-option-too-long.pcapng",
        0,
        "format",
        "block length 52",
    );
    check(
        "gopacket__le_test901.pcapng",
        1,
        "corrupt",
        "pcapng version 2.0 unsupported",
    );
    check(
        "suricata-verify__tls_DER-incomplete-header.pcap",
        6,
        "corrupt",
        "record claims 4325376 captured bytes",
    );
    check(
        "nDPI__fuzz-2021-10-13.pcap",
        0,
        "corrupt",
        "record claims 524501 captured bytes",
    );
}

/// Timestamps and lengths as tshark 4 prints them (frame.time_epoch, frame.len, frame.cap_len).
/// All 90 fixtures were compared in full against tshark while writing the reader; these are
/// the cases that exercise distinct timestamp paths.
#[test]
fn timestamps_match_tshark() {
    let check = |file: &str, index: usize, ts: i64, wire: u32, cap: usize| {
        let out = read_all(&fixtures().join(file)).expect(file);
        assert_eq!(
            out.seen.get(index),
            Some(&(ts, wire, cap)),
            "{file} packet {index}"
        );
    };
    // pcap, nanosecond magic.
    check(
        "tcpdump__tcp-handshake-nano.pcap",
        0,
        1_418_145_369_924_505_488,
        76,
        76,
    );
    // pcap, big-endian, microseconds.
    check("tcpdump__pptp.pcap", 0, 954_147_395_148_077_000, 62, 62);
    // pcap, snaplen-truncated: wire length stays the original.
    check(
        "tcpdump__quic_handshake_truncated.pcap",
        0,
        1_635_191_822_464_273_000,
        1252,
        256,
    );
    // pcapng if_tsresol 0x88 (2^-8 s).
    check(
        "gopacket__le_test902.pcapng",
        0,
        1_519_128_000_195_312_500,
        314,
        314,
    );
    // pcapng nanoseconds.
    check(
        "pcap-parser__wireshark_samples-test.pcapng",
        0,
        1_506_883_716_995_391_962,
        54,
        54,
    );
    // pcapng nanosecond resolution carrying values that tshark also puts in 1970.
    check(
        "gopacket__le_test008.pcapng",
        1,
        1_340_954_905_299_858,
        342,
        128,
    );
    // pcapng, big-endian section, then SPB (no timestamp of its own: the last one seen).
    check(
        "gopacket__be_test202.pcapng",
        1,
        1_340_954_905_298_858_000,
        342,
        96,
    );
    check(
        "gopacket__be_test202.pcapng",
        3,
        1_340_954_905_301_858_000,
        314,
        128,
    );
    // pcapng with 22 interfaces of mixed resolution.
    check("nDPI__sites.pcapng", 4, 1_623_221_441_867_993_000, 74, 74);
    // BIG TCP: an 80 KB frame is a packet, not damage.
    check(
        "tcpdump__bigtcp-ipv4.pcap",
        0,
        1_759_417_540_030_951_000,
        80066,
        80066,
    );
}

#[test]
fn per_interface_link_types() {
    let out = read_all(&fixtures().join("gopacket__be_test202.pcapng")).expect("open");
    assert!(out.error.is_none());
    assert_eq!(out.links, vec![LinkType::ETHERNET, LinkType::NULL]);
}
