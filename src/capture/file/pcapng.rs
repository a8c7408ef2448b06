//! pcapng: any number of sections and interfaces, each with its own byte order, link type,
//! timestamp resolution and offset.

use super::{damage, u32_at, u32_from, Damage, MAX_CAPLEN};
use crate::capture::{LinkType, Packet};
use crate::time::{Nanos, NANOS_PER_SEC};
use pcap_parser::pcapng::{
    parse_interfacedescriptionblock_be, parse_interfacedescriptionblock_le,
    parse_sectionheaderblock, OptionCode,
};

pub(super) const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
pub(super) const PCAPNG_BOM: u32 = 0x1A2B_3C4D;
pub(super) const PCAPNG_IDB: u32 = 1;
pub(super) const PCAPNG_PB: u32 = 2;
pub(super) const PCAPNG_SPB: u32 = 3;
pub(super) const PCAPNG_EPB: u32 = 6;

pub(super) struct NgState {
    pub(super) big_endian: bool,
    pub(super) interfaces: Vec<Interface>,
    /// Simple Packet Blocks carry no time: they get the last one seen.
    pub(super) last_ts: Nanos,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Interface {
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
impl NgState {
    #[inline]
    pub(super) fn next_packet<'a>(
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
    pub(super) fn section_header(&mut self, data: &[u8], at: usize) -> Result<usize, Damage> {
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
            link: LinkType(idb.linktype.0 as u16).in_byte_order(self.big_endian),
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
    use super::super::test_captures::*;
    use super::*;

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
}
