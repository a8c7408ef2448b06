//! The common case read straight from fixed offsets: Ethernet II with at most two VLAN tags,
//! then IPv4 without options and not a fragment, or IPv6 without extension headers, then TCP or
//! UDP with its header captured. That is nearly every frame on real links, and the general walk
//! (link layer loop, etherparse's lax slicers) costs a fifth of a replay there. Anything else
//! returns `None` and takes the general path, so this only has to agree with it on the frames
//! it accepts (the tests compare both on every fixture frame and on damaged frames).

use super::PacketMeta;
use crate::capture::{LinkType, Packet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const ETH_LEN: usize = 14;
const ET_IPV4: u16 = 0x0800;
const ET_IPV6: u16 = 0x86dd;
/// 802.1Q and 802.1ad: the tags the general path reads too (it also reads the old 0x9100).
const ET_VLAN: u16 = 0x8100;
const ET_QINQ: u16 = 0x88a8;
const IPV4_MIN_LEN: u16 = 20;
const IPV6_LEN: usize = 40;
/// Version 4, header length 5 words: no options.
const IPV4_NO_OPTIONS: u8 = 0x45;
/// Of the flags byte only DF may be set: MF or an offset makes a fragment, and the reserved bit
/// is rare enough to leave to the general path.
const IPV4_DF: u8 = 0x40;
const TCP: u8 = 6;
const UDP: u8 = 17;
const TCP_MIN_LEN: usize = 20;
const UDP_LEN: usize = 8;

/// What the network layer gave: addresses, protocol, IP bytes and the transport header on.
type Network<'a> = (IpAddr, IpAddr, u8, u64, &'a [u8]);

pub(super) fn eth_ip(pkt: &Packet<'_>) -> Option<PacketMeta> {
    if pkt.link != LinkType::ETHERNET {
        return None;
    }
    let d = pkt.data;
    let (eth, _) = d.split_first_chunk::<ETH_LEN>()?;
    let [d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5, e0, e1] = *eth;
    let mut et = u16::from_be_bytes([e0, e1]);
    let mut off = ETH_LEN;
    // The first two tags are the record's VLANs, outer first, as the general path keeps them.
    let mut vlans = [0u16; 2];
    for vlan in &mut vlans {
        if et != ET_VLAN && et != ET_QINQ {
            break;
        }
        let [t0, t1, t2, t3] = *d.get(off..)?.first_chunk::<4>()?;
        *vlan = u16::from_be_bytes([t0, t1]) & 0x0fff;
        et = u16::from_be_bytes([t2, t3]);
        off += 4;
    }
    let ip = d.get(off..)?;
    let (src, dst, proto, ip_bytes, transport) = match et {
        ET_IPV4 => ipv4(ip, u64::from(pkt.wire_len).saturating_sub(off as u64))?,
        ET_IPV6 => ipv6(ip)?,
        _ => return None,
    };
    let tcp_flags = match proto {
        TCP if transport.len() >= TCP_MIN_LEN => transport.get(13).copied()?,
        UDP if transport.len() >= UDP_LEN => 0,
        _ => return None,
    };
    let (ports, _) = transport.split_first_chunk::<4>()?;
    Some(PacketMeta {
        ts: pkt.ts,
        src,
        dst,
        proto,
        sport: u16::from_be_bytes([ports[0], ports[1]]),
        dport: u16::from_be_bytes([ports[2], ports[3]]),
        vlan: vlans[0],
        inner_vlan: vlans[1],
        src_mac: Some([s0, s1, s2, s3, s4, s5]),
        dst_mac: Some([d0, d1, d2, d3, d4, d5]),
        ip_bytes,
        tcp_flags,
        frag: None,
        interface: 0,
    })
}

