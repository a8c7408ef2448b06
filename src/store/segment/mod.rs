//! The segment file around the blocks: a fixed header, the blocks back to back, a footer that
//! indexes them, and a fixed trailer that locates the footer. Readers start from the trailer, so a
//! file is usable only once it is sealed. Layout: `docs/FORMAT.md`.

use super::address_filter::{self, MAX_FILTER_BYTES, MAX_HASHES};
use super::block::{BLOCK_HEADER_LEN, MAX_BLOCK_RECORDS};
use super::leases::MAX_BLOCK_LEASES;
pub use super::leases::{KIND_FLOWS, KIND_LEASES};
use super::{StoreError, FORMAT_VERSION, OLDEST_READABLE_VERSION};
use crate::fs;
use crate::time::Nanos;
use std::path::{Path, PathBuf};

pub const SEGMENT_MAGIC: [u8; 8] = *b"FLOWKSEG";
pub const END_MAGIC: [u8; 8] = *b"FKSEGEND";
pub const HEADER_LEN: usize = 64;
/// Totals (32 bytes) and capture statistics (80 bytes).
pub const FOOTER_FIXED_LEN: usize = 32 + CAPTURE_STATS_LEN;
pub const CAPTURE_STATS_LEN: usize = 80;
pub const INDEX_ENTRY_LEN: usize = 40;
pub const TRAILER_LEN: usize = 24;
/// Segment file extension, and the temporary name's suffix while it is being written.
pub const SEGMENT_EXT: &str = ".fks";
pub const TEMP_SUFFIX: &str = ".fks.tmp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub version: u16,
    pub writer_id: u32,
    pub partition_start: Nanos,
    pub partition_end: Nanos,
    pub sequence: u32,
    pub zstd_level: i32,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&SEGMENT_MAGIC);
        h[8..10].copy_from_slice(&self.version.to_le_bytes());
        h[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        h[12..16].copy_from_slice(&self.writer_id.to_le_bytes());
        h[16..24].copy_from_slice(&self.partition_start.to_le_bytes());
        h[24..32].copy_from_slice(&self.partition_end.to_le_bytes());
        h[32..36].copy_from_slice(&self.sequence.to_le_bytes());
        h[36..40].copy_from_slice(&self.zstd_level.to_le_bytes());
        let crc = crc32c::crc32c(&h[..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        h
    }

    pub fn parse(path: &Path, buf: &[u8]) -> Result<SegmentHeader, StoreError> {
        let h = buf.get(..HEADER_LEN).ok_or_else(|| {
            StoreError::corrupt(
                path,
                0,
                format!("{} bytes, shorter than a segment header", buf.len()),
            )
        })?;
        if h[0..8] != SEGMENT_MAGIC {
            return Err(StoreError::corrupt(
                path,
                0,
                "not a flowkeep segment (bad magic)",
            ));
        }
        let version = u16::from_le_bytes([h[8], h[9]]);
        if u32::from(version) > FORMAT_VERSION {
            return Err(StoreError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version.into(),
                supported: FORMAT_VERSION,
            });
        }
        if version == 0 {
            return Err(StoreError::corrupt(path, 8, "segment format version 0"));
        }
        if u32::from(version) < OLDEST_READABLE_VERSION {
            return Err(StoreError::OldVersion {
                path: path.to_path_buf(),
                found: version.into(),
            });
        }
        let header_len = u16::from_le_bytes([h[10], h[11]]);
        if usize::from(header_len) != HEADER_LEN {
            return Err(StoreError::corrupt(
                path,
                10,
                format!("header length {header_len}, format {version} has {HEADER_LEN}"),
            ));
        }
        let stored = le_u32(h, 60);
        let crc = crc32c::crc32c(&h[..60]);
        if stored != crc {
            return Err(StoreError::corrupt(
                path,
                60,
                format!("header checksum mismatch: stored {stored:#010x}, computed {crc:#010x}"),
            ));
        }
        let hdr = SegmentHeader {
            version,
            writer_id: le_u32(h, 12),
            partition_start: le_u64(h, 16) as i64,
            partition_end: le_u64(h, 24) as i64,
            sequence: le_u32(h, 32),
            zstd_level: le_u32(h, 36) as i32,
        };
        if hdr.partition_start >= hdr.partition_end {
            return Err(StoreError::corrupt(
                path,
                16,
                "partition start is not before its end",
            ));
        }
        Ok(hdr)
    }
}

