//! The outermost IP header and the transport header right above it. Shared by `decode` and the
//! dispatcher; hand-written rather than etherparse's slicers because we need exactly the lax
//! behaviour the flow table wants (cut frames still count, ~100 extension headers still walk,
//! TSO zero total length) without building the full header structs per packet.

use super::link::{be16, be32, locate_ip, IpVersion, L2};
use super::{DecodeError, Fragment};
use crate::capture::Packet;

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

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_DCCP: u8 = 33;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_SCTP: u8 = 132;
const IPPROTO_UDPLITE: u8 = 136;

const IPV6_HOPOPTS: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AH: u8 = 51;
const IPV6_DSTOPTS: u8 = 60;
const IPV6_MOBILITY: u8 = 135;
const IPV6_HIP: u8 = 139;
const IPV6_SHIM6: u8 = 140;

const IPV6_OPT_PAD1: u8 = 0;
const IPV6_OPT_JUMBO: u8 = 0xc2;

/// Bounds the reader thread's work on hostile chains; real traffic uses a handful, and libpcap's
/// ~100-header test packet still walks to its UDP header.
const MAX_IPV6_EXT_HEADERS: u32 = 128;

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
    let first = *ip.first().ok_or(malformed("truncated IPv4 header"))?;
    if first >> 4 != 4 {
        return Err(malformed("IP version is not 4"));
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 {
        return Err(malformed("IPv4 header length below 20"));
    }
    let h = ip
        .first_chunk::<20>()
        .ok_or(malformed("truncated IPv4 header"))?;
    let total = u16::from_be_bytes([h[2], h[3]]);
    let (ip_bytes, end) = if total == 0 {
        // TSO / BIG TCP: the kernel leaves the length 0 and the frame is the packet.
        (wire_rest, ip.len())
    } else if usize::from(total) < ihl {
        return Err(malformed("IPv4 total length below header length"));
    } else {
        (u64::from(total), ip.len().min(usize::from(total)))
    };
    let id = u16::from_be_bytes([h[4], h[5]]);
    let flags_off = u16::from_be_bytes([h[6], h[7]]);
    let more = flags_off & 0x2000 != 0;
    let frag_off = flags_off & 0x1fff;
    let frag = (more || frag_off != 0).then_some(Fragment {
        id: u32::from(id),
        first: frag_off == 0,
    });
    let proto = h[9];
    let (sport, dport, tcp_flags) = if frag_off == 0 {
        transport(proto, ip.get(ihl..end).unwrap_or(&[]))
    } else {
        (0, 0, 0)
    };
    Ok(Parsed {
        l2,
        addrs: Addrs::V4 {
            src: [h[12], h[13], h[14], h[15]],
            dst: [h[16], h[17], h[18], h[19]],
        },
        proto,
        ip_bytes,
        frag,
        sport,
        dport,
        tcp_flags,
    })
}

fn ipv6(l2: L2, ip: &[u8]) -> Result<Parsed, DecodeError> {
    let first = *ip.first().ok_or(malformed("truncated IPv6 header"))?;
    if first >> 4 != 6 {
        return Err(malformed("IP version is not 6"));
    }
    let h = ip
        .first_chunk::<40>()
        .ok_or(malformed("truncated IPv6 header"))?;
    let plen = u16::from_be_bytes([h[4], h[5]]);
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&h[8..24]);
    dst.copy_from_slice(&h[24..40]);
    // Payload length 0 is a jumbogram (or garbage): the capture is the only bound then.
    let end = if plen == 0 {
        ip.len()
    } else {
        ip.len().min(40 + usize::from(plen))
    };
    let mut ip_bytes = 40 + u64::from(plen);
    let mut nh = h[6];
    let mut off = 40usize;
    let mut frag = None;
    let mut ports_follow = true;
    let mut walked = 0u32;
    loop {
        if !matches!(
            nh,
            IPV6_HOPOPTS
                | IPV6_ROUTING
                | IPV6_FRAGMENT
                | IPV6_AH
                | IPV6_DSTOPTS
                | IPV6_MOBILITY
                | IPV6_HIP
                | IPV6_SHIM6
        ) {
            break;
        }
        // Too long or cut chain: keep the packet, with the last next-header reached.
        let Some(eh) = ip.get(off..end).and_then(|s| s.first_chunk::<8>()) else {
            ports_follow = false;
            break;
        };
        if walked >= MAX_IPV6_EXT_HEADERS {
            ports_follow = false;
            break;
        }
        let len = match nh {
            IPV6_FRAGMENT => {
                let fo = u16::from_be_bytes([eh[2], eh[3]]);
                let frag_off = fo >> 3;
                let more = fo & 1 != 0;
                // An atomic fragment (offset 0, no M) is a whole packet (RFC 6946).
                if more || frag_off != 0 {
                    frag = Some(Fragment {
                        id: u32::from_be_bytes([eh[4], eh[5], eh[6], eh[7]]),
                        first: frag_off == 0,
                    });
                }
                if frag_off != 0 {
                    nh = eh[0];
                    ports_follow = false;
                    break;
                }
                8
            }
            IPV6_AH => (usize::from(eh[1]) + 2) * 4,
            _ => (usize::from(eh[1]) + 1) * 8,
        };
        if nh == IPV6_HOPOPTS && walked == 0 && plen == 0 {
            if let Some(jumbo) = jumbo_length(ip.get(off + 2..end.min(off + len)).unwrap_or(&[])) {
                ip_bytes = 40 + u64::from(jumbo);
            }
        }
        nh = eh[0];
        off += len;
        walked += 1;
    }
    let (sport, dport, tcp_flags) = if ports_follow {
        transport(nh, ip.get(off..end).unwrap_or(&[]))
    } else {
        (0, 0, 0)
    };
    Ok(Parsed {
        l2,
        addrs: Addrs::V6 { src, dst },
        proto: nh,
        ip_bytes,
        frag,
        sport,
        dport,
        tcp_flags,
    })
}

/// The Jumbo Payload option's length, from a hop-by-hop header's options area.
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
fn transport(proto: u8, t: &[u8]) -> (u16, u16, u8) {
    match proto {
        IPPROTO_TCP => match (be16(t, 0), be16(t, 2)) {
            (Some(s), Some(d)) => (s, d, t.get(13).copied().unwrap_or(0)),
            _ => (0, 0, 0),
        },
        IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_SCTP | IPPROTO_DCCP => {
            match (be16(t, 0), be16(t, 2)) {
                (Some(s), Some(d)) => (s, d, 0),
                _ => (0, 0, 0),
            }
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 => (0, be16(t, 0).unwrap_or(0), 0),
        _ => (0, 0, 0),
    }
}
