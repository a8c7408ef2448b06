//! Lease blocks: DHCP lease observations kept in the same segments as the flows of their time
//! (so the same partitions, retention, holds, verification and audit cover them). A lease block
//! has the 20-byte block header of a record block with codec 3 and its own columns; its footer
//! index entry has kind 1. Layout: `docs/FORMAT.md`, "Lease blocks".

use super::block::{berr, checked_block, BlockError, BlockHeader, BLOCK_HEADER_LEN};
use crate::record::dhcp::MAX_HOSTNAME_BYTES;
use crate::record::LeaseObservation;
use crate::time::Nanos;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Block header codec of a lease block: lease columns compressed as one zstd frame.
pub const CODEC_LEASES_ZSTD: u8 = 3;
/// Footer index entry kinds (byte 37 of the entry).
pub const KIND_FLOWS: u8 = 0;
pub const KIND_LEASES: u8 = 1;
/// Observations per lease block at most: DHCP is rare, and this bounds what a reader
/// decompresses for one lease block (about 1.2 MiB).
pub const MAX_BLOCK_LEASES: usize = 4096;
const COLUMNS: usize = 9;
/// Fixed bytes (the column lengths) and the most one observation can add.
const FIXED_BYTES: usize = 4 * COLUMNS;
const MAX_BYTES_PER_LEASE: usize = 1 + 8 + 1 + 4 + 16 + 6 + 4 + 16 + 1 + MAX_HOSTNAME_BYTES;

const F_ADDR_V6: u8 = 0x01;
const F_MAC: u8 = 0x02;
const F_LEASE: u8 = 0x04;
const F_SERVER: u8 = 0x08;
const F_SERVER_V6: u8 = 0x10;
const F_HOSTNAME: u8 = 0x20;
const F_DHCPV6: u8 = 0x40;

pub fn max_raw_len(leases: usize) -> usize {
    FIXED_BYTES + leases.saturating_mul(MAX_BYTES_PER_LEASE)
}

