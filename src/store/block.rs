//! Block encoding: a run of records in columns (see `super::columns`), zstd-compressed behind
//! a 20-byte block header that names the codec and checksums the block. The byte layout is
//! specified in `docs/FORMAT.md`; the constants here are that promise.

#[cfg(test)]
use super::columns;
use super::columns::{
    split_columns, ColumnDecoder, ColumnEncoder, ColumnSet, Layout, COLUMNS, FIXED_BYTES,
    MAX_BYTES_PER_RECORD,
};
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
/// Format 3's codec: codec 1's columns plus the capture interface index. Still read.
pub const CODEC_COLUMNS_IF_ZSTD: u8 = 2;
/// Format 4's codec, the one written: codec 2's columns, each compressed on its own (or kept
/// as is where zstd saves too little), behind a directory of their lengths, so that a reader
/// decompresses only the columns it needs.
pub const CODEC_COLUMNS_SPLIT: u8 = 4;
/// The column layout of a record-block codec (the codec itself is checked when a block is
/// opened).
fn layout_of(codec: u8) -> Layout {
    match codec {
        CODEC_COLUMNS_ZSTD => Layout::Codec1,
        CODEC_COLUMNS_IF_ZSTD => Layout::Codec2,
        _ => Layout::Codec4,
    }
}

/// Bytes of a codec-4 directory entry: stored length, column length.
const DIR_ENTRY_LEN: usize = 8;
/// Bytes of a codec-4 directory.
pub const DIR_LEN: usize = COLUMNS * DIR_ENTRY_LEN;

/// What is wrong with a block; `offset` counts from the start of the block (its header), so the
/// segment reader can add the block's file offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at block byte {offset}: {reason}")]
pub struct BlockError {
    pub offset: u64,
    pub reason: String,
}

/// A block error at `offset` within the block (records and lease blocks alike).
pub(crate) fn berr(offset: usize, reason: impl Into<String>) -> BlockError {
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
    /// One column's zstd frame, before it is known whether it is worth keeping.
    frame: Vec<u8>,
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
            codec: CODEC_COLUMNS_SPLIT,
            columns: ColumnEncoder::new(),
            pending: Vec::new(),
            min_first: Nanos::MAX,
            max_last: Nanos::MIN,
            raw: Vec::new(),
            frame: Vec::new(),
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
            layout_of(self.codec),
            &mut self.raw,
            &mut self.filter,
        );
        self.payload.clear();
        if self.codec == CODEC_COLUMNS_SPLIT {
            self.split_payload()?;
        } else {
            self.payload
                .reserve(zstd::zstd_safe::compress_bound(self.raw.len()));
            self.cctx
                .compress_to_buffer(&self.raw[..], &mut self.payload)
                .map_err(|e| berr(BLOCK_HEADER_LEN, format!("zstd compression failed: {e}")))?;
        }
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

/// Decompresses and decodes blocks, reusing its buffers from block to block. A block is
/// [opened](BlockDecoder::open) (checked whole, checksum included), then its columns are
/// [loaded](BlockDecoder::load) as needed and read through [`BlockDecoder::columns`].
pub struct BlockDecoder {
    dctx: zstd::bulk::Decompressor<'static>,
    codec: u8,
    /// Codecs 1 and 2: the whole column data, decompressed by `open`.
    raw: Vec<u8>,
    /// Codecs 1 and 2: each column's place in `raw`. Codec 4: its body's place in the block,
    /// and its length once decompressed.
    spans: [(usize, usize, usize); COLUMNS],
    /// Codec 4: the columns that were compressed, once decompressed.
    bufs: [Vec<u8>; COLUMNS],
    columns: ColumnDecoder,
}

impl BlockDecoder {
    pub fn new() -> Result<BlockDecoder, BlockError> {
        let dctx = zstd::bulk::Decompressor::new()
            .map_err(|e| berr(0, format!("zstd decompressor: {e}")))?;
        Ok(BlockDecoder {
            dctx,
            codec: 0,
            raw: Vec::new(),
            spans: [(0, 0, 0); COLUMNS],
            bufs: Default::default(),
            columns: ColumnDecoder::new(),
        })
    }

