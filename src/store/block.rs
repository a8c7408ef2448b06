//! Block encoding: a run of records as fixed-width rows, zstd-compressed behind a 16-byte block
//! header. Kept apart from the segment file so that a later columnar encoding replaces only this
//! file. The byte layout is specified in `docs/FORMAT.md`; the constants here are that promise.

use crate::record::{EndReason, FlowRecord, Mac};
use crate::time::Nanos;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Bytes per encoded record row.
pub const ROW_LEN: usize = 106;
/// Bytes of the block header in front of the compressed payload.
pub const BLOCK_HEADER_LEN: usize = 16;
/// The most records a block may hold: bounds what a reader ever decompresses for one block
/// (65 536 × 106 bytes ≈ 6.6 MiB), whatever a damaged header claims.
pub const MAX_BLOCK_RECORDS: usize = 65_536;
/// zstd level used when none is configured.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

const ADDR_SRC_V6: u8 = 0x01;
const ADDR_DST_V6: u8 = 0x02;
const MAC_SRC: u8 = 0x01;
const MAC_DST: u8 = 0x02;
const V4_MAPPED_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/// What is wrong with a block; `offset` counts from the start of the block (its header), so the
/// segment reader can add the block's file offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at block byte {offset}: {reason}")]
pub struct BlockError {
    pub offset: u64,
    pub reason: String,
}

fn berr(offset: usize, reason: impl Into<String>) -> BlockError {
    BlockError {
        offset: offset as u64,
        reason: reason.into(),
    }
}

/// The 16-byte header in front of every block's compressed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub payload_len: u32,
    pub records: u32,
    pub raw_len: u32,
    pub crc32c: u32,
}

impl BlockHeader {
    pub fn parse(buf: &[u8]) -> Result<BlockHeader, BlockError> {
        let h = buf.get(..BLOCK_HEADER_LEN).ok_or_else(|| {
            berr(
                0,
                format!("{} bytes, shorter than a block header", buf.len()),
            )
        })?;
        Ok(BlockHeader {
            payload_len: le_u32(h, 0),
            records: le_u32(h, 4),
            raw_len: le_u32(h, 8),
            crc32c: le_u32(h, 12),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.payload_len.to_le_bytes());
        out.extend_from_slice(&self.records.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.extend_from_slice(&self.crc32c.to_le_bytes());
    }
}

/// Callers pass slices whose length was checked, so the conversions cannot fail; a zero value
/// instead of a panic keeps that true even if a caller is wrong.
fn le_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

fn le_i64(b: &[u8], at: usize) -> i64 {
    le_u64(b, at) as i64
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}

fn addr_bytes(a: &IpAddr) -> ([u8; 16], bool) {
    match a {
        IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), false),
        IpAddr::V6(v6) => (v6.octets(), true),
    }
}

/// Appends one record as a `ROW_LEN`-byte row.
pub fn encode_row(rec: &FlowRecord, out: &mut Vec<u8>) {
    let (src, src_v6) = addr_bytes(&rec.src);
    let (dst, dst_v6) = addr_bytes(&rec.dst);
    let mut addr_flags = 0u8;
    if src_v6 {
        addr_flags |= ADDR_SRC_V6;
    }
    if dst_v6 {
        addr_flags |= ADDR_DST_V6;
    }
    let mut mac_flags = 0u8;
    if rec.src_mac.is_some() {
        mac_flags |= MAC_SRC;
    }
    if rec.dst_mac.is_some() {
        mac_flags |= MAC_DST;
    }
    out.extend_from_slice(&rec.first.to_le_bytes());
    out.extend_from_slice(&rec.last.to_le_bytes());
    out.extend_from_slice(&rec.packets.to_le_bytes());
    out.extend_from_slice(&rec.bytes.to_le_bytes());
    out.extend_from_slice(&rec.rev_packets.to_le_bytes());
    out.extend_from_slice(&rec.rev_bytes.to_le_bytes());
    out.extend_from_slice(&src);
    out.extend_from_slice(&dst);
    out.extend_from_slice(&rec.src_mac.unwrap_or([0; 6]));
    out.extend_from_slice(&rec.dst_mac.unwrap_or([0; 6]));
    out.extend_from_slice(&rec.sport.to_le_bytes());
    out.extend_from_slice(&rec.dport.to_le_bytes());
    out.extend_from_slice(&rec.vlan.to_le_bytes());
    out.extend_from_slice(&rec.inner_vlan.to_le_bytes());
    out.push(rec.proto);
    out.push(addr_flags);
    out.push(mac_flags);
    out.push(rec.tcp_flags);
    out.push(rec.rev_tcp_flags);
    out.push(rec.end as u8);
}

