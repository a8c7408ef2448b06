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
    let l2 = locate_ip(pkt.link, pkt.data)?;
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
