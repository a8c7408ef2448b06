//! Capture files: classic pcap (both byte orders, micro- and nanosecond magic, Kuznetzov's
//! "modified" records) and pcapng (any number of sections and interfaces, each with its own byte
//! order, link type, timestamp resolution and offset).
//!
//! The file is memory-mapped and packets borrow the mapping. The per-record headers are read
//! directly (a handful of fixed-offset integers): this is the replay hot path, and pcap-parser's
//! packet-block parsers collect options into a `Vec` and do not know the obsolete Packet Block.
//! pcap-parser parses the rare structural headers (pcap file header, SHB, IDB with options).

use super::{CaptureError, LinkType, Next, Packet, PacketSource};
use crate::time::{Nanos, NANOS_PER_SEC};
use pcap_parser::pcapng::{
    parse_interfacedescriptionblock_be, parse_interfacedescriptionblock_le,
    parse_sectionheaderblock, OptionCode,
};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Records claiming more captured bytes than this are damage, not packets (Wireshark's limit for
/// ordinary link types; BIG TCP test captures hold 80 KB frames).
pub const MAX_CAPLEN: u32 = 262_144;

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;

/// A pcap or pcapng file, read through a memory map.
pub struct FileSource {
    path: PathBuf,
    bytes: Bytes,
    reader: Reader,
}

enum Bytes {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    #[inline]
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// Opens a capture file as a boxed source, for callers that mix files and live interfaces.
pub fn open_file(path: &Path) -> Result<Box<dyn PacketSource + Send>, CaptureError> {
    Ok(Box::new(FileSource::open(path)?))
}

impl FileSource {
    /// Maps the file and checks its header. A file whose header is not a capture we can read is a
    /// `Format` error; damage later in the file shows up from `next_packet`.
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        let io = |source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len == 0 {
            // Mapping zero bytes fails on Linux; say what is actually wrong.
            return Err(CaptureError::Format {
                path: path.to_path_buf(),
                reason: "empty file".into(),
            });
        }
        let map = map_file(&file).map_err(io)?;
        #[cfg(unix)]
        {
            // Only a hint for read-ahead; reading works the same without it.
            let _ = map.advise(memmap2::Advice::Sequential);
        }
        Self::with_bytes(path.to_path_buf(), Bytes::Map(map))
    }

    /// Reads a capture held in memory; `name` is what errors call it. Handy for tests and for
    /// captures that arrive over a pipe.
    pub fn from_bytes(
        name: impl Into<PathBuf>,
        bytes: Vec<u8>,
    ) -> Result<FileSource, CaptureError> {
        Self::with_bytes(name.into(), Bytes::Owned(bytes))
    }

    fn with_bytes(path: PathBuf, bytes: Bytes) -> Result<FileSource, CaptureError> {
        match Reader::new(bytes.as_slice()) {
            Ok(reader) => Ok(FileSource {
                path,
                bytes,
                reader,
            }),
            Err(reason) => Err(CaptureError::Format { path, reason }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

// SAFETY: the map is read-only and lives as long as the FileSource. If another process truncates
// the file while we read it, accessing the lost pages raises SIGBUS; capture files being replayed
// are not rewritten in place, and reading them through read(2) instead would cost a copy per
// packet on the hot path.
#[allow(unsafe_code)]
fn map_file(file: &File) -> std::io::Result<memmap2::Mmap> {
    unsafe { memmap2::Mmap::map(file) }
}

impl PacketSource for FileSource {
    #[inline]
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        let data = self.bytes.as_slice();
        match self.reader.next(data) {
            Ok(Some(p)) => Ok(Next::Packet(p)),
            Ok(None) => Ok(Next::End),
            Err(Damage { offset, reason }) => Err(CaptureError::Corrupt {
                path: self.path.clone(),
                offset,
                reason,
            }),
        }
    }
}

/// Where the file is damaged and how; becomes `CaptureError::Corrupt`.
#[derive(Debug)]
struct Damage {
    offset: u64,
    reason: String,
}

fn damage(offset: usize, reason: String) -> Damage {
    Damage {
        offset: offset as u64,
        reason,
    }
}

struct Reader {
    pos: usize,
    /// Set after End or an error: a finished source only says End.
    done: bool,
    kind: Kind,
}

enum Kind {
    Pcap(PcapFormat),
    PcapNg(NgState),
}

#[derive(Clone, Copy)]
struct PcapFormat {
    big_endian: bool,
    /// Nanoseconds per unit of the record's fractional timestamp (1000 or 1).
    frac_ns: i64,
    /// 16, or 24 for the modified format (ifindex, protocol, packet type, padding follow).
    record_header: usize,
    link: LinkType,
}

struct NgState {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Simple Packet Blocks carry no time: they get the last one seen.
    last_ts: Nanos,
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    units: TsUnits,
    offset_ns: i64,
}

/// How to turn an interface's timestamp ticks into nanoseconds, decided once per IDB so the
/// per-packet work is one multiply, divide or shift.
#[derive(Clone, Copy, Debug, PartialEq)]
enum TsUnits {
    /// 10^-k s with k <= 9: multiply by 10^(9-k).
    Mul(u64),
    /// 10^-k s with k > 9: divide by 10^(k-9).
    Div(u64),
    /// 2^-k s.
    Pow2(u32),
}

impl TsUnits {
    fn from_tsresol(v: u8) -> Option<TsUnits> {
        let k = u32::from(v & 0x7f);
        if v & 0x80 != 0 {
            (k <= 63).then_some(TsUnits::Pow2(k))
        } else if k <= 9 {
            Some(TsUnits::Mul(10u64.pow(9 - k)))
        } else if k <= 19 {
            Some(TsUnits::Div(10u64.pow(k - 9)))
        } else {
            None
        }
    }

    #[inline]
    fn to_ns(self, ticks: u64) -> Option<u64> {
        match self {
            TsUnits::Mul(m) => ticks.checked_mul(m),
            TsUnits::Div(d) => Some(ticks / d),
            TsUnits::Pow2(k) => {
                let secs = ticks >> k;
                let frac = ticks & ((1u64 << k) - 1);
                let frac_ns = (u128::from(frac) * 1_000_000_000u128) >> k;
                secs.checked_mul(1_000_000_000)?
                    .checked_add(u64::try_from(frac_ns).ok()?)
            }
        }
    }
}

impl Interface {
    #[inline]
    fn timestamp(&self, hi: u32, lo: u32) -> Option<Nanos> {
        let ticks = (u64::from(hi) << 32) | u64::from(lo);
        let ns = i64::try_from(self.units.to_ns(ticks)?).ok()?;
        ns.checked_add(self.offset_ns)
    }
}

#[inline(always)]
fn u32_from(b: [u8; 4], big_endian: bool) -> u32 {
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

#[inline(always)]
fn u32_at(data: &[u8], off: usize, big_endian: bool) -> Option<u32> {
    let b = data.get(off..)?.first_chunk::<4>()?;
    Some(u32_from(*b, big_endian))
}

/// How far ahead of the packet being read the reader asks for the file's bytes.
const FILE_READ_AHEAD: usize = 8192;

impl Reader {
    fn new(data: &[u8]) -> Result<Reader, String> {
        let Some(magic) = u32_at(data, 0, false) else {
            return Err(if data.is_empty() {
                "empty file".to_string()
            } else {
                format!(
                    "file too short for any capture header ({} bytes)",
                    data.len()
                )
            });
        };
        if magic == PCAPNG_SHB {
            let mut ng = NgState {
                big_endian: false,
                interfaces: Vec::new(),
                last_ts: 0,
            };
            let len = ng.section_header(data, 0).map_err(|d| d.reason)?;
            return Ok(Reader {
                pos: len,
                done: false,
                kind: Kind::PcapNg(ng),
            });
        }
        let format = pcap_header(data, magic)?;
        Ok(Reader {
            pos: 24,
            done: false,
            kind: Kind::Pcap(format),
        })
    }

    #[inline]
    fn next<'a>(&mut self, data: &'a [u8]) -> Result<Option<Packet<'a>>, Damage> {
        if self.done {
            return Ok(None);
        }
        // A few dozen packets ahead: the next pages of the file reach the cache while this
        // packet is decoded. wrapping_add: past the end it is a hint to nowhere, which is fine.
        crate::hint::prefetch(data.as_ptr().wrapping_add(self.pos + FILE_READ_AHEAD));
        let r = match &mut self.kind {
            Kind::Pcap(f) => pcap_record(f, data, &mut self.pos),
            Kind::PcapNg(ng) => ng.next_packet(data, &mut self.pos),
        };
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r
    }
}

fn pcap_header(data: &[u8], magic: u32) -> Result<PcapFormat, String> {
    let (big_endian, frac_ns, record_header) = match magic {
        0xa1b2_c3d4 => (false, 1000, 16),
        0xd4c3_b2a1 => (true, 1000, 16),
        0xa1b2_3c4d => (false, 1, 16),
        0x4d3c_b2a1 => (true, 1, 16),
        0xa1b2_cd34 => (false, 1000, 24),
        0x34cd_b2a1 => return Err("big-endian modified (Kuznetzov) pcap unsupported".into()),
        _ => return Err(format!("unknown magic 0x{magic:08x} (not pcap or pcapng)")),
    };
    if data.len() < 24 {
        return Err(format!(
            "pcap file header truncated ({} of 24 bytes)",
            data.len()
        ));
    }
    let hdr = match pcap_parser::parse_pcap_header(data) {
        Ok((_, hdr)) => hdr,
        Err(e) => return Err(format!("bad pcap file header: {e}")),
    };
    debug_assert_eq!(hdr.is_bigendian(), big_endian);
    if hdr.version_major != 2 {
        return Err(format!(
            "pcap version {}.{} unsupported",
            hdr.version_major, hdr.version_minor
        ));
    }
    // The upper bits carry FCS length and reserved flags, not the link type.
    let link = LinkType((hdr.network.0 as u32 & 0xffff) as u16);
    Ok(PcapFormat {
        big_endian,
        frac_ns,
        record_header,
        link,
    })
}

#[inline]
fn pcap_record<'a>(
    f: &PcapFormat,
    data: &'a [u8],
    pos: &mut usize,
) -> Result<Option<Packet<'a>>, Damage> {
    let at = *pos;
    let rest = data.get(at..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(None);
    }
    let Some(h) = rest.first_chunk::<16>() else {
        return Err(damage(
            at,
            format!(
                "file ends inside a record header ({} bytes left)",
                rest.len()
            ),
        ));
    };
    let be = f.big_endian;
    let sec = u32_from([h[0], h[1], h[2], h[3]], be);
    let frac = u32_from([h[4], h[5], h[6], h[7]], be);
    let caplen = u32_from([h[8], h[9], h[10], h[11]], be);
    let orig = u32_from([h[12], h[13], h[14], h[15]], be);
    if caplen > MAX_CAPLEN {
        return Err(damage(
            at,
            format!("record claims {caplen} captured bytes (limit {MAX_CAPLEN})"),
        ));
    }
    let start = at.saturating_add(f.record_header);
    let end = start.saturating_add(caplen as usize);
    let Some(bytes) = data.get(start..end) else {
        return Err(damage(
            at,
            format!(
                "file ends inside a record ({caplen} bytes claimed, {} left)",
                rest.len().saturating_sub(f.record_header)
            ),
        ));
    };
    *pos = end;
    // u32 seconds * 1e9 + u32 fraction * 1000 stays below i64::MAX (about year 2106 + 71 min),
    // so even invalid fractions (>= 1 s) cannot overflow.
    let ts = i64::from(sec) * NANOS_PER_SEC + i64::from(frac) * f.frac_ns;
    Ok(Some(Packet {
        ts,
        wire_len: orig.max(caplen),
        link: f.link,
        data: bytes,
    }))
}

impl NgState {
    #[inline]
    fn next_packet<'a>(
        &mut self,
        data: &'a [u8],
        pos: &mut usize,
    ) -> Result<Option<Packet<'a>>, Damage> {
        loop {
            let at = *pos;
            let rest = data.get(at..).unwrap_or_default();
            if rest.is_empty() {
                return Ok(None);
            }
            let Some(h) = rest.first_chunk::<8>() else {
                return Err(damage(
                    at,
                    format!(
                        "file ends inside a block header ({} bytes left)",
                        rest.len()
                    ),
                ));
            };
            let raw_type = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            if raw_type == PCAPNG_SHB {
                *pos = at + self.section_header(data, at)?;
                continue;
            }
            let be = self.big_endian;
            let block_type = u32_from([h[0], h[1], h[2], h[3]], be);
            let len = u32_from([h[4], h[5], h[6], h[7]], be) as usize;
            let block = checked_block(rest, at, len, be)?;
            *pos = at + len;
            match block_type {
                PCAPNG_EPB => return self.enhanced_packet(block, at).map(Some),
                PCAPNG_SPB => return self.simple_packet(block, at).map(Some),
                PCAPNG_PB => return self.obsolete_packet(block, at).map(Some),
                PCAPNG_IDB => self.interface(block, at)?,
                // Statistics, name resolution, secrets, custom and unknown blocks carry no packets.
                _ => {}
            }
        }
    }

    /// Parses a Section Header Block at `at`: sets the byte order for what follows and forgets
    /// the previous section's interfaces. Returns the block length.
    fn section_header(&mut self, data: &[u8], at: usize) -> Result<usize, Damage> {
        let rest = data.get(at..).unwrap_or_default();
        let Some(bom) = u32_at(rest, 8, false) else {
            return Err(damage(
                at,
                format!(
                    "file ends inside a section header ({} bytes left)",
                    rest.len()
                ),
            ));
        };
        let be = match bom {
            PCAPNG_BOM => false,
            b if b == PCAPNG_BOM.swap_bytes() => true,
            _ => {
                return Err(damage(
                    at,
                    format!("pcapng section header with bad byte-order magic 0x{bom:08x}"),
                ))
            }
        };
        let len = u32_at(rest, 4, be).unwrap_or(0) as usize;
        if len < 28 {
            return Err(damage(
                at,
                format!("pcapng section header too short ({len} bytes)"),
            ));
        }
        let block = checked_block(rest, at, len, be)?;
        let shb = match parse_sectionheaderblock(block) {
            Ok((_, shb)) => shb,
            Err(e) => {
                return Err(damage(
                    at,
                    format!("bad pcapng section header: {}", nom_reason(&e)),
                ))
            }
        };
        if shb.major_version != 1 || shb.minor_version > 2 {
            return Err(damage(
                at,
                format!(
                    "pcapng version {}.{} unsupported",
                    shb.major_version, shb.minor_version
                ),
            ));
        }
        self.big_endian = be;
        self.interfaces.clear();
        Ok(len)
    }

    fn interface(&mut self, block: &[u8], at: usize) -> Result<(), Damage> {
        let parsed = if self.big_endian {
            parse_interfacedescriptionblock_be(block)
        } else {
            parse_interfacedescriptionblock_le(block)
        };
        let idb = match parsed {
            Ok((_, idb)) => idb,
            Err(e) => {
                return Err(damage(
                    at,
                    format!("bad interface description block: {}", nom_reason(&e)),
                ))
            }
        };
        let mut tsresol = 6u8;
        let mut tsoffset = 0i64;
        for opt in &idb.options {
            let Ok(v) = opt.as_bytes() else { continue };
            if opt.code == OptionCode::IfTsresol {
                if let Some(&r) = v.first() {
                    tsresol = r;
                }
            } else if opt.code == OptionCode::IfTsoffset {
                // pcap-parser reads this one little-endian whatever the section's byte order.
                if let Some(b) = v.first_chunk::<8>() {
                    tsoffset = if self.big_endian {
                        i64::from_be_bytes(*b)
                    } else {
                        i64::from_le_bytes(*b)
                    };
                }
            }
        }
        let Some(units) = TsUnits::from_tsresol(tsresol) else {
            return Err(damage(
                at,
                format!("interface timestamp resolution 0x{tsresol:02x} unsupported"),
            ));
        };
        let Some(offset_ns) = tsoffset.checked_mul(NANOS_PER_SEC) else {
            return Err(damage(
                at,
                format!("interface timestamp offset {tsoffset} s out of range"),
            ));
        };
        self.interfaces.push(Interface {
            link: LinkType(idb.linktype.0 as u16),
            snaplen: idb.snaplen,
            units,
            offset_ns,
        });
        Ok(())
    }

    #[inline]
    fn enhanced_packet<'a>(&mut self, block: &'a [u8], at: usize) -> Result<Packet<'a>, Damage> {
        // Block: type, length, interface, ts high, ts low, caplen, origlen, data..., length.
        let Some(h) = block.first_chunk::<28>() else {
            return Err(damage(
                at,
                format!("enhanced packet block too short ({} bytes)", block.len()),
            ));
        };
        let be = self.big_endian;
        let if_id = u32_from([h[8], h[9], h[10], h[11]], be);
        let hi = u32_from([h[12], h[13], h[14], h[15]], be);
        let lo = u32_from([h[16], h[17], h[18], h[19]], be);
        let caplen = u32_from([h[20], h[21], h[22], h[23]], be);
        let orig = u32_from([h[24], h[25], h[26], h[27]], be);
        self.packet(block, at, 28, if_id, Some((hi, lo)), caplen, orig)
    }

    fn obsolete_packet<'a>(&mut self, block: &'a [u8], at: usize) -> Result<Packet<'a>, Damage> {
        // Like an EPB, but with a 16-bit interface id followed by a 16-bit drop count.
        let Some(h) = block.first_chunk::<28>() else {
            return Err(damage(
                at,
                format!("packet block too short ({} bytes)", block.len()),
            ));
        };
        let be = self.big_endian;
        let if_id = if be {
            u16::from_be_bytes([h[8], h[9]])
        } else {
            u16::from_le_bytes([h[8], h[9]])
        };
        let hi = u32_from([h[12], h[13], h[14], h[15]], be);
        let lo = u32_from([h[16], h[17], h[18], h[19]], be);
        let caplen = u32_from([h[20], h[21], h[22], h[23]], be);
        let orig = u32_from([h[24], h[25], h[26], h[27]], be);
        self.packet(
            block,
            at,
            28,
            u32::from(if_id),
            Some((hi, lo)),
            caplen,
            orig,
        )
    }

    fn simple_packet<'a>(&mut self, block: &'a [u8], at: usize) -> Result<Packet<'a>, Damage> {
        // Block: type, length, original length, data..., length.
        let Some(h) = block.first_chunk::<12>().filter(|_| block.len() >= 16) else {
            return Err(damage(
                at,
                format!("simple packet block too short ({} bytes)", block.len()),
            ));
        };
        let orig = u32_from([h[8], h[9], h[10], h[11]], self.big_endian);
        // The captured length is implied: the original length cut to the interface's snap
        // length, or to the block (which also holds up to 3 padding bytes).
        let room = u32::try_from(block.len().saturating_sub(16)).unwrap_or(u32::MAX);
        let snap = match self.interfaces.first() {
            Some(i) if i.snaplen > 0 => i.snaplen,
            _ => u32::MAX,
        };
        let caplen = orig.min(snap).min(room);
        self.packet(block, at, 12, 0, None, caplen, orig)
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn packet<'a>(
        &mut self,
        block: &'a [u8],
        at: usize,
        data_off: usize,
        if_id: u32,
        ts: Option<(u32, u32)>,
        caplen: u32,
        orig: u32,
    ) -> Result<Packet<'a>, Damage> {
        let Some(iface) = self.interfaces.get(if_id as usize) else {
            return Err(damage(
                at,
                format!(
                    "packet for interface {if_id}, but the section describes {}",
                    self.interfaces.len()
                ),
            ));
        };
        if caplen > MAX_CAPLEN {
            return Err(damage(
                at,
                format!("packet claims {caplen} captured bytes (limit {MAX_CAPLEN})"),
            ));
        }
        // The trailing length word must stay outside the packet data.
        let end = data_off + caplen as usize;
        let Some(bytes) = block.get(data_off..end).filter(|_| end + 4 <= block.len()) else {
            return Err(damage(
                at,
                format!(
                    "packet claims {caplen} captured bytes, block has room for {}",
                    block.len().saturating_sub(data_off + 4)
                ),
            ));
        };
        let ts = match ts {
            Some((hi, lo)) => {
                let Some(ns) = iface.timestamp(hi, lo) else {
                    return Err(damage(
                        at,
                        format!(
                            "timestamp {} ticks out of range",
                            (u64::from(hi) << 32) | u64::from(lo)
                        ),
                    ));
                };
                self.last_ts = ns;
                ns
            }
            None => self.last_ts,
        };
        Ok(Packet {
            ts,
            wire_len: orig.max(caplen),
            link: iface.link,
            data: bytes,
        })
    }
}

