//! Block encoding: a run of records in columns (see [`super::columns`]), zstd-compressed behind
//! a 20-byte block header that names the codec and checksums the block. The byte layout is
//! specified in `docs/FORMAT.md`; the constants here are that promise.

#[cfg(test)]
use super::columns;
use super::columns::{ColumnDecoder, ColumnEncoder, FIXED_BYTES, MAX_BYTES_PER_RECORD};
use crate::record::FlowRecord;
use crate::time::Nanos;

/// Bytes of the block header in front of the compressed payload.
pub const BLOCK_HEADER_LEN: usize = 20;
/// The most records a block may hold: bounds what a reader ever decompresses for one block
/// (about 8.9 MiB), whatever a damaged header claims.
pub const MAX_BLOCK_RECORDS: usize = 65_536;
/// zstd level used when none is configured.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// Format 2's codec: columns (codec 1 layout) compressed as one zstd frame. Still read.
pub const CODEC_COLUMNS_ZSTD: u8 = 1;
/// Format 3's codec, the one written: codec 1's columns plus the capture interface index.
pub const CODEC_COLUMNS_IF_ZSTD: u8 = 2;

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

/// Largest uncompressed payload `records` records may have.
pub fn max_raw_len(records: usize) -> usize {
    FIXED_BYTES + records.saturating_mul(MAX_BYTES_PER_RECORD)
}

/// The checks every block passes before its payload is decompressed, record and lease blocks
/// alike: the header parses, the payload is exactly as long as it says, the count and the
/// uncompressed length are within what a block of `what` may hold (so nothing later allocates
/// by an unchecked claim), and the checksum matches. Returns the header and the payload.
pub(crate) fn checked_block<'b>(
    block: &'b [u8],
    max_count: usize,
    max_raw_len: fn(usize) -> usize,
    what: &str,
) -> Result<(BlockHeader, &'b [u8]), BlockError> {
    let h = BlockHeader::parse(block)?;
    let payload = block.get(BLOCK_HEADER_LEN..).unwrap_or_default();
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
    let count = h.records as usize;
    if count > max_count {
        return Err(berr(
            4,
            format!("{count} {what}, more than the {max_count} a block may hold"),
        ));
    }
    let raw_len = h.raw_len as usize;
    if raw_len > max_raw_len(count) {
        return Err(berr(
            8,
            format!("uncompressed length {raw_len} is too large for {count} {what}"),
        ));
    }
    let crc = h.checksum(payload);
    if crc != h.crc32c {
        return Err(berr(
            16,
            format!(
                "block checksum mismatch: stored {:#010x}, computed {crc:#010x}",
                h.crc32c
            ),
        ));
    }
    Ok((h, payload))
}

/// The 20-byte header in front of every block's compressed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub payload_len: u32,
    pub records: u32,
    pub raw_len: u32,
    pub codec: u8,
    /// crc32c of header bytes 0..16 followed by the payload.
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
        if h[13..16] != [0, 0, 0] {
            return Err(berr(13, "reserved block header bytes are not zero"));
        }
        Ok(BlockHeader {
            payload_len: le_u32(h, 0),
            records: le_u32(h, 4),
            raw_len: le_u32(h, 8),
            codec: h[12],
            crc32c: le_u32(h, 16),
        })
    }

    /// The first 16 bytes; the checksum covers them and the payload.
    pub(crate) fn prefix(&self) -> [u8; 16] {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&self.payload_len.to_le_bytes());
        h[4..8].copy_from_slice(&self.records.to_le_bytes());
        h[8..12].copy_from_slice(&self.raw_len.to_le_bytes());
        h[12] = self.codec;
        h
    }

    pub(crate) fn checksum(&self, payload: &[u8]) -> u32 {
        crc32c::crc32c_append(crc32c::crc32c(&self.prefix()), payload)
    }
}

/// Callers pass slices whose length was checked, so the conversion cannot fail; a zero value
/// instead of a panic keeps that true even if a caller is wrong.
fn le_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// Accumulates records for one block and encodes them; the buffers are reused from block to
/// block so that appending a record does not allocate.
pub struct BlockEncoder {
    cctx: zstd::bulk::Compressor<'static>,
    codec: u8,
    columns: ColumnEncoder,
    pending: Vec<FlowRecord>,
    min_first: Nanos,
    max_last: Nanos,
    raw: Vec<u8>,
    payload: Vec<u8>,
    out: Vec<u8>,
    filter: Vec<u8>,
}

