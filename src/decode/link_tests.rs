//! NFLOG and Ethernet pseudowires over MPLS, the link types issue 15 added: each case is one
//! tshark 4.0.17 was asked about while the decoder was written (see `pseudowire.rs`).

use super::test_frames::*;
use super::{decode, DecodeError};
use crate::capture::{LinkType, Packet};

// ---- NFLOG ----

/// TLV with its length and type in the given byte order, padded to 4 bytes.
fn tlv(kind: u16, value: &[u8], be: bool) -> Vec<u8> {
    let len = (4 + value.len()) as u16;
    let mut v = if be {
        [len.to_be_bytes(), kind.to_be_bytes()].concat()
    } else {
        [len.to_le_bytes(), kind.to_le_bytes()].concat()
    };
    v.extend_from_slice(value);
    v.resize(v.len().next_multiple_of(4), 0);
    v
}

/// NFLOG header (family, version 0, resource id 5 big-endian), then the TLVs.
fn nflog(family: u8, tlvs: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![family, 0, 0, 5];
    for t in tlvs {
        v.extend_from_slice(t);
    }
    v
}

#[test]
fn nflog_payload_tlv_is_the_packet_in_either_byte_order() {
    for (link, be) in [(LinkType::NFLOG, false), (LinkType::NFLOG_BE, true)] {
        // Packet header (hw protocol 0x0800, hook 1), prefix, then the payload: ulogd's order.
        let frame = nflog(
            2,
            &[
                tlv(1, &[0x08, 0x00, 1, 0], be),
                tlv(10, b"dropped\0", be),
                tlv(9, &udp4(), be),
            ],
        );
        assert_udp4(&ok(link, &frame));
        let m = ok(link, &nflog(10, &[tlv(9, &udp6(), be)]));
        assert_udp6(&m);
        assert_eq!((m.src_mac, m.dst_mac, m.vlan), (None, None, 0));
    }
    // Read in the wrong byte order, the first TLV claims 0x1400 bytes: past the frame's end.
    let le = nflog(
        2,
        &[tlv(10, b"abcdefghijklmno\0", false), tlv(9, &udp4(), false)],
    );
    assert!(dec(LinkType::NFLOG_BE, &le).is_err());
}

#[test]
fn nflog_type_flag_bit_is_ignored_and_the_last_payload_counts() {
    let frame = nflog(2, &[tlv(9, &udp6(), false), tlv(0x8009, &udp4(), false)]);
    // Family says IPv4 and the last payload is IPv4; the first (IPv6) is replaced.
    assert_udp4(&ok(LinkType::NFLOG, &frame));
}

#[test]
fn nflog_hardware_protocol_decides_over_the_family() {
    let frame = nflog(
        2,
        &[tlv(1, &[0x86, 0xdd, 3, 0], false), tlv(9, &udp6(), false)],
    );
    assert_udp6(&ok(LinkType::NFLOG, &frame));
    // ARP logged by an arptables rule: not IP.
    let arp = nflog(
        3,
        &[tlv(1, &[0x08, 0x06, 0, 0], false), tlv(9, &[0; 28], false)],
    );
    assert_eq!(dec(LinkType::NFLOG, &arp), Err(DecodeError::NotIp));
    // A family that is neither IPv4 nor IPv6 (NFPROTO_BRIDGE) and no hardware protocol.
    let bridge = nflog(7, &[tlv(9, &udp4(), false)]);
    assert_eq!(dec(LinkType::NFLOG, &bridge), Err(DecodeError::NotIp));
}

#[test]
fn nflog_without_payload_is_not_ip() {
    let frame = nflog(
        2,
        &[tlv(1, &[0x08, 0x00, 1, 0], false), tlv(10, b"x\0", false)],
    );
    assert_eq!(dec(LinkType::NFLOG, &frame), Err(DecodeError::NotIp));
    // The header alone.
    assert_eq!(dec(LinkType::NFLOG, &[2, 0, 0, 0]), Err(DecodeError::NotIp));
}

#[test]
fn nflog_damaged_tlvs_are_malformed() {
    let malformed = |d: &[u8]| matches!(dec(LinkType::NFLOG, d), Err(DecodeError::Malformed(_)));
    // Shorter than the 4-byte header.
    assert!(malformed(&[2, 0]));
    assert!(malformed(&[]));
    // A TLV claiming less than its own header (tshark stops there, payload or not).
    let mut short = nflog(2, &[tlv(9, &udp4(), false)]);
    short.extend_from_slice(&[2, 0, 9, 0]);
    assert!(malformed(&short));
    // A payload TLV claiming more than the frame holds.
    let mut long = nflog(2, &[tlv(9, &udp4(), false)]);
    long[4] = 0xff;
    long[5] = 0x0f;
    assert!(malformed(&long));
    // Two bytes after the header are no TLV (tshark walks TLVs while 4 bytes remain)...
    assert_eq!(
        dec(LinkType::NFLOG, &[2, 0, 0, 0, 8, 0]),
        Err(DecodeError::NotIp)
    );
    // ...but a TLV header the snap length cut in half is damage.
    let cut = Packet {
        ts: 0,
        wire_len: 100,
        link: LinkType::NFLOG,
        data: &[2, 0, 0, 0, 8, 0],
    };
    assert!(matches!(decode(&cut), Err(DecodeError::Malformed(_))));
    // Every cut of a good frame decodes or is refused, never panics.
    let good = nflog(2, &[tlv(1, &[8, 0, 1, 0], false), tlv(9, &udp4(), false)]);
    for n in 0..good.len() {
        let _ = dec(LinkType::NFLOG, &good[..n]);
    }
}