/// `wire_rest`: what the wire carried from the IP header on.
#[inline(always)]
fn ipv4(ip: &[u8], wire_rest: u64) -> Option<Network<'_>> {
    let (h, after_header) = ip.split_first_chunk::<20>()?;
    if h[0] != IPV4_NO_OPTIONS || h[6] & !IPV4_DF != 0 || h[7] != 0 {
        return None;
    }
    let total = u16::from_be_bytes([h[2], h[3]]);
    // The general path's length rules: 0 is a TSO / BIG TCP packet as long as the wire length
    // says; a total length beyond the capture is read as far as captured; below the header it
    // is an error, which the general path reports.
    let (ip_bytes, transport) = if total == 0 {
        (wire_rest, after_header)
    } else if total < IPV4_MIN_LEN {
        return None;
    } else {
        let payload_len = usize::from(total - IPV4_MIN_LEN);
        let transport = after_header.get(..payload_len).unwrap_or(after_header);
        (u64::from(total), transport)
    };
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    Some((src, dst, h[9], ip_bytes, transport))
}

#[inline(always)]
fn ipv6(ip: &[u8]) -> Option<Network<'_>> {
    let (h, after_header) = ip.split_first_chunk::<IPV6_LEN>()?;
    if h[0] >> 4 != 6 {
        return None;
    }
    let payload_len = u16::from_be_bytes([h[4], h[5]]);
    // 0 is a jumbogram (its length is in a hop-by-hop option) or damage: the general path's.
    if payload_len == 0 {
        return None;
    }
    // A payload length beyond the capture is read as far as captured, as etherparse's lax
    // slicer does.
    let transport = after_header
        .get(..usize::from(payload_len))
        .unwrap_or(after_header);
    let addr = |at: usize| -> Option<IpAddr> {
        let b: [u8; 16] = *h.get(at..)?.first_chunk::<16>()?;
        Some(IpAddr::V6(Ipv6Addr::from(b)))
    };
    let ip_bytes = IPV6_LEN as u64 + u64::from(payload_len);
    Some((addr(8)?, addr(24)?, h[6], ip_bytes, transport))
}

#[cfg(test)]
mod tests {
    use super::super::{decode, decode_slow};
    use super::*;
    use crate::capture::{FileSource, Next, PacketSource};
    use proptest::prelude::*;
    use std::path::PathBuf;