    /// Checks a whole block (header + payload, nothing after): header, lengths, checksum,
    /// codec, and the column directory or (codecs 1 and 2) the decompressed column data.
    /// Returns its record count; no column is loaded yet.
    pub fn open(&mut self, block: &[u8]) -> Result<usize, BlockError> {
        self.columns.reset(0);
        let (h, payload) = checked_block(block, MAX_BLOCK_RECORDS, max_raw_len, "records")?;
        let (records, raw_len) = (h.records as usize, h.raw_len as usize);
        self.codec = h.codec;
        match h.codec {
            CODEC_COLUMNS_ZSTD | CODEC_COLUMNS_IF_ZSTD => {
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
                let cols = split_columns(&self.raw, layout_of(h.codec))
                    .map_err(|e| berr(BLOCK_HEADER_LEN, e.to_string()))?;
                let base = self.raw.as_ptr() as usize;
                for (span, col) in self.spans.iter_mut().zip(cols) {
                    // Each column is a subslice of `raw`: its place is its distance from the start.
                    let at = (col.as_ptr() as usize).wrapping_sub(base);
                    *span = (at, col.len(), col.len());
                }
            }
            CODEC_COLUMNS_SPLIT => self.read_directory(payload, raw_len)?,
            other => {
                return Err(berr(
                    12,
                    format!(
                        "unknown block codec {other} (this flowkeep reads codecs \
                         {CODEC_COLUMNS_ZSTD}, {CODEC_COLUMNS_IF_ZSTD} and {CODEC_COLUMNS_SPLIT}); \
                         written by a newer flowkeep? upgrade flowkeep"
                    ),
                ))
            }
        }
        self.columns.reset(records);
        Ok(records)
    }

    /// Codec 4: the directory's lengths, checked against the payload and the header, into
    /// `spans` (offsets from the block's start).
    fn read_directory(&mut self, payload: &[u8], raw_len: usize) -> Result<(), BlockError> {
        let dir = payload.get(..DIR_LEN).ok_or_else(|| {
            berr(
                BLOCK_HEADER_LEN,
                format!("payload of {} bytes has no column directory", payload.len()),
            )
        })?;
        let mut at = BLOCK_HEADER_LEN + DIR_LEN;
        let mut total = 0usize;
        for (i, (span, e)) in self
            .spans
            .iter_mut()
            .zip(dir.chunks_exact(DIR_ENTRY_LEN))
            .enumerate()
        {
            let (stored, len) = (le_u32(e, 0) as usize, le_u32(e, 4) as usize);
            let entry = BLOCK_HEADER_LEN + i * DIR_ENTRY_LEN;
            if stored > len {
                return Err(berr(
                    entry,
                    format!("column {i}: {stored} bytes stored for a column of {len}"),
                ));
            }
            *span = (at, stored, len);
            at = at.saturating_add(stored);
            total = total.saturating_add(4 + len);
        }
        if at != BLOCK_HEADER_LEN + payload.len() {
            return Err(berr(
                BLOCK_HEADER_LEN,
                format!(
                    "column directory accounts for {} payload bytes, the payload has {}",
                    at - BLOCK_HEADER_LEN,
                    payload.len()
                ),
            ));
        }
        if total != raw_len {
            return Err(berr(
                BLOCK_HEADER_LEN,
                format!("columns add up to {total} bytes of column data, header says {raw_len}"),
            ));
        }
        Ok(())
    }

    /// Loads the columns of `want` (and the flags) of the block last opened, which `block`
    /// must be: codec 4 decompresses just those columns. On error the block must be dropped
    /// whole.
    pub fn load(&mut self, block: &[u8], want: ColumnSet) -> Result<(), BlockError> {
        let todo = want.union(ColumnSet::FLAGS);
        if self.columns.loaded().contains(todo) {
            return Ok(());
        }
        let mut cols: [&[u8]; COLUMNS] = [&[]; COLUMNS];
        if self.codec == CODEC_COLUMNS_SPLIT {
            for (i, &(at, stored, len)) in self.spans.iter().enumerate() {
                // A column set asks for pairs of columns read together (times, addresses,
                // counters); loading the other of a pair early is harmless.
                if !todo.has(i) || self.columns.loaded().has(i) || stored == len {
                    continue;
                }
                let body = block.get(at..at + stored).unwrap_or_default();
                let buf = &mut self.bufs[i];
                buf.clear();
                // Bounded: the lengths add up to the header's, itself bounded by max_raw_len.
                buf.reserve(len);
                let n = self
                    .dctx
                    .decompress_to_buffer(body, buf)
                    .map_err(|e| berr(at, format!("column {i}: zstd: {e}")))?;
                if n != len {
                    return Err(berr(
                        at,
                        format!("column {i} decompresses to {n} bytes, directory says {len}"),
                    ));
                }
            }
            for (i, (col, &(at, stored, len))) in cols.iter_mut().zip(&self.spans).enumerate() {
                *col = if stored == len {
                    block.get(at..at + len).unwrap_or_default()
                } else {
                    &self.bufs[i]
                };
            }
        } else {
            for (col, &(at, len, _)) in cols.iter_mut().zip(&self.spans) {
                *col = self.raw.get(at..at + len).unwrap_or_default();
            }
        }
        self.columns
            .load(&cols, todo, layout_of(self.codec))
            .map_err(|reason| berr(BLOCK_HEADER_LEN, reason.to_string()))
    }