fn decode_addr(b: &[u8; 16], v6: bool) -> Option<IpAddr> {
    if v6 {
        return Some(IpAddr::V6(Ipv6Addr::from(*b)));
    }
    // A v4 address must be stored v4-mapped; anything else is damage, not an address.
    if b[..12] != V4_MAPPED_PREFIX {
        return None;
    }
    Some(IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15])))
}

fn decode_mac(b: &[u8], present: bool) -> Option<Option<Mac>> {
    let mac: Mac = b.try_into().ok()?;
    match (present, mac) {
        (true, m) => Some(Some(m)),
        (false, [0, 0, 0, 0, 0, 0]) => Some(None),
        // An absent MAC is written as zeros; other bytes mean the flags or the MAC are damaged.
        (false, _) => None,
    }
}

/// Decodes one `ROW_LEN`-byte row; `Err` carries the reason.
pub fn decode_row(row: &[u8]) -> Result<FlowRecord, String> {
    if row.len() != ROW_LEN {
        return Err(format!("row of {} bytes, expected {ROW_LEN}", row.len()));
    }
    let addr_flags = row[101];
    let mac_flags = row[102];
    if addr_flags & !(ADDR_SRC_V6 | ADDR_DST_V6) != 0 {
        return Err(format!("unknown address flag bits {addr_flags:#04x}"));
    }
    if mac_flags & !(MAC_SRC | MAC_DST) != 0 {
        return Err(format!("unknown MAC flag bits {mac_flags:#04x}"));
    }
    let mut src = [0u8; 16];
    src.copy_from_slice(&row[48..64]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&row[64..80]);
    let src = decode_addr(&src, addr_flags & ADDR_SRC_V6 != 0)
        .ok_or("IPv4 source address not stored v4-mapped")?;
    let dst = decode_addr(&dst, addr_flags & ADDR_DST_V6 != 0)
        .ok_or("IPv4 destination address not stored v4-mapped")?;
    let src_mac = decode_mac(&row[80..86], mac_flags & MAC_SRC != 0)
        .ok_or("absent source MAC has non-zero bytes")?;
    let dst_mac = decode_mac(&row[86..92], mac_flags & MAC_DST != 0)
        .ok_or("absent destination MAC has non-zero bytes")?;
    let end =
        EndReason::from_u8(row[105]).ok_or_else(|| format!("unknown end reason {}", row[105]))?;
    Ok(FlowRecord {
        first: le_i64(row, 0),
        last: le_i64(row, 8),
        packets: le_u64(row, 16),
        bytes: le_u64(row, 24),
        rev_packets: le_u64(row, 32),
        rev_bytes: le_u64(row, 40),
        src,
        dst,
        src_mac,
        dst_mac,
        sport: le_u16(row, 92),
        dport: le_u16(row, 94),
        vlan: le_u16(row, 96),
        inner_vlan: le_u16(row, 98),
        proto: row[100],
        tcp_flags: row[103],
        rev_tcp_flags: row[104],
        end,
    })
}

/// Accumulates rows for one block and compresses them; the buffers are reused from block to
/// block so that appending a record does not allocate.
pub struct BlockEncoder {
    cctx: zstd::bulk::Compressor<'static>,
    rows: Vec<u8>,
    records: usize,
    min_first: Nanos,
    max_last: Nanos,
    payload: Vec<u8>,
    out: Vec<u8>,
}

