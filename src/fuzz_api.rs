//! Byte-level entry points for the cargo-fuzz targets in `fuzz/` (docs/FUZZING.md): each
//! hands untrusted bytes to one parser the way flowkeep itself does, and panics only where
//! flowkeep would be wrong. Compiled only with the `fuzzing` feature, so it is no part of the
//! library's API.
//!
//! Checksums and hashes are recomputed over the fuzzed bytes before parsing (segment header and
//! footer, block, audit line): a fuzzer cannot guess a CRC-32C, and without the fix-up every
//! input would stop at the first checksum and the parsers behind it would never run.

use crate::capture::{FileSource, LinkType, Next, Packet, PacketSource};
use crate::decode::{self, dhcp, Dispatcher, PacketMeta};
use crate::query::filter::Filter;
use crate::record::{EndReason, FlowRecord, LeaseObservation};
use crate::store::audit::{self, AuditLine};
use crate::store::block::{BlockDecoder, BlockHeader};
use crate::store::segment::{self, KIND_LEASES};
use crate::store::{self, access, RecordFilter};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Every link type the decoder reads, and one it does not (a clear error, not a panic); the
/// `frame` target's first byte is an index into it.
pub const LINK_TYPES: [LinkType; 14] = {
    let mut all = [LinkType(147); 14];
    let mut i = 0;
    while i < LinkType::SUPPORTED.len() {
        all[i] = LinkType::SUPPORTED[i];
        i += 1;
    }
    all
};

/// More packets than any seed holds; bounds the work one input can cause.
const MAX_PACKETS: usize = 100_000;

/// A pcap or pcapng file, read to its end or first error; every packet goes through the
/// decoder and, when it is DHCP, the lease parser, as in the pipeline.
pub fn capture_file(data: &[u8]) {
    let Ok(mut src) = FileSource::from_bytes("fuzz.pcap", data.to_vec()) else {
        return;
    };
    let mut dispatcher = Dispatcher::with_seed(1);
    let mut leases = Vec::new();
    for _ in 0..MAX_PACKETS {
        match src.next_packet() {
            Ok(Next::Packet(pkt)) => decode_packet(&pkt, &mut dispatcher, &mut leases),
            Ok(Next::Idle) => continue,
            Ok(Next::End) | Err(_) => break,
        }
        leases.clear();
    }
}

/// One frame: the first byte picks the link type from [`LINK_TYPES`], the rest is the frame.
pub fn frame(data: &[u8]) {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let link = LINK_TYPES[usize::from(pick) % LINK_TYPES.len()];
    let pkt = Packet {
        ts: 1_767_225_600_000_000_000,
        wire_len: u32::try_from(frame.len()).unwrap_or(u32::MAX),
        link,
        data: frame,
    };
    // The fast path must agree with the general walk it shortcuts.
    let fast = decode::decode(&pkt);
    let slow = decode::decode_slow(&pkt);
    if let Ok(fast) = fast {
        assert_eq!(Ok(fast), slow, "fast path and general decoder disagree");
    }
    decode_packet(&pkt, &mut Dispatcher::with_seed(1), &mut Vec::new());
}

fn decode_packet(
    pkt: &Packet<'_>,
    dispatcher: &mut Dispatcher,
    leases: &mut Vec<LeaseObservation>,
) {
    dispatcher.hash(pkt);
    if let Ok(meta) = decode::decode(pkt) {
        dispatcher.hash_meta(&meta);
        let _ = dhcp::collect_leases(&meta, pkt, leases);
    }
}