    /// The opened block's columns, as far as they are loaded.
    pub fn columns(&self) -> &ColumnDecoder {
        &self.columns
    }

    /// Checks and decodes a whole block (header + payload, nothing after), replacing the contents
    /// of `out`. On error `out` is left empty: a block is used whole or not at all.
    pub fn decode_into(
        &mut self,
        block: &[u8],
        out: &mut Vec<FlowRecord>,
    ) -> Result<(), BlockError> {
        out.clear();
        let n = self.open(block)?;
        self.load(block, ColumnSet::ALL)?;
        self.columns.assemble(0..n, out);
        Ok(())
    }
}

impl BlockEncoder {
    /// Codec 4's payload from the column data in `raw`: the directory, then each column as a
    /// zstd frame, or as is when the frame would not save an eighth of it. Columns that zstd
    /// barely shrinks (ports, durations of a busy link) then cost a reader nothing to unpack.
    fn split_payload(&mut self) -> Result<(), BlockError> {
        let cols = split_columns(&self.raw, Layout::Codec4)
            .map_err(|e| berr(BLOCK_HEADER_LEN, format!("column data: {e}")))?;
        self.payload.resize(DIR_LEN, 0);
        for (i, col) in cols.iter().enumerate() {
            let at = self.payload.len();
            self.frame.clear();
            self.frame
                .reserve(zstd::zstd_safe::compress_bound(col.len()));
            if !col.is_empty() {
                self.cctx
                    .compress_to_buffer(col, &mut self.frame)
                    .map_err(|e| berr(BLOCK_HEADER_LEN, format!("zstd compression failed: {e}")))?;
            }
            if !col.is_empty() && self.frame.len() <= col.len() - col.len() / 8 {
                self.payload.extend_from_slice(&self.frame);
            } else {
                self.payload.extend_from_slice(col);
            }
            // Column lengths are bounded by max_raw_len(MAX_BLOCK_RECORDS), well inside u32.
            let stored = (self.payload.len() - at) as u32;
            let entry = i * DIR_ENTRY_LEN;
            if let Some(e) = self.payload.get_mut(entry..entry + DIR_ENTRY_LEN) {
                e[..4].copy_from_slice(&stored.to_le_bytes());
                e[4..].copy_from_slice(&(col.len() as u32).to_le_bytes());
            }
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
    encode_block_as(records, CODEC_COLUMNS_ZSTD)
}

/// A block in an older codec (1: format 2; 2: format 3), for tests that old segments still
/// read.
#[cfg(test)]
pub(crate) fn encode_block_as(records: &[FlowRecord], codec: u8) -> Result<Vec<u8>, BlockError> {
    let mut enc = BlockEncoder::new(DEFAULT_ZSTD_LEVEL)?;
    enc.codec = codec;
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
    use crate::testing::{arb_record, block_order, sample};
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
            let k = super::super::address_filter::build_for_records(&decoded, &mut rebuilt);
            prop_assert_eq!((&rebuilt[..], k), (s.filter, s.filter_hashes));
            for r in &recs {
                for a in [&r.src, &r.dst] {
                    let key = super::super::address_filter::addr_key(a);
                    prop_assert!(super::super::address_filter::may_contain(s.filter, k, &key));
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
            const LAYOUTS: [Layout; 3] = [Layout::Codec1, Layout::Codec2, Layout::Codec4];
            for written in LAYOUTS {
                let mut raw = Vec::new();
                let mut filter = Vec::new();
                ColumnEncoder::new().encode(&recs, written, &mut raw, &mut filter);
                let mut out = Vec::new();
                prop_assert!(columns::decode(&raw, recs.len(), written, &mut out).is_ok());
                for &(at, x) in &flips {
                    let i = at.index(raw.len());
                    raw[i] ^= x | 1;
                }
                for read in LAYOUTS {
                    let _ = columns::decode(&raw, recs.len(), read, &mut out);
                    let _ = columns::decode(&raw, recs.len() + extra, read, &mut out);
                }
                let c = cut.index(raw.len());
                out.clear();
                prop_assert!(columns::decode(&raw[..c], recs.len(), written, &mut out).is_err());
            }
        }

        /// A codec-4 payload damaged behind a valid checksum (directory lengths, stored or
        /// compressed column bytes): refused or decoded, never a panic, whichever columns are
        /// loaded first.
        #[test]
        fn split_payload_survives_damage(
            recs in proptest::collection::vec(arb_record(), 1..40),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut block = encode_block(&recs).unwrap();
            prop_assert_eq!(block[12], CODEC_COLUMNS_SPLIT);
            for (at, x) in flips {
                let i = BLOCK_HEADER_LEN + at.index(block.len() - BLOCK_HEADER_LEN);
                block[i] ^= x | 1;
            }
            let mut h = BlockHeader::parse(&block).unwrap();
            h.crc32c = h.checksum(&block[BLOCK_HEADER_LEN..]);
            block[16..20].copy_from_slice(&h.crc32c.to_le_bytes());
            let mut d = BlockDecoder::new().unwrap();
            for first in [ColumnSet::ADDRS, ColumnSet::TIMES | ColumnSet::BYTES, ColumnSet::END] {
                if d.open(&block).is_ok() && d.load(&block, first).is_ok() {
                    let n = d.columns().records() as u32;
                    let rows: Vec<u32> = (0..n).collect();
                    d.columns().assemble_rows(&rows, &mut Vec::new());
                    let _ = d.load(&block, ColumnSet::ALL);
                }
            }
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
        assert_eq!(block[12], CODEC_COLUMNS_SPLIT);
        assert_eq!(decode_block(&block).unwrap(), block_order(&recs));
        // Format 3's single frame, same columns: the same records.
        let format3 = encode_block_as(&recs, CODEC_COLUMNS_IF_ZSTD).unwrap();
        assert_eq!(format3[12], CODEC_COLUMNS_IF_ZSTD);
        assert_eq!(decode_block(&format3).unwrap(), block_order(&recs));
        let old = encode_block_codec1(&recs).unwrap();
        assert_eq!(old[12], CODEC_COLUMNS_ZSTD);
        let expect: Vec<FlowRecord> = block_order(&recs)
            .into_iter()
            .map(|r| FlowRecord { interface: 0, ..r })
            .collect();
        assert_eq!(decode_block(&old).unwrap(), expect);
        // A codec byte that does not match the columns is damage, not a silent misreading.
        for (mut b, codec) in [
            (block.clone(), CODEC_COLUMNS_ZSTD),
            (block, CODEC_COLUMNS_IF_ZSTD),
            (format3, CODEC_COLUMNS_SPLIT),
            (old, CODEC_COLUMNS_IF_ZSTD),
        ] {
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
        let k = super::super::address_filter::build_for_records(&recs, &mut rebuilt);
        assert_eq!((&rebuilt[..], k), (s.filter, s.filter_hashes));
        for r in &recs {
            for a in [&r.src, &r.dst] {
                let k = super::super::address_filter::addr_key(a);
                assert!(super::super::address_filter::may_contain(
                    s.filter,
                    s.filter_hashes,
                    &k
                ));
            }
        }
        let absent = (0..1000u32)
            .filter(|i| {
                let k = super::super::address_filter::addr_key(&IpAddr::V4(Ipv4Addr::from(
                    0x5000_0000 + i,
                )));
                super::super::address_filter::may_contain(s.filter, s.filter_hashes, &k)
            })
            .count();
        assert!(
            absent < 50,
            "{absent} of 1000 absent addresses pass the filter"
        );
    }
}