/// What the segment footer needs to know about a finished block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSummary {
    pub records: u32,
    pub min_first: Nanos,
    pub max_last: Nanos,
}

impl BlockEncoder {
    pub fn new(zstd_level: i32) -> Result<BlockEncoder, BlockError> {
        let cctx = zstd::bulk::Compressor::new(zstd_level)
            .map_err(|e| berr(0, format!("zstd level {zstd_level}: {e}")))?;
        Ok(BlockEncoder {
            cctx,
            rows: Vec::new(),
            records: 0,
            min_first: Nanos::MAX,
            max_last: Nanos::MIN,
            payload: Vec::new(),
            out: Vec::new(),
        })
    }

    pub fn push(&mut self, rec: &FlowRecord) {
        encode_row(rec, &mut self.rows);
        self.records += 1;
        self.min_first = self.min_first.min(rec.first);
        self.max_last = self.max_last.max(rec.last);
    }

    pub fn records(&self) -> usize {
        self.records
    }

    pub fn raw_len(&self) -> usize {
        self.rows.len()
    }

    /// Compresses the pending rows into a block (header + payload) and starts a new block. The
    /// returned slice lives until the next call.
    pub fn finish(&mut self) -> Result<(&[u8], BlockSummary), BlockError> {
        if self.records > MAX_BLOCK_RECORDS {
            return Err(berr(
                0,
                format!(
                    "{} records, more than the {MAX_BLOCK_RECORDS} a block may hold",
                    self.records
                ),
            ));
        }
        self.payload.clear();
        self.payload
            .reserve(zstd::zstd_safe::compress_bound(self.rows.len()));
        self.cctx
            .compress_to_buffer(&self.rows[..], &mut self.payload)
            .map_err(|e| berr(BLOCK_HEADER_LEN, format!("zstd compression failed: {e}")))?;
        // MAX_BLOCK_RECORDS bounds raw_len and so the compressed length, well inside u32.
        let header = BlockHeader {
            payload_len: self.payload.len() as u32,
            records: self.records as u32,
            raw_len: self.rows.len() as u32,
            crc32c: crc32c::crc32c(&self.payload),
        };
        let summary = BlockSummary {
            records: self.records as u32,
            min_first: self.min_first,
            max_last: self.max_last,
        };
        self.out.clear();
        header.write(&mut self.out);
        self.out.extend_from_slice(&self.payload);
        self.rows.clear();
        self.records = 0;
        self.min_first = Nanos::MAX;
        self.max_last = Nanos::MIN;
        Ok((&self.out[..], summary))
    }
}

/// Decompresses blocks, reusing its buffer from block to block.
pub struct BlockDecoder {
    dctx: zstd::bulk::Decompressor<'static>,
    raw: Vec<u8>,
}

impl BlockDecoder {
    pub fn new() -> Result<BlockDecoder, BlockError> {
        let dctx = zstd::bulk::Decompressor::new()
            .map_err(|e| berr(0, format!("zstd decompressor: {e}")))?;
        Ok(BlockDecoder {
            dctx,
            raw: Vec::new(),
        })
    }