/// A DHCP message (a UDP payload): the first byte picks DHCPv4 or DHCPv6 and which side sent
/// it, the rest is the message.
pub fn dhcp(data: &[u8]) {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let v6 = pick & 1 == 1;
    let from_server = pick & 2 == 2;
    let (client, server, src, dst) = if v6 {
        (
            546,
            547,
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2)),
        )
    } else {
        (
            68,
            67,
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V4(Ipv4Addr::BROADCAST),
        )
    };
    let (sport, dport) = if from_server {
        (server, client)
    } else {
        (client, server)
    };
    let meta = PacketMeta {
        ts: 1_767_225_600_000_000_000,
        src,
        dst,
        proto: 17,
        sport,
        dport,
        vlan: 0,
        inner_vlan: 0,
        src_mac: Some([2, 0, 0, 0, 0, 1]),
        dst_mac: Some([0xff; 6]),
        ip_bytes: payload.len() as u64 + 28,
        tcp_flags: 0,
        frag: None,
        interface: 0,
    };
    let mut out = Vec::new();
    if dhcp::parse(&meta, payload, &mut out).is_err() {
        assert!(out.is_empty(), "a DHCP error left observations behind");
    }
}

/// Records a filter is tried on: both address families, with and without MACs and VLANs,
/// counters at their extremes.
fn filter_records() -> Vec<FlowRecord> {
    let base = FlowRecord {
        first: 1_767_225_600_000_000_000,
        last: 1_767_225_605_000_000_000,
        proto: 6,
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        sport: 40_000,
        dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dport: 443,
        vlan: 0,
        inner_vlan: 0,
        interface: 0,
        src_mac: Some([0, 0x1b, 0x21, 1, 2, 3]),
        dst_mac: Some([0, 0x1b, 0x21, 4, 5, 6]),
        packets: 10,
        bytes: 15_000,
        rev_packets: 8,
        rev_bytes: 9000,
        tcp_flags: 0x1b,
        rev_tcp_flags: 0x12,
        end: EndReason::Fin,
    };
    let v6 = FlowRecord {
        proto: 17,
        src: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        dst: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 53)),
        sport: 53,
        dport: 5353,
        vlan: 100,
        inner_vlan: 200,
        src_mac: None,
        dst_mac: None,
        packets: u64::MAX,
        bytes: u64::MAX,
        rev_packets: 0,
        rev_bytes: 0,
        tcp_flags: 0,
        rev_tcp_flags: 0,
        end: EndReason::Idle,
        ..base
    };
    let icmp = FlowRecord {
        proto: 1,
        sport: 0,
        dport: 0x0800,
        end: EndReason::Evicted,
        ..base
    };
    vec![base, v6, icmp]
}

/// A filter expression: parsed, evaluated on fixed records one by one, and on the same records
/// in a block, column-wise as a query scans: both must agree.
pub fn filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = Filter::parse(text) else {
        return;
    };
    let _ = filter.required_addresses();
    let records = filter_records();
    let one_by_one: Vec<bool> = records.iter().map(|r| filter.matches(r)).collect();
    let block = store::encode_block(&records).expect("encoding fixed records");
    let mut dec = BlockDecoder::new().expect("zstd decompressor");
    let n = dec.open(&block).expect("a block just encoded opens");
    dec.load(&block, RecordFilter::columns(&filter))
        .expect("a block just encoded loads");
    let mut keep = vec![true; n];
    if !RecordFilter::accepts_all(&filter) {
        RecordFilter::select(&filter, dec.columns(), &mut keep);
    }
    // The block holds the records sorted by `first`; all three share it, so the order is kept.
    assert_eq!(
        keep, one_by_one,
        "column-wise and record-wise filtering disagree"
    );
}

/// Recomputes the CRC-32C of a block header over the fuzzed payload.
fn fix_block_checksum(block: &mut [u8]) {
    let Ok(h) = BlockHeader::parse(block) else {
        return;
    };
    let crc = h.checksum(
        block
            .get(store::block::BLOCK_HEADER_LEN..)
            .unwrap_or_default(),
    );
    block[16..20].copy_from_slice(&crc.to_le_bytes());
}