/// What the segment footer needs to know about a finished block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSummary<'a> {
    pub records: u32,
    pub min_first: Nanos,
    pub max_last: Nanos,
    /// Bloom filter over the block's distinct source and destination addresses
    /// ([`super::summary`]); empty for an empty block.
    pub filter: &'a [u8],
    pub filter_hashes: u8,
}

impl BlockEncoder {
    pub fn new(zstd_level: i32) -> Result<BlockEncoder, BlockError> {
        let cctx = zstd::bulk::Compressor::new(zstd_level)
            .map_err(|e| berr(0, format!("zstd level {zstd_level}: {e}")))?;
        Ok(BlockEncoder {
            cctx,
            codec: CODEC_COLUMNS_IF_ZSTD,
            columns: ColumnEncoder::new(),
            pending: Vec::new(),
            min_first: Nanos::MAX,
            max_last: Nanos::MIN,
            raw: Vec::new(),
            payload: Vec::new(),
            out: Vec::new(),
            filter: Vec::new(),
        })
    }

    pub fn push(&mut self, rec: &FlowRecord) {
        self.pending.push(rec.clone());
        self.min_first = self.min_first.min(rec.first);
        self.max_last = self.max_last.max(rec.last);
    }

    pub fn records(&self) -> usize {
        self.pending.len()
    }

    /// Memory held by the pending records. Records are kept as they are until the block is
    /// finished (columns need them all), so this is what a block costs before it is written.
    pub fn raw_len(&self) -> usize {
        self.pending.len() * std::mem::size_of::<FlowRecord>()
    }

    /// Encodes the pending records into a block (header + payload) and starts a new block. The
    /// returned slices live until the next call.
    pub fn finish(&mut self) -> Result<(&[u8], BlockSummary<'_>), BlockError> {
        let records = self.pending.len();
        if records > MAX_BLOCK_RECORDS {
            return Err(berr(
                0,
                format!("{records} records, more than the {MAX_BLOCK_RECORDS} a block may hold"),
            ));
        }
        self.raw.clear();
        let hashes = self.columns.encode(
            &self.pending,
            self.codec == CODEC_COLUMNS_IF_ZSTD,
            &mut self.raw,
            &mut self.filter,
        );
        self.payload.clear();
        self.payload
            .reserve(zstd::zstd_safe::compress_bound(self.raw.len()));
        self.cctx
            .compress_to_buffer(&self.raw[..], &mut self.payload)
            .map_err(|e| berr(BLOCK_HEADER_LEN, format!("zstd compression failed: {e}")))?;
        // MAX_BLOCK_RECORDS bounds the raw length (max_raw_len) and so the compressed length,
        // well inside u32.
        let mut header = BlockHeader {
            payload_len: self.payload.len() as u32,
            records: records as u32,
            raw_len: self.raw.len() as u32,
            codec: self.codec,
            crc32c: 0,
        };
        header.crc32c = header.checksum(&self.payload);
        self.out.clear();
        self.out.extend_from_slice(&header.prefix());
        self.out.extend_from_slice(&header.crc32c.to_le_bytes());
        self.out.extend_from_slice(&self.payload);
        let summary = BlockSummary {
            records: records as u32,
            min_first: self.min_first,
            max_last: self.max_last,
            filter: &self.filter,
            filter_hashes: hashes,
        };
        self.pending.clear();
        self.min_first = Nanos::MAX;
        self.max_last = Nanos::MIN;
        Ok((&self.out[..], summary))
    }
}

/// Decompresses and decodes blocks, reusing its buffers from block to block.
pub struct BlockDecoder {
    dctx: zstd::bulk::Decompressor<'static>,
    raw: Vec<u8>,
    columns: ColumnDecoder,
}

