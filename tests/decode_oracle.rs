//! `decode` against tshark: for every well-formed fixture, packets and IP-layer bytes per
//! (IP version, unordered address pair) of the outermost IP header must equal
//! `fixtures/pcaps/reference/<file>.l3.tsv` exactly. libpcap reads the files here so that this
//! test does not depend on flowkeep's own capture module.

use flowkeep::capture::{LinkType, Packet};
use flowkeep::decode::{decode, DecodeError, Dispatcher};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

type Table = BTreeMap<(u8, IpAddr, IpAddr), (u64, u64)>;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcaps")
}

/// (file, notes) for every MANIFEST row.
fn manifest() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(fixtures().join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let notes = header
        .iter()
        .position(|c| *c == "notes")
        .expect("notes column");
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (
                cols[0].to_string(),
                cols.get(notes).unwrap_or(&"").to_string(),
            )
        })
        .collect()
}

fn is_bad_input(notes: &str) -> bool {
    notes.starts_with("MALFORMED") || notes.starts_with("ODD")
}

fn reference(file: &str) -> Table {
    let path = fixtures().join("reference").join(format!("{file}.l3.tsv"));
    let text = std::fs::read_to_string(&path).expect("reference file");
    let mut t = Table::new();
    for line in text.lines().skip(1) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let c: Vec<&str> = line.split('\t').collect();
        let key = (
            c[0].parse().unwrap(),
            c[1].parse().unwrap(),
            c[2].parse().unwrap(),
        );
        t.insert(key, (c[3].parse().unwrap(), c[4].parse().unwrap()));
    }
    t
}

struct Run {
    table: Table,
    not_ip: u64,
    malformed: BTreeMap<&'static str, u64>,
    packets: u64,
}

/// One frame as a reader delivered it.
struct Frame {
    link: LinkType,
    wire_len: u32,
    data: Vec<u8>,
}