/// One footer index entry: where a block is and which times it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEntry {
    /// Byte offset of the block header from the start of the file.
    pub offset: u64,
    /// Block header + compressed payload.
    pub len: u32,
    pub records: u32,
    pub min_first: Nanos,
    pub max_last: Nanos,
    /// Length in bytes of the block's address filter in the footer's filter area (0: none, the
    /// block can never be skipped by address), and its number of probes.
    pub filter_len: u32,
    pub filter_hashes: u8,
    /// What the block holds: [`KIND_FLOWS`] (flow records) or [`KIND_LEASES`] (DHCP lease
    /// observations; `records` counts them, `min_first`/`max_last` are their times).
    pub kind: u8,
}

/// What the capture saw while a segment was open, as counted by the pipeline and handed to
/// [`super::StoreWriter::add_capture_stats`]. Stored in the footer (80 bytes, `docs/FORMAT.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Frames read from the capture.
    pub frames: u64,
    /// Frames with a decodable IP header, and their IP-layer bytes.
    pub ip_packets: u64,
    pub ip_bytes: u64,
    /// Frames that carry no IP packet (ARP, LLDP, ...).
    pub non_ip: u64,
    /// Frames whose headers could not be decoded.
    pub malformed: u64,
    /// Packets the kernel dropped (ring full), as the capture reports them.
    pub kernel_drops: u64,
    /// Packets the interface (driver/NIC) dropped.
    pub interface_drops: u64,
    /// Flows ended early because the flow table was full.
    pub flow_evictions: u64,
    /// Records that could not be stored (disk full, write errors).
    pub records_not_stored: u64,
    /// Bit set, see the `CAPTURE_*` constants; other bits are reserved (zero).
    pub flags: u64,
}

/// `CaptureStats::flags` bit: the capture did not keep MAC addresses.
pub const CAPTURE_MACS_NOT_STORED: u64 = 1;
/// `CaptureStats::flags` bit: the segment is an anonymised rewrite (`anonymize`): its
/// addresses are Crypto-PAn's, its MACs and lease details gone. Never rewritten again.
pub const CAPTURE_ANONYMIZED: u64 = 1 << 1;

/// Adds `other`'s counters (saturating: a counter stuck at `u64::MAX` is still honest) and
/// ORs its flags: a sum of segments kept no MACs if any of them did not.
impl std::ops::AddAssign<&CaptureStats> for CaptureStats {
    #[allow(clippy::suspicious_op_assign_impl)]
    fn add_assign(&mut self, other: &CaptureStats) {
        let theirs = other.counters();
        for (x, y) in self.counters_mut().into_iter().zip(theirs) {
            *x = x.saturating_add(y);
        }
        self.flags |= other.flags;
    }
}

impl CaptureStats {
    fn counters(&self) -> [u64; 9] {
        [
            self.frames,
            self.ip_packets,
            self.ip_bytes,
            self.non_ip,
            self.malformed,
            self.kernel_drops,
            self.interface_drops,
            self.flow_evictions,
            self.records_not_stored,
        ]
    }

    fn counters_mut(&mut self) -> [&mut u64; 9] {
        [
            &mut self.frames,
            &mut self.ip_packets,
            &mut self.ip_bytes,
            &mut self.non_ip,
            &mut self.malformed,
            &mut self.kernel_drops,
            &mut self.interface_drops,
            &mut self.flow_evictions,
            &mut self.records_not_stored,
        ]
    }