/// One block (header and payload), its checksum fixed: decoded as a flow block and as a lease
/// block.
pub fn block(data: &[u8]) {
    let mut block = data.to_vec();
    fix_block_checksum(&mut block);
    if let Ok(records) = store::decode_block(&block) {
        let n = BlockHeader::parse(&block).map_or(0, |h| h.records as usize);
        assert_eq!(
            records.len(),
            n,
            "a block decoded to a record count it does not state"
        );
    }
    let mut leases = Vec::new();
    if store::leases::decode_lease_block(&block, &mut leases).is_err() {
        assert!(
            leases.is_empty(),
            "a lease block error left observations behind"
        );
    }
}

/// Uncompressed column data: the first byte picks the layout, the next two the record count.
pub fn columns(data: &[u8]) {
    let [pick, lo, hi, raw @ ..] = data else {
        return;
    };
    let layout = match pick % 3 {
        0 => store::columns::Layout::Codec1,
        1 => store::columns::Layout::Codec2,
        _ => store::columns::Layout::Codec4,
    };
    let n = usize::from(u16::from_le_bytes([*lo, *hi]));
    let mut out = Vec::new();
    if store::columns::decode(raw, n, layout, &mut out).is_ok() {
        assert_eq!(
            out.len(),
            n,
            "columns decoded to a record count other than asked"
        );
    }
}

/// Recomputes a segment's header and footer checksums over the fuzzed bytes, where the
/// trailer points at a footer inside them.
fn fix_segment_checksums(seg: &mut [u8]) {
    let len = seg.len();
    if len >= segment::HEADER_LEN {
        let crc = crc32c::crc32c(&seg[..60]);
        seg[60..64].copy_from_slice(&crc.to_le_bytes());
    }
    let Some(t_off) = len.checked_sub(segment::TRAILER_LEN) else {
        return;
    };
    let word = |at: usize, n: usize| {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&seg[at..at + n]);
        u64::from_le_bytes(b)
    };
    let (footer_offset, footer_len) = (word(t_off, 8), word(t_off + 8, 4));
    if footer_offset.checked_add(footer_len) == Some(t_off as u64) {
        let crc = crc32c::crc32c(&seg[footer_offset as usize..t_off]);
        seg[t_off + 12..t_off + 16].copy_from_slice(&crc.to_le_bytes());
    }
}

/// A whole segment file, its header and footer checksums fixed: header, footer and index
/// checked as `SegmentFile::open` does, then every indexed block decoded as its kind says.
pub fn segment(data: &[u8]) {
    let mut seg = data.to_vec();
    fix_segment_checksums(&mut seg);
    let Ok((_, entries)) = segment::parse_bytes(&seg) else {
        return;
    };
    let mut dec = BlockDecoder::new().expect("zstd decompressor");
    let (mut records, mut leases) = (Vec::new(), Vec::new());
    for e in &entries {
        let start = usize::try_from(e.offset).expect("index entries lie inside the file");
        let block = seg
            .get(start..start + e.len as usize)
            .expect("index entries lie inside the file");
        let mut block = block.to_vec();
        fix_block_checksum(&mut block);
        if e.kind == KIND_LEASES {
            let _ = store::leases::decode_lease_block(&block, &mut leases);
        } else {
            let _ = dec.decode_into(&block, &mut records);
        }
    }
}

/// Recomputes the hash (the last field) of a line that has a hash field.
fn fix_audit_hash(line: &str) -> String {
    match line.rsplit_once('\t') {
        Some((body, _)) => format!("{body}\t{}", audit::sha256_hex(body.as_bytes())),
        None => line.to_string(),
    }
}

/// An audit log's text: every line parsed (its own hash fixed, so the fields behind it are
/// reached), the chain checked, and the reasons of access and policy entries read.
pub fn audit_log(data: &[u8]) {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    if body.is_empty() {
        return;
    }
    let lines: Vec<AuditLine> = body
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, raw)| {
            let text = fix_audit_hash(&String::from_utf8_lossy(raw));
            let entry = audit::parse_line(&text);
            AuditLine {
                number: i as u64 + 1,
                text,
                entry,
            }
        })
        .collect();
    let _ = audit::verify_chain(&lines);
    for l in &lines {
        if let Ok(e) = &l.entry {
            let _ = access::Access::parse(e.record.time, &e.record.reason);
            let _ = access::parse_policy_reason(&e.record.reason);
        }
    }
}

