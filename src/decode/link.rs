//! Link layer: from the start of a frame to the outermost IP header. Shared by `decode` (workers)
//! and `Dispatcher::hash` (reader), so both agree on which header is "the" IP header.

use super::DecodeError;
use crate::capture::LinkType;
use crate::record::Mac;

/// Which IP version the link layer announced. Raw-IP links resolve it from the first nibble here,
/// so the IP parser only has to check that the header agrees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IpVersion {
    V4,
    V6,
}

/// Where the outermost IP header starts, and what the link layer said on the way there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct L2 {
    pub ip_off: usize,
    pub version: IpVersion,
    pub vlan: u16,
    pub inner_vlan: u16,
    pub src_mac: Option<Mac>,
    pub dst_mac: Option<Mac>,
}

const ET_IPV4: u16 = 0x0800;
const ET_IPV6: u16 = 0x86dd;
const ET_VLAN: u16 = 0x8100;
const ET_QINQ: u16 = 0x88a8;
const ET_QINQ_OLD: u16 = 0x9100;
const ET_MPLS_UC: u16 = 0x8847;
const ET_MPLS_MC: u16 = 0x8848;
const ET_PPPOE_SESSION: u16 = 0x8864;
/// Ethertype values up to this are IEEE 802.3 length fields (an LLC header follows).
const ET_MAX_8023_LEN: u16 = 1500;

const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const PPP_MPLS_UC: u16 = 0x0281;
const PPP_MPLS_MC: u16 = 0x0283;

const ARPHRD_ETHER: u16 = 1;
/// SLL protocol value meaning "an 802.2 LLC header follows".
const SLL_P_802_2: u16 = 0x0004;
/// LLC DSAP/SSAP/control for SNAP, then the zero OUI: an ethertype follows.
const LLC_SNAP_ETHERTYPE: [u8; 6] = [0xaa, 0xaa, 0x03, 0x00, 0x00, 0x00];

pub(crate) fn be16(d: &[u8], off: usize) -> Option<u16> {
    d.get(off..)?
        .first_chunk::<2>()
        .map(|b| u16::from_be_bytes(*b))
}

pub(crate) fn be32(d: &[u8], off: usize) -> Option<u32> {
    d.get(off..)?
        .first_chunk::<4>()
        .map(|b| u32::from_be_bytes(*b))
}

fn le32(d: &[u8], off: usize) -> Option<u32> {
    d.get(off..)?
        .first_chunk::<4>()
        .map(|b| u32::from_le_bytes(*b))
}

fn mac_at(d: &[u8], off: usize) -> Option<Mac> {
    d.get(off..)?.first_chunk::<6>().copied()
}

fn malformed(reason: &'static str) -> DecodeError {
    DecodeError::Malformed(reason)
}

/// Walks the link layer of `link` to the outermost IP header.
pub(crate) fn locate_ip(link: LinkType, d: &[u8]) -> Result<L2, DecodeError> {
    let mut l2 = L2 {
        ip_off: 0,
        version: IpVersion::V4,
        vlan: 0,
        inner_vlan: 0,
        src_mac: None,
        dst_mac: None,
    };
    match link {
        LinkType::ETHERNET => {
            let et = be16(d, 12).ok_or(malformed("truncated Ethernet header"))?;
            l2.dst_mac = mac_at(d, 0);
            l2.src_mac = mac_at(d, 6);
            ethertype(d, 14, et, &mut l2)?;
        }
        LinkType::LINUX_SLL => {
            let proto = be16(d, 14).ok_or(malformed("truncated Linux SLL header"))?;
            let arphrd = be16(d, 2).unwrap_or(0);
            let halen = be16(d, 4).unwrap_or(0);
            if arphrd == ARPHRD_ETHER && halen == 6 {
                l2.src_mac = mac_at(d, 6);
            }
            sll_protocol(d, 16, proto, &mut l2)?;
        }
        LinkType::LINUX_SLL2 => {
            if d.len() < 20 {
                return Err(malformed("truncated Linux SLL2 header"));
            }
            let proto = be16(d, 0).unwrap_or(0);
            let arphrd = be16(d, 8).unwrap_or(0);
            let halen = d.get(11).copied().unwrap_or(0);
            if arphrd == ARPHRD_ETHER && halen == 6 {
                l2.src_mac = mac_at(d, 12);
            }
            sll_protocol(d, 20, proto, &mut l2)?;
        }
        LinkType::NULL => {
            // The writer's host byte order, which the file does not record: try both.
            let le = le32(d, 0).ok_or(malformed("truncated BSD loopback header"))?;
            let v = address_family(le)
                .or_else(|| address_family(le.swap_bytes()))
                .ok_or(DecodeError::NotIp)?;
            at_ip(&mut l2, 4, v);
        }
        LinkType::LOOP => {
            let af = be32(d, 0).ok_or(malformed("truncated BSD loopback header"))?;
            let v = address_family(af).ok_or(DecodeError::NotIp)?;
            at_ip(&mut l2, 4, v);
        }
        LinkType::PPP => {
            let mut off = 0;
            if d.starts_with(&[0xff, 0x03]) {
                off = 2;
            }
            let first = *d.get(off).ok_or(malformed("truncated PPP header"))?;
            // An odd first byte is a protocol-field-compressed (1-byte) protocol.
            let proto = if first & 1 == 1 {
                off += 1;
                u16::from(first)
            } else {
                let p = be16(d, off).ok_or(malformed("truncated PPP header"))?;
                off += 2;
                p
            };
            ppp_protocol(d, off, proto, &mut l2)?;
        }
        LinkType::RAW | LinkType::RAW_12 | LinkType::RAW_14 => {
            let v = version_nibble(d, 0).ok_or(malformed("raw link: not IPv4 or IPv6"))?;
            at_ip(&mut l2, 0, v);
        }
        LinkType::IPV4 => at_ip(&mut l2, 0, IpVersion::V4),
        LinkType::IPV6 => at_ip(&mut l2, 0, IpVersion::V6),
        _ => return Err(malformed("unsupported link type")),
    }
    Ok(l2)
}