impl BlockDecoder {
    pub fn new() -> Result<BlockDecoder, BlockError> {
        let dctx = zstd::bulk::Decompressor::new()
            .map_err(|e| berr(0, format!("zstd decompressor: {e}")))?;
        Ok(BlockDecoder {
            dctx,
            raw: Vec::new(),
            columns: ColumnDecoder::new(),
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
        let (h, payload) = checked_block(block, MAX_BLOCK_RECORDS, max_raw_len, "records")?;
        let (records, raw_len) = (h.records as usize, h.raw_len as usize);
        if h.codec != CODEC_COLUMNS_ZSTD && h.codec != CODEC_COLUMNS_IF_ZSTD {
            return Err(berr(
                12,
                format!(
                    "unknown block codec {} (this flowkeep reads codecs {CODEC_COLUMNS_ZSTD} and \
                     {CODEC_COLUMNS_IF_ZSTD}); written by a newer flowkeep? upgrade flowkeep",
                    h.codec
                ),
            ));
        }
        self.raw.clear();
        // Bounded by max_raw_len(MAX_BLOCK_RECORDS), never by an unchecked claim.
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
        let with_interface = h.codec == CODEC_COLUMNS_IF_ZSTD;
        if let Err(reason) = self.columns.decode(&self.raw, records, with_interface, out) {
            out.clear();
            return Err(berr(BLOCK_HEADER_LEN, reason));
        }
        Ok(())
    }
}

/// Encodes `records` as one block (header + compressed columns) at the default zstd level.
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

/// A block as format 2 wrote it (codec 1, no interface column): for tests that old segments
/// still read.
#[cfg(test)]
pub(crate) fn encode_block_codec1(records: &[FlowRecord]) -> Result<Vec<u8>, BlockError> {
    let mut enc = BlockEncoder::new(DEFAULT_ZSTD_LEVEL)?;
    enc.codec = CODEC_COLUMNS_ZSTD;
    for r in records {
        enc.push(r);
    }
    let (bytes, _) = enc.finish()?;
    Ok(bytes.to_vec())
}

/// Checks and decodes one whole block as produced by [`encode_block`]. Records come back sorted
/// by `first` (ties in the order they were pushed).
pub fn decode_block(block: &[u8]) -> Result<Vec<FlowRecord>, BlockError> {
    let mut out = Vec::new();
    BlockDecoder::new()?.decode_into(block, &mut out)?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::EndReason;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
            interface: 0,
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

    /// What a block gives back: the records sorted by `first`, ties in push order.
    pub fn block_order(recs: &[FlowRecord]) -> Vec<FlowRecord> {
        let mut v = recs.to_vec();
        v.sort_by_key(|r| r.first);
        v
    }

    fn arb_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
            any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            // v4-mapped v6 must stay v6, not turn into v4
            any::<[u8; 4]>().prop_map(|b| IpAddr::V6(Ipv4Addr::from(b).to_ipv6_mapped())),
            // a few repeated addresses, so dictionaries have shared entries
            (0u8..3).prop_map(|i| IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))),
            (0u16..3).prop_map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))),
        ]
    }

    fn arb_mac() -> impl Strategy<Value = Option<[u8; 6]>> {
        prop_oneof![
            Just(None),
            any::<[u8; 6]>().prop_map(Some),
            // repeated MACs, as on a mirror port
            (0u8..3).prop_map(|i| Some([0, 0x1b, 0x21, 0, 0, i])),
        ]
    }

    fn arb_u64() -> impl Strategy<Value = u64> {
        prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>(), 0u64..300]
    }

    fn arb_i64() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(0i64),
            any::<i64>(),
            // realistic µs-resolution times, so the time unit is above 1 ns
            (0i64..1_000_000).prop_map(|us| 1_767_225_600_000_000_000 + us * 1000),
        ]
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
            (any::<u16>(), any::<u16>(), arb_mac(), arb_mac()),
            (arb_u64(), arb_u64(), arb_u64(), arb_u64()),
            (any::<u8>(), any::<u8>(), 0u8..5, any::<u16>()),
        )
            .prop_map(
                |(
                    (first, last, proto, src, dst, sport, dport),
                    (vlan, inner_vlan, src_mac, dst_mac),
                    (packets, bytes, rev_packets, rev_bytes),
                    (tcp_flags, rev_tcp_flags, end, interface),
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
                    interface,
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

    /// A realistic-looking block: µs times, a few hosts and MACs, mostly IPv4.
    pub fn realistic(n: usize) -> Vec<FlowRecord> {
        (0..n as u64)
            .map(|i| {
                let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
                let first = 1_767_225_600_000_000_000 + (i * 7_000 + h % 5_000) as i64 * 1000;
                FlowRecord {
                    first,
                    last: first + (h % 30_000_000) as i64 * 1000,
                    src: if h % 7 == 0 {
                        IpAddr::V6(Ipv6Addr::new(
                            0x2001,
                            0xdb8,
                            0,
                            0,
                            0,
                            0,
                            0,
                            (h % 500) as u16,
                        ))
                    } else {
                        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (h % 2000) as u32))
                    },
                    dst: IpAddr::V4(Ipv4Addr::from(0xc633_6400 + (h % 300) as u32)),
                    sport: 1024 + (h % 60_000) as u16,
                    dport: [443, 80, 53, 443, 8080][(h % 5) as usize],
                    vlan: if h % 10 == 0 { 100 } else { 0 },
                    packets: 1 + h % 40,
                    bytes: 60 + h % 60_000,
                    rev_packets: h % 50,
                    rev_bytes: h % 80_000,
                    src_mac: Some([0, 0x1b, 0x21, 0, 0, (h % 4) as u8]),
                    ..sample(i)
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn block_round_trip(recs in proptest::collection::vec(arb_record(), 0..200)) {
            let block = encode_block(&recs).unwrap();
            let decoded = decode_block(&block).unwrap();
            prop_assert_eq!(&decoded, &block_order(&recs));
            // The filter the writer stores is the one recovery rebuilds from decoded records,
            // and it holds every address.
            let mut enc = BlockEncoder::new(3).unwrap();
            for r in &recs {
                enc.push(r);
            }
            let (_, s) = enc.finish().unwrap();
            let mut rebuilt = Vec::new();
            let k = super::super::summary::build_for_records(&decoded, &mut rebuilt);
            prop_assert_eq!((&rebuilt[..], k), (s.filter, s.filter_hashes));
            for r in &recs {
                for a in [&r.src, &r.dst] {
                    let key = super::super::summary::addr_key(a);
                    prop_assert!(super::super::summary::may_contain(s.filter, k, &key));
                }
            }
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
            // A flipped bit must be caught: the header fields cross-check and the CRC covers the
            // header and the payload.
            prop_assert!(decode_block(&block).is_err());
            let c = cut.index(block.len());
            prop_assert!(decode_block(&block[..c]).is_err());
        }

        /// Behind a valid checksum (a writer bug, or a forged block), damaged columns are still
        /// refused or decoded, never a panic or an allocation sized by the damage.
        #[test]
        fn column_decoder_survives_damaged_columns(
            recs in proptest::collection::vec(arb_record(), 1..40),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
            extra in 0usize..3,
        ) {
            let mut raw = Vec::new();
            let mut filter = Vec::new();
            ColumnEncoder::new().encode(&recs, true, &mut raw, &mut filter);
            let mut out = Vec::new();
            for (at, x) in flips {
                let i = at.index(raw.len());
                raw[i] ^= x | 1;
            }
            for with_interface in [true, false] {
                let _ = columns::decode(&raw, recs.len(), with_interface, &mut out);
                let _ = columns::decode(&raw, recs.len() + extra, with_interface, &mut out);
            }
            let c = cut.index(raw.len());
            out.clear();
            prop_assert!(columns::decode(&raw[..c], recs.len(), true, &mut out).is_err());
        }
    }

    #[test]
    fn every_byte_flip_and_truncation_is_refused() {
        let recs = realistic(300);
        let good = encode_block(&recs).unwrap();
        assert_eq!(decode_block(&good).unwrap(), block_order(&recs));
        for at in 0..good.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[at] ^= x;
                assert!(decode_block(&bad).is_err(), "flip {x:#x} at {at}");
            }
        }
        for cut in 0..good.len() {
            assert!(decode_block(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(decode_block(&longer).is_err());
    }

    #[test]
    fn one_and_most_records() {
        let one = [sample(1)];
        assert_eq!(decode_block(&encode_block(&one).unwrap()).unwrap(), one);
        let most = realistic(MAX_BLOCK_RECORDS);
        let block = encode_block(&most).unwrap();
        assert_eq!(decode_block(&block).unwrap(), block_order(&most));
        let too_many = realistic(MAX_BLOCK_RECORDS + 1);
        assert!(encode_block(&too_many).is_err());
        assert!(decode_block(&encode_block(&[]).unwrap())
            .unwrap()
            .is_empty());
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
                first: if i % 2 == 0 { i64::MIN } else { i64::MAX },
                last: if i % 2 == 0 { i64::MAX } else { i64::MIN },
                src_mac: None,
                src: "2001:db8::1".parse().unwrap(),
                ..sample(i as u64)
            })
            .collect();
        assert_eq!(
            decode_block(&encode_block(&recs).unwrap()).unwrap(),
            block_order(&recs)
        );
    }

    #[test]
    fn interfaces_round_trip_and_format_2_blocks_read_as_interface_0() {
        let recs: Vec<FlowRecord> = (0..600u64)
            .map(|i| FlowRecord {
                interface: [0, 1, 2, 300, u16::MAX][(i % 5) as usize],
                ..sample(i)
            })
            .collect();
        let block = encode_block(&recs).unwrap();
        assert_eq!(block[12], CODEC_COLUMNS_IF_ZSTD);
        assert_eq!(decode_block(&block).unwrap(), block_order(&recs));
        let old = encode_block_codec1(&recs).unwrap();
        assert_eq!(old[12], CODEC_COLUMNS_ZSTD);
        let expect: Vec<FlowRecord> = block_order(&recs)
            .into_iter()
            .map(|r| FlowRecord { interface: 0, ..r })
            .collect();
        assert_eq!(decode_block(&old).unwrap(), expect);
        // A codec byte that does not match the columns is damage, not a silent misreading.
        for (mut b, codec) in [(block, CODEC_COLUMNS_ZSTD), (old, CODEC_COLUMNS_IF_ZSTD)] {
            b[12] = codec;
            let mut h = BlockHeader::parse(&b).unwrap();
            h.crc32c = h.checksum(&b[BLOCK_HEADER_LEN..]);
            b[16..20].copy_from_slice(&h.crc32c.to_le_bytes());
            assert!(decode_block(&b).is_err());
        }
    }

    #[test]
    fn unknown_codec_is_refused_clearly() {
        let mut block = encode_block(&[sample(0)]).unwrap();
        block[12] = 7;
        let mut h = BlockHeader::parse(&block).unwrap();
        h.crc32c = h.checksum(&block[BLOCK_HEADER_LEN..]);
        block[16..20].copy_from_slice(&h.crc32c.to_le_bytes());
        let e = decode_block(&block).unwrap_err();
        assert!(e.reason.contains("unknown block codec 7"), "{e}");
        assert_eq!(e.offset, 12);
    }

    #[test]
    fn oversized_claims_are_refused_without_allocating() {
        let mut block = encode_block(&[sample(0)]).unwrap();
        block[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        block[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = decode_block(&block).unwrap_err();
        assert!(e.reason.contains("more than"), "{e}");
        let mut block = encode_block(&[sample(0)]).unwrap();
        block[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = decode_block(&block).unwrap_err();
        assert!(e.reason.contains("too large"), "{e}");
    }

    #[test]
    fn times_use_the_coarsest_exact_unit() {
        // µs-resolution times are stored in µs; one odd nanosecond forces ns, still exact.
        let mut recs = realistic(100);
        let a = encode_block(&recs).unwrap();
        recs[50].last += 1;
        let b = encode_block(&recs).unwrap();
        assert_eq!(decode_block(&b).unwrap(), block_order(&recs));
        assert!(a.len() < b.len(), "{} vs {}", a.len(), b.len());
    }

    #[test]
    fn filter_covers_every_address() {
        let recs = realistic(5000);
        let mut enc = BlockEncoder::new(3).unwrap();
        for r in &recs {
            enc.push(r);
        }
        let (_, s) = enc.finish().unwrap();
        // Recovery rebuilds the same filter from the decoded records.
        let mut rebuilt = Vec::new();
        let k = super::super::summary::build_for_records(&recs, &mut rebuilt);
        assert_eq!((&rebuilt[..], k), (s.filter, s.filter_hashes));
        for r in &recs {
            for a in [&r.src, &r.dst] {
                let k = super::super::summary::addr_key(a);
                assert!(super::super::summary::may_contain(
                    s.filter,
                    s.filter_hashes,
                    &k
                ));
            }
        }
        let absent = (0..1000u32)
            .filter(|i| {
                let k =
                    super::super::summary::addr_key(&IpAddr::V4(Ipv4Addr::from(0x5000_0000 + i)));
                super::super::summary::may_contain(s.filter, s.filter_hashes, &k)
            })
            .count();
        assert!(
            absent < 50,
            "{absent} of 1000 absent addresses pass the filter"
        );
    }
}
