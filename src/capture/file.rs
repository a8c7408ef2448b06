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
