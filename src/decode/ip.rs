//! The outermost IP header and the transport header right above it, sliced with etherparse's lax
//! slicers (cut frames still count). Shared by `decode` and the dispatcher, so both read one IP
//! parser. The few hand-written pieces are what etherparse 0.21 does not do; each says why.

use super::link::{be16, be32, locate_ip, IpVersion, L2};
use super::{DecodeError, Fragment};
use crate::capture::Packet;
use etherparse::err::{ipv4, ipv6, Layer};
use etherparse::{
    ip_number, Icmpv4Slice, Icmpv6Slice, IpAuthHeaderSlice, IpNumber, Ipv4HeaderSlice,
    Ipv6ExtensionSlice, Ipv6ExtensionsSlice, Ipv6FragmentHeaderSlice, Ipv6RawExtHeaderSlice,
    LaxIpv4Slice, LaxIpv6Slice, TcpHeaderSlice, UdpHeaderSlice,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Addrs {
    V4 { src: [u8; 4], dst: [u8; 4] },
    V6 { src: [u8; 16], dst: [u8; 16] },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub l2: L2,
    pub addrs: Addrs,
    pub proto: u8,
    pub ip_bytes: u64,
    pub frag: Option<Fragment>,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
}

const IPV6_OPT_PAD1: u8 = 0;
const IPV6_OPT_JUMBO: u8 = 0xc2;

const NO_PORTS: (u16, u16, u8) = (0, 0, 0);

fn malformed(reason: &'static str) -> DecodeError {
    DecodeError::Malformed(reason)
}

pub(crate) fn parse(pkt: &Packet<'_>) -> Result<Parsed, DecodeError> {
    let l2 = locate_ip(pkt.link, pkt.data, pkt.wire_len)?;
    let ip = pkt.data.get(l2.ip_off..).unwrap_or(&[]);
    // What the wire carried from the IP header on: the length of a TSO/BIG TCP IPv4 packet.
    let wire_rest = u64::from(pkt.wire_len).saturating_sub(l2.ip_off as u64);
    match l2.version {
        IpVersion::V4 => ipv4(l2, ip, wire_rest),
        IpVersion::V6 => ipv6(l2, ip),
    }
}

fn ipv4(l2: L2, ip: &[u8], wire_rest: u64) -> Result<Parsed, DecodeError> {
    match LaxIpv4Slice::from_slice(ip) {
        // An AH error only stops etherparse at the AH; the IPv4 header itself is fine.
        Ok((s, _)) => {
            let h = s.header();
            ipv4_fields(
                l2,
                &h,
                h.slice().len(),
                Some(s.payload().payload),
                wire_rest,
            )
        }
        Err(ipv4::HeaderSliceError::Len(e)) => match ip.first_chunk::<20>() {
            // etherparse wants the options too, but a snap length may cut them; the fixed 20
            // bytes hold everything a flow needs, so slice a copy that claims no options.
            Some(fixed) => {
                let mut fixed = *fixed;
                fixed[0] = 0x45;
                let h = Ipv4HeaderSlice::from_slice(&fixed)
                    .map_err(|_| malformed("truncated IPv4 header"))?;
                ipv4_fields(l2, &h, e.required_len, None, wire_rest)
            }
            None => Err(malformed("truncated IPv4 header")),
        },
        Err(ipv4::HeaderSliceError::Content(ipv4::HeaderError::UnexpectedVersion { .. })) => {
            Err(malformed("IP version is not 4"))
        }
        Err(ipv4::HeaderSliceError::Content(
            ipv4::HeaderError::HeaderLengthSmallerThanHeader { .. },
        )) => Err(malformed("IPv4 header length below 20")),
    }
}

/// `payload`: what follows the header (and an AH), `None` when the options were cut.
fn ipv4_fields(
    l2: L2,
    h: &Ipv4HeaderSlice<'_>,
    header_len: usize,
    payload: Option<&[u8]>,
    wire_rest: u64,
) -> Result<Parsed, DecodeError> {
    let total = h.total_len();
    // etherparse's lax slicer falls back to the slice length for any too-small total length;
    // only 0 is a real packet (TSO / BIG TCP: the kernel leaves it 0 and the frame is the
    // packet, whose length only the capture header's wire length knows).
    let ip_bytes = if total == 0 {
        wire_rest
    } else if usize::from(total) < header_len {
        return Err(malformed("IPv4 total length below header length"));
    } else {
        u64::from(total)
    };
    let frag_off = h.fragments_offset().value();
    let frag = h.is_fragmenting_payload().then_some(Fragment {
        id: u32::from(h.identification()),
        first: frag_off == 0,
    });
    // The header's protocol, not etherparse's after-AH number: an AH-protected packet stays an
    // AH flow (no ports), as before and as IPsec-aware exporters report it.
    let proto = h.protocol();
    let ports = match payload {
        Some(p) if frag_off == 0 => transport(proto, p),
        _ => NO_PORTS,
    };
    Ok(Parsed {
        l2,
        addrs: Addrs::V4 {
            src: h.source(),
            dst: h.destination(),
        },
        proto: proto.0,
        ip_bytes,
        frag,
        sport: ports.0,
        dport: ports.1,
        tcp_flags: ports.2,
    })
}

fn ipv6(l2: L2, ip: &[u8]) -> Result<Parsed, DecodeError> {
    let (s, mut stop) = LaxIpv6Slice::from_slice(ip).map_err(|e| match e {
        ipv6::HeaderSliceError::Len(_) => malformed("truncated IPv6 header"),
        ipv6::HeaderSliceError::Content(_) => malformed("IP version is not 6"),
    })?;
    let h = s.header();
    let plen = h.payload_length();
    let mut ip_bytes = 40 + u64::from(plen);
    let mut frag = None;
    let mut exts = s.extensions().clone();
    let mut nh = s.payload().ip_number;
    let mut rest = s.payload().payload;
    let mut first_chunk = true;
    let ports = loop {
        if plen == 0 && first_chunk {
            // etherparse leaves the jumbogram length as a TODO (it only uses the slice).
            let opts = match ext_headers(&exts).next() {
                Some(Ipv6ExtensionSlice::HopByHop(hbh)) => Some(hbh.payload()),
                // A hop-by-hop header the snap length cut: read what is there.
                _ => match stop {
                    Some((_, Layer::Ipv6HopByHopHeader)) => rest.get(2..),
                    _ => None,
                },
            };
            if let Some(jumbo) = opts.and_then(jumbo_length) {
                ip_bytes = 40 + u64::from(jumbo);
            }
        }
        if let Some(next) = fragments(&exts, &mut frag) {
            nh = next;
            break NO_PORTS;
        }
        if stop.is_some() {
            // A cut or damaged chain: keep the packet, with the last next-header reached.
            break NO_PORTS;
        }
        // etherparse's chain walk stops at Mobility, HIP and Shim6 headers (same generic
        // layout as destination options): step over one and let etherparse walk on.
        if !matches!(nh, ip_number::MOBILITY | ip_number::HIP | ip_number::SHIM6) {
            break transport(nh, rest);
        }
        let Ok(raw) = Ipv6RawExtHeaderSlice::from_slice(rest) else {
            break NO_PORTS;
        };
        let after = rest.get(raw.slice().len()..).unwrap_or(&[]);
        (exts, nh, rest, stop) = Ipv6ExtensionsSlice::from_slice_lax(raw.next_header(), after);
        first_chunk = false;
    };
    Ok(Parsed {
        l2,
        addrs: Addrs::V6 {
            src: h.source(),
            dst: h.destination(),
        },
        proto: nh.0,
        ip_bytes,
        frag,
        sport: ports.0,
        dport: ports.1,
        tcp_flags: ports.2,
    })
}

/// Records the fragment headers of `exts` in `frag`. For a later fragment, returns the next
/// header it names: the chain ends there, what follows is fragment data (which etherparse's
/// walk would read on into as headers).
fn fragments(exts: &Ipv6ExtensionsSlice<'_>, frag: &mut Option<Fragment>) -> Option<IpNumber> {
    if !exts.is_fragmenting_payload() {
        return None;
    }
    for ext in ext_headers(exts) {
        if let Ipv6ExtensionSlice::Fragment(f) = ext {
            let offset = f.fragment_offset().value();
            // An atomic fragment (offset 0, no M) is a whole packet (RFC 6946).
            if f.is_fragmenting_payload() {
                *frag = Some(Fragment {
                    id: f.identification(),
                    first: offset == 0,
                });
            }
            if offset != 0 {
                return Some(f.next_header());
            }
        }
    }
    None
}

/// The extension headers of a (lax) parsed chain. etherparse's own iterator assumes the whole
/// chain was validated; after a lax parse that stopped at an extension header (say, a second
/// hop-by-hop header) it walks on past the end of the slice through unchecked constructors
/// (undefined behaviour; debug builds abort on it). This walk uses the checked constructors
/// and ends with the slice.
fn ext_headers<'a>(exts: &Ipv6ExtensionsSlice<'a>) -> impl Iterator<Item = Ipv6ExtensionSlice<'a>> {
    let mut nh = exts.first_header();
    let mut rest = exts.slice();
    std::iter::from_fn(move || {
        let (ext, len, next) = match nh? {
            ip_number::IPV6_HOP_BY_HOP | ip_number::IPV6_ROUTE | ip_number::IPV6_DEST_OPTIONS => {
                let raw = Ipv6RawExtHeaderSlice::from_slice(rest).ok()?;
                let (len, next) = (raw.slice().len(), raw.next_header());
                let ext = match nh? {
                    ip_number::IPV6_HOP_BY_HOP => Ipv6ExtensionSlice::HopByHop(raw),
                    ip_number::IPV6_ROUTE => Ipv6ExtensionSlice::Routing(raw),
                    _ => Ipv6ExtensionSlice::DestinationOptions(raw),
                };
                (ext, len, next)
            }
            ip_number::IPV6_FRAG => {
                let f = Ipv6FragmentHeaderSlice::from_slice(rest).ok()?;
                let (len, next) = (f.slice().len(), f.next_header());
                (Ipv6ExtensionSlice::Fragment(f), len, next)
            }
            ip_number::AUTH => {
                let a = IpAuthHeaderSlice::from_slice(rest).ok()?;
                let (len, next) = (a.slice().len(), a.next_header());
                (Ipv6ExtensionSlice::Authentication(a), len, next)
            }
            _ => return None,
        };
        rest = rest.get(len..)?;
        nh = Some(next);
        Some(ext)
    })
}