    fn encode(&self, out: &mut Vec<u8>) {
        for v in self.counters().into_iter().chain([self.flags]) {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn parse(b: &[u8]) -> CaptureStats {
        let mut s = CaptureStats {
            flags: le_u64(b, 72),
            ..CaptureStats::default()
        };
        for (i, v) in s.counters_mut().into_iter().enumerate() {
            *v = le_u64(b, i * 8);
        }
        s
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentTotals {
    /// Flow records (the blocks of kind flows).
    pub records: u64,
    /// Lease observations (the blocks of kind leases); always 0 in format 2.
    pub leases: u32,
    pub min_first: Nanos,
    pub max_last: Nanos,
}

/// The longest interface name a footer keeps, in bytes (longer names are cut at a character
/// boundary; Linux's own limit is 15).
pub const MAX_INTERFACE_NAME: usize = 255;
/// The most interface names a footer keeps: `FlowRecord::interface` is a u16.
pub const MAX_INTERFACES: usize = u16::MAX as usize;

/// The bytes of `name` a footer keeps: at most [`MAX_INTERFACE_NAME`], whole characters.
fn stored_name(name: &str) -> &[u8] {
    let mut end = name.len().min(MAX_INTERFACE_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.as_bytes().get(..end).unwrap_or_default()
}

/// Bytes the format-3 interface list takes in the footer (`None`: a format-2 footer, none).
pub fn interface_names_len(interfaces: Option<&[String]>) -> u64 {
    interfaces.map_or(0, |names| {
        2 + names
            .iter()
            .take(MAX_INTERFACES)
            .map(|n| 1 + stored_name(n).len() as u64)
            .sum::<u64>()
    })
}

/// Footer then trailer, appended to `out`, for a footer that will start at `footer_offset`.
/// `filters` is the concatenation of the entries' filters, in entry order. `interfaces` names
/// the records' interface indexes (format 3); `None` writes a format-2 footer, for recovering a
/// segment an older writer started.
pub fn encode_footer_and_trailer(
    entries: &[BlockEntry],
    filters: &[u8],
    totals: &SegmentTotals,
    capture: &CaptureStats,
    interfaces: Option<&[String]>,
    footer_offset: u64,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&totals.leases.to_le_bytes());
    out.extend_from_slice(&totals.records.to_le_bytes());
    out.extend_from_slice(&totals.min_first.to_le_bytes());
    out.extend_from_slice(&totals.max_last.to_le_bytes());
    capture.encode(out);
    for e in entries {
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.len.to_le_bytes());
        out.extend_from_slice(&e.records.to_le_bytes());
        out.extend_from_slice(&e.min_first.to_le_bytes());
        out.extend_from_slice(&e.max_last.to_le_bytes());
        out.extend_from_slice(&e.filter_len.to_le_bytes());
        out.extend_from_slice(&[e.filter_hashes, e.kind, 0, 0]);
    }
    out.extend_from_slice(filters);
    if let Some(names) = interfaces {
        let names = names
            .get(..names.len().min(MAX_INTERFACES))
            .unwrap_or_default();
        out.extend_from_slice(&(names.len() as u16).to_le_bytes());
        for n in names {
            let b = stored_name(n);
            out.push(b.len() as u8);
            out.extend_from_slice(b);
        }
    }
    let footer_len = out.len() - start;
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&footer_offset.to_le_bytes());
    out.extend_from_slice(&(footer_len as u32).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&END_MAGIC);
}

/// Bytes `encode_footer_and_trailer` writes for `blocks` index entries. The writer keeps this
/// much room free in a temporary file beyond its last block, so that sealing never needs more
/// disk space than the file already holds. Keep in step with `encode_footer_and_trailer` (a unit
/// test checks).
pub fn footer_and_trailer_len(blocks: usize) -> u64 {
    (FOOTER_FIXED_LEN + TRAILER_LEN) as u64 + (INDEX_ENTRY_LEN as u64).saturating_mul(blocks as u64)
}

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

/// A sealed segment file, mapped, with its header and footer checked.
pub struct SegmentFile {
    pub path: PathBuf,
    pub header: SegmentHeader,
    pub totals: SegmentTotals,
    pub capture: CaptureStats,
    /// Names of the interfaces the records' `interface` indexes refer to, in index order;
    /// empty for format 2 and for segments sealed by crash recovery.
    pub interfaces: Vec<String>,
    pub entries: Vec<BlockEntry>,
    pub file_len: u64,
    /// File offset of each entry's filter (parallel to `entries`).
    filter_at: Vec<usize>,
    map: fs::Mmap,
}

impl SegmentFile {
    pub fn open(path: &Path) -> Result<SegmentFile, StoreError> {
        let file = fs::open(path).map_err(|e| StoreError::io(path, e))?;
        let file_len = fs::file_metadata(&file)
            .map_err(|e| StoreError::io(path, e))?
            .len();
        let min_len = (HEADER_LEN + FOOTER_FIXED_LEN + TRAILER_LEN) as u64;
        if file_len < min_len {
            return Err(StoreError::corrupt(
                path,
                0,
                format!("{file_len} bytes, shorter than the smallest segment ({min_len})"),
            ));
        }
        let map = fs::map_read(&file).map_err(|e| StoreError::io(path, e))?;
        // From here on only the mapping's own length bounds what is read.
        let header = SegmentHeader::parse(path, &map)?;
        let Footer {
            totals,
            capture,
            entries,
            filter_at,
            interfaces,
        } = parse_footer(path, &map, header.version)?;
        Ok(SegmentFile {
            path: path.to_path_buf(),
            header,
            totals,
            capture,
            interfaces,
            entries,
            filter_at,
            file_len: map.len() as u64,
            map,
        })
    }

    /// The bytes of one block (header + payload), as indexed by the footer (whose entries were
    /// checked to lie inside the file).
    pub fn block(&self, e: &BlockEntry) -> Option<&[u8]> {
        let start = usize::try_from(e.offset).ok()?;
        let end = start.checked_add(e.len as usize)?;
        self.map.get(start..end)
    }

    /// Whether block `i` may hold a record with one of these addresses (keys as
    /// [`address_filter::addr_key`] makes them): `false` only when its filter rules all of them out.
    pub fn block_may_contain(&self, i: usize, keys: &[[u8; 16]]) -> bool {
        let (Some(e), Some(&at)) = (self.entries.get(i), self.filter_at.get(i)) else {
            return true;
        };
        let Some(filter) = at
            .checked_add(e.filter_len as usize)
            .and_then(|end| self.map.get(at..end))
        else {
            return true;
        };
        keys.iter()
            .any(|k| address_filter::may_contain(filter, e.filter_hashes, k))
    }

    /// Bytes of the footer's filter area (for size reports).
    pub fn filter_bytes(&self) -> u64 {
        self.entries.iter().map(|e| u64::from(e.filter_len)).sum()
    }
}

/// What [`SegmentFile::open`] checks, over a segment's bytes in memory: the header and the
/// footer with its index. Returns the header and the index entries (whose blocks lie inside
/// `bytes`), for the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) fn parse_bytes(bytes: &[u8]) -> Result<(SegmentHeader, Vec<BlockEntry>), StoreError> {
    let path = Path::new("fuzz.fks");
    if bytes.len() < HEADER_LEN + FOOTER_FIXED_LEN + TRAILER_LEN {
        return Err(StoreError::corrupt(
            path,
            0,
            "shorter than the smallest segment",
        ));
    }
    let header = SegmentHeader::parse(path, bytes)?;
    let footer = parse_footer(path, bytes, header.version)?;
    Ok((header, footer.entries))
}

struct Footer {
    totals: SegmentTotals,
    capture: CaptureStats,
    entries: Vec<BlockEntry>,
    filter_at: Vec<usize>,
    interfaces: Vec<String>,
}

/// The format-3 interface list that fills `b` exactly.
fn parse_interface_names(b: &[u8]) -> Result<Vec<String>, String> {
    let count = match b {
        [lo, hi, ..] => usize::from(u16::from_le_bytes([*lo, *hi])),
        _ => return Err("footer ends before its interface list".into()),
    };
    let mut rest = b.get(2..).unwrap_or_default();
    // Each name takes at least its length byte: the count is backed by bytes in the file.
    if count > rest.len() {
        return Err(format!(
            "interface list claims {count} names in {} bytes",
            rest.len()
        ));
    }
    let mut names = Vec::with_capacity(count);
    for i in 0..count {
        let (len, tail) = rest
            .split_first()
            .ok_or_else(|| format!("interface name {i} is cut off"))?;
        let name = tail
            .get(..usize::from(*len))
            .ok_or_else(|| format!("interface name {i} is cut off"))?;
        let name =
            std::str::from_utf8(name).map_err(|_| format!("interface name {i} is not UTF-8"))?;
        names.push(name.to_string());
        rest = tail.get(usize::from(*len)..).unwrap_or_default();
    }
    if !rest.is_empty() {
        return Err(format!(
            "{} bytes after the interface list at the end of the footer",
            rest.len()
        ));
    }
    Ok(names)
}

fn parse_footer(path: &Path, map: &[u8], version: u16) -> Result<Footer, StoreError> {
    let (footer_offset, footer) = locate_footer(path, map)?;
    let t_off = map.len() - TRAILER_LEN;
    let count = le_u32(footer, 0) as usize;
    let entries_end = (count as u64)
        .checked_mul(INDEX_ENTRY_LEN as u64)
        .and_then(|n| n.checked_add(FOOTER_FIXED_LEN as u64));
    if entries_end.is_none_or(|e| e > footer.len() as u64) {
        return Err(StoreError::corrupt(
            path,
            footer_offset,
            format!(
                "footer of {} bytes cannot hold {count} index entries",
                footer.len()
            ),
        ));
    }
    // Format 2 reserved the lease count's place (zero).
    if version < 3 && le_u32(footer, 4) != 0 {
        return Err(StoreError::corrupt(
            path,
            footer_offset + 4,
            "reserved footer field is not zero",
        ));
    }
    let totals = SegmentTotals {
        leases: le_u32(footer, 4),
        records: le_u64(footer, 8),
        min_first: le_u64(footer, 16) as i64,
        max_last: le_u64(footer, 24) as i64,
    };
    let capture = CaptureStats::parse(footer.get(32..FOOTER_FIXED_LEN).unwrap_or_default());
    let index = parse_index(path, footer, footer_offset, count, version)?;
    let mut next_filter = index.filters_end;
    // Format 3: the interface names fill the rest of the footer.
    let mut interfaces = Vec::new();
    if version >= 3 && next_filter <= t_off {
        let names = map.get(next_filter..t_off).unwrap_or_default();
        interfaces = parse_interface_names(names)
            .map_err(|reason| StoreError::corrupt(path, next_filter as u64, reason))?;
        next_filter = t_off;
    }
    if next_filter != t_off {
        return Err(StoreError::corrupt(
            path,
            footer_offset,
            format!(
                "footer of {} bytes does not hold {count} index entries and their filters",
                footer.len()
            ),
        ));
    }
    if index.records != totals.records
        || index.leases != totals.leases
        || (count > 0 && (index.min_first != totals.min_first || index.max_last != totals.max_last))
    {
        return Err(StoreError::corrupt(
            path,
            footer_offset,
            "segment totals disagree with the block index",
        ));
    }
    Ok(Footer {
        totals,
        capture,
        entries: index.entries,
        filter_at: index.filter_at,
        interfaces,
    })
}

/// The footer as the trailer places it, checked against its checksum and at least as long as
/// its fixed part; and its file offset.
fn locate_footer<'m>(path: &Path, map: &'m [u8]) -> Result<(u64, &'m [u8]), StoreError> {
    let len = map.len();
    let t_off = len
        .checked_sub(TRAILER_LEN)
        .ok_or_else(|| StoreError::corrupt(path, 0, "too short for a trailer"))?;
    let trailer = map
        .get(t_off..)
        .ok_or_else(|| StoreError::corrupt(path, 0, "too short for a trailer"))?;
    if trailer[16..24] != END_MAGIC {
        return Err(StoreError::corrupt(
            path,
            t_off as u64 + 16,
            "no end magic: segment not sealed or truncated",
        ));
    }
    let footer_offset = le_u64(trailer, 0);
    let footer_len = u64::from(le_u32(trailer, 8));
    let footer_crc = le_u32(trailer, 12);
    if footer_offset < HEADER_LEN as u64
        || footer_offset.checked_add(footer_len) != Some(t_off as u64)
    {
        return Err(StoreError::corrupt(
            path,
            t_off as u64,
            format!(
                "footer at {footer_offset} of {footer_len} bytes does not end where the trailer starts ({t_off})"
            ),
        ));
    }
    // Both fit: footer_offset + footer_len == t_off < len.
    let footer = map
        .get(footer_offset as usize..t_off)
        .ok_or_else(|| StoreError::corrupt(path, footer_offset, "footer outside the file"))?;
    let crc = crc32c::crc32c(footer);
    if crc != footer_crc {
        return Err(StoreError::corrupt(
            path,
            footer_offset,
            format!("footer checksum mismatch: stored {footer_crc:#010x}, computed {crc:#010x}"),
        ));
    }
    if footer.len() < FOOTER_FIXED_LEN {
        return Err(StoreError::corrupt(
            path,
            footer_offset,
            "footer shorter than its fixed part",
        ));
    }
    Ok((footer_offset, footer))
}