/// The whole block of `len` bytes at the start of `rest`, checked for a sane length and a
/// matching trailing length.
#[inline]
fn checked_block(rest: &[u8], at: usize, len: usize, be: bool) -> Result<&[u8], Damage> {
    if len < 12 || len % 4 != 0 {
        return Err(damage(at, format!("block length {len} invalid")));
    }
    let Some(block) = rest.get(..len) else {
        return Err(damage(
            at,
            format!(
                "file ends inside a block ({len} bytes claimed, {} left)",
                rest.len()
            ),
        ));
    };
    let trailer = u32_at(block, len - 4, be).unwrap_or(0) as usize;
    if trailer != len {
        return Err(damage(
            at,
            format!("block length {len} does not match trailing length {trailer}"),
        ));
    }
    Ok(block)
}

fn nom_reason<E>(e: &pcap_parser::nom::Err<pcap_parser::PcapError<E>>) -> String {
    use pcap_parser::PcapError;
    match e {
        pcap_parser::nom::Err::Incomplete(_) => "contents overrun the block".into(),
        pcap_parser::nom::Err::Error(pe) | pcap_parser::nom::Err::Failure(pe) => match pe {
            PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                format!("malformed ({kind:?})")
            }
            PcapError::Incomplete(_) | PcapError::UnexpectedEof => {
                "contents overrun the block".into()
            }
            PcapError::HeaderNotRecognized => "header not recognized".into(),
            _ => "malformed".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w32(v: &mut Vec<u8>, x: u32, be: bool) {
        v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() });
    }

    fn w16(v: &mut Vec<u8>, x: u16, be: bool) {
        v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() });
    }

    /// Classic pcap file header; `magic` as the writer's native value (a1b2c3d4, a1b23c4d, ...).
    fn pcap_header(magic: u32, be: bool, link: u32) -> Vec<u8> {
        let mut v = Vec::new();
        w32(&mut v, magic, be);
        w16(&mut v, 2, be);
        w16(&mut v, 4, be);
        w32(&mut v, 0, be);
        w32(&mut v, 0, be);
        w32(&mut v, 65535, be);
        w32(&mut v, link, be);
        v
    }

    fn pcap_record(v: &mut Vec<u8>, be: bool, sec: u32, frac: u32, orig: u32, data: &[u8]) {
        w32(v, sec, be);
        w32(v, frac, be);
        w32(v, data.len() as u32, be);
        w32(v, orig, be);
        v.extend_from_slice(data);
    }

    /// A pcapng block: body padded to 32 bits, framed by the two lengths.
    fn block(v: &mut Vec<u8>, be: bool, block_type: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        w32(v, block_type, be);
        w32(v, len, be);
        v.extend_from_slice(body);
        v.resize(v.len() + padded - body.len(), 0);
        w32(v, len, be);
    }

    fn shb(v: &mut Vec<u8>, be: bool) {
        let mut b = Vec::new();
        w32(&mut b, PCAPNG_BOM, be);
        w16(&mut b, 1, be);
        w16(&mut b, 0, be);
        b.extend_from_slice(&[0xff; 8]);
        block(v, be, PCAPNG_SHB, &b);
    }

    fn option(b: &mut Vec<u8>, be: bool, code: u16, value: &[u8]) {
        w16(b, code, be);
        w16(b, value.len() as u16, be);
        b.extend_from_slice(value);
        b.resize(b.len().div_ceil(4) * 4, 0);
    }

    fn idb(v: &mut Vec<u8>, be: bool, link: u16, snaplen: u32, tsresol: Option<u8>, tsoffset: i64) {
        let mut b = Vec::new();
        w16(&mut b, link, be);
        w16(&mut b, 0, be);
        w32(&mut b, snaplen, be);
        if let Some(r) = tsresol {
            option(&mut b, be, 9, &[r]);
        }
        if tsoffset != 0 {
            let off = if be {
                tsoffset.to_be_bytes()
            } else {
                tsoffset.to_le_bytes()
            };
            option(&mut b, be, 14, &off);
        }
        if tsresol.is_some() || tsoffset != 0 {
            option(&mut b, be, 0, &[]);
        }
        block(v, be, PCAPNG_IDB, &b);
    }

    fn epb(v: &mut Vec<u8>, be: bool, if_id: u32, ticks: u64, orig: u32, data: &[u8]) {
        let mut b = Vec::new();
        w32(&mut b, if_id, be);
        w32(&mut b, (ticks >> 32) as u32, be);
        w32(&mut b, ticks as u32, be);
        w32(&mut b, data.len() as u32, be);
        w32(&mut b, orig, be);
        b.extend_from_slice(data);
        block(v, be, PCAPNG_EPB, &b);
    }

    fn spb(v: &mut Vec<u8>, be: bool, orig: u32, data: &[u8]) {
        let mut b = Vec::new();
        w32(&mut b, orig, be);
        b.extend_from_slice(data);
        block(v, be, PCAPNG_SPB, &b);
    }

    fn open(bytes: Vec<u8>) -> Result<FileSource, CaptureError> {
        FileSource::from_bytes("test.cap", bytes)
    }

    /// (ts, wire_len, data, link) of every packet, and the error that ended the file, if any.
    type Read = (Vec<(i64, u32, Vec<u8>, u16)>, Option<CaptureError>);

    fn read_all(src: &mut FileSource) -> Read {
        let mut pkts = Vec::new();
        loop {
            match src.next_packet() {
                Ok(Next::Packet(p)) => pkts.push((p.ts, p.wire_len, p.data.to_vec(), p.link.0)),
                Ok(Next::Idle) => panic!("files never idle"),
                Ok(Next::End) => return (pkts, None),
                Err(e) => {
                    assert!(
                        matches!(src.next_packet(), Ok(Next::End)),
                        "End after an error"
                    );
                    return (pkts, Some(e));
                }
            }
        }
    }

    fn read_bytes(bytes: Vec<u8>) -> Read {
        read_all(&mut open(bytes).expect("header must parse"))
    }

    fn corrupt_at(e: &Option<CaptureError>) -> (u64, String) {
        match e {
            Some(CaptureError::Corrupt { offset, reason, .. }) => (*offset, reason.clone()),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    fn format_reason(r: Result<FileSource, CaptureError>) -> String {
        match r {
            Err(CaptureError::Format { path, reason }) => {
                assert_eq!(path, Path::new("test.cap"));
                reason
            }
            Err(e) => panic!("expected Format, got {e}"),
            Ok(_) => panic!("expected Format, got a source"),
        }
    }

    #[test]
    fn pcap_big_endian_nanoseconds() {
        let mut v = pcap_header(0xa1b2_3c4d, true, 0x1000_0001);
        pcap_record(&mut v, true, 1_700_000_000, 123_456_789, 60, &[1, 2, 3, 4]);
        pcap_record(&mut v, true, 1_700_000_001, 999_999_999, 2, &[9, 9, 9]);
        let (pkts, err) = read_bytes(v);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            pkts,
            vec![
                (1_700_000_000_123_456_789, 60, vec![1, 2, 3, 4], 1),
                // wire_len is never below the captured length.
                (1_700_000_001_999_999_999, 3, vec![9, 9, 9], 1),
            ]
        );
    }

    #[test]
    fn pcap_little_endian_microseconds_and_fcs_bits() {
        // LINKTYPE_NULL with the FCS-present bits set: link type is the low 16 bits.
        let mut v = pcap_header(0xa1b2_c3d4, false, 0x4000_0000);
        pcap_record(&mut v, false, 10, 5, 4, &[0; 4]);
        let (pkts, err) = read_bytes(v);
        assert!(err.is_none());
        assert_eq!(pkts, vec![(10_000_005_000, 4, vec![0; 4], 0)]);
    }

    #[test]
    fn pcap_modified_format_records() {
        let mut v = pcap_header(0xa1b2_cd34, false, 1);
        for (sec, byte) in [(7u32, 0xaau8), (8, 0xbb)] {
            w32(&mut v, sec, false);
            w32(&mut v, 1, false);
            w32(&mut v, 2, false);
            w32(&mut v, 2, false);
            v.extend_from_slice(&[0xee; 8]); // ifindex, protocol, packet type, pad
            v.extend_from_slice(&[byte; 2]);
        }
        let (pkts, err) = read_bytes(v);
        assert!(err.is_none());
        assert_eq!(
            pkts,
            vec![
                (7_000_001_000, 2, vec![0xaa; 2], 1),
                (8_000_001_000, 2, vec![0xbb; 2], 1)
            ]
        );
    }

    #[test]
    fn truncated_last_record_is_corrupt_after_the_good_packets() {
        let mut v = pcap_header(0xa1b2_c3d4, false, 1);
        pcap_record(&mut v, false, 1, 0, 3, &[1, 2, 3]);
        pcap_record(&mut v, false, 2, 0, 3, &[4, 5, 6]);
        let second = 24 + 16 + 3;
        v.truncate(v.len() - 1);
        let (pkts, err) = read_bytes(v.clone());
        assert_eq!(pkts.len(), 1);
        let (offset, reason) = corrupt_at(&err);
        assert_eq!(offset, second as u64);
        assert!(reason.contains("file ends inside a record"), "{reason}");
        assert!(err
            .unwrap()
            .to_string()
            .starts_with("test.cap: damaged at byte 43"));

        // Ending inside the record header is damage too.
        v.truncate(second + 7);
        let (pkts, err) = read_bytes(v);
        assert_eq!(pkts.len(), 1);
        assert!(corrupt_at(&err).1.contains("inside a record header"));
    }

    #[test]
    fn huge_claimed_record_is_refused_not_allocated() {
        let mut v = pcap_header(0xa1b2_c3d4, false, 1);
        pcap_record(&mut v, false, 1, 0, 3, &[1, 2, 3]);
        w32(&mut v, 2, false);
        w32(&mut v, 0, false);
        w32(&mut v, 1_409_179_648, false);
        w32(&mut v, 60, false);
        v.extend_from_slice(&[0; 64]);
        let (pkts, err) = read_bytes(v);
        assert_eq!(pkts.len(), 1);
        let (offset, reason) = corrupt_at(&err);
        assert_eq!(offset, 24 + 19);
        assert!(reason.contains("1409179648"), "{reason}");
    }

    #[test]
    fn bad_headers_are_format_errors() {
        assert_eq!(format_reason(open(Vec::new())), "empty file");
        assert!(format_reason(open(vec![1, 2])).contains("too short"));
        assert_eq!(
            format_reason(open(b"GIF89a-not-a-capture-file".to_vec())),
            "unknown magic 0x38464947 (not pcap or pcapng)"
        );
        let mut v = pcap_header(0xa1b2_c3d4, false, 1);
        v[4] = 1;
        assert_eq!(
            format_reason(open(v.clone())),
            "pcap version 1.4 unsupported"
        );
        v.truncate(20);
        assert!(format_reason(open(v)).contains("truncated"));
        // A pcapng file whose first block is damaged is not a capture we can read.
        let mut ng = Vec::new();
        shb(&mut ng, false);
        ng[12] = 0; // major version 0
        assert!(format_reason(open(ng)).contains("pcapng version 0.0 unsupported"));
    }

    #[test]
    fn header_only_files_end_cleanly() {
        let (pkts, err) = read_bytes(pcap_header(0xa1b2_c3d4, false, 1));
        assert!(pkts.is_empty() && err.is_none());
        let mut ng = Vec::new();
        shb(&mut ng, false);
        block(&mut ng, false, 0xbad, b"custom data");
        block(&mut ng, false, 0x4000_0bad, b"more custom data");
        let (pkts, err) = read_bytes(ng);
        assert!(pkts.is_empty() && err.is_none());
    }

    #[test]
    fn pcapng_sections_with_different_byte_orders() {
        let mut v = Vec::new();
        shb(&mut v, false);
        idb(&mut v, false, 1, 0, None, 0);
        epb(&mut v, false, 0, 1_000_000, 100, &[0xaa; 5]);
        // Second section: big-endian, interface numbering starts again, nanoseconds, offset.
        shb(&mut v, true);
        idb(&mut v, true, 0, 0, Some(9), 100);
        idb(&mut v, true, 228, 0, None, -5);
        epb(&mut v, true, 1, 2_000_000, 7, &[0xbb; 7]);
        epb(&mut v, true, 0, 3, 9, &[0xcc; 9]);
        let (pkts, err) = read_bytes(v);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            pkts,
            vec![
                (1_000_000_000, 100, vec![0xaa; 5], 1),
                (-5_000_000_000 + 2_000_000_000, 7, vec![0xbb; 7], 228),
                (100_000_000_003, 9, vec![0xcc; 9], 0),
            ]
        );
    }

    #[test]
    fn pcapng_power_of_two_resolution() {
        let mut v = Vec::new();
        shb(&mut v, false);
        idb(&mut v, false, 1, 0, Some(0x88), 0);
        // 1519128000 s + 50/256 s = .1953125 s
        epb(&mut v, false, 0, 1_519_128_000 * 256 + 50, 4, &[1; 4]);
        let (pkts, err) = read_bytes(v);
        assert!(err.is_none());
        assert_eq!(pkts[0].0, 1_519_128_000_195_312_500);
    }

    #[test]
    fn timestamp_units() {
        let cases = [
            (6u8, 1_234_567u64, Some(1_234_567_000u64)),
            (9, 5, Some(5)),
            (12, 5_000, Some(5)),
            (19, 10_000_000_000_000_000_000, Some(1_000_000_000)),
            (0x80, 3, Some(3_000_000_000)),
            (0x81, 3, Some(1_500_000_000)),
            (0xbf, u64::MAX, Some(1_999_999_999)),
            (0, u64::MAX, None),
        ];
        for (resol, ticks, want) in cases {
            let u = TsUnits::from_tsresol(resol).expect("valid resolution");
            assert_eq!(u.to_ns(ticks), want, "resol {resol:#x} ticks {ticks}");
        }
        assert_eq!(TsUnits::from_tsresol(20), None);
        assert_eq!(TsUnits::from_tsresol(0xc0), None);
    }

    #[test]
    fn timestamp_overflow_is_corrupt_not_a_panic() {
        let mut v = Vec::new();
        shb(&mut v, false);
        idb(&mut v, false, 1, 0, Some(0), 0);
        epb(&mut v, false, 0, 10, 1, &[1]);
        epb(&mut v, false, 0, u64::MAX, 1, &[1]);
        let (pkts, err) = read_bytes(v);
        assert_eq!(pkts.len(), 1);
        assert!(corrupt_at(&err).1.contains("out of range"));
        // An offset that cannot be expressed in nanoseconds is damage in the IDB.
        let mut v = Vec::new();
        shb(&mut v, false);
        idb(&mut v, false, 1, 0, None, i64::MAX);
        let (_, err) = read_bytes(v);
        assert!(corrupt_at(&err).1.contains("offset"));
    }

    #[test]
    fn simple_packet_block_takes_the_last_timestamp_and_snaplen() {
        let mut v = Vec::new();
        shb(&mut v, false);
        idb(&mut v, false, 1, 6, None, 0);
        spb(&mut v, false, 60, &[7; 6]);
        epb(&mut v, false, 0, 42, 60, &[1; 6]);
        // Original 60 bytes, snap length 6: data is 6 bytes (block padding excluded).
        spb(&mut v, false, 60, &[2; 6]);
        spb(&mut v, false, 3, &[3; 3]);
        let (pkts, err) = read_bytes(v);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            pkts,
            vec![
                (0, 60, vec![7; 6], 1),
                (42_000, 60, vec![1; 6], 1),
                (42_000, 60, vec![2; 6], 1),
                (42_000, 3, vec![3; 3], 1),
            ]
        );
    }

    #[test]
    fn obsolete_packet_block() {
        let mut v = Vec::new();
        shb(&mut v, false);
        idb(&mut v, false, 9, 0, None, 0);
        let mut b = Vec::new();
        w16(&mut b, 0, false); // interface
        w16(&mut b, 0, false); // drops
        w32(&mut b, 0, false);
        w32(&mut b, 1_000_000, false);
        w32(&mut b, 3, false);
        w32(&mut b, 80, false);
        b.extend_from_slice(&[5; 3]);
        block(&mut v, false, PCAPNG_PB, &b);
        let (pkts, err) = read_bytes(v);
        assert!(err.is_none());
        assert_eq!(pkts, vec![(1_000_000_000, 80, vec![5; 3], 9)]);
    }

    #[test]
    fn pcapng_damage() {
        let base = || {
            let mut v = Vec::new();
            shb(&mut v, false);
            idb(&mut v, false, 1, 0, None, 0);
            epb(&mut v, false, 0, 1, 4, &[1; 4]);
            v
        };
        let good_end = base().len() as u64;
        let check = |v: Vec<u8>, needle: &str| {
            let (pkts, err) = read_bytes(v);
            assert_eq!(pkts.len(), 1, "{needle}");
            let (offset, reason) = corrupt_at(&err);
            assert_eq!(offset, good_end, "{reason}");
            assert!(reason.contains(needle), "{reason}");
        };

        let mut v = base();
        epb(&mut v, false, 3, 1, 4, &[1; 4]);
        check(v, "interface 3, but the section describes 1");

        let mut v = base();
        epb(&mut v, false, 0, 1, 4, &[1; 4]);
        let n = v.len();
        v[n - 4] ^= 1;
        check(v, "does not match trailing length");

        let mut v = base();
        epb(&mut v, false, 0, 1, 4, &[1; 4]);
        v.truncate(v.len() - 2);
        check(v, "file ends inside a block");

        let mut v = base();
        v.extend_from_slice(&[6, 0, 0]);
        check(v, "inside a block header");

        let mut v = base();
        w32(&mut v, PCAPNG_EPB, false);
        w32(&mut v, 13, false);
        v.extend_from_slice(&[0; 13]);
        check(v, "block length 13 invalid");

        // caplen pointing past the block.
        let mut v = base();
        let mut b = Vec::new();
        for x in [0u32, 0, 1, 200, 200] {
            w32(&mut b, x, false);
        }
        b.extend_from_slice(&[0; 8]);
        block(&mut v, false, PCAPNG_EPB, &b);
        check(v, "block has room for 8");

        // A packet block before any interface description.
        let mut v = Vec::new();
        shb(&mut v, false);
        epb(&mut v, false, 0, 1, 4, &[1; 4]);
        let (pkts, err) = read_bytes(v);
        assert!(pkts.is_empty());
        assert!(corrupt_at(&err).1.contains("section describes 0"));
    }

    /// Every single-byte corruption and every truncation of small captures: the reader may
    /// deliver fewer packets or report damage, but never panics and always finishes.
    #[test]
    fn mutations_never_panic() {
        let mut samples = Vec::new();
        let mut v = pcap_header(0xa1b2_c3d4, true, 1);
        pcap_record(&mut v, true, 1, 2, 3, &[1, 2, 3]);
        pcap_record(&mut v, true, 1, 2, 3, &[1, 2, 3]);
        samples.push(v);
        let mut v = Vec::new();
        shb(&mut v, false);
        idb(&mut v, false, 1, 4, Some(0x88), 3);
        epb(&mut v, false, 0, 77, 9, &[1; 5]);
        spb(&mut v, false, 9, &[1; 4]);
        shb(&mut v, true);
        idb(&mut v, true, 113, 0, Some(9), -3);
        epb(&mut v, true, 0, 77, 9, &[1; 5]);
        block(&mut v, true, 0xbad, b"xyz");
        samples.push(v);
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcaps");
        for f in [
            "gopacket__be_test202.pcapng",
            "gopacket__le_test100.pcapng",
            "tcpdump__tcp-handshake-nano.pcap",
        ] {
            samples.push(std::fs::read(root.join(f)).expect("fixture"));
        }
        for s in &samples {
            for cut in 0..s.len() {
                if let Ok(mut src) = open(s[..cut].to_vec()) {
                    read_all(&mut src);
                }
            }
            for i in 0..s.len() {
                for x in [0x00u8, 0xff, 0x80, 0x01] {
                    let mut m = s.clone();
                    m[i] ^= x;
                    if let Ok(mut src) = open(m) {
                        read_all(&mut src);
                    }
                }
            }
        }
    }

    #[test]
    fn open_reports_missing_file_and_empty_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pcap");
        match FileSource::open(&missing) {
            Err(CaptureError::Io { path, .. }) => assert_eq!(path, missing),
            Err(e) => panic!("expected Io, got {e}"),
            Ok(_) => panic!("opened a missing file"),
        }
        let empty = dir.path().join("empty.pcap");
        std::fs::write(&empty, b"").expect("write");
        let err = FileSource::open(&empty)
            .err()
            .expect("empty file must fail");
        assert_eq!(
            err.to_string(),
            format!("{}: not a readable capture: empty file", empty.display())
        );
        let good = dir.path().join("good.pcap");
        let mut v = pcap_header(0xa1b2_c3d4, false, 1);
        pcap_record(&mut v, false, 1, 0, 3, &[1, 2, 3]);
        std::fs::write(&good, &v).expect("write");
        let mut src = open_file(&good).expect("open");
        assert!(matches!(src.next_packet(), Ok(Next::Packet(p)) if p.data == [1, 2, 3]));
        assert!(matches!(src.next_packet(), Ok(Next::End)));
    }
}
