//! Hand-made frames for every link type and header path `decode` and `Dispatcher` take.

use super::*;
use crate::capture::LinkType;
use std::net::{Ipv4Addr, Ipv6Addr};

const A4: [u8; 4] = [10, 0, 0, 1];
const B4: [u8; 4] = [192, 168, 1, 2];
const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const SMAC: [u8; 6] = [2, 0, 0, 0, 0, 0xaa];
const DMAC: [u8; 6] = [2, 0, 0, 0, 0, 0xbb];

fn ipv4_full(
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    id: u16,
    flags_off: u16,
    payload: &[u8],
) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&flags_off.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(payload);
    v
}

fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    ipv4_full(proto, src, dst, 0x1234, 0x4000, payload)
}

fn ipv6(nh: u8, src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[nh, 64]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(payload);
    v
}

fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut v = sport.to_be_bytes().to_vec();
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&[0, 8, 0, 0]);
    v
}

fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut v = sport.to_be_bytes().to_vec();
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    v
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = DMAC.to_vec();
    v.extend_from_slice(&SMAC);
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn pkt(link: LinkType, data: &[u8]) -> Packet<'_> {
    Packet {
        ts: 42,
        wire_len: data.len() as u32,
        link,
        data,
    }
}

fn dec(link: LinkType, data: &[u8]) -> Result<PacketMeta, DecodeError> {
    decode(&pkt(link, data))
}

fn ok(link: LinkType, data: &[u8]) -> PacketMeta {
    match dec(link, data) {
        Ok(m) => m,
        Err(e) => panic!("decode failed: {e:?}"),
    }
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn v6(a: [u8; 16]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(a))
}

fn udp4() -> Vec<u8> {
    ipv4(17, A4, B4, &udp(1000, 53))
}

fn udp6() -> Vec<u8> {
    ipv6(17, A6, B6, &udp(1000, 53))
}

fn assert_udp4(m: &PacketMeta) {
    assert_eq!((m.src, m.dst), (v4(A4), v4(B4)));
    assert_eq!((m.proto, m.sport, m.dport), (17, 1000, 53));
    assert_eq!(m.ip_bytes, 28);
}

fn assert_udp6(m: &PacketMeta) {
    assert_eq!((m.src, m.dst), (v6(A6), v6(B6)));
    assert_eq!((m.proto, m.sport, m.dport), (17, 1000, 53));
    assert_eq!(m.ip_bytes, 48);
}

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