/// A footer's block index, checked entry by entry, and what its entries add up to.
struct Index {
    entries: Vec<BlockEntry>,
    /// File offset of each entry's filter.
    filter_at: Vec<usize>,
    /// File offset just past the last filter.
    filters_end: usize,
    records: u64,
    leases: u32,
    min_first: Nanos,
    max_last: Nanos,
}

/// Reads the `count` index entries of `footer` (at file offset `footer_offset`), which the
/// caller checked the footer has room for.
fn parse_index(
    path: &Path,
    footer: &[u8],
    footer_offset: u64,
    count: usize,
    version: u16,
) -> Result<Index, StoreError> {
    let entries_end = FOOTER_FIXED_LEN + count * INDEX_ENTRY_LEN;
    let mut index = Index {
        // `count` was just checked against the footer's real length: these allocations are
        // backed by bytes that exist in the file.
        entries: Vec::with_capacity(count),
        filter_at: Vec::with_capacity(count),
        filters_end: footer_offset as usize + entries_end,
        records: 0,
        leases: 0,
        min_first: Nanos::MAX,
        max_last: Nanos::MIN,
    };
    let mut prev_end = HEADER_LEN as u64;
    for (i, raw) in footer
        .get(FOOTER_FIXED_LEN..entries_end)
        .unwrap_or_default()
        .chunks_exact(INDEX_ENTRY_LEN)
        .enumerate()
    {
        let at = footer_offset + (FOOTER_FIXED_LEN + i * INDEX_ENTRY_LEN) as u64;
        let e = BlockEntry {
            offset: le_u64(raw, 0),
            len: le_u32(raw, 8),
            records: le_u32(raw, 12),
            min_first: le_u64(raw, 16) as i64,
            max_last: le_u64(raw, 24) as i64,
            filter_len: le_u32(raw, 32),
            filter_hashes: raw.get(36).copied().unwrap_or(0),
            kind: raw.get(37).copied().unwrap_or(0),
        };
        check_entry_kind(path, &e, i, at, version)?;
        check_entry_filter(path, &e, raw, i, at)?;
        index.filter_at.push(index.filters_end);
        // At most count × MAX_FILTER_BYTES past the footer start: no overflow; checked against
        // the footer's end by the caller.
        index.filters_end += e.filter_len as usize;
        prev_end = check_entry_block(path, &e, i, at, prev_end, footer_offset)?;
        if e.kind == KIND_LEASES {
            index.leases = index.leases.saturating_add(e.records);
        } else {
            index.records = index.records.saturating_add(u64::from(e.records));
        }
        index.min_first = index.min_first.min(e.min_first);
        index.max_last = index.max_last.max(e.max_last);
        index.entries.push(e);
    }
    Ok(index)
}

