//! Link layer: from the start of a frame to the outermost IP header. Shared by `decode` (workers)
//! and `Dispatcher::hash` (reader), so both agree on which header is "the" IP header.

use super::pseudowire::{self, Payload};
use super::{nflog, DecodeError};
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

/// Ethernet frames inside MPLS pseudowires, one inside the other, followed at most: real links
/// nest one or two; past this a frame is damaged or hostile (a fixture nests 32).
const MAX_PSEUDOWIRES: u32 = 8;

/// Walks the link layer of `link` to the outermost IP header. `wire_len` is the frame's length
/// on the wire, which a few link-layer decisions read (as tshark reads its "reported" length).
pub(crate) fn locate_ip(link: LinkType, d: &[u8], wire_len: u32) -> Result<L2, DecodeError> {
    let wire = wire_len as usize;
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
            ethertype(d, 14, et, wire, &mut l2)?;
        }
        LinkType::LINUX_SLL => {
            let proto = be16(d, 14).ok_or(malformed("truncated Linux SLL header"))?;
            let arphrd = be16(d, 2).unwrap_or(0);
            let halen = be16(d, 4).unwrap_or(0);
            if arphrd == ARPHRD_ETHER && halen == 6 {
                l2.src_mac = mac_at(d, 6);
            }
            sll_protocol(d, 16, proto, wire, &mut l2)?;
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
            sll_protocol(d, 20, proto, wire, &mut l2)?;
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
            match ppp_protocol(d, off, proto, wire)? {
                Payload::Ip(off, v) => at_ip(&mut l2, off, v),
                Payload::Ethernet(off) => {
                    let et = inner_ethernet(d, off, &mut l2)?;
                    ethertype(d, off + 14, et, wire, &mut l2)?;
                }
            }
        }
        LinkType::RAW | LinkType::RAW_12 | LinkType::RAW_14 => {
            let v = version_nibble(d, 0).ok_or(malformed("raw link: not IPv4 or IPv6"))?;
            at_ip(&mut l2, 0, v);
        }
        LinkType::IPV4 => at_ip(&mut l2, 0, IpVersion::V4),
        LinkType::IPV6 => at_ip(&mut l2, 0, IpVersion::V6),
        LinkType::NFLOG | LinkType::NFLOG_BE => {
            let (off, v) = nflog::locate(d, link == LinkType::NFLOG_BE, wire)?;
            at_ip(&mut l2, off, v);
        }
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

fn sll_protocol(
    d: &[u8],
    off: usize,
    proto: u16,
    wire: usize,
    l2: &mut L2,
) -> Result<(), DecodeError> {
    if proto == SLL_P_802_2 {
        // Enter the ethertype walk at its 802.3 (LLC) branch.
        return ethertype(d, off, 0, wire, l2);
    }
    if proto <= ET_MAX_8023_LEN {
        // Other Linux pseudo-protocols (802.3 raw, AX.25, CAN, ...): never IP.
        return Err(DecodeError::NotIp);
    }
    ethertype(d, off, proto, wire, l2)
}

/// The MAC addresses of an Ethernet frame carried in a pseudowire at `off`, which are the
/// flow's (the outer frame's are the provider's routers), and its ethertype.
fn inner_ethernet(d: &[u8], off: usize, l2: &mut L2) -> Result<u16, DecodeError> {
    let et = be16(d, off + 12).ok_or(malformed("truncated Ethernet pseudowire"))?;
    l2.dst_mac = mac_at(d, off);
    l2.src_mac = mac_at(d, off + 6);
    Ok(et)
}