// ---- Ethernet pseudowires over MPLS ----

/// Intel's and VMware's OUIs: known to Wireshark, and starting with nibble 0.
const CE1: [u8; 6] = [0x00, 0x1b, 0x21, 0x0a, 0x0b, 0x0c];
const CE2: [u8; 6] = [0x00, 0x0c, 0x29, 0x1d, 0x2e, 0x3f];

fn ce_frame(dst: [u8; 6], src: [u8; 6], et: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[&dst, &src, &et.to_be_bytes(), payload])
}

/// Outer Ethernet, one label per entry (bottom of stack on the last), then `payload`.
fn over_mpls(labels: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut stack = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        let bos = u32::from(i + 1 == labels.len());
        stack.extend_from_slice(&((l << 12) | (bos << 8) | 64).to_be_bytes());
    }
    eth(0x8847, &cat(&[&stack, payload]))
}

const CW: [u8; 4] = [0, 0, 0x12, 0x34];

#[test]
fn pseudowire_with_control_word_carries_the_inner_flow() {
    for labels in [&[16001][..], &[16002, 299]] {
        let m = ok(
            LinkType::ETHERNET,
            &over_mpls(labels, &cat(&[&CW, &ce_frame(CE2, CE1, 0x0800, &udp4())])),
        );
        assert_udp4(&m);
        // The customer's MAC addresses, not the provider routers'.
        assert_eq!((m.src_mac, m.dst_mac), (Some(CE1), Some(CE2)));
        let frame = over_mpls(labels, &cat(&[&CW, &ce_frame(CE2, CE1, 0x86dd, &udp6())]));
        assert_udp6(&ok(LinkType::ETHERNET, &frame));
    }
}

#[test]
fn pseudowire_without_control_word_needs_two_known_ouis() {
    let m = ok(
        LinkType::ETHERNET,
        &over_mpls(&[16001], &ce_frame(CE1, CE2, 0x0800, &udp4())),
    );
    assert_udp4(&m);
    assert_eq!((m.src_mac, m.dst_mac), (Some(CE2), Some(CE1)));
    let frame = over_mpls(&[16001, 17], &ce_frame(CE1, CE2, 0x86dd, &udp6()));
    assert_udp6(&ok(LinkType::ETHERNET, &frame));
}