    /// Every frame of every capture in fixtures/pcaps, with its capture header.
    fn fixture_frames() -> Vec<(i64, u32, LinkType, Vec<u8>)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcaps");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
            .collect();
        paths.sort();
        assert!(paths.len() >= 80, "fixtures missing: {}", paths.len());
        let mut frames = Vec::new();
        for path in paths {
            let Ok(mut src) = FileSource::open(&path) else {
                continue;
            };
            loop {
                match src.next_packet() {
                    Ok(Next::Packet(p)) => frames.push((p.ts, p.wire_len, p.link, p.data.to_vec())),
                    Ok(Next::Idle) => continue,
                    // Damage at the end of a fixture is part of the fixture.
                    Ok(Next::End) | Err(_) => break,
                }
            }
        }
        frames
    }

    fn packet(link: LinkType, wire_len: u32, data: &[u8]) -> Packet<'_> {
        Packet {
            ts: 7,
            wire_len,
            link,
            data,
        }
    }

    /// Both paths on one frame; true when the fast path took it.
    fn same(pkt: &Packet<'_>) -> bool {
        assert_eq!(decode(pkt), decode_slow(pkt), "frame {:02x?}", pkt.data);
        eth_ip(pkt).is_some()
    }

    fn frame(proto: u8, transport: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 0xbb, 2, 0, 0, 0, 0, 0xaa, 0x08, 0x00];
        let total = (20 + transport.len()) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 192, 168, 1, 2]);
        f.extend_from_slice(transport);
        f
    }

    fn tcp_frame() -> Vec<u8> {
        let mut t = vec![0x1f, 0x90, 0xc3, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x12];
        t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0, b'h', b'i']);
        frame(TCP, &t)
    }

    fn udp_frame() -> Vec<u8> {
        frame(UDP, &[0, 53, 0x9c, 0x40, 0, 12, 0, 0, 1, 2, 3, 4])
    }

    /// `f` with VLAN tags of these ethertypes and ids inserted after the MACs.
    fn tagged(f: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
        let mut out = f[..12].to_vec();
        for (et, id) in tags {
            out.extend_from_slice(&et.to_be_bytes());
            out.extend_from_slice(&(0x2000 | id).to_be_bytes());
        }
        out.extend_from_slice(&f[12..]);
        out
    }

    fn tcp6_frame() -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 0xbb, 2, 0, 0, 0, 0, 0xaa, 0x86, 0xdd];
        let t = [
            0x01, 0xbb, 0xd4, 0x31, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
        ];
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(t.len() as u16).to_be_bytes());
        f.extend_from_slice(&[TCP, 64]);
        f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        f.extend_from_slice(&t);
        f
    }

    #[test]
    fn vlan_tags_and_ipv6_take_the_fast_path_with_the_general_paths_fields() {
        let tcp6 = tcp6_frame();
        let cases = [
            (tagged(&tcp_frame(), &[(0x8100, 100)]), (100, 0), 8080),
            (
                tagged(&udp_frame(), &[(0x88a8, 10), (0x8100, 20)]),
                (10, 20),
                53,
            ),
            (tcp6.clone(), (0, 0), 443),
            (tagged(&tcp6, &[(0x8100, 7)]), (7, 0), 443),
        ];
        for (f, vlans, sport) in cases {
            let p = packet(LinkType::ETHERNET, f.len() as u32, &f);
            let meta = eth_ip(&p).unwrap_or_else(|| panic!("fast path refused {f:02x?}"));
            assert_eq!(Ok(meta), decode_slow(&p));
            assert_eq!(((meta.vlan, meta.inner_vlan), meta.sport), (vlans, sport));
        }
        let meta = eth_ip(&packet(LinkType::ETHERNET, tcp6.len() as u32, &tcp6)).unwrap();
        assert_eq!((meta.ip_bytes, meta.tcp_flags), (60, 0x18));
        // Three tags, the old 0x9100 tag, a jumbogram and an extension header are the
        // general path's.
        let three = tagged(&tcp_frame(), &[(0x8100, 1), (0x8100, 2), (0x8100, 3)]);
        let old_tag = tagged(&tcp_frame(), &[(0x9100, 1)]);
        let mut jumbo = tcp6.clone();
        jumbo[18..20].copy_from_slice(&[0, 0]);
        let mut hop_by_hop = tcp6.clone();
        hop_by_hop[20] = 0;
        for f in [three, old_tag, jumbo, hop_by_hop] {
            let p = packet(LinkType::ETHERNET, f.len() as u32, &f);
            assert!(!same(&p), "fast path took {f:02x?}");
        }
    }

    #[test]
    fn fast_path_fills_what_the_general_path_does() {
        let f = tcp_frame();
        let p = packet(LinkType::ETHERNET, f.len() as u32, &f);
        let meta = eth_ip(&p).expect("plain TCP frame takes the fast path");
        assert_eq!(Ok(meta), decode_slow(&p));
        assert_eq!(
            (meta.sport, meta.dport, meta.tcp_flags),
            (8080, 50000, 0x12)
        );
        assert_eq!(meta.ip_bytes, 42);
        let f = udp_frame();
        let p = packet(LinkType::ETHERNET, f.len() as u32, &f);
        assert!(same(&p));
    }

    #[test]
    fn both_paths_agree_on_every_fixture_frame() {
        let frames = fixture_frames();
        let mut fast = 0usize;
        for (ts, wire_len, link, data) in &frames {
            let p = Packet {
                ts: *ts,
                wire_len: *wire_len,
                link: *link,
                data,
            };
            fast += usize::from(same(&p));
        }
        eprintln!("fast path took {fast} of {} fixture frames", frames.len());
        // The fixtures are mostly plain Ethernet/IPv4: the fast path must see real traffic.
        assert!(
            fast * 2 > frames.len(),
            "fast path took {fast} of {} frames",
            frames.len()
        );
    }

    /// Every truncation, and every header byte set to a handful of values (each single bit
    /// flipped, 0, 0xff), with the wire length as captured, longer, and 0.
    #[test]
    fn both_paths_agree_on_damaged_frames() {
        let mut fixture_bases: Vec<Vec<u8>> = fixture_frames()
            .into_iter()
            .filter(|(_, w, l, d)| eth_ip(&packet(*l, *w, d)).is_some())
            .map(|(_, _, _, d)| d)
            .step_by(97)
            .take(40)
            .collect();
        fixture_bases.extend([
            tcp_frame(),
            udp_frame(),
            tcp6_frame(),
            tagged(&tcp_frame(), &[(0x88a8, 10), (0x8100, 20)]),
            tagged(&tcp6_frame(), &[(0x8100, 7)]),
        ]);
        let mut fast = 0usize;
        let mut checked = 0usize;
        for base in &fixture_bases {
            for link in [LinkType::ETHERNET, LinkType::LINUX_SLL, LinkType::RAW] {
                for cut in 0..=base.len() {
                    let d = &base[..cut];
                    for wire in [cut as u32, cut as u32 + 1000, 0] {
                        fast += usize::from(same(&packet(link, wire, d)));
                        checked += 1;
                    }
                }
            }
            // Ethernet, two tags, the larger IP header, TCP.
            let headers = base.len().min(14 + 8 + 40 + 20);
            for at in 0..headers {
                let old = base[at];
                let values = (0..8).map(|b| old ^ (1 << b)).chain([0, 0xff]);
                for v in values {
                    let mut d = base.clone();
                    d[at] = v;
                    for wire in [d.len() as u32, 0] {
                        fast += usize::from(same(&packet(LinkType::ETHERNET, wire, &d)));
                        checked += 1;
                    }
                }
            }
        }
        eprintln!("fast path took {fast} of {checked} damaged frames");
        assert!(fast > 1000 && fast < checked, "{fast} fast of {checked}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random total lengths, flags, protocols and header lengths over a valid frame.
        #[test]
        fn both_paths_agree_on_random_ip_headers(
            udp in any::<bool>(),
            vihl in prop_oneof![Just(0x45u8), any::<u8>()],
            total in prop_oneof![0u16..80, any::<u16>()],
            flags in prop_oneof![Just(0x40u8), Just(0u8), any::<u8>()],
            off in prop_oneof![Just(0u8), any::<u8>()],
            proto in prop_oneof![Just(TCP), Just(UDP), any::<u8>()],
            cut in 0usize..80,
            wire in any::<u32>(),
        ) {
            let mut d = if udp { udp_frame() } else { tcp_frame() };
            d[14] = vihl;
            d[16..18].copy_from_slice(&total.to_be_bytes());
            d[20] = flags;
            d[21] = off;
            d[23] = proto;
            d.truncate(cut);
            same(&packet(LinkType::ETHERNET, wire, &d));
        }

        /// Random VLAN tags, IPv6 versions, payload lengths and next headers.
        #[test]
        fn both_paths_agree_on_random_tags_and_ipv6_headers(
            tags in proptest::collection::vec(
                (prop_oneof![Just(0x8100u16), Just(0x88a8), Just(0x9100), any::<u16>()], any::<u16>()),
                0..4,
            ),
            v6 in any::<bool>(),
            version in prop_oneof![Just(0x60u8), any::<u8>()],
            plen in prop_oneof![0u16..80, any::<u16>()],
            next in prop_oneof![Just(TCP), Just(UDP), any::<u8>()],
            cut in 0usize..120,
            wire in any::<u32>(),
        ) {
            let mut d = if v6 {
                let mut d = tcp6_frame();
                d[14] = version;
                d[18..20].copy_from_slice(&plen.to_be_bytes());
                d[20] = next;
                d
            } else {
                tcp_frame()
            };
            d = tagged(&d, &tags);
            d.truncate(cut);
            same(&packet(LinkType::ETHERNET, wire, &d));
        }
    }
}