fn at_ip(l2: &mut L2, off: usize, v: IpVersion) {
    l2.ip_off = off;
    l2.version = v;
}

/// BSD AF_INET, and AF_INET6 as NetBSD/OpenBSD (24), FreeBSD (28), macOS (30) and Linux (10)
/// number it: a capture may come from any of them.
fn address_family(af: u32) -> Option<IpVersion> {
    match af {
        2 => Some(IpVersion::V4),
        10 | 24 | 28 | 30 => Some(IpVersion::V6),
        _ => None,
    }
}

fn version_nibble(d: &[u8], off: usize) -> Option<IpVersion> {
    match d.get(off)? >> 4 {
        4 => Some(IpVersion::V4),
        6 => Some(IpVersion::V6),
        _ => None,
    }
}

fn sll_protocol(d: &[u8], off: usize, proto: u16, l2: &mut L2) -> Result<(), DecodeError> {
    if proto == SLL_P_802_2 {
        // Enter the ethertype walk at its 802.3 (LLC) branch.
        return ethertype(d, off, 0, l2);
    }
    if proto <= ET_MAX_8023_LEN {
        // Other Linux pseudo-protocols (802.3 raw, AX.25, CAN, ...): never IP.
        return Err(DecodeError::NotIp);
    }
    ethertype(d, off, proto, l2)
}

/// Follows ethertypes through VLAN tags, LLC/SNAP, MPLS and PPPoE to an IP header at `off`.
fn ethertype(d: &[u8], mut off: usize, mut et: u16, l2: &mut L2) -> Result<(), DecodeError> {
    let mut tags = 0u32;
    // Terminates: every iteration either returns or moves `off` forward within `d`.
    loop {
        match et {
            ET_IPV4 => {
                at_ip(l2, off, IpVersion::V4);
                return Ok(());
            }
            ET_IPV6 => {
                at_ip(l2, off, IpVersion::V6);
                return Ok(());
            }
            ET_VLAN | ET_QINQ | ET_QINQ_OLD => {
                let tci = be16(d, off).ok_or(malformed("truncated VLAN tag"))?;
                et = be16(d, off + 2).ok_or(malformed("truncated VLAN tag"))?;
                match tags {
                    0 => l2.vlan = tci & 0x0fff,
                    1 => l2.inner_vlan = tci & 0x0fff,
                    _ => {}
                }
                tags += 1;
                off += 4;
            }
            ET_MPLS_UC | ET_MPLS_MC => return mpls(d, off, l2),
            ET_PPPOE_SESSION => {
                // version/type, code, session id, length (6 bytes), then the PPP protocol.
                let proto = be16(d, off + 6).ok_or(malformed("truncated PPPoE header"))?;
                return ppp_protocol(d, off + 8, proto, l2);
            }
            _ if et <= ET_MAX_8023_LEN => {
                // 802.3 frame: only LLC/SNAP with the zero OUI carries an ethertype.
                if d.get(off..off + 6) != Some(&LLC_SNAP_ETHERTYPE[..]) {
                    return Err(DecodeError::NotIp);
                }
                et = be16(d, off + 6).ok_or(malformed("truncated SNAP header"))?;
                off += 8;
            }
            _ => return Err(DecodeError::NotIp),
        }
    }
}

fn ppp_protocol(d: &[u8], off: usize, proto: u16, l2: &mut L2) -> Result<(), DecodeError> {
    match proto {
        PPP_IPV4 => at_ip(l2, off, IpVersion::V4),
        PPP_IPV6 => at_ip(l2, off, IpVersion::V6),
        PPP_MPLS_UC | PPP_MPLS_MC => return mpls(d, off, l2),
        // LCP, IPCP, IPv6CP, CHAP, ...
        _ => return Err(DecodeError::NotIp),
    }
    Ok(())
}

/// Skips an MPLS label stack up to bottom-of-stack; the payload's first nibble says which IP.
fn mpls(d: &[u8], mut off: usize, l2: &mut L2) -> Result<(), DecodeError> {
    loop {
        let lse = be32(d, off).ok_or(malformed("truncated MPLS label stack"))?;
        off += 4;
        if lse & 0x100 != 0 {
            break;
        }
    }
    if off >= d.len() {
        return Err(malformed("MPLS label stack without payload"));
    }
    // Pseudowires (control word 0, or raw Ethernet) carry no IP directly.
    let v = version_nibble(d, off).ok_or(DecodeError::NotIp)?;
    at_ip(l2, off, v);
    Ok(())
}