/// A holds file's text, loaded as `expire` and `hold` load it; every hold loaded describes
/// itself and answers which times it protects.
pub fn holds(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(holds) = store::holds::parse_holds(Path::new("holds.json"), text) else {
        return;
    };
    for h in &holds {
        let _ = h.describe();
        let _ = h.overlaps(h.from, h.until);
        let _ = h.ended(i64::MAX);
        let _ = h.keeps_whole_segments(0);
        let _ = store::holds::format_until(h.until);
    }
}

/// Text that holds signed notes (a checkpoint log), after a first line that is the verifier
/// key to check them with (`flowkeep key generate` writes one): the key read, the notes split,
/// each verified and opened, and each note's text parsed as a checkpoint, signed or not.
pub fn note(data: &[u8]) {
    use crate::proof::keys::{SigningKey, VerifierKey};
    use crate::proof::note::{self, Checkpoint};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (key_line, notes) = text.split_once('\n').unwrap_or((text, ""));
    let _ = SigningKey::parse(key_line);
    let key = VerifierKey::parse(key_line).unwrap_or_else(|_| {
        SigningKey::from_seed("flowkeep.example/fuzz", &[7; 32])
            .expect("a valid key name")
            .verifier()
    });
    for piece in note::split_notes(notes) {
        let _ = note::open(piece, &key);
        let body = piece.rfind("\n\n").map_or(piece, |i| &piece[..i + 1]);
        if let Ok(cp) = Checkpoint::parse(body) {
            assert_eq!(
                Checkpoint::parse(&cp.to_note_body()).as_ref(),
                Ok(&cp),
                "a checkpoint does not read back as itself"
            );
        }
    }
}

/// The files of a disclosure bundle, in this order, for [`bundle`].
pub const BUNDLE_FILES: [&str; 13] = [
    crate::disclose::MANIFEST,
    crate::disclose::SUMS,
    crate::disclose::CHECKPOINT,
    crate::disclose::AUDIT,
    crate::disclose::COVERAGE,
    crate::disclose::RECORD_SEGMENTS,
    crate::disclose::RECORDS_CSV,
    crate::disclose::RECORDS_JSONL,
    crate::disclose::LEASES,
    crate::disclose::POLICY,
    crate::disclose::SIGNATURE,
    crate::disclose::PUBLIC_KEY,
    crate::disclose::REPORT,
];

/// Separates the files of a bundle in a fuzz input (ASCII "file separator"): no bundle file
/// holds it.
pub const BUNDLE_SEPARATOR: u8 = 0x1c;

/// A disclosure bundle, its files one after the other in [`BUNDLE_FILES`] order, separated by
/// [`BUNDLE_SEPARATOR`] (missing ones are missing): checked as `flowkeep disclose --check` does.
pub fn bundle(data: &[u8]) {
    let files: BTreeMap<String, Vec<u8>> = BUNDLE_FILES
        .iter()
        .zip(data.split(|&b| b == BUNDLE_SEPARATOR))
        .map(|(name, bytes)| (name.to_string(), bytes.to_vec()))
        .collect();
    let _ = crate::disclose::check::check_files(&files, None, Default::default());
}

/// A file given to `flowkeep tor import` (from the internet, through curl): parsed whole, and
/// a list accepted is one whose every exit lies within the list's span and has a span of its
/// own.
pub fn tor_list(data: &[u8]) {
    let Ok(list) = crate::tor::parse(data) else {
        return;
    };
    assert!(!list.exits.is_empty(), "an accepted list has an exit");
    for e in &list.exits {
        assert!(e.from <= e.until, "{e:?}");
        assert!(
            list.first <= e.from && e.until <= list.last,
            "{e:?} outside the list"
        );
        assert_eq!(e.fingerprint.len(), 40);
    }
}