/// Index entry `i` (at file offset `at`) names a block kind its format knows, and a lease
/// block is one that can exist.
fn check_entry_kind(
    path: &Path,
    e: &BlockEntry,
    i: usize,
    at: u64,
    version: u16,
) -> Result<(), StoreError> {
    // Format 2 reserved the kind byte (zero: every block holds flows).
    if e.kind > KIND_LEASES || (version < 3 && e.kind != KIND_FLOWS) {
        return Err(StoreError::corrupt(
            path,
            at + 37,
            format!(
                "index entry {i}: unknown block kind {} (format {version} knows {})",
                e.kind,
                if version < 3 { "0" } else { "0 and 1" }
            ),
        ));
    }
    if e.kind == KIND_LEASES && (e.filter_len != 0 || e.records as usize > MAX_BLOCK_LEASES) {
        return Err(StoreError::corrupt(
            path,
            at,
            format!(
                "index entry {i}: impossible lease block ({} observations, {} filter bytes)",
                e.records, e.filter_len
            ),
        ));
    }
    Ok(())
}

/// Index entry `i`'s address filter is one a writer could have built (`raw` is the entry's
/// bytes).
fn check_entry_filter(
    path: &Path,
    e: &BlockEntry,
    raw: &[u8],
    i: usize,
    at: u64,
) -> Result<(), StoreError> {
    let flen = e.filter_len as usize;
    if flen % 8 != 0
        || flen > MAX_FILTER_BYTES
        || (flen == 0) != (e.filter_hashes == 0)
        || e.filter_hashes > MAX_HASHES
        || raw.get(38..40) != Some(&[0, 0][..])
    {
        return Err(StoreError::corrupt(
            path,
            at + 32,
            format!(
                "index entry {i}: impossible address filter ({flen} bytes, {} probes)",
                e.filter_hashes
            ),
        ));
    }
    Ok(())
}

/// Index entry `i`'s block starts at or after `prev_end` (where the previous one ended), ends
/// before the footer and is a possible block; returns where it ends.
fn check_entry_block(
    path: &Path,
    e: &BlockEntry,
    i: usize,
    at: u64,
    prev_end: u64,
    footer_offset: u64,
) -> Result<u64, StoreError> {
    let end = e.offset.checked_add(u64::from(e.len));
    if e.offset < prev_end || end.is_none_or(|end| end > footer_offset) {
        return Err(StoreError::corrupt(
            path,
            at,
            format!(
                "index entry {i}: block at {} of {} bytes is out of order or outside the block area",
                e.offset, e.len
            ),
        ));
    }
    if (e.len as usize) < BLOCK_HEADER_LEN || e.records as usize > MAX_BLOCK_RECORDS {
        return Err(StoreError::corrupt(
            path,
            at,
            format!(
                "index entry {i}: impossible block ({} bytes, {} records)",
                e.len, e.records
            ),
        ));
    }
    Ok(end.unwrap_or(prev_end))
}

#[cfg(test)]
mod tests;