/// Every frame of `file` as libpcap reads it, and why it stopped early if it did.
fn frames_libpcap(path: &Path) -> (Vec<Frame>, Option<String>) {
    let mut cap = match pcap::Capture::from_file(path) {
        Ok(c) => c,
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    // Masks the FCS/reserved upper bits, as flowkeep's capture module does; libpcap hands NFLOG
    // over in this host's byte order.
    let link =
        LinkType((cap.get_datalink().0 & 0xffff) as u16).in_byte_order(cfg!(target_endian = "big"));
    let mut out = Vec::new();
    loop {
        match cap.next_packet() {
            Ok(p) => out.push(Frame {
                link,
                wire_len: p.header.len,
                data: p.data.to_vec(),
            }),
            Err(pcap::Error::NoMorePackets) => return (out, None),
            Err(e) => {
                let why = format!("after {} packets: {e}", out.len());
                return (out, Some(why));
            }
        }
    }
}

/// pcapng files libpcap 1.10 refuses (interfaces with different link types or snap lengths),
/// read with pcap-parser: per-section interface tables, EPBs and SPBs.
fn frames_pcapng(path: &Path) -> Result<Vec<Frame>, String> {
    use pcap_parser::pcapng::Block;
    use pcap_parser::traits::PcapNGPacketBlock;
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let (_, cap) = pcap_parser::parse_pcapng(&bytes).map_err(|e| format!("{e:?}"))?;
    let mut out = Vec::new();
    for section in &cap.sections {
        let mut ifaces: Vec<(LinkType, u32)> = Vec::new();
        for block in &section.blocks {
            match block {
                Block::InterfaceDescription(idb) => {
                    ifaces.push((LinkType((idb.linktype.0 & 0xffff) as u16), idb.snaplen));
                }
                Block::EnhancedPacket(epb) => {
                    let (link, _) = *ifaces
                        .get(epb.if_id as usize)
                        .ok_or("EPB names an undeclared interface")?;
                    out.push(Frame {
                        link,
                        wire_len: epb.orig_len(),
                        data: epb.packet_data().to_vec(),
                    });
                }
                Block::SimplePacket(spb) => {
                    let (link, snaplen) = *ifaces.first().ok_or("SPB before any IDB")?;
                    let mut data = spb.packet_data();
                    if snaplen != 0 && data.len() > snaplen as usize {
                        data = &data[..snaplen as usize];
                    }
                    out.push(Frame {
                        link,
                        wire_len: spb.orig_len(),
                        data: data.to_vec(),
                    });
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Decodes (and hashes) every frame of `file`. With `partial`, frames libpcap delivered before
/// it gave up count (damaged files); otherwise giving up is an error.
fn run(file: &str, partial: bool) -> Result<Run, String> {
    let path = fixtures().join(file);
    let frames = match frames_libpcap(&path) {
        (f, None) => f,
        (f, Some(e)) if partial && !f.is_empty() => {
            eprintln!("  {file}: libpcap stopped {e}");
            f
        }
        (_, Some(e)) if file.ends_with(".pcapng") => {
            eprintln!("  {file}: libpcap: {e}; reading it with pcap-parser");
            frames_pcapng(&path)?
        }
        (_, Some(e)) => return Err(e),
    };
    let mut r = Run {
        table: Table::new(),
        not_ip: 0,
        malformed: BTreeMap::new(),
        packets: 0,
    };
    let mut dispatcher = Dispatcher::new();
    for f in &frames {
        let pkt = Packet {
            ts: 0,
            wire_len: f.wire_len,
            link: f.link,
            data: &f.data,
        };
        r.packets += 1;
        let meta = decode(&pkt);
        let h = dispatcher.hash(&pkt);
        match meta {
            Ok(m) => {
                let ver = if m.src.is_ipv4() { 4 } else { 6 };
                let (lo, hi) = if m.src <= m.dst {
                    (m.src, m.dst)
                } else {
                    (m.dst, m.src)
                };
                let cell = r.table.entry((ver, lo, hi)).or_default();
                cell.0 += 1;
                cell.1 += m.ip_bytes;
            }
            Err(DecodeError::NotIp) => {
                r.not_ip += 1;
                assert_eq!(h, 0, "{file}: non-IP frame hashed to non-zero");
            }
            Err(DecodeError::Malformed(why)) => {
                *r.malformed.entry(why).or_default() += 1;
                assert_eq!(h, 0, "{file}: malformed frame hashed to non-zero");
            }
        }
    }
    Ok(r)
}

fn diff(expected: &Table, got: &Table) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in expected {
        match got.get(k) {
            Some(g) if g == v => {}
            Some(g) => out.push(format!("{k:?}: expected {v:?}, got {g:?}")),
            None => out.push(format!("{k:?}: expected {v:?}, missing")),
        }
    }
    for (k, g) in got {
        if !expected.contains_key(k) {
            out.push(format!("{k:?}: unexpected {g:?}"));
        }
    }
    out
}

#[test]
fn well_formed_fixtures_match_tshark() {
    let mut failures = Vec::new();
    let (mut matched, mut skipped) = (0, 0);
    for (file, notes) in manifest() {
        if is_bad_input(&notes) {
            continue;
        }
        let r = match run(&file, false) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("skip {file}: libpcap refuses it: {e}");
                skipped += 1;
                continue;
            }
        };
        let expected = reference(&file);
        let d = diff(&expected, &r.table);
        eprintln!(
            "{file}: {} packets, {} flows-by-address, not-IP {}, malformed {:?}: {}",
            r.packets,
            r.table.len(),
            r.not_ip,
            r.malformed,
            if d.is_empty() { "match" } else { "DIFFER" }
        );
        if d.is_empty() {
            matched += 1;
        } else {
            for line in d.iter().take(10) {
                eprintln!("    {line}");
            }
            failures.push(file);
        }
    }
    eprintln!(
        "oracle: {matched} match, {} differ, {skipped} skipped",
        failures.len()
    );
    assert!(matched > 0);
    assert!(failures.is_empty(), "differ from tshark: {failures:?}");
}

#[test]
fn malformed_fixtures_do_not_panic() {
    let mut read = 0;
    for (file, notes) in manifest() {
        if !is_bad_input(&notes) {
            continue;
        }
        match run(&file, true) {
            Ok(r) => {
                read += 1;
                // Informational only: tshark's view of damaged input is not a contract.
                let d = diff(&reference(&file), &r.table);
                eprintln!(
                    "{file}: {} packets, {} decoded, not-IP {}, malformed {:?}; vs tshark: {}",
                    r.packets,
                    r.table.values().map(|v| v.0).sum::<u64>(),
                    r.not_ip,
                    r.malformed,
                    if d.is_empty() {
                        "same".to_string()
                    } else {
                        d.join("; ")
                    }
                );
            }
            Err(e) => eprintln!("skip {file}: libpcap refuses it: {e}"),
        }
    }
    assert!(read > 0);
}