#[test]
fn heuristic_negative_cases_follow_tshark() {
    // Without control word but with a locally administered source MAC: an unknown OUI, so the
    // first 4 bytes are taken for a control word and what follows is no IP (tshark: llc:data).
    let local_src = ce_frame(CE1, SMAC, 0x0800, &udp4());
    assert_eq!(
        dec(LinkType::ETHERNET, &over_mpls(&[16001], &local_src)),
        Err(DecodeError::NotIp)
    );
    // With a control word, but the inner destination's bytes 2-4 are a known OUI (00:00:0c):
    // both would-be MACs at the front (00:00:00:.., 00:00:0c:..) look like vendors', so tshark
    // reads no control word, and the "ethertype" there (0x210a) is none it knows.
    let odd_dst = [0x00, 0x1b, 0x00, 0x00, 0x0c, 0x01];
    let frame = over_mpls(
        &[16001],
        &cat(&[&[0; 4], &ce_frame(odd_dst, CE1, 0x0800, &udp4())]),
    );
    assert_eq!(dec(LinkType::ETHERNET, &frame), Err(DecodeError::NotIp));
    // Fewer than 4 bytes after the stack: not even a control word.
    assert_eq!(
        dec(LinkType::ETHERNET, &over_mpls(&[16001], &[0, 0, 0])),
        Err(DecodeError::NotIp)
    );
    // A control word and less than an Ethernet header.
    assert!(matches!(
        dec(LinkType::ETHERNET, &over_mpls(&[16001], &[0; 12])),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn first_nibble_4_or_6_is_ip_even_when_it_is_a_mac() {
    // A pseudowire without control word whose destination MAC starts with 0x4c: tshark 4.0
    // takes the payload for IPv4 at once, and so do we (its "header" here is garbage, so the
    // IP parser has the last word: whatever it says, it is not the inner UDP flow).
    let dst = [0x4c, 0x00, 0x00, 0x00, 0x00, 0x01];
    let frame = over_mpls(&[16001], &ce_frame(dst, CE1, 0x0800, &udp4()));
    if let Ok(m) = dec(LinkType::ETHERNET, &frame) {
        assert_ne!(m.src, v4(A4));
    }
    // Nibbles other than 0, 1, 4 and 6 are data: not IP, not a pseudowire.
    let dst = [0x80, 0x1b, 0x21, 0, 0, 1];
    let frame = over_mpls(&[16001], &ce_frame(dst, CE1, 0x0800, &udp4()));
    assert_eq!(dec(LinkType::ETHERNET, &frame), Err(DecodeError::NotIp));
}

#[test]
fn vlan_tags_count_across_the_pseudowire() {
    let inner = ce_frame(CE2, CE1, 0x8100, &cat(&[&[0, 42, 0x08, 0x00], &udp4()]));
    let m = ok(
        LinkType::ETHERNET,
        &over_mpls(&[16001], &cat(&[&CW, &inner])),
    );
    assert_udp4(&m);
    assert_eq!((m.vlan, m.inner_vlan), (42, 0));
    // Provider VLAN 7 on the outer frame comes first, the customer's second.
    let stack = ((16001u32 << 12) | 0x100 | 64).to_be_bytes();
    let outer = eth(0x8100, &cat(&[&[0, 7, 0x88, 0x47], &stack, &CW, &inner]));
    let m = ok(LinkType::ETHERNET, &outer);
    assert_udp4(&m);
    assert_eq!((m.vlan, m.inner_vlan), (7, 42));
}

#[test]
fn associated_channel_and_reserved_labels() {
    // Channel type 0x21 carries IPv4, 0x57 IPv6 (RFC 4385); BFD (0x07) is OAM.
    let ach = |t: u16, ip: &[u8]| over_mpls(&[16001], &cat(&[&[0x10, 0], &t.to_be_bytes(), ip]));
    assert_udp4(&ok(LinkType::ETHERNET, &ach(0x21, &udp4())));
    assert_udp6(&ok(LinkType::ETHERNET, &ach(0x57, &udp6())));
    assert_eq!(
        dec(LinkType::ETHERNET, &ach(0x07, &[0; 24])),
        Err(DecodeError::NotIp)
    );
    // Label 13 (GAL) at the bottom: an associated channel follows whatever the first nibble.
    let gal = over_mpls(&[13], &udp4());
    assert_eq!(dec(LinkType::ETHERNET, &gal), Err(DecodeError::NotIp));
    let gal_ip = over_mpls(&[13], &cat(&[&[0x10, 0, 0, 0x21], &udp4()]));
    assert_udp4(&ok(LinkType::ETHERNET, &gal_ip));
    // Label 14 (OAM alert) at the bottom is Y.1711 OAM; label 13 above the bottom is skipped.
    assert_eq!(
        dec(LinkType::ETHERNET, &over_mpls(&[14], &udp4())),
        Err(DecodeError::NotIp)
    );
    assert_udp4(&ok(LinkType::ETHERNET, &over_mpls(&[13, 100], &udp4())));
}

#[test]
fn pseudowire_over_ppp_and_pppoe() {
    let pw = cat(&[
        &((16001u32 << 12) | 0x100 | 64).to_be_bytes(),
        &CW,
        &ce_frame(CE2, CE1, 0x0800, &udp4()),
    ]);
    assert_udp4(&ok(LinkType::PPP, &cat(&[&[0xff, 0x03, 0x02, 0x81], &pw])));
    let pppoe = cat(&[&[0x11, 0x00, 0x00, 0x01, 0x00, 0x40, 0x02, 0x81], &pw]);
    let m = ok(LinkType::ETHERNET, &eth(0x8864, &pppoe));
    assert_udp4(&m);
    assert_eq!(m.src_mac, Some(CE1));
}

#[test]
fn nested_pseudowires_stop_at_the_limit() {
    let mut frame = ce_frame(CE2, CE1, 0x0800, &udp4());
    for depth in 1..=12 {
        let stack = ((100u32 << 12) | 0x100 | 64).to_be_bytes();
        frame = ce_frame(CE2, CE1, 0x8847, &cat(&[&stack, &CW, &frame]));
        let got = dec(LinkType::ETHERNET, &frame);
        // `depth` pseudowires inside the outermost frame.
        if depth <= 8 {
            assert_udp4(&got.unwrap_or_else(|e| panic!("depth {depth}: {e:?}")));
        } else {
            assert_eq!(
                got,
                Err(DecodeError::Malformed(
                    "Ethernet pseudowires nested too deep"
                )),
                "depth {depth}"
            );
        }
    }
}