    /// Checks and decodes a whole block (header + payload, nothing after), replacing the contents
    /// of `out`. On error `out` is left empty: a block is used whole or not at all.
    pub fn decode_into(
        &mut self,
        block: &[u8],
        out: &mut Vec<FlowRecord>,
    ) -> Result<(), BlockError> {
        out.clear();
        let h = BlockHeader::parse(block)?;
        let payload = &block[BLOCK_HEADER_LEN..];
        if payload.len() as u64 != u64::from(h.payload_len) {
            return Err(berr(
                0,
                format!(
                    "header says {} payload bytes, block has {}",
                    h.payload_len,
                    payload.len()
                ),
            ));
        }
        let records = h.records as usize;
        if records > MAX_BLOCK_RECORDS {
            return Err(berr(
                4,
                format!("{records} records, more than the {MAX_BLOCK_RECORDS} a block may hold"),
            ));
        }
        // records ≤ MAX_BLOCK_RECORDS, so this cannot overflow.
        let raw_len = records * ROW_LEN;
        if h.raw_len as usize != raw_len {
            return Err(berr(
                8,
                format!(
                    "uncompressed length {} does not match {records} records of {ROW_LEN} bytes",
                    h.raw_len
                ),
            ));
        }
        let crc = crc32c::crc32c(payload);
        if crc != h.crc32c {
            return Err(berr(
                12,
                format!(
                    "payload checksum mismatch: stored {:#010x}, computed {crc:#010x}",
                    h.crc32c
                ),
            ));
        }
        self.raw.clear();
        // Bounded by MAX_BLOCK_RECORDS × ROW_LEN, never by an unchecked claim.
        self.raw.reserve(raw_len);
        let n = self
            .dctx
            .decompress_to_buffer(payload, &mut self.raw)
            .map_err(|e| berr(BLOCK_HEADER_LEN, format!("zstd: {e}")))?;
        if n != raw_len {
            return Err(berr(
                BLOCK_HEADER_LEN,
                format!("payload decompresses to {n} bytes, header says {raw_len}"),
            ));
        }
        out.reserve(records);
        for (i, row) in self.raw.chunks_exact(ROW_LEN).enumerate() {
            match decode_row(row) {
                Ok(rec) => out.push(rec),
                Err(reason) => {
                    out.clear();
                    return Err(berr(
                        BLOCK_HEADER_LEN,
                        format!("record {i} (uncompressed byte {}): {reason}", i * ROW_LEN),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Encodes `records` as one block (header + compressed rows) at the default zstd level.
pub fn encode_block(records: &[FlowRecord]) -> Result<Vec<u8>, BlockError> {
    encode_block_with_level(records, DEFAULT_ZSTD_LEVEL)
}

pub fn encode_block_with_level(
    records: &[FlowRecord],
    zstd_level: i32,
) -> Result<Vec<u8>, BlockError> {
    let mut enc = BlockEncoder::new(zstd_level)?;
    for r in records {
        enc.push(r);
    }
    let (bytes, _) = enc.finish()?;
    Ok(bytes.to_vec())
}

/// Checks and decodes one whole block as produced by [`encode_block`].
pub fn decode_block(block: &[u8]) -> Result<Vec<FlowRecord>, BlockError> {
    let mut out = Vec::new();
    BlockDecoder::new()?.decode_into(block, &mut out)?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub fn sample(i: u64) -> FlowRecord {
        FlowRecord {
            first: 1_767_225_600_000_000_000 + i as i64 * 1_000_000,
            last: 1_767_225_600_000_000_000 + i as i64 * 1_000_000 + 5_000_000_000,
            proto: 6,
            src: IpAddr::V4(Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8)),
            sport: 40_000 + (i % 1000) as u16,
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            dport: 443,
            vlan: 0,
            inner_vlan: 0,
            src_mac: Some([0, 0x1b, 0x21, 1, 2, 3]),
            dst_mac: Some([0, 0x1b, 0x21, 4, 5, 6]),
            packets: 10 + i % 7,
            bytes: 1500 * (10 + i % 7),
            rev_packets: 8,
            rev_bytes: 9000,
            tcp_flags: 0x1b,
            rev_tcp_flags: 0x1b,
            end: EndReason::Fin,
        }
    }

    fn arb_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
            any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            // v4-mapped v6 must stay v6, not turn into v4
            any::<[u8; 4]>().prop_map(|b| IpAddr::V6(Ipv4Addr::from(b).to_ipv6_mapped())),
        ]
    }

    fn arb_u64() -> impl Strategy<Value = u64> {
        prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()]
    }

    fn arb_i64() -> impl Strategy<Value = i64> {
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0i64), any::<i64>()]
    }

    pub fn arb_record() -> impl Strategy<Value = FlowRecord> {
        (
            (
                arb_i64(),
                arb_i64(),
                any::<u8>(),
                arb_ip(),
                arb_ip(),
                any::<u16>(),
                any::<u16>(),
            ),
            (
                any::<u16>(),
                any::<u16>(),
                any::<Option<[u8; 6]>>(),
                any::<Option<[u8; 6]>>(),
            ),
            (arb_u64(), arb_u64(), arb_u64(), arb_u64()),
            (any::<u8>(), any::<u8>(), 0u8..5),
        )
            .prop_map(
                |(
                    (first, last, proto, src, dst, sport, dport),
                    (vlan, inner_vlan, src_mac, dst_mac),
                    (packets, bytes, rev_packets, rev_bytes),
                    (tcp_flags, rev_tcp_flags, end),
                )| FlowRecord {
                    first,
                    last,
                    proto,
                    src,
                    sport,
                    dst,
                    dport,
                    vlan,
                    inner_vlan,
                    src_mac,
                    dst_mac,
                    packets,
                    bytes,
                    rev_packets,
                    rev_bytes,
                    tcp_flags,
                    rev_tcp_flags,
                    end: EndReason::from_u8(end).unwrap_or(EndReason::Idle),
                },
            )
    }

    proptest! {
        #[test]
        fn block_round_trip(recs in proptest::collection::vec(arb_record(), 0..200)) {
            let block = encode_block(&recs).unwrap();
            prop_assert_eq!(decode_block(&block).unwrap(), recs);
        }

        #[test]
        fn decode_never_panics_on_damage(
            recs in proptest::collection::vec(arb_record(), 1..20),
            pos in any::<prop::sample::Index>(),
            bit in 0u8..8,
            cut in any::<prop::sample::Index>(),
        ) {
            let mut block = encode_block(&recs).unwrap();
            let p = pos.index(block.len());
            block[p] ^= 1 << bit;
            // A flipped bit must be caught: the header fields cross-check and the CRC covers the payload.
            prop_assert!(decode_block(&block).is_err());
            let c = cut.index(block.len());
            prop_assert!(decode_block(&block[..c]).is_err());
        }
    }

    #[test]
    fn row_is_exactly_row_len() {
        let mut out = Vec::new();
        encode_row(&sample(1), &mut out);
        assert_eq!(out.len(), ROW_LEN);
    }

    #[test]
    fn every_end_reason_and_extreme_counters() {
        let recs: Vec<FlowRecord> = EndReason::ALL
            .iter()
            .enumerate()
            .map(|(i, &end)| FlowRecord {
                end,
                packets: u64::MAX,
                bytes: u64::MAX,
                rev_packets: 0,
                rev_bytes: u64::MAX - i as u64,
                first: i64::MIN,
                last: i64::MAX,
                src_mac: None,
                src: "2001:db8::1".parse().unwrap(),
                ..sample(i as u64)
            })
            .collect();
        assert_eq!(decode_block(&encode_block(&recs).unwrap()).unwrap(), recs);
    }

    #[test]
    fn bad_row_contents_are_refused() {
        let mut row = Vec::new();
        encode_row(&sample(0), &mut row);
        let mut bad = row.clone();
        bad[105] = 9;
        assert!(decode_row(&bad).unwrap_err().contains("end reason"));
        let mut bad = row.clone();
        bad[101] = 0x80;
        assert!(decode_row(&bad).is_err());
        let mut bad = row.clone();
        bad[48] = 1; // v4 flag but not v4-mapped
        assert!(decode_row(&bad).is_err());
        assert!(decode_row(&row[..50]).is_err());
    }

    #[test]
    fn oversized_claims_are_refused_without_allocating() {
        let mut block = encode_block(&[sample(0)]).unwrap();
        block[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        block[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = decode_block(&block).unwrap_err();
        assert!(e.reason.contains("more than"), "{e}");
    }
}