fn push_ip(out: &mut Vec<u8>, a: &IpAddr) {
    match a {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

/// Encodes `leases` (sorted by time here, ties in the given order) as one lease block.
/// Returns the block and its (min, max) time.
pub fn encode_lease_block(
    leases: &[LeaseObservation],
    zstd_level: i32,
) -> Result<(Vec<u8>, Nanos, Nanos), BlockError> {
    if leases.len() > MAX_BLOCK_LEASES {
        return Err(berr(
            0,
            format!(
                "{} lease observations, more than the {MAX_BLOCK_LEASES} a block may hold",
                leases.len()
            ),
        ));
    }
    let mut sorted: Vec<&LeaseObservation> = leases.iter().collect();
    sorted.sort_by_key(|l| l.time);
    let mut cols: [Vec<u8>; COLUMNS] = Default::default();
    for l in &sorted {
        let hostname = l.hostname.as_deref().filter(|h| !h.is_empty()).map(|h| {
            // Parsers cap at 255 bytes; a longer name from elsewhere is cut on a character.
            let mut end = h.len().min(MAX_HOSTNAME_BYTES);
            while !h.is_char_boundary(end) {
                end -= 1;
            }
            &h[..end]
        });
        let mut flags = 0;
        if l.address.is_ipv6() {
            flags |= F_ADDR_V6;
        }
        if l.v6 {
            flags |= F_DHCPV6;
        }
        if let Some(mac) = &l.client_mac {
            flags |= F_MAC;
            cols[5].extend_from_slice(mac);
        }
        if let Some(secs) = l.lease_secs {
            flags |= F_LEASE;
            cols[6].extend_from_slice(&secs.to_le_bytes());
        }
        if let Some(server) = &l.server {
            flags |= F_SERVER;
            if server.is_ipv6() {
                flags |= F_SERVER_V6;
            }
            push_ip(&mut cols[7], server);
        }
        if let Some(h) = hostname {
            flags |= F_HOSTNAME;
            cols[8].push(h.len() as u8);
            cols[8].extend_from_slice(h.as_bytes());
        }
        cols[0].push(flags);
        cols[1].extend_from_slice(&l.time.to_le_bytes());
        cols[2].push(l.message);
        cols[3].extend_from_slice(&l.xid.to_le_bytes());
        push_ip(&mut cols[4], &l.address);
    }
    let mut raw = Vec::new();
    for c in &cols {
        raw.extend_from_slice(&(c.len() as u32).to_le_bytes());
        raw.extend_from_slice(c);
    }
    let payload = zstd::bulk::compress(&raw, zstd_level)
        .map_err(|e| berr(BLOCK_HEADER_LEN, format!("zstd compression failed: {e}")))?;
    let mut header = BlockHeader {
        payload_len: payload.len() as u32,
        records: leases.len() as u32,
        raw_len: raw.len() as u32,
        codec: CODEC_LEASES_ZSTD,
        crc32c: 0,
    };
    header.crc32c = header.checksum(&payload);
    let mut out = Vec::with_capacity(BLOCK_HEADER_LEN + payload.len());
    out.extend_from_slice(&header.prefix());
    out.extend_from_slice(&header.crc32c.to_le_bytes());
    out.extend_from_slice(&payload);
    let min = sorted.first().map_or(Nanos::MAX, |l| l.time);
    let max = sorted.last().map_or(Nanos::MIN, |l| l.time);
    Ok((out, min, max))
}

/// Takes `n` bytes from the front of a column.
fn take<'a>(col: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], String> {
    if col.len() < n {
        return Err(format!("{what} column too short"));
    }
    let (head, rest) = col.split_at(n);
    *col = rest;
    Ok(head)
}

fn take_ip(col: &mut &[u8], v6: bool, what: &str) -> Result<IpAddr, String> {
    Ok(if v6 {
        let mut a = [0u8; 16];
        a.copy_from_slice(take(col, 16, what)?);
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        let mut a = [0u8; 4];
        a.copy_from_slice(take(col, 4, what)?);
        IpAddr::V4(Ipv4Addr::from(a))
    })
}

fn decode_columns(raw: &[u8], n: usize, out: &mut Vec<LeaseObservation>) -> Result<(), String> {
    let mut rest = raw;
    let mut cols: [&[u8]; COLUMNS] = [&[]; COLUMNS];
    for (i, c) in cols.iter_mut().enumerate() {
        let len = take(&mut rest, 4, "column length")
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .map_err(|_| format!("column {i}: length missing"))?;
        *c = take(&mut rest, len, "lease")
            .map_err(|_| format!("column {i}: {len} bytes run past the data"))?;
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the last column", rest.len()));
    }
    let [flags, times, messages, xids, mut addrs, mut macs, mut leases, mut servers, mut names] =
        cols;
    if flags.len() != n || times.len() != 8 * n || messages.len() != n || xids.len() != 4 * n {
        return Err(format!(
            "fixed columns do not hold {n} observations ({}, {}, {}, {} bytes)",
            flags.len(),
            times.len(),
            messages.len(),
            xids.len()
        ));
    }
    for i in 0..n {
        let f = flags[i];
        if f & 0x80 != 0 {
            return Err(format!("observation {i}: reserved flag bit 7 set"));
        }
        let le8 = |c: &[u8], at: usize| -> [u8; 8] {
            let mut b = [0u8; 8];
            b.copy_from_slice(&c[at..at + 8]);
            b
        };
        let client_mac = if f & F_MAC != 0 {
            let mut m = [0u8; 6];
            m.copy_from_slice(take(&mut macs, 6, "MAC")?);
            Some(m)
        } else {
            None
        };
        let lease_secs = if f & F_LEASE != 0 {
            let b = take(&mut leases, 4, "lease time")?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        } else {
            None
        };
        if f & F_SERVER == 0 && f & F_SERVER_V6 != 0 {
            return Err(format!("observation {i}: server family without a server"));
        }
        let server = if f & F_SERVER != 0 {
            Some(take_ip(&mut servers, f & F_SERVER_V6 != 0, "server")?)
        } else {
            None
        };
        let hostname = if f & F_HOSTNAME != 0 {
            let len = usize::from(take(&mut names, 1, "hostname")?[0]);
            if len == 0 {
                return Err(format!("observation {i}: empty hostname"));
            }
            let text = std::str::from_utf8(take(&mut names, len, "hostname")?)
                .map_err(|_| format!("observation {i}: hostname is not UTF-8"))?;
            Some(text.to_string())
        } else {
            None
        };
        let time = i64::from_le_bytes(le8(times, 8 * i));
        if i > 0 && time < i64::from_le_bytes(le8(times, 8 * (i - 1))) {
            return Err(format!("observation {i}: times not in ascending order"));
        }
        let x = &xids[4 * i..4 * i + 4];
        out.push(LeaseObservation {
            time,
            v6: f & F_DHCPV6 != 0,
            message: messages[i],
            address: take_ip(&mut addrs, f & F_ADDR_V6 != 0, "address")?,
            client_mac,
            lease_secs,
            hostname,
            server,
            xid: u32::from_le_bytes([x[0], x[1], x[2], x[3]]),
        });
    }
    for (name, left) in [
        ("address", addrs),
        ("MAC", macs),
        ("lease time", leases),
        ("server", servers),
        ("hostname", names),
    ] {
        if !left.is_empty() {
            return Err(format!("{name} column has {} bytes left over", left.len()));
        }
    }
    Ok(())
}

/// Checks and decodes a whole lease block (header + payload), replacing the contents of `out`;
/// on error `out` is left empty.
pub fn decode_lease_block(block: &[u8], out: &mut Vec<LeaseObservation>) -> Result<(), BlockError> {
    out.clear();
    let (h, payload) = checked_block(block, MAX_BLOCK_LEASES, max_raw_len, "lease observations")?;
    let (n, raw_len) = (h.records as usize, h.raw_len as usize);
    if h.codec != CODEC_LEASES_ZSTD {
        return Err(berr(
            12,
            format!(
                "block codec {} where the index says a lease block (codec {CODEC_LEASES_ZSTD})",
                h.codec
            ),
        ));
    }
    // Bounded by max_raw_len(MAX_BLOCK_LEASES), never by an unchecked claim.
    let raw = zstd::bulk::decompress(payload, raw_len)
        .map_err(|e| berr(BLOCK_HEADER_LEN, format!("zstd: {e}")))?;
    if raw.len() != raw_len {
        return Err(berr(
            BLOCK_HEADER_LEN,
            format!(
                "payload decompresses to {} bytes, header says {raw_len}",
                raw.len()
            ),
        ));
    }
    if let Err(reason) = decode_columns(&raw, n, out) {
        out.clear();
        return Err(berr(BLOCK_HEADER_LEN, reason));
    }
    Ok(())
}

/// The codec byte of a block header, when the header is there.
pub fn block_codec(block: &[u8]) -> Option<u8> {
    block.get(12).copied()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub fn lease(i: u64) -> LeaseObservation {
        LeaseObservation {
            time: 1_767_225_600_000_000_000 + i as i64 * 1_000_000_000,
            v6: i % 3 == 0,
            message: 5,
            address: if i % 2 == 0 {
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8))
            } else {
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16))
            },
            client_mac: (i % 4 != 1).then_some([0, 0x1b, 0x21, 0, 0, i as u8]),
            lease_secs: (i % 5 != 2).then_some(3600),
            hostname: (i % 2 == 1).then(|| format!("host-{i}")),
            server: match i % 3 {
                0 => None,
                1 => Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
                _ => Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            },
            xid: i as u32 * 7919,
        }
    }

    fn arb_lease() -> impl Strategy<Value = LeaseObservation> {
        (
            any::<i64>(),
            any::<bool>(),
            any::<u8>(),
            any::<[u8; 16]>(),
            any::<bool>(),
            any::<Option<[u8; 6]>>(),
            any::<Option<u32>>(),
            proptest::option::of("[a-zA-Z0-9.é-]{1,80}"),
            any::<Option<[u8; 4]>>(),
            any::<u32>(),
        )
            .prop_map(
                |(time, v6, message, a, a6, mac, lease, host, server, xid)| LeaseObservation {
                    time,
                    v6,
                    message,
                    address: if a6 {
                        IpAddr::V6(Ipv6Addr::from(a))
                    } else {
                        IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
                    },
                    client_mac: mac,
                    lease_secs: lease,
                    hostname: host,
                    server: server.map(|s| IpAddr::V4(Ipv4Addr::from(s))),
                    xid,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(leases in proptest::collection::vec(arb_lease(), 0..40)) {
            let (block, min, max) = encode_lease_block(&leases, 3).unwrap();
            let mut out = Vec::new();
            decode_lease_block(&block, &mut out).unwrap();
            let mut want = leases.clone();
            want.sort_by_key(|l| l.time);
            prop_assert_eq!(&out, &want);
            prop_assert_eq!(min, want.first().map_or(Nanos::MAX, |l| l.time));
            prop_assert_eq!(max, want.last().map_or(Nanos::MIN, |l| l.time));
        }

        #[test]
        fn damaged_blocks_are_errors_not_panics(
            leases in proptest::collection::vec(arb_lease(), 1..10),
            at in any::<usize>(),
            byte in any::<u8>(),
        ) {
            let (mut block, _, _) = encode_lease_block(&leases, 3).unwrap();
            let i = at % block.len();
            block[i] ^= byte | 1;
            let mut out = Vec::new();
            prop_assert!(decode_lease_block(&block, &mut out).is_err());
            prop_assert!(out.is_empty());
        }
    }

    #[test]
    fn checks_counts_lengths_and_codec() {
        let leases: Vec<_> = (0..5).map(lease).collect();
        let (block, _, _) = encode_lease_block(&leases, 3).unwrap();
        let mut out = Vec::new();
        decode_lease_block(&block, &mut out).unwrap();
        assert_eq!(out, leases);
        let e = decode_lease_block(&block[..block.len() - 1], &mut out).unwrap_err();
        assert!(e.reason.contains("payload bytes"), "{e}");
        let too_many = vec![lease(0); MAX_BLOCK_LEASES + 1];
        assert!(encode_lease_block(&too_many, 3).is_err());
        // A record block where a lease block was expected is refused by codec.
        let flows = crate::store::encode_block(&[crate::testing::sample(1)]).unwrap();
        let e = decode_lease_block(&flows, &mut out).unwrap_err();
        assert!(e.reason.contains("codec 4"), "{e}");
        // Columns rewritten by hand: wrong counts and leftovers are caught after the checksum.
        let reencode = |raw: Vec<u8>, n: u32| {
            let payload = zstd::bulk::compress(&raw, 3).unwrap();
            let mut h = BlockHeader {
                payload_len: payload.len() as u32,
                records: n,
                raw_len: raw.len() as u32,
                codec: CODEC_LEASES_ZSTD,
                crc32c: 0,
            };
            h.crc32c = h.checksum(&payload);
            let mut b = h.prefix().to_vec();
            b.extend_from_slice(&h.crc32c.to_le_bytes());
            b.extend_from_slice(&payload);
            b
        };
        let mut raw = Vec::new();
        for len in [1u32, 8, 1, 4, 4, 0, 0, 0, 0] {
            raw.extend_from_slice(&len.to_le_bytes());
            raw.extend(std::iter::repeat_n(0u8, len as usize));
        }
        decode_lease_block(&reencode(raw.clone(), 1), &mut out).unwrap();
        assert_eq!(out[0].address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let e = decode_lease_block(&reencode(raw.clone(), 2), &mut out).unwrap_err();
        assert!(e.reason.contains("fixed columns"), "{e}");
        let mut extra = raw.clone();
        extra.push(0);
        let e = decode_lease_block(&reencode(extra, 1), &mut out).unwrap_err();
        assert!(e.reason.contains("after the last column"), "{e}");
        let mut flagged = raw.clone();
        flagged[4] = F_MAC;
        let e = decode_lease_block(&reencode(flagged, 1), &mut out).unwrap_err();
        assert!(e.reason.contains("MAC column too short"), "{e}");
        flagged = raw.clone();
        flagged[4] = 0x80;
        let e = decode_lease_block(&reencode(flagged, 1), &mut out).unwrap_err();
        assert!(e.reason.contains("bit 7"), "{e}");
        let mut huge = raw;
        huge.truncate(4 * COLUMNS + 17);
        let mut h = reencode(huge, 1);
        h[8..12].copy_from_slice(&(max_raw_len(1) as u32 + 1).to_le_bytes());
        let e = decode_lease_block(&h, &mut out).unwrap_err();
        assert!(e.reason.contains("too large"), "{e}");
    }

    mod in_segments {
        use super::lease;
        use crate::record::{FlowRecord, LeaseObservation};
        use crate::store::segment::{SegmentFile, CAPTURE_MACS_NOT_STORED, KIND_LEASES};
        use crate::store::{Store, StoreWriter, WriterConfig, MARKER_NAME};
        use crate::testing::sample;
        use std::ops::ControlFlow;
        use std::path::Path;

        fn leases_of(store: &Store) -> Vec<LeaseObservation> {
            let mut v = Vec::new();
            let st = store
                .scan_leases(None, None, |l| {
                    v.push(l.clone());
                    ControlFlow::Continue(())
                })
                .unwrap();
            assert!(st.problems.is_empty(), "{:?}", st.problems);
            v.sort_by_key(|l| (l.time, l.xid));
            v
        }

        fn records_of(store: &Store) -> Vec<FlowRecord> {
            let mut v = Vec::new();
            let st = store
                .scan(None, None, |_, r| {
                    v.push(r.clone());
                    ControlFlow::Continue(())
                })
                .unwrap();
            assert!(st.problems.is_empty(), "{:?}", st.problems);
            v.sort_by_key(|r| (r.first, r.sport));
            v
        }

        fn write(dir: &Path, no_mac: bool) -> (Vec<FlowRecord>, Vec<LeaseObservation>) {
            let mut cfg = WriterConfig::new(dir);
            cfg.block_records = 7;
            cfg.no_mac = no_mac;
            let mut w = StoreWriter::create(cfg).unwrap();
            let recs: Vec<_> = (0..30).map(sample).collect();
            let leases: Vec<_> = (0..12).map(lease).collect();
            for (i, r) in recs.iter().enumerate() {
                w.append(r).unwrap();
                if let Some(l) = leases.get(i) {
                    w.append_lease(l).unwrap();
                }
                if i == 5 {
                    w.flush_open().unwrap();
                }
            }
            assert_eq!(w.finish().unwrap().leases, 12);
            (recs, leases)
        }

        #[test]
        fn leases_live_beside_records_and_verify() {
            let d = tempfile::tempdir().unwrap();
            let (recs, leases) = write(d.path(), false);
            let store = Store::open(d.path()).unwrap();
            assert_eq!(records_of(&store), recs);
            assert_eq!(leases_of(&store), leases);
            assert_eq!(store.lease_count().unwrap(), 12);
            // Two lease blocks: the flush in the middle and the seal.
            let seg = &store.segments().unwrap()[0];
            let file = SegmentFile::open(&seg.path).unwrap();
            let kinds: Vec<u8> = file.entries.iter().map(|e| e.kind).collect();
            assert_eq!(kinds.iter().filter(|&&k| k == KIND_LEASES).count(), 2);
            assert_eq!(seg.records, 30);
            assert_eq!(file.totals.leases, 12);
            assert_eq!(file.capture.flags & CAPTURE_MACS_NOT_STORED, 0);
            let v = store.verify().unwrap();
            assert_eq!(v.problem_count(), 0, "{:?}", v.problem_lines());
            // A time range picks observations by their time.
            let mut n = 0;
            store
                .scan_leases(Some(leases[3].time), Some(leases[6].time), |_| {
                    n += 1;
                    ControlFlow::Continue(())
                })
                .unwrap();
            assert_eq!(n, 3);
        }

        #[test]
        fn no_mac_drops_macs_and_hostnames_and_says_so() {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), true);
            let store = Store::open(d.path()).unwrap();
            assert!(records_of(&store)
                .iter()
                .all(|r| r.src_mac.is_none() && r.dst_mac.is_none()));
            let leases = leases_of(&store);
            assert_eq!(leases.len(), 12);
            assert!(leases
                .iter()
                .all(|l| l.client_mac.is_none() && l.hostname.is_none()));
            assert!(leases.iter().any(|l| l.lease_secs.is_some()));
            for s in store.segments().unwrap() {
                assert_ne!(s.capture.flags & CAPTURE_MACS_NOT_STORED, 0);
            }
        }

        #[test]
        fn lease_blocks_of_a_dead_writer_are_recovered() {
            let d = tempfile::tempdir().unwrap();
            let mut w = StoreWriter::create(WriterConfig::new(d.path())).unwrap();
            let recs: Vec<_> = (0..5).map(sample).collect();
            let leases: Vec<_> = (0..4).map(lease).collect();
            for (r, l) in recs.iter().zip(&leases) {
                w.append(r).unwrap();
                w.append_lease(l).unwrap();
            }
            w.flush_open().unwrap();
            w.append(&recs[4]).unwrap();
            w.flush_open().unwrap();
            w.abandon();
            // Recovery seals the temporary file, lease block included.
            let r = crate::store::recover(d.path()).unwrap();
            assert_eq!(r.segments.len(), 1);
            assert_eq!(r.segments[0].records, 5);
            let store = Store::open(d.path()).unwrap();
            assert_eq!(records_of(&store), recs);
            assert_eq!(leases_of(&store), leases);
            assert_eq!(store.verify().unwrap().problem_count(), 0);
        }

        #[test]
        fn open_segments_show_their_lease_blocks() {
            let d = tempfile::tempdir().unwrap();
            let mut w = StoreWriter::create(WriterConfig::new(d.path())).unwrap();
            w.append(&sample(0)).unwrap();
            w.append_lease(&lease(1)).unwrap();
            w.flush_open().unwrap();
            let store = Store::open(d.path()).unwrap();
            assert_eq!(leases_of(&store), vec![lease(1)]);
            drop(w);
        }

        /// Rewrites a freshly written (format 3) store as format 2 wrote it: marker and
        /// segment headers say 2 (flow blocks only, so no other byte differs).
        fn downgrade_to_format_2(dir: &Path) -> std::path::PathBuf {
            std::fs::write(dir.join(MARKER_NAME), "flowkeep store\nformat 2\n").unwrap();
            let store = Store::open(dir).unwrap();
            let path = store.segments().unwrap()[0].path.clone();
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
            let crc = crc32c::crc32c(&bytes[..60]);
            bytes[60..64].copy_from_slice(&crc.to_le_bytes());
            // Format 2 footers end after the filters: drop the (empty) interface list, the
            // last two footer bytes, and fix the trailer's length and checksum.
            let n = bytes.len();
            assert_eq!(bytes[n - 26..n - 24], [0, 0], "an empty interface list");
            bytes.drain(n - 26..n - 24);
            let n = bytes.len();
            let footer_at = u64::from_le_bytes(bytes[n - 24..n - 16].try_into().unwrap()) as usize;
            let footer_len = (n - 24 - footer_at) as u32;
            bytes[n - 16..n - 12].copy_from_slice(&footer_len.to_le_bytes());
            let footer_crc = crc32c::crc32c(&bytes[footer_at..n - 24]);
            bytes[n - 12..n - 8].copy_from_slice(&footer_crc.to_le_bytes());
            std::fs::write(&path, &bytes).unwrap();
            path
        }

        #[test]
        fn format_2_segments_are_read_and_the_marker_upgraded_on_write() {
            let d = tempfile::tempdir().unwrap();
            let mut w = StoreWriter::create(WriterConfig::new(d.path())).unwrap();
            let recs: Vec<_> = (0..3).map(sample).collect();
            for r in &recs {
                w.append(r).unwrap();
            }
            w.finish().unwrap();
            let path = downgrade_to_format_2(d.path());
            let store = Store::open(d.path()).unwrap();
            assert_eq!(SegmentFile::open(&path).unwrap().header.version, 2);
            assert_eq!(records_of(&store), recs);
            assert!(leases_of(&store).is_empty());
            // Format 2 reserved the kind byte: a non-zero one there is damage.
            let mut bytes = std::fs::read(&path).unwrap();
            let n = bytes.len();
            let footer_at = u64::from_le_bytes(bytes[n - 24..n - 16].try_into().unwrap()) as usize;
            let entry_kind = footer_at + 112 + 37;
            bytes[entry_kind] = 1;
            let footer_crc = crc32c::crc32c(&bytes[footer_at..n - 24]);
            bytes[n - 12..n - 8].copy_from_slice(&footer_crc.to_le_bytes());
            let bad = d.path().join("bad.fks");
            std::fs::write(&bad, &bytes).unwrap();
            let e = SegmentFile::open(&bad).err().unwrap().to_string();
            assert!(e.contains("unknown block kind 1 (format 2"), "{e}");
            std::fs::remove_file(&bad).unwrap();
            // Writing adds segments of the current format, so the marker must say it.
            let mut w = StoreWriter::create(WriterConfig::new(d.path())).unwrap();
            w.append_lease(&lease(0)).unwrap();
            w.finish().unwrap();
            assert_eq!(
                std::fs::read_to_string(d.path().join(MARKER_NAME)).unwrap(),
                "flowkeep store\nformat 5\n"
            );
            let store = Store::open(d.path()).unwrap();
            assert_eq!(records_of(&store), recs);
            assert_eq!(leases_of(&store), vec![lease(0)]);
        }
    }
}