/// Follows ethertypes through VLAN tags, LLC/SNAP, MPLS, Ethernet pseudowires and PPPoE to an
/// IP header at `off`. VLAN tags count across pseudowires: the first two seen are kept.
fn ethertype(
    d: &[u8],
    mut off: usize,
    mut et: u16,
    wire: usize,
    l2: &mut L2,
) -> Result<(), DecodeError> {
    let mut tags = 0u32;
    let mut pseudowires = 0u32;
    // Where an MPLS label stack led: IP ends the walk, a pseudowire's Ethernet frame goes on.
    let mut enter = |payload: Payload, l2: &mut L2| -> Result<Option<(usize, u16)>, DecodeError> {
        match payload {
            Payload::Ip(off, v) => {
                at_ip(l2, off, v);
                Ok(None)
            }
            Payload::Ethernet(off) => {
                pseudowires += 1;
                if pseudowires > MAX_PSEUDOWIRES {
                    return Err(malformed("Ethernet pseudowires nested too deep"));
                }
                Ok(Some((off + 14, inner_ethernet(d, off, l2)?)))
            }
        }
    };
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
            ET_MPLS_UC | ET_MPLS_MC => match enter(pseudowire::mpls(d, off, wire)?, l2)? {
                None => return Ok(()),
                Some(next) => (off, et) = next,
            },
            ET_PPPOE_SESSION => {
                // version/type, code, session id, length (6 bytes), then the PPP protocol.
                let proto = be16(d, off + 6).ok_or(malformed("truncated PPPoE header"))?;
                match enter(ppp_protocol(d, off + 8, proto, wire)?, l2)? {
                    None => return Ok(()),
                    Some(next) => (off, et) = next,
                }
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

fn ppp_protocol(d: &[u8], off: usize, proto: u16, wire: usize) -> Result<Payload, DecodeError> {
    match proto {
        PPP_IPV4 => Ok(Payload::Ip(off, IpVersion::V4)),
        PPP_IPV6 => Ok(Payload::Ip(off, IpVersion::V6)),
        PPP_MPLS_UC | PPP_MPLS_MC => pseudowire::mpls(d, off, wire),
        // LCP, IPCP, IPv6CP, CHAP, ...
        _ => Err(DecodeError::NotIp),
    }
}

#[cfg(test)]
mod tests {
    use crate::capture::LinkType;
    use crate::decode::test_frames::*;
    use crate::decode::DecodeError;

    // ---- Ethernet, tags, MPLS, PPPoE, LLC ----

    #[test]
    fn ethernet_ipv4_tcp_fields() {
        let frame = eth(0x0800, &ipv4(6, A4, B4, &tcp(40000, 443, 0x12)));
        let m = ok(LinkType::ETHERNET, &frame);
        assert_eq!(m.ts, 42);
        assert_eq!((m.src, m.dst), (v4(A4), v4(B4)));
        assert_eq!(
            (m.proto, m.sport, m.dport, m.tcp_flags),
            (6, 40000, 443, 0x12)
        );
        assert_eq!((m.src_mac, m.dst_mac), (Some(SMAC), Some(DMAC)));
        assert_eq!((m.vlan, m.inner_vlan), (0, 0));
        assert_eq!(m.ip_bytes, 40);
        assert_eq!(m.frag, None);
    }

    #[test]
    fn tcp_flags_are_the_low_byte() {
        let frame = eth(0x0800, &ipv4(6, A4, B4, &tcp(1, 2, 0xff)));
        assert_eq!(ok(LinkType::ETHERNET, &frame).tcp_flags, 0xff);
        let frame = eth(0x0800, &ipv4(6, A4, B4, &tcp(1, 2, 0x80 | 0x01)));
        assert_eq!(ok(LinkType::ETHERNET, &frame).tcp_flags, 0x81);
    }

    #[test]
    fn ethernet_ipv6() {
        assert_udp6(&ok(LinkType::ETHERNET, &eth(0x86dd, &udp6())));
    }

    #[test]
    fn single_vlan_tag() {
        let frame = eth(0x8100, &cat(&[&[0x20, 0x64, 0x08, 0x00], &udp4()]));
        let m = ok(LinkType::ETHERNET, &frame);
        assert_udp4(&m);
        // PCP bits (0x2000) are not part of the id.
        assert_eq!((m.vlan, m.inner_vlan), (100, 0));
    }

    #[test]
    fn qinq_outer_and_inner_tag() {
        let tags: &[u8] = &[0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x86, 0xdd];
        let m = ok(LinkType::ETHERNET, &eth(0x88a8, &cat(&[tags, &udp6()])));
        assert_udp6(&m);
        assert_eq!((m.vlan, m.inner_vlan), (10, 20));
    }

    #[test]
    fn third_tag_is_skipped() {
        let tags: &[u8] = &[0, 1, 0x81, 0x00, 0, 2, 0x81, 0x00, 0, 3, 0x08, 0x00];
        let m = ok(LinkType::ETHERNET, &eth(0x9100, &cat(&[tags, &udp4()])));
        assert_udp4(&m);
        assert_eq!((m.vlan, m.inner_vlan), (1, 2));
    }

    #[test]
    fn truncated_vlan_tag_is_malformed() {
        assert!(matches!(
            dec(LinkType::ETHERNET, &eth(0x8100, &[0, 1])),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn mpls_label_stack_to_ipv4_and_ipv6() {
        // Two labels, bottom-of-stack on the second.
        let labels: &[u8] = &[0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40];
        assert_udp4(&ok(
            LinkType::ETHERNET,
            &eth(0x8847, &cat(&[labels, &udp4()])),
        ));
        assert_udp6(&ok(
            LinkType::ETHERNET,
            &eth(0x8848, &cat(&[labels, &udp6()])),
        ));
    }

    /// Pseudowires are tested in `link_tests`.
    #[test]
    fn mpls_cut_stack_is_malformed() {
        // No bottom-of-stack before the frame ends.
        let cut = eth(0x8847, &[0x00, 0x01, 0x00, 0x40, 0x00]);
        assert!(matches!(
            dec(LinkType::ETHERNET, &cut),
            Err(DecodeError::Malformed(_))
        ));
        // Bottom of stack, then nothing.
        let empty = eth(0x8847, &[0x00, 0x01, 0x01, 0x40]);
        assert!(matches!(
            dec(LinkType::ETHERNET, &empty),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn pppoe_session_ipv4_ipv6_and_control() {
        let hdr = |proto: u16| cat(&[&[0x11, 0x00, 0x12, 0x34, 0x00, 0x40], &proto.to_be_bytes()]);
        assert_udp4(&ok(
            LinkType::ETHERNET,
            &eth(0x8864, &cat(&[&hdr(0x0021), &udp4()])),
        ));
        assert_udp6(&ok(
            LinkType::ETHERNET,
            &eth(0x8864, &cat(&[&hdr(0x0057), &udp6()])),
        ));
        // LCP and IPCP inside the session are not IP.
        let lcp = eth(0x8864, &cat(&[&hdr(0xc021), &[1, 1, 0, 4]]));
        assert_eq!(dec(LinkType::ETHERNET, &lcp), Err(DecodeError::NotIp));
        let ipcp = eth(0x8864, &cat(&[&hdr(0x8021), &[1, 1, 0, 4]]));
        assert_eq!(dec(LinkType::ETHERNET, &ipcp), Err(DecodeError::NotIp));
        // Discovery (PADI).
        let padi = eth(0x8863, &[0x11, 0x09, 0, 0, 0, 0]);
        assert_eq!(dec(LinkType::ETHERNET, &padi), Err(DecodeError::NotIp));
    }

    #[test]
    fn pppoe_with_qinq_keeps_tags() {
        let tags: &[u8] = &[0, 7, 0x81, 0x00, 0, 8, 0x88, 0x64];
        let pppoe: &[u8] = &[0x11, 0x00, 0x00, 0x01, 0x00, 0x40, 0x00, 0x21];
        let m = ok(
            LinkType::ETHERNET,
            &eth(0x8100, &cat(&[tags, pppoe, &udp4()])),
        );
        assert_udp4(&m);
        assert_eq!((m.vlan, m.inner_vlan), (7, 8));
    }

    #[test]
    fn non_ip_ethertypes() {
        for et in [0x0806u16, 0x88cc, 0x888e, 0x8035] {
            assert_eq!(
                dec(LinkType::ETHERNET, &eth(et, &[0; 46])),
                Err(DecodeError::NotIp),
                "ethertype {et:#06x}"
            );
        }
        // 802.3 with plain LLC (spanning tree).
        assert_eq!(
            dec(
                LinkType::ETHERNET,
                &eth(0x0026, &[0x42, 0x42, 0x03, 0, 0, 0])
            ),
            Err(DecodeError::NotIp)
        );
    }

    #[test]
    fn llc_snap_carries_ipv4() {
        let snap: &[u8] = &[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
        let m = ok(LinkType::ETHERNET, &eth(36, &cat(&[snap, &udp4()])));
        assert_udp4(&m);
    }

    #[test]
    fn truncated_ethernet_header_is_malformed() {
        assert!(matches!(
            dec(LinkType::ETHERNET, &[0; 13]),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(LinkType::ETHERNET, &[]),
            Err(DecodeError::Malformed(_))
        ));
    }

    // ---- other link types ----

    #[test]
    fn linux_sll() {
        let m = ok(LinkType::LINUX_SLL, &sll(1, 6, 0x0800, &udp4()));
        assert_udp4(&m);
        assert_eq!((m.src_mac, m.dst_mac), (Some(SMAC), None));
        // Loopback device (ARPHRD_LOOPBACK = 772): its address is no MAC.
        let m = ok(LinkType::LINUX_SLL, &sll(772, 6, 0x86dd, &udp6()));
        assert_udp6(&m);
        assert_eq!(m.src_mac, None);
        // A VLAN tag left in the frame by the kernel.
        let m = ok(
            LinkType::LINUX_SLL,
            &sll(1, 6, 0x8100, &cat(&[&[0, 5, 8, 0], &udp4()])),
        );
        assert_eq!(m.vlan, 5);
        assert_eq!(
            dec(LinkType::LINUX_SLL, &sll(1, 6, 0x0806, &[0; 28])),
            Err(DecodeError::NotIp)
        );
        // Linux pseudo-protocol (ETH_P_CAN) below 1500.
        assert_eq!(
            dec(LinkType::LINUX_SLL, &sll(280, 0, 0x000c, &[0; 16])),
            Err(DecodeError::NotIp)
        );
        assert!(matches!(
            dec(LinkType::LINUX_SLL, &[0; 15]),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn linux_sll2() {
        let m = ok(LinkType::LINUX_SLL2, &sll2(1, 6, 0x0800, &udp4()));
        assert_udp4(&m);
        assert_eq!(m.src_mac, Some(SMAC));
        let m = ok(LinkType::LINUX_SLL2, &sll2(65534, 0, 0x86dd, &udp6()));
        assert_udp6(&m);
        assert_eq!(m.src_mac, None);
        assert!(matches!(
            dec(LinkType::LINUX_SLL2, &[0x08, 0, 0, 0]),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn bsd_null_in_either_byte_order() {
        assert_udp4(&ok(LinkType::NULL, &cat(&[&2u32.to_le_bytes(), &udp4()])));
        assert_udp4(&ok(LinkType::NULL, &cat(&[&2u32.to_be_bytes(), &udp4()])));
        for af in [10u32, 24, 28, 30] {
            assert_udp6(&ok(LinkType::NULL, &cat(&[&af.to_le_bytes(), &udp6()])));
            assert_udp6(&ok(LinkType::NULL, &cat(&[&af.to_be_bytes(), &udp6()])));
        }
        assert_eq!(
            dec(LinkType::NULL, &cat(&[&7u32.to_le_bytes(), &udp4()])),
            Err(DecodeError::NotIp)
        );
        assert!(matches!(
            dec(LinkType::NULL, &[2, 0]),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn bsd_loop_is_network_order_only() {
        assert_udp4(&ok(LinkType::LOOP, &cat(&[&2u32.to_be_bytes(), &udp4()])));
        assert_udp6(&ok(LinkType::LOOP, &cat(&[&30u32.to_be_bytes(), &udp6()])));
        assert_eq!(
            dec(LinkType::LOOP, &cat(&[&2u32.to_le_bytes(), &udp4()])),
            Err(DecodeError::NotIp)
        );
    }

    #[test]
    fn ppp_variants() {
        assert_udp4(&ok(
            LinkType::PPP,
            &cat(&[&[0xff, 0x03, 0x00, 0x21], &udp4()]),
        ));
        assert_udp6(&ok(LinkType::PPP, &cat(&[&[0x00, 0x57], &udp6()])));
        // Protocol-field compression: a single odd byte.
        assert_udp4(&ok(LinkType::PPP, &cat(&[&[0xff, 0x03, 0x21], &udp4()])));
        // MPLS over PPP.
        let mpls = cat(&[&[0xff, 0x03, 0x02, 0x81, 0x00, 0x01, 0x01, 0x40], &udp4()]);
        assert_udp4(&ok(LinkType::PPP, &mpls));
        assert_eq!(
            dec(LinkType::PPP, &[0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4]),
            Err(DecodeError::NotIp)
        );
        assert!(matches!(
            dec(LinkType::PPP, &[0xff, 0x03]),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn raw_ip_links() {
        for link in [LinkType::RAW, LinkType::RAW_12, LinkType::RAW_14] {
            assert_udp4(&ok(link, &udp4()));
            let m = ok(link, &udp6());
            assert_udp6(&m);
            assert_eq!((m.src_mac, m.dst_mac, m.vlan), (None, None, 0));
            assert!(matches!(
                dec(link, &[0x50; 40]),
                Err(DecodeError::Malformed(_))
            ));
            assert!(matches!(dec(link, &[]), Err(DecodeError::Malformed(_))));
        }
    }

    #[test]
    fn ipv4_and_ipv6_links_check_the_version() {
        assert_udp4(&ok(LinkType::IPV4, &udp4()));
        assert_udp6(&ok(LinkType::IPV6, &udp6()));
        assert!(matches!(
            dec(LinkType::IPV4, &udp6()),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(LinkType::IPV6, &udp4()),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_link_type() {
        assert_eq!(
            dec(LinkType(147), &udp4()),
            Err(DecodeError::Malformed("unsupported link type"))
        );
    }
}