/// The Jumbo Payload option's length, from a hop-by-hop header's options area (etherparse 0.21
/// has no option iterator for hop-by-hop headers).
fn jumbo_length(mut opts: &[u8]) -> Option<u32> {
    loop {
        let (&kind, rest) = opts.split_first()?;
        if kind == IPV6_OPT_PAD1 {
            opts = rest;
            continue;
        }
        let (&len, rest) = rest.split_first()?;
        if kind == IPV6_OPT_JUMBO && len == 4 {
            return be32(rest, 0);
        }
        opts = rest.get(usize::from(len)..)?;
    }
}

/// (sport, dport, tcp_flags) from the bytes after the IP header(s); zeros where not captured.
fn transport(proto: IpNumber, t: &[u8]) -> (u16, u16, u8) {
    match proto {
        ip_number::TCP => match TcpHeaderSlice::from_slice(t) {
            Ok(h) => (h.source_port(), h.destination_port(), tcp_flags(&h)),
            // etherparse refuses a header the snap length cut (or a bad data offset); the
            // ports are the first 4 bytes and the flags byte 13, so keep what was captured.
            Err(_) => match cut_ports(t) {
                Some((s, d)) => (s, d, t.get(13).copied().unwrap_or(0)),
                None => NO_PORTS,
            },
        },
        ip_number::UDP => match UdpHeaderSlice::from_slice(t) {
            Ok(h) => (h.source_port(), h.destination_port(), 0),
            Err(_) => cut_ports(t).map_or(NO_PORTS, |(s, d)| (s, d, 0)),
        },
        // etherparse has no slicers for these; all start with the two ports.
        ip_number::UDP_LITE | ip_number::SCTP | ip_number::DCCP => {
            cut_ports(t).map_or(NO_PORTS, |(s, d)| (s, d, 0))
        }
        ip_number::ICMP => match Icmpv4Slice::from_slice(t) {
            Ok(i) => (0, type_code(i.type_u8(), i.code_u8()), 0),
            // Cut, or a timestamp message of unexpected length: type and code are 2 bytes.
            Err(_) => (0, be16(t, 0).unwrap_or(0), 0),
        },
        ip_number::IPV6_ICMP => match Icmpv6Slice::from_slice(t) {
            Ok(i) => (0, type_code(i.type_u8(), i.code_u8()), 0),
            Err(_) => (0, be16(t, 0).unwrap_or(0), 0),
        },
        _ => NO_PORTS,
    }
}

fn cut_ports(t: &[u8]) -> Option<(u16, u16)> {
    Some((be16(t, 0)?, be16(t, 2)?))
}

fn type_code(ty: u8, code: u8) -> u16 {
    u16::from_be_bytes([ty, code])
}

/// The flags byte (CWR..FIN) as it sits in the header; etherparse exposes single flags only.
fn tcp_flags(h: &TcpHeaderSlice<'_>) -> u8 {
    u8::from(h.fin())
        | u8::from(h.syn()) << 1
        | u8::from(h.rst()) << 2
        | u8::from(h.psh()) << 3
        | u8::from(h.ack()) << 4
        | u8::from(h.urg()) << 5
        | u8::from(h.ece()) << 6
        | u8::from(h.cwr()) << 7
}

#[cfg(test)]
mod tests {
    use crate::capture::{LinkType, Packet};
    use crate::decode::test_frames::*;
    use crate::decode::{decode, DecodeError, Fragment};

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
}