#[test]
fn mpls_pseudowire_is_not_ip_and_cut_stack_is_malformed() {
    let cw_ethernet = cat(&[
        &[0x00, 0x01, 0x01, 0x40],
        &[0, 0, 0, 0],
        &eth(0x0800, &udp4()),
    ]);
    assert_eq!(
        dec(LinkType::ETHERNET, &eth(0x8847, &cw_ethernet)),
        Err(DecodeError::NotIp)
    );
    // No bottom-of-stack before the frame ends.
    let cut = eth(0x8847, &[0x00, 0x01, 0x00, 0x40, 0x00]);
    assert!(matches!(
        dec(LinkType::ETHERNET, &cut),
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

fn sll(arphrd: u16, halen: u16, proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0];
    v.extend_from_slice(&arphrd.to_be_bytes());
    v.extend_from_slice(&halen.to_be_bytes());
    v.extend_from_slice(&SMAC);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&proto.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn sll2(arphrd: u16, halen: u8, proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = proto.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0, 0, 0, 0, 2]);
    v.extend_from_slice(&arphrd.to_be_bytes());
    v.extend_from_slice(&[4, halen]);
    v.extend_from_slice(&SMAC);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}

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

// ---- IP and transport ----

#[test]
fn ethertype_ipv4_with_other_version_is_malformed() {
    assert!(matches!(
        dec(LinkType::ETHERNET, &eth(0x0800, &udp6())),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        dec(LinkType::ETHERNET, &eth(0x86dd, &udp4())),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn ipv4_ihl_and_total_length_checks() {
    let mut p = udp4();
    p[0] = 0x44;
    assert_eq!(
        dec(LinkType::RAW, &p),
        Err(DecodeError::Malformed("IPv4 header length below 20"))
    );
    let mut p = udp4();
    p[2..4].copy_from_slice(&19u16.to_be_bytes());
    assert!(matches!(
        dec(LinkType::RAW, &p),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn ipv4_options_are_skipped() {
    let mut p = ipv4(17, A4, B4, &cat(&[&[1, 1, 1, 0], &udp(7, 9)]));
    p[0] = 0x46;
    let m = ok(LinkType::RAW, &p);
    assert_eq!((m.sport, m.dport, m.ip_bytes), (7, 9, 32));
}

#[test]
fn ethernet_padding_is_not_counted_or_read() {
    // A 20-byte TCP-less IPv4 packet padded to the 60-byte Ethernet minimum with bytes that
    // would read as ports.
    let mut frame = eth(0x0800, &ipv4(6, A4, B4, &[]));
    frame.extend_from_slice(&[0x55; 26]);
    let m = ok(LinkType::ETHERNET, &frame);
    assert_eq!((m.ip_bytes, m.sport, m.dport, m.tcp_flags), (20, 0, 0, 0));
    let mut frame = eth(0x0800, &udp4());
    frame.extend_from_slice(&[0; 18]);
    assert_udp4(&ok(LinkType::ETHERNET, &frame));
}

#[test]
fn other_port_protocols() {
    for proto in [132u8, 136, 33] {
        let m = ok(LinkType::RAW, &ipv4(proto, A4, B4, &udp(5060, 5061)));
        assert_eq!(
            (m.proto, m.sport, m.dport, m.tcp_flags),
            (proto, 5060, 5061, 0)
        );
    }
    // No ports for protocols that have none.
    let m = ok(LinkType::RAW, &ipv4(89, A4, B4, &udp(1, 2)));
    assert_eq!((m.proto, m.sport, m.dport), (89, 0, 0));
}

#[test]
fn icmp_type_and_code() {
    let m = ok(LinkType::RAW, &ipv4(1, A4, B4, &[8, 0, 0, 0, 0, 1, 0, 1]));
    assert_eq!((m.proto, m.sport, m.dport), (1, 0, 8 * 256));
    let m = ok(LinkType::RAW, &ipv4(1, A4, B4, &[3, 3, 0, 0, 0, 0, 0, 0]));
    assert_eq!(m.dport, 3 * 256 + 3);
    let m = ok(LinkType::RAW, &ipv4(1, A4, B4, &[11, 0, 0, 0, 0, 0, 0, 0]));
    assert_eq!(m.dport, 11 * 256);
    let m = ok(
        LinkType::RAW,
        &ipv6(58, A6, B6, &[128, 0, 0, 0, 0, 1, 0, 1]),
    );
    assert_eq!((m.proto, m.sport, m.dport), (58, 0, 128 * 256));
    let m = ok(LinkType::RAW, &ipv6(58, A6, B6, &[1, 4, 0, 0]));
    assert_eq!(m.dport, 256 + 4);
}

#[test]
fn ipv4_fragments() {
    let payload = cat(&[&udp(1000, 53), &[0; 16]]);
    // First: MF, offset 0.
    let m = ok(
        LinkType::RAW,
        &ipv4_full(17, A4, B4, 0xbeef, 0x2000, &payload),
    );
    assert_eq!(
        m.frag,
        Some(Fragment {
            id: 0xbeef,
            first: true
        })
    );
    assert_eq!((m.sport, m.dport), (1000, 53));
    // Middle: MF, offset 3 (24 bytes); bytes there are not a UDP header.
    let m = ok(
        LinkType::RAW,
        &ipv4_full(17, A4, B4, 0xbeef, 0x2003, &payload),
    );
    assert_eq!(
        m.frag,
        Some(Fragment {
            id: 0xbeef,
            first: false
        })
    );
    assert_eq!((m.proto, m.sport, m.dport), (17, 0, 0));
    // Last: no MF, offset != 0.
    let m = ok(
        LinkType::RAW,
        &ipv4_full(17, A4, B4, 0xbeef, 0x0006, &payload),
    );
    assert_eq!(
        m.frag,
        Some(Fragment {
            id: 0xbeef,
            first: false
        })
    );
    assert_eq!((m.sport, m.dport), (0, 0));
    // DF only: not a fragment.
    let m = ok(
        LinkType::RAW,
        &ipv4_full(17, A4, B4, 0xbeef, 0x4000, &payload),
    );
    assert_eq!(m.frag, None);
}

fn frag6(nh: u8, off_units: u16, more: bool, id: u32) -> Vec<u8> {
    let fo = (off_units << 3) | u16::from(more);
    cat(&[&[nh, 0], &fo.to_be_bytes(), &id.to_be_bytes()])
}

#[test]
fn ipv6_fragments() {
    let first = ipv6(
        44,
        A6,
        B6,
        &cat(&[&frag6(17, 0, true, 0xdead_beef), &udp(1000, 53)]),
    );
    let m = ok(LinkType::RAW, &first);
    assert_eq!(
        m.frag,
        Some(Fragment {
            id: 0xdead_beef,
            first: true
        })
    );
    assert_eq!((m.proto, m.sport, m.dport), (17, 1000, 53));
    let later = ipv6(
        44,
        A6,
        B6,
        &cat(&[&frag6(17, 185, false, 0xdead_beef), &udp(1, 2)]),
    );
    let m = ok(LinkType::RAW, &later);
    assert_eq!(
        m.frag,
        Some(Fragment {
            id: 0xdead_beef,
            first: false
        })
    );
    assert_eq!((m.proto, m.sport, m.dport), (17, 0, 0));
    // Atomic fragment: a whole datagram.
    let atomic = ipv6(44, A6, B6, &cat(&[&frag6(17, 0, false, 9), &udp(1000, 53)]));
    let m = ok(LinkType::RAW, &atomic);
    assert_eq!(m.frag, None);
    assert_eq!((m.sport, m.dport), (1000, 53));
}

#[test]
fn ipv6_extension_chain_to_tcp() {
    let hbh: &[u8] = &[43, 0, 1, 4, 0, 0, 0, 0];
    let routing: &[u8] = &[
        60, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let dst: &[u8] = &[51, 0, 1, 4, 0, 0, 0, 0];
    // AH: length in 4-byte units minus 2 (here 4 → 24 bytes).
    let mut ah = vec![6, 4, 0, 0];
    ah.extend_from_slice(&[0; 20]);
    let p = ipv6(
        0,
        A6,
        B6,
        &cat(&[hbh, routing, dst, &ah, &tcp(22, 50000, 0x18)]),
    );
    let m = ok(LinkType::RAW, &p);
    assert_eq!(
        (m.proto, m.sport, m.dport, m.tcp_flags),
        (6, 22, 50000, 0x18)
    );
    assert_eq!(m.ip_bytes, p.len() as u64);
}

#[test]
fn ipv6_overlong_or_cut_chain_still_counts() {
    // 200 destination-options headers: walked to the UDP header (the work is bounded by the
    // frame: every header is at least 8 bytes).
    let mut chain = Vec::new();
    for _ in 0..200 {
        chain.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    }
    if let Some(last) = chain.len().checked_sub(8) {
        chain[last] = 17;
    }
    let p = ipv6(60, A6, B6, &cat(&[&chain, &udp(1, 2)]));
    let m = ok(LinkType::RAW, &p);
    assert_eq!((m.proto, m.sport, m.dport), (17, 1, 2));
    assert_eq!(m.ip_bytes, p.len() as u64);
    // The same chain cut in its middle.
    let m = ok(LinkType::RAW, &p[..40 + 800 + 4]);
    assert_eq!((m.proto, m.sport, m.dport), (60, 0, 0));
    assert_eq!(m.ip_bytes, p.len() as u64);
    // Hop-by-hop header cut by the snap length.
    let p = ipv6(0, A6, B6, &cat(&[&[17, 0, 1, 4, 0, 0, 0, 0], &udp(1, 2)]));
    let m = ok(LinkType::RAW, &p[..44]);
    assert_eq!((m.proto, m.sport, m.dport, m.ip_bytes), (0, 0, 0, 56));
}

#[test]
fn ipv6_chain_through_mobility_header() {
    // etherparse stops at a Mobility header; the walk steps over it and goes on.
    let dst: &[u8] = &[135, 0, 1, 4, 0, 0, 0, 0];
    let mobility: &[u8] = &[60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let dst2: &[u8] = &[17, 0, 1, 4, 0, 0, 0, 0];
    let p = ipv6(60, A6, B6, &cat(&[dst, mobility, dst2, &udp(7, 8)]));
    let m = ok(LinkType::RAW, &p);
    assert_eq!((m.proto, m.sport, m.dport), (17, 7, 8));
    // Cut inside the Mobility header: the last next-header reached, no ports.
    let m = ok(LinkType::RAW, &p[..40 + 8 + 10]);
    assert_eq!((m.proto, m.sport, m.dport), (135, 0, 0));
}

#[test]
fn later_ipv6_fragment_ends_the_chain() {
    // Fragment data that would parse as a destination-options header and a UDP header.
    let data = cat(&[&[17, 0, 1, 4, 0, 0, 0, 0], &udp(1, 2)]);
    let p = ipv6(44, A6, B6, &cat(&[&frag6(60, 3, true, 5), &data]));
    let m = ok(LinkType::RAW, &p);
    assert_eq!((m.proto, m.sport, m.dport), (60, 0, 0));
    assert_eq!(
        m.frag,
        Some(Fragment {
            id: 5,
            first: false
        })
    );
}

#[test]
fn ipv4_ah_stays_the_protocol() {
    let mut ah = vec![17, 4, 0, 0];
    ah.extend_from_slice(&[0; 20]);
    let m = ok(LinkType::RAW, &ipv4(51, A4, B4, &cat(&[&ah, &udp(1, 2)])));
    assert_eq!((m.proto, m.sport, m.dport), (51, 0, 0));
}

#[test]
fn ipv4_options_cut_by_the_snap_length() {
    let mut p = ipv4(17, A4, B4, &cat(&[&[1, 1, 1, 0], &udp(7, 9)]));
    p[0] = 0x46;
    for n in 20..24 {
        let m = ok(LinkType::RAW, &p[..n]);
        assert_eq!((m.src, m.dst, m.proto), (v4(A4), v4(B4), 17));
        assert_eq!((m.ip_bytes, m.sport, m.dport), (32, 0, 0));
    }
}

#[test]
fn cut_or_odd_transport_headers_keep_their_ports() {
    // TCP with a data offset below 5, which etherparse refuses.
    let mut t = tcp(80, 81, 0x12);
    t[12] = 0x40;
    let m = ok(LinkType::RAW, &ipv4(6, A4, B4, &t));
    assert_eq!((m.sport, m.dport, m.tcp_flags), (80, 81, 0x12));
    // 14 bytes of TCP: ports and flags.
    let p = ipv4(6, A4, B4, &tcp(80, 81, 0x12));
    let m = ok(LinkType::RAW, &p[..34]);
    assert_eq!((m.sport, m.dport, m.tcp_flags), (80, 81, 0x12));
    // 4 bytes of UDP.
    let m = ok(LinkType::RAW, &udp4()[..24]);
    assert_eq!((m.sport, m.dport), (1000, 53));
    // ICMP timestamp request of unexpected length.
    let m = ok(LinkType::RAW, &ipv4(1, A4, B4, &[13, 0, 0, 0, 0, 0, 0, 0]));
    assert_eq!(m.dport, 13 * 256);
}

#[test]
fn ipv6_jumbogram_length() {
    let jumbo_len: u32 = 80_000;
    let hbh = cat(&[&[6, 0, 0xc2, 4], &jumbo_len.to_be_bytes()]);
    let mut p = ipv6(0, A6, B6, &cat(&[&hbh, &tcp(1, 2, 0x10)]));
    p[4..6].copy_from_slice(&[0, 0]);
    let m = ok(LinkType::RAW, &p);
    assert_eq!(m.ip_bytes, 80_040);
    assert_eq!((m.proto, m.sport, m.dport, m.tcp_flags), (6, 1, 2, 0x10));
    // Jumbo option after padding.
    let hbh = cat(&[
        &[6, 1, 0, 1, 0, 0xc2, 4],
        &jumbo_len.to_be_bytes(),
        &[1, 1, 0],
    ]);
    let mut p = ipv6(0, A6, B6, &cat(&[&hbh, &tcp(1, 2, 0x10)]));
    p[4..6].copy_from_slice(&[0, 0]);
    assert_eq!(ok(LinkType::RAW, &p).ip_bytes, 80_040);
    // Payload length 0 without the option: what the header says.
    let mut p = udp6();
    p[4..6].copy_from_slice(&[0, 0]);
    assert_eq!(ok(LinkType::RAW, &p).ip_bytes, 40);
}

#[test]
fn ipv4_zero_total_length_uses_the_wire_length() {
    let mut frame = eth(0x0800, &ipv4(6, A4, B4, &tcp(1, 2, 0x10)));
    frame[16..18].copy_from_slice(&[0, 0]);
    let p = Packet {
        ts: 0,
        wire_len: 80_066,
        link: LinkType::ETHERNET,
        data: &frame,
    };
    let m = decode(&p).expect("decodes");
    assert_eq!(m.ip_bytes, 80_052);
    assert_eq!((m.sport, m.dport), (1, 2));
}

#[test]
fn snaplen_cut_frames() {
    let frame = eth(0x0800, &ipv4(6, A4, B4, &tcp(40000, 443, 0x02)));
    // Up to the addresses only: the header's length still counts.
    let m = ok(LinkType::ETHERNET, &frame[..34]);
    assert_eq!((m.src, m.dst, m.ip_bytes), (v4(A4), v4(B4), 40));
    assert_eq!((m.sport, m.dport, m.tcp_flags), (0, 0, 0));
    // Ports captured, flags not.
    let m = ok(LinkType::ETHERNET, &frame[..40]);
    assert_eq!((m.sport, m.dport, m.tcp_flags), (40000, 443, 0));
    // Three bytes of TCP: no ports.
    let m = ok(LinkType::ETHERNET, &frame[..37]);
    assert_eq!((m.sport, m.dport), (0, 0));
    // Cut inside the addresses.
    assert!(matches!(
        dec(LinkType::ETHERNET, &frame[..33]),
        Err(DecodeError::Malformed(_))
    ));
    let frame6 = eth(0x86dd, &udp6());
    let m = ok(LinkType::ETHERNET, &frame6[..54]);
    assert_eq!((m.src, m.dst, m.ip_bytes, m.sport), (v6(A6), v6(B6), 48, 0));
    assert!(matches!(
        dec(LinkType::ETHERNET, &frame6[..53]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn every_prefix_of_a_frame_is_safe() {
    let frames = [
        (
            LinkType::ETHERNET,
            eth(
                0x8100,
                &cat(&[
                    &[0, 1, 0x86, 0xdd],
                    &ipv6(44, A6, B6, &cat(&[&frag6(6, 0, true, 1), &tcp(1, 2, 3)])),
                ]),
            ),
        ),
        (
            LinkType::ETHERNET,
            eth(0x8864, &cat(&[&[0x11, 0, 0, 1, 0, 0x40, 0, 0x21], &udp4()])),
        ),
        (
            LinkType::PPP,
            cat(&[&[0xff, 0x03, 0x02, 0x81, 0x00, 0x01, 0x01, 0x40], &udp4()]),
        ),
        (LinkType::LINUX_SLL2, sll2(1, 6, 0x0800, &udp4())),
    ];
    let mut d = Dispatcher::new();
    for (link, frame) in &frames {
        for n in 0..=frame.len() {
            let p = Packet {
                ts: 0,
                wire_len: frame.len() as u32,
                link: *link,
                data: &frame[..n],
            };
            let r = decode(&p);
            let h = d.hash(&p);
            if r.is_err() {
                assert_eq!(h, 0);
            }
        }
    }
}

#[test]
fn tunnels_are_not_opened() {
    // IP-in-IP.
    let inner = ipv4(17, [1, 1, 1, 1], [2, 2, 2, 2], &udp(5, 6));
    let m = ok(LinkType::RAW, &ipv4(4, A4, B4, &inner));
    assert_eq!(
        (m.src, m.dst, m.proto, m.sport, m.dport),
        (v4(A4), v4(B4), 4, 0, 0)
    );
    // 6in4.
    let m = ok(LinkType::RAW, &ipv4(41, A4, B4, &udp6()));
    assert_eq!((m.src, m.proto), (v4(A4), 41));
    // GRE.
    let m = ok(
        LinkType::RAW,
        &ipv4(47, A4, B4, &cat(&[&[0, 0, 8, 0], &inner])),
    );
    assert_eq!((m.src, m.proto, m.sport, m.dport), (v4(A4), 47, 0, 0));
    // VXLAN: the outer UDP ports.
    let vx = cat(&[
        &udp(54321, 4789),
        &[8, 0, 0, 0, 0, 0, 1, 0],
        &eth(0x0800, &inner),
    ]);
    let m = ok(LinkType::RAW, &ipv4(17, A4, B4, &vx));
    assert_eq!((m.src, m.sport, m.dport), (v4(A4), 54321, 4789));
}

// ---- dispatch ----

fn hash(d: &mut Dispatcher, link: LinkType, data: &[u8]) -> u64 {
    d.hash(&pkt(link, data))
}

#[test]
fn hash_is_symmetric() {
    let mut d = Dispatcher::new();
    let ab = hash(&mut d, LinkType::RAW, &ipv4(6, A4, B4, &tcp(40000, 443, 2)));
    let ba = hash(
        &mut d,
        LinkType::RAW,
        &ipv4(6, B4, A4, &tcp(443, 40000, 0x12)),
    );
    assert_eq!(ab, ba);
    assert_ne!(ab, 0);
    let other_port = hash(&mut d, LinkType::RAW, &ipv4(6, A4, B4, &tcp(40001, 443, 2)));
    assert_ne!(ab, other_port);
    let other_proto = hash(&mut d, LinkType::RAW, &ipv4(17, A4, B4, &udp(40000, 443)));
    assert_ne!(ab, other_proto);
    // Same address both ends: the ports decide the order.
    let x = hash(&mut d, LinkType::RAW, &ipv4(17, A4, A4, &udp(1, 2)));
    let y = hash(&mut d, LinkType::RAW, &ipv4(17, A4, A4, &udp(2, 1)));
    assert_eq!(x, y);
    let ab6 = hash(&mut d, LinkType::RAW, &ipv6(17, A6, B6, &udp(1000, 53)));
    let ba6 = hash(&mut d, LinkType::RAW, &ipv6(17, B6, A6, &udp(53, 1000)));
    assert_eq!(ab6, ba6);
    assert_ne!(ab6, ab);
}

#[test]
fn icmp_replies_hash_like_their_requests() {
    let mut d = Dispatcher::new();
    let req = hash(
        &mut d,
        LinkType::RAW,
        &ipv4(1, A4, B4, &[8, 0, 0, 0, 0, 1, 0, 1]),
    );
    let rep = hash(
        &mut d,
        LinkType::RAW,
        &ipv4(1, B4, A4, &[0, 0, 0, 0, 0, 1, 0, 1]),
    );
    assert_eq!(req, rep);
    let req6 = hash(
        &mut d,
        LinkType::RAW,
        &ipv6(58, A6, B6, &[128, 0, 0, 0, 0, 1, 0, 1]),
    );
    let rep6 = hash(
        &mut d,
        LinkType::RAW,
        &ipv6(58, B6, A6, &[129, 0, 0, 0, 0, 1, 0, 1]),
    );
    assert_eq!(req6, rep6);
}

#[test]
fn hash_ignores_the_link_layer() {
    let mut d = Dispatcher::new();
    let raw = hash(&mut d, LinkType::RAW, &udp4());
    assert_eq!(raw, hash(&mut d, LinkType::ETHERNET, &eth(0x0800, &udp4())));
    assert_eq!(
        raw,
        hash(&mut d, LinkType::LINUX_SLL, &sll(1, 6, 0x0800, &udp4()))
    );
    let vlan = eth(0x8100, &cat(&[&[0, 9, 8, 0], &udp4()]));
    assert_eq!(raw, hash(&mut d, LinkType::ETHERNET, &vlan));
}

#[test]
fn hash_of_non_ip_and_malformed_is_zero() {
    let mut d = Dispatcher::new();
    assert_eq!(hash(&mut d, LinkType::ETHERNET, &eth(0x0806, &[0; 28])), 0);
    assert_eq!(hash(&mut d, LinkType::ETHERNET, &[1, 2, 3]), 0);
    assert_eq!(hash(&mut d, LinkType(147), &udp4()), 0);
}

#[test]
fn hash_depends_on_the_seed() {
    let a = Dispatcher::with_seed(1).hash(&pkt(LinkType::RAW, &udp4()));
    let b = Dispatcher::with_seed(2).hash(&pkt(LinkType::RAW, &udp4()));
    assert_ne!(a, b);
    assert_eq!(
        a,
        Dispatcher::with_seed(1).hash(&pkt(LinkType::RAW, &udp4()))
    );
}

#[test]
fn fragments_hash_like_their_first_fragment() {
    let mut d = Dispatcher::new();
    let payload = cat(&[&udp(1000, 53), &[0; 16]]);
    let whole = hash(&mut d, LinkType::RAW, &ipv4(17, A4, B4, &payload));
    let reply = hash(&mut d, LinkType::RAW, &ipv4(17, B4, A4, &udp(53, 1000)));
    let first = hash(
        &mut d,
        LinkType::RAW,
        &ipv4_full(17, A4, B4, 7, 0x2000, &payload),
    );
    let middle = hash(
        &mut d,
        LinkType::RAW,
        &ipv4_full(17, A4, B4, 7, 0x2003, &payload),
    );
    let last = hash(
        &mut d,
        LinkType::RAW,
        &ipv4_full(17, A4, B4, 7, 0x0006, &payload),
    );
    assert_eq!(first, whole);
    assert_eq!(first, reply);
    assert_eq!((middle, last), (first, first));
    // A later fragment of an unseen datagram: addresses and protocol only, the same for every
    // such fragment of that pair, and not the first fragment's value.
    let orphan_a = hash(
        &mut d,
        LinkType::RAW,
        &ipv4_full(17, A4, B4, 8, 0x0006, &payload),
    );
    let orphan_b = hash(
        &mut d,
        LinkType::RAW,
        &ipv4_full(17, B4, A4, 9, 0x0003, &payload),
    );
    assert_eq!(orphan_a, orphan_b);
    assert_ne!(orphan_a, first);
    assert_ne!(orphan_a, 0);

    let first6 = ipv6(44, A6, B6, &cat(&[&frag6(17, 0, true, 77), &udp(1000, 53)]));
    let later6 = ipv6(44, A6, B6, &cat(&[&frag6(17, 3, false, 77), &[0; 8]]));
    let whole6 = hash(&mut d, LinkType::RAW, &udp6());
    assert_eq!(hash(&mut d, LinkType::RAW, &first6), whole6);
    assert_eq!(hash(&mut d, LinkType::RAW, &later6), whole6);
}

#[test]
fn fragment_table_survives_many_datagrams() {
    let mut d = Dispatcher::new();
    let payload = cat(&[&udp(1000, 53), &[0; 16]]);
    let whole = hash(&mut d, LinkType::RAW, &ipv4(17, A4, B4, &payload));
    // Interleave 5000 datagrams: each first fragment then its tail, as a busy link would.
    for id in 0..5000u16 {
        let first = ipv4_full(17, A4, B4, id, 0x2000, &payload);
        let tail = ipv4_full(17, A4, B4, id, 0x0003, &payload);
        assert_eq!(hash(&mut d, LinkType::RAW, &first), whole);
        assert_eq!(hash(&mut d, LinkType::RAW, &tail), whole, "id {id}");
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const LINKS: [LinkType; 11] = [
        LinkType::NULL,
        LinkType::ETHERNET,
        LinkType::PPP,
        LinkType::RAW_12,
        LinkType::RAW_14,
        LinkType::RAW,
        LinkType::LOOP,
        LinkType::LINUX_SLL,
        LinkType::IPV4,
        LinkType::IPV6,
        LinkType::LINUX_SLL2,
    ];

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            link in 0usize..LINKS.len(),
            data in proptest::collection::vec(any::<u8>(), 0..200),
            wire_len in any::<u32>(),
        ) {
            let p = Packet { ts: 0, wire_len, link: LINKS[link], data: &data };
            let r = decode(&p);
            let h = Dispatcher::new().hash(&p);
            if r.is_err() {
                prop_assert_eq!(h, 0);
            }
        }

        #[test]
        fn mutated_frames_never_panic(
            pos in 0usize..120,
            byte in any::<u8>(),
            cut in 0usize..130,
        ) {
            let mut frame = eth(0x8100, &cat(&[
                &[0, 1, 0x86, 0xdd],
                &ipv6(0, A6, B6, &cat(&[&[44, 0, 1, 4, 0, 0, 0, 0], &frag6(6, 0, true, 5), &tcp(1, 2, 3)])),
            ]));
            if let Some(b) = frame.get_mut(pos) {
                *b = byte;
            }
            frame.truncate(cut);
            let p = pkt(LinkType::ETHERNET, &frame);
            let _ = decode(&p);
            let _ = Dispatcher::new().hash(&p);
        }
    }
}

#[test]
fn a_chain_stopped_at_a_misplaced_hop_by_hop_header_is_walked_safely() {
    // A first fragment whose fragment header names a hop-by-hop header next: etherparse's lax
    // parse stops there (hop-by-hop must come first), and its own iterator then read past the
    // end of the slice (a debug-build abort found by `mutated_frames_never_panic`).
    let frag = [0u8, 0, 0, 1, 0, 0, 0, 9];
    let frame = ipv6(
        44,
        A6,
        B6,
        &cat(&[&frag, &[17, 0, 1, 4, 0, 0, 0, 0], &udp(1, 2)]),
    );
    let m = ok(LinkType::RAW, &frame);
    assert_eq!(m.frag, Some(Fragment { id: 9, first: true }));
    assert_eq!((m.sport, m.dport), (0, 0));
    // And with payload length 0, where decode looks for a Jumbo option.
    let mut frame = ipv6(0, A6, B6, &cat(&[&[0u8, 0, 1, 4, 0, 0, 0, 0], &udp(1, 2)]));
    frame[4] = 0;
    frame[5] = 0;
    assert_eq!(ok(LinkType::RAW, &frame).ip_bytes, 40);
}
