//! DHCPv4 (RFC 2131/2132, and BOOTP replies without options, RFC 951) and DHCPv6 (RFC 8415)
//! messages as lease observations: who was given, gave back or asked for which address.
//!
//! Only what attribution needs is read; every length is checked against the bytes present, and
//! anything malformed is a [`DhcpError`] naming what is wrong, never a panic. Which messages
//! become observations, and what each field means, is documented on
//! [`LeaseObservation`](crate::record::LeaseObservation).

use super::PacketMeta;
use crate::record::dhcp::{
    v4, v6, DHCP4_CLIENT_PORT, DHCP4_SERVER_PORT, DHCP6_CLIENT_PORT, DHCP6_SERVER_PORT,
    MAX_HOSTNAME_BYTES,
};
use crate::record::{LeaseObservation, Mac};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The fixed BOOTP header in front of the magic cookie.
const BOOTP_FIXED_LEN: usize = 236;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;

const OPT6_CLIENTID: u16 = 1;
const OPT6_IA_NA: u16 = 3;
const OPT6_IA_TA: u16 = 4;
const OPT6_IAADDR: u16 = 5;
const OPT6_RELAY_MSG: u16 = 9;
const OPT6_FQDN: u16 = 39;
/// Relay-forward/reply nesting RFC 8415 allows (HOP_COUNT_LIMIT).
const MAX_RELAY_DEPTH: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DhcpError {
    #[error("{what}: {have} bytes, needs {need}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("BOOTP op {0}, expected 1 (request) or 2 (reply)")]
    BadOp(u8),
    #[error("hardware address length {0}, more than the 16 bytes of chaddr")]
    BadHlen(u8),
    #[error("bad magic cookie {0:02x?}, expected 63 82 53 63")]
    BadMagicCookie([u8; 4]),
    #[error("option {code} at byte {at}: length {len} runs past the end ({end})")]
    OptionOverrun {
        code: u16,
        at: usize,
        len: usize,
        end: usize,
    },
    #[error("option {code}: length {len}, expected {expected}")]
    BadOptionLength {
        code: u16,
        len: usize,
        expected: &'static str,
    },
    #[error("option {code} appears twice with different values")]
    Conflicting { code: u16 },
    #[error("DHCP message type {0} is not defined")]
    BadMessageType(u8),
    #[error("option overload value {0}, expected 1, 2 or 3")]
    BadOverload(u8),
    #[error("DHCPv6 relay messages nested deeper than {MAX_RELAY_DEPTH}")]
    RelayTooDeep,
    #[error("DHCPv6 relay message without a relayed message option")]
    RelayWithoutMessage,
    #[error("FQDN option: {0}")]
    BadDomainName(&'static str),
}

/// Whether a UDP packet's ports are those of DHCPv4 (67/68, relays 67/67) or DHCPv6
/// (546/547, relays 547/547): the only packets worth parsing.
pub fn is_dhcp(meta: &PacketMeta) -> bool {
    let v4 = |p| p == DHCP4_SERVER_PORT || p == DHCP4_CLIENT_PORT;
    let v6 = |p| p == DHCP6_CLIENT_PORT || p == DHCP6_SERVER_PORT;
    meta.proto == 17 && ((v4(meta.sport) && v4(meta.dport)) || (v6(meta.sport) && v6(meta.dport)))
}

/// Parses the UDP payload of a DHCP packet (`meta` gives its time, addresses, ports and MACs)
/// and appends its lease observations to `out` (none for messages that say nothing about an
/// address). On error nothing is appended.
pub fn parse(
    meta: &PacketMeta,
    payload: &[u8],
    out: &mut Vec<LeaseObservation>,
) -> Result<(), DhcpError> {
    if meta.sport == DHCP6_CLIENT_PORT
        || meta.sport == DHCP6_SERVER_PORT
        || meta.dport == DHCP6_CLIENT_PORT
        || meta.dport == DHCP6_SERVER_PORT
    {
        parse_v6(meta, payload, out)
    } else {
        parse_v4(meta, payload, out)
    }
}

fn truncated(what: &'static str, need: usize, have: usize) -> DhcpError {
    DhcpError::Truncated { what, need, have }
}

fn ipv4_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    b.get(at..)?.first_chunk::<4>().map(|a| Ipv4Addr::from(*a))
}

fn be_u32(b: &[u8]) -> Option<u32> {
    b.first_chunk::<4>().map(|a| u32::from_be_bytes(*a))
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..)?
        .first_chunk::<2>()
        .map(|a| u16::from_be_bytes(*a))
}

/// The DHCPv4 options attribution reads.
#[derive(Default)]
struct V4Options<'a> {
    message: Option<u8>,
    lease: Option<u32>,
    hostname: Option<&'a [u8]>,
    server: Option<Ipv4Addr>,
    requested: Option<Ipv4Addr>,
    overload: Option<u8>,
}

fn fixed_len(code: u8, len: usize, want: usize, expected: &'static str) -> Result<(), DhcpError> {
    if len == want {
        Ok(())
    } else {
        Err(DhcpError::BadOptionLength {
            code: code.into(),
            len,
            expected,
        })
    }
}

/// Walks one options area (`area` starts at byte `base` of the message, for error offsets).
/// Stops at End (255) or at the end of the area; Pad (0) is skipped.
fn v4_options<'a>(area: &'a [u8], base: usize, o: &mut V4Options<'a>) -> Result<(), DhcpError> {
    let mut at = 0;
    while let Some(&code) = area.get(at) {
        match code {
            0 => {
                at += 1;
                continue;
            }
            255 => return Ok(()),
            _ => {}
        }
        let Some(&len) = area.get(at + 1) else {
            return Err(DhcpError::OptionOverrun {
                code: code.into(),
                at: base + at,
                len: 0,
                end: base + area.len(),
            });
        };
        let len = usize::from(len);
        let Some(value) = area.get(at + 2..at + 2 + len) else {
            return Err(DhcpError::OptionOverrun {
                code: code.into(),
                at: base + at,
                len,
                end: base + area.len(),
            });
        };
        match code {
            53 => {
                fixed_len(code, len, 1, "1")?;
                let m = value.first().copied().unwrap_or(0);
                if m == 0 || m > v4::MAX_KNOWN {
                    return Err(DhcpError::BadMessageType(m));
                }
                if o.message.is_some_and(|old| old != m) {
                    return Err(DhcpError::Conflicting { code: 53 });
                }
                o.message = Some(m);
            }
            51 => {
                fixed_len(code, len, 4, "4")?;
                o.lease = be_u32(value);
            }
            12 => {
                if len == 0 {
                    return Err(DhcpError::BadOptionLength {
                        code: 12,
                        len,
                        expected: "at least 1",
                    });
                }
                o.hostname = Some(value);
            }
            54 => {
                fixed_len(code, len, 4, "4")?;
                o.server = ipv4_at(value, 0);
            }
            50 => {
                fixed_len(code, len, 4, "4")?;
                o.requested = ipv4_at(value, 0);
            }
            52 => {
                fixed_len(code, len, 1, "1")?;
                let v = value.first().copied().unwrap_or(0);
                if !(1..=3).contains(&v) {
                    return Err(DhcpError::BadOverload(v));
                }
                o.overload = Some(v);
            }
            _ => {}
        }
        at += 2 + len;
    }
    Ok(())
}

/// Text of a hostname option: trailing NULs (some clients count one) dropped, invalid UTF-8
/// replaced rather than refused (the bytes are the client's, not ours to judge).
fn hostname_text(raw: &[u8]) -> Option<String> {
    let end = raw.iter().rposition(|&b| b != 0)? + 1;
    let mut text = String::from_utf8_lossy(raw.get(..end)?).into_owned();
    // Replacement characters can make the text longer than the option; the store keeps 255.
    while text.len() > MAX_HOSTNAME_BYTES {
        text.pop();
    }
    Some(text)
}

fn parse_v4(meta: &PacketMeta, p: &[u8], out: &mut Vec<LeaseObservation>) -> Result<(), DhcpError> {
    if p.len() < BOOTP_FIXED_LEN {
        return Err(truncated("BOOTP header", BOOTP_FIXED_LEN, p.len()));
    }
    let op = p[0];
    if op != 1 && op != 2 {
        return Err(DhcpError::BadOp(op));
    }
    let (htype, hlen) = (p[1], p[2]);
    if hlen > 16 {
        return Err(DhcpError::BadHlen(hlen));
    }
    let xid = be_u32(&p[4..8]).unwrap_or(0);
    let ciaddr = ipv4_at(p, 12).unwrap_or(Ipv4Addr::UNSPECIFIED);
    let yiaddr = ipv4_at(p, 16).unwrap_or(Ipv4Addr::UNSPECIFIED);
    let chaddr: Option<Mac> = (htype == 1 && hlen == 6)
        .then(|| p.get(28..34)?.first_chunk::<6>().copied())
        .flatten();
    let vendor = &p[BOOTP_FIXED_LEN..];
    let mut o = V4Options::default();
    match vendor.first_chunk::<4>() {
        // RFC 951 BOOTP: a vendor area that is absent or zero-filled carries no options.
        None if vendor.is_empty() => {}
        None => return Err(truncated("magic cookie", 4, vendor.len())),
        Some(c) if *c == MAGIC_COOKIE => {
            v4_options(&vendor[4..], BOOTP_FIXED_LEN + 4, &mut o)?;
            // RFC 2131 4.1: file first, then sname; overload inside them is not honoured.
            let overload = o.overload;
            if overload.is_some_and(|v| v & 1 != 0) {
                v4_options(&p[FILE], FILE.start, &mut o)?;
            }
            if overload.is_some_and(|v| v & 2 != 0) {
                v4_options(&p[SNAME], SNAME.start, &mut o)?;
            }
        }
        Some(c) if *c == [0; 4] => {}
        Some(c) => return Err(DhcpError::BadMagicCookie(*c)),
    }
    let obs = |message: u8, address: Ipv4Addr| LeaseObservation {
        time: meta.ts,
        v6: false,
        message,
        address: IpAddr::V4(address),
        client_mac: chaddr,
        lease_secs: o.lease,
        hostname: o.hostname.and_then(hostname_text),
        server: o
            .server
            .map(IpAddr::V4)
            .or_else(|| (op == 2).then_some(meta.src)),
        xid,
    };
    let unspecified = Ipv4Addr::UNSPECIFIED;
    let named = |a: Ipv4Addr| (a != unspecified).then_some(a);
    let observation = match (op, o.message) {
        // BOOTP reply: the address is the client's until it stops using it (no lease).
        (2, None) => named(yiaddr).map(|a| obs(0, a)),
        (_, None) => None,
        (_, Some(v4::ACK)) => named(yiaddr).map(|a| obs(v4::ACK, a)),
        (_, Some(v4::NAK)) => Some(obs(v4::NAK, named(ciaddr).unwrap_or(unspecified))),
        (_, Some(v4::RELEASE)) => named(ciaddr).map(|a| obs(v4::RELEASE, a)),
        (_, Some(v4::DECLINE)) => o.requested.and_then(named).map(|a| obs(v4::DECLINE, a)),
        (_, Some(m @ (v4::DISCOVER | v4::REQUEST | v4::INFORM))) if o.hostname.is_some() => {
            let a = o.requested.and_then(named).or(named(ciaddr));
            Some(obs(m, a.unwrap_or(unspecified)))
        }
        _ => None,
    };
    out.extend(observation);
    Ok(())
}

/// Reads DHCPv6 options `area` (at byte `base` of the message) calling `f(code, value, at)`.
fn v6_options<'a>(
    area: &'a [u8],
    base: usize,
    mut f: impl FnMut(u16, &'a [u8], usize) -> Result<(), DhcpError>,
) -> Result<(), DhcpError> {
    let mut at = 0;
    while at < area.len() {
        let (Some(code), Some(len)) = (be_u16(area, at), be_u16(area, at + 2)) else {
            return Err(truncated("DHCPv6 option header", 4, area.len() - at));
        };
        let len = usize::from(len);
        let Some(value) = area.get(at + 4..at + 4 + len) else {
            return Err(DhcpError::OptionOverrun {
                code,
                at: base + at,
                len,
                end: base + area.len(),
            });
        };
        f(code, value, base + at + 4)?;
        at += 4 + len;
    }
    Ok(())
}

/// The MAC inside a DUID-LLT (type 1) or DUID-LL (type 3) with hardware type 1 (Ethernet).
fn duid_mac(duid: &[u8]) -> Option<Mac> {
    let (kind, hw) = (be_u16(duid, 0)?, be_u16(duid, 2)?);
    let lladdr = match kind {
        1 => duid.get(8..)?,
        3 => duid.get(4..)?,
        _ => return None,
    };
    if hw != 1 || lladdr.len() != 6 {
        return None;
    }
    lladdr.first_chunk::<6>().copied()
}

/// An RFC 1035 wire-format name (no compression) as dotted text; at most 255 bytes.
fn domain_name(mut b: &[u8]) -> Result<String, DhcpError> {
    let mut name = String::new();
    while let Some((&len, rest)) = b.split_first() {
        if len == 0 {
            break;
        }
        if len > 63 {
            return Err(DhcpError::BadDomainName("label longer than 63 bytes"));
        }
        let label = rest
            .get(..usize::from(len))
            .ok_or(DhcpError::BadDomainName("label runs past the option"))?;
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&String::from_utf8_lossy(label));
        if name.len() > MAX_HOSTNAME_BYTES {
            return Err(DhcpError::BadDomainName("name longer than 255 bytes"));
        }
        b = rest.get(usize::from(len)..).unwrap_or_default();
    }
    Ok(name)
}

fn parse_v6(meta: &PacketMeta, p: &[u8], out: &mut Vec<LeaseObservation>) -> Result<(), DhcpError> {
    let mut msg = p;
    let mut base = 0;
    let mut depth = 0;
    // Relays wrap the client's or server's message: attribution wants the innermost one.
    while let Some(&kind @ (v6::RELAY_FORW | v6::RELAY_REPL)) = msg.first() {
        depth += 1;
        if depth > MAX_RELAY_DEPTH {
            return Err(DhcpError::RelayTooDeep);
        }
        // msg-type, hop-count, link-address (16), peer-address (16).
        if msg.len() < 34 {
            return Err(truncated("DHCPv6 relay header", 34, msg.len()));
        }
        let _ = kind;
        let mut inner = None;
        v6_options(&msg[34..], base + 34, |code, value, at| {
            if code == OPT6_RELAY_MSG {
                inner = Some((value, at));
            }
            Ok(())
        })?;
        let (value, at) = inner.ok_or(DhcpError::RelayWithoutMessage)?;
        msg = value;
        base = at;
    }
    if msg.len() < 4 {
        return Err(truncated("DHCPv6 message header", 4, msg.len()));
    }
    let message = msg[0];
    if message == 0 || message > 36 {
        return Err(DhcpError::BadMessageType(message));
    }
    let xid = u32::from_be_bytes([0, msg[1], msg[2], msg[3]]);
    let mut duid = None;
    let mut hostname = None;
    // (address, valid lifetime) of every IAADDR in an IA_NA or IA_TA.
    let mut addrs: Vec<(Ipv6Addr, u32)> = Vec::new();
    v6_options(&msg[4..], base + 4, |code, value, at| {
        match code {
            OPT6_CLIENTID => duid = Some(value),
            OPT6_FQDN => {
                let (_flags, name) = value.split_first().ok_or(DhcpError::BadOptionLength {
                    code,
                    len: 0,
                    expected: "at least 1",
                })?;
                let name = domain_name(name)?;
                hostname = (!name.is_empty()).then_some(name);
            }
            OPT6_IA_NA | OPT6_IA_TA => {
                // IA_NA: IAID, T1, T2; IA_TA: IAID only; then options.
                let fixed = if code == OPT6_IA_NA { 12 } else { 4 };
                let opts = value.get(fixed..).ok_or(DhcpError::BadOptionLength {
                    code,
                    len: value.len(),
                    expected: if code == OPT6_IA_NA {
                        "at least 12"
                    } else {
                        "at least 4"
                    },
                })?;
                v6_options(opts, at + fixed, |code, value, _| {
                    if code == OPT6_IAADDR {
                        // address (16), preferred lifetime, valid lifetime, options.
                        let fixed =
                            value
                                .first_chunk::<24>()
                                .ok_or(DhcpError::BadOptionLength {
                                    code,
                                    len: value.len(),
                                    expected: "at least 24",
                                })?;
                        let mut a = [0u8; 16];
                        a.copy_from_slice(&fixed[..16]);
                        let valid = be_u32(&fixed[20..]).unwrap_or(0);
                        addrs.push((Ipv6Addr::from(a), valid));
                    }
                    Ok(())
                })?;
            }
            _ => {}
        }
        Ok(())
    })?;
    let from_server = matches!(message, v6::ADVERTISE | v6::REPLY | v6::RECONFIGURE);
    // Without a link-layer DUID, the client's own Ethernet address: the destination of what
    // the server sends, the source of what the client sends (a relay's, when relayed).
    let client_mac = duid.and_then(duid_mac).or(if from_server {
        meta.dst_mac
    } else {
        meta.src_mac
    });
    let obs = |address: Ipv6Addr, lease: Option<u32>| LeaseObservation {
        time: meta.ts,
        v6: true,
        message,
        address: IpAddr::V6(address),
        client_mac,
        lease_secs: lease,
        hostname: hostname.clone(),
        server: from_server.then_some(meta.src),
        xid,
    };
    match message {
        v6::REPLY | v6::RELEASE | v6::DECLINE => {
            let lease = |valid| (message == v6::REPLY).then_some(valid);
            out.extend(addrs.iter().map(|&(a, valid)| obs(a, lease(valid))));
        }
        v6::SOLICIT | v6::REQUEST | v6::RENEW | v6::REBIND if hostname.is_some() => {
            let a = addrs.first().map_or(Ipv6Addr::UNSPECIFIED, |&(a, _)| a);
            out.push(obs(a, None));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(sport: u16, dport: u16, v6: bool) -> PacketMeta {
        let (src, dst) = if v6 {
            (
                IpAddr::V6("fe80::1".parse().unwrap()),
                IpAddr::V6("fe80::2".parse().unwrap()),
            )
        } else {
            (
                IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
                IpAddr::V4(Ipv4Addr::new(192, 168, 0, 10)),
            )
        };
        PacketMeta {
            ts: 1_000,
            src,
            dst,
            proto: 17,
            sport,
            dport,
            vlan: 0,
            inner_vlan: 0,
            src_mac: Some([2, 0, 0, 0, 0, 1]),
            dst_mac: Some([2, 0, 0, 0, 0, 2]),
            ip_bytes: 300,
            tcp_flags: 0,
            frag: None,
            interface: 0,
        }
    }

    const MAC: Mac = [0x00, 0x0b, 0x82, 0x01, 0xfc, 0x42];

    /// A BOOTP header (op, yiaddr, ciaddr, chaddr) followed by `vendor`.
    fn bootp(op: u8, ciaddr: [u8; 4], yiaddr: [u8; 4], vendor: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; BOOTP_FIXED_LEN];
        p[0] = op;
        p[1] = 1;
        p[2] = 6;
        p[4..8].copy_from_slice(&0x3d1e_u32.to_be_bytes());
        p[12..16].copy_from_slice(&ciaddr);
        p[16..20].copy_from_slice(&yiaddr);
        p[28..34].copy_from_slice(&MAC);
        p.extend_from_slice(vendor);
        p
    }

    fn with_cookie(opts: &[u8]) -> Vec<u8> {
        let mut v = MAGIC_COOKIE.to_vec();
        v.extend_from_slice(opts);
        v
    }

    fn v4(p: &[u8]) -> Result<Vec<LeaseObservation>, DhcpError> {
        let mut out = Vec::new();
        parse(&meta(67, 68, false), p, &mut out).map(|()| out)
    }

    fn v6(p: &[u8]) -> Result<Vec<LeaseObservation>, DhcpError> {
        let mut out = Vec::new();
        parse(&meta(547, 546, true), p, &mut out).map(|()| out)
    }

    const YI: [u8; 4] = [192, 168, 0, 10];
    const ACK_OPTS: &[u8] = &[
        53, 1, 5, 51, 4, 0, 0, 0x0e, 0x10, 54, 4, 192, 168, 0, 1, 12, 4, b'h', b'o', b's', b't',
        255,
    ];

    #[test]
    fn ack_is_an_assignment_with_every_field() {
        let o = v4(&bootp(2, [0; 4], YI, &with_cookie(ACK_OPTS))).unwrap();
        assert_eq!(
            o,
            vec![LeaseObservation {
                time: 1_000,
                v6: false,
                message: v4::ACK,
                address: IpAddr::V4(Ipv4Addr::from(YI)),
                client_mac: Some(MAC),
                lease_secs: Some(3600),
                hostname: Some("host".into()),
                server: Some(IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1))),
                xid: 0x3d1e,
            }]
        );
    }

    #[test]
    fn ends_and_hints() {
        let rel = v4(&bootp(1, YI, [0; 4], &with_cookie(&[53, 1, 7, 255]))).unwrap();
        assert_eq!(rel[0].message, v4::RELEASE);
        assert_eq!(rel[0].address, IpAddr::V4(Ipv4Addr::from(YI)));
        assert_eq!(rel[0].server, None);
        let dec = v4(&bootp(
            1,
            [0; 4],
            [0; 4],
            &with_cookie(&[53, 1, 4, 50, 4, 192, 168, 0, 10, 255]),
        ))
        .unwrap();
        assert_eq!(dec[0].message, v4::DECLINE);
        assert_eq!(dec[0].address, IpAddr::V4(Ipv4Addr::from(YI)));
        let nak = v4(&bootp(2, [0; 4], [0; 4], &with_cookie(&[53, 1, 6, 255]))).unwrap();
        assert_eq!(nak[0].message, v4::NAK);
        assert!(nak[0].address.is_unspecified());
        // A REQUEST counts only when it names the client.
        let req = [53, 1, 3, 50, 4, 192, 168, 0, 10, 255];
        assert!(v4(&bootp(1, [0; 4], [0; 4], &with_cookie(&req)))
            .unwrap()
            .is_empty());
        let req = [53, 1, 3, 50, 4, 192, 168, 0, 10, 12, 2, b'p', b'c', 255];
        let o = v4(&bootp(1, [0; 4], [0; 4], &with_cookie(&req))).unwrap();
        assert_eq!(o[0].hostname.as_deref(), Some("pc"));
        assert_eq!(o[0].address, IpAddr::V4(Ipv4Addr::from(YI)));
        // An OFFER is not an assignment; an ACK to INFORM (yiaddr 0) neither.
        assert!(v4(&bootp(2, [0; 4], YI, &with_cookie(&[53, 1, 2, 255])))
            .unwrap()
            .is_empty());
        assert!(v4(&bootp(2, YI, [0; 4], &with_cookie(&[53, 1, 5, 255])))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn bootp_without_options_and_overload() {
        for vendor in [&[][..], &[0u8; 64][..]] {
            let o = v4(&bootp(2, [0; 4], YI, vendor)).unwrap();
            assert_eq!(o[0].message, 0);
            assert_eq!(o[0].lease_secs, None);
            assert_eq!(o[0].server, Some(IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1))));
        }
        // Overload 3: the message type in `file`, the lease time in `sname`.
        let mut p = bootp(2, [0; 4], YI, &with_cookie(&[52, 1, 3, 255]));
        p[FILE.start..FILE.start + 4].copy_from_slice(&[53, 1, 5, 255]);
        p[SNAME.start..SNAME.start + 7].copy_from_slice(&[51, 4, 0, 0, 0, 60, 255]);
        let o = v4(&p).unwrap();
        assert_eq!((o[0].message, o[0].lease_secs), (v4::ACK, Some(60)));
        // Without an End option the area ends the walk; Pad is skipped.
        let o = v4(&bootp(2, [0; 4], YI, &with_cookie(&[0, 0, 53, 1, 5]))).unwrap();
        assert_eq!(o[0].message, v4::ACK);
    }

    #[test]
    fn every_v4_error() {
        let ack = |opts: &[u8]| v4(&bootp(2, [0; 4], YI, &with_cookie(opts)));
        assert!(matches!(
            v4(&[2; 100]),
            Err(DhcpError::Truncated { need: 236, .. })
        ));
        assert!(matches!(
            v4(&bootp(2, [0; 4], YI, &[99, 130])),
            Err(DhcpError::Truncated { need: 4, .. })
        ));
        let mut p = bootp(2, [0; 4], YI, &[]);
        p[0] = 3;
        assert_eq!(v4(&p), Err(DhcpError::BadOp(3)));
        p[0] = 2;
        p[2] = 17;
        assert_eq!(v4(&p), Err(DhcpError::BadHlen(17)));
        assert_eq!(
            v4(&bootp(2, [0; 4], YI, &[1, 2, 3, 4])),
            Err(DhcpError::BadMagicCookie([1, 2, 3, 4]))
        );
        assert!(matches!(
            ack(&[53, 1, 5, 12, 9, b'x']),
            Err(DhcpError::OptionOverrun {
                code: 12,
                len: 9,
                ..
            })
        ));
        assert!(matches!(
            ack(&[53]),
            Err(DhcpError::OptionOverrun { code: 53, .. })
        ));
        assert!(matches!(
            ack(&[53, 2, 5, 5]),
            Err(DhcpError::BadOptionLength { code: 53, .. })
        ));
        for code in [51u8, 54, 50] {
            assert!(matches!(
                ack(&[53, 1, 5, code, 3, 0, 0, 0]),
                Err(DhcpError::BadOptionLength { code: c, .. }) if c == u16::from(code)
            ));
        }
        assert!(matches!(
            ack(&[12, 0]),
            Err(DhcpError::BadOptionLength { code: 12, .. })
        ));
        assert_eq!(ack(&[53, 1, 0]), Err(DhcpError::BadMessageType(0)));
        assert_eq!(ack(&[53, 1, 19]), Err(DhcpError::BadMessageType(19)));
        assert_eq!(
            ack(&[53, 1, 5, 53, 1, 6]),
            Err(DhcpError::Conflicting { code: 53 })
        );
        assert!(matches!(
            ack(&[52, 2, 1, 1]),
            Err(DhcpError::BadOptionLength { code: 52, .. })
        ));
        assert_eq!(ack(&[52, 1, 4]), Err(DhcpError::BadOverload(4)));
        // An overrun inside an overloaded field is reported at its offset in the message.
        let mut p = bootp(2, [0; 4], YI, &with_cookie(&[52, 1, 1, 255]));
        p[FILE.end - 2] = 12;
        p[FILE.end - 1] = 10;
        assert!(matches!(
            v4(&p),
            Err(DhcpError::OptionOverrun {
                code: 12,
                at: 234,
                ..
            })
        ));
    }

    fn opt6(code: u16, value: &[u8]) -> Vec<u8> {
        let mut v = code.to_be_bytes().to_vec();
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
        v.extend_from_slice(value);
        v
    }

    const ADDR6: &str = "2001:db8::4";

    fn ia_na(valid: u32) -> Vec<u8> {
        let mut iaaddr = ADDR6.parse::<Ipv6Addr>().unwrap().octets().to_vec();
        iaaddr.extend_from_slice(&3600u32.to_be_bytes());
        iaaddr.extend_from_slice(&valid.to_be_bytes());
        let mut ia = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        ia.extend(opt6(OPT6_IAADDR, &iaaddr));
        opt6(OPT6_IA_NA, &ia)
    }

    fn msg6(kind: u8, opts: &[Vec<u8>]) -> Vec<u8> {
        let mut m = vec![kind, 0x2f, 0xfd, 0xd1];
        for o in opts {
            m.extend_from_slice(o);
        }
        m
    }

    const DUID_LL: [u8; 10] = [0, 3, 0, 1, 0, 1, 2, 3, 4, 5];

    #[test]
    fn v6_reply_release_and_relay() {
        let fqdn = opt6(
            OPT6_FQDN,
            &[1, 4, b'h', b'o', b's', b't', 3, b'l', b'a', b'n', 0],
        );
        let reply = msg6(
            v6::REPLY,
            &[opt6(OPT6_CLIENTID, &DUID_LL), ia_na(7200), fqdn],
        );
        let o = v6(&reply).unwrap();
        assert_eq!(
            o,
            vec![LeaseObservation {
                time: 1_000,
                v6: true,
                message: v6::REPLY,
                address: IpAddr::V6(ADDR6.parse().unwrap()),
                client_mac: Some([0, 1, 2, 3, 4, 5]),
                lease_secs: Some(7200),
                hostname: Some("host.lan".into()),
                server: Some(IpAddr::V6("fe80::1".parse().unwrap())),
                xid: 0x2ffdd1,
            }]
        );
        // DUID-LLT, and relayed: the inner message is the one read.
        let llt = [0, 1, 0, 1, 0x29, 0xd0, 0x81, 0x93, 0, 0, 1, 1, 0, 0];
        let inner = msg6(v6::REPLY, &[opt6(OPT6_CLIENTID, &llt), ia_na(60)]);
        let mut relay = vec![v6::RELAY_REPL, 0];
        relay.extend_from_slice(&[0; 32]);
        relay.extend(opt6(OPT6_RELAY_MSG, &inner));
        let o = v6(&relay).unwrap();
        assert_eq!(o[0].client_mac, Some([0, 0, 1, 1, 0, 0]));
        assert_eq!(o[0].lease_secs, Some(60));
        // No link-layer DUID: the Ethernet destination of a server's message.
        let en = [0, 2, 0, 0, 0, 9, 1, 2];
        let o = v6(&msg6(v6::REPLY, &[opt6(OPT6_CLIENTID, &en), ia_na(60)])).unwrap();
        assert_eq!(o[0].client_mac, Some([2, 0, 0, 0, 0, 2]));
        // Release from the client: its source MAC, no lease, no server.
        let mut out = Vec::new();
        let rel = msg6(v6::RELEASE, &[ia_na(0)]);
        parse(&meta(546, 547, true), &rel, &mut out).unwrap();
        assert_eq!(out[0].message, v6::RELEASE);
        assert_eq!(out[0].client_mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!((out[0].lease_secs, out[0].server), (None, None));
        // Advertise offers, it does not assign; a Solicit without a name says nothing.
        assert!(v6(&msg6(v6::ADVERTISE, &[ia_na(60)])).unwrap().is_empty());
        assert!(v6(&msg6(v6::SOLICIT, &[ia_na(60)])).unwrap().is_empty());
    }

    #[test]
    fn every_v6_error() {
        assert!(matches!(
            v6(&[7, 0]),
            Err(DhcpError::Truncated { need: 4, .. })
        ));
        assert_eq!(v6(&[0, 0, 0, 0]), Err(DhcpError::BadMessageType(0)));
        assert_eq!(v6(&[37, 0, 0, 0]), Err(DhcpError::BadMessageType(37)));
        assert!(matches!(
            v6(&[7, 0, 0, 0, 0, 1]),
            Err(DhcpError::Truncated {
                need: 4,
                have: 2,
                ..
            })
        ));
        assert!(matches!(
            v6(&[7, 0, 0, 0, 0, 1, 0, 9, 1]),
            Err(DhcpError::OptionOverrun {
                code: 1,
                len: 9,
                ..
            })
        ));
        assert!(matches!(
            v6(&msg6(7, &[opt6(OPT6_IA_NA, &[0; 11])])),
            Err(DhcpError::BadOptionLength { code: 3, .. })
        ));
        assert!(matches!(
            v6(&msg6(7, &[opt6(OPT6_IA_TA, &[0; 3])])),
            Err(DhcpError::BadOptionLength { code: 4, .. })
        ));
        let mut ia = vec![0; 12];
        ia.extend(opt6(OPT6_IAADDR, &[0; 23]));
        assert!(matches!(
            v6(&msg6(7, &[opt6(OPT6_IA_NA, &ia)])),
            Err(DhcpError::BadOptionLength { code: 5, .. })
        ));
        assert!(matches!(
            v6(&msg6(7, &[opt6(OPT6_FQDN, &[])])),
            Err(DhcpError::BadOptionLength { code: 39, .. })
        ));
        assert_eq!(
            v6(&msg6(7, &[opt6(OPT6_FQDN, &[0, 64])])),
            Err(DhcpError::BadDomainName("label longer than 63 bytes"))
        );
        assert_eq!(
            v6(&msg6(7, &[opt6(OPT6_FQDN, &[0, 5, b'a'])])),
            Err(DhcpError::BadDomainName("label runs past the option"))
        );
        let mut long = vec![0u8];
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        assert_eq!(
            v6(&msg6(7, &[opt6(OPT6_FQDN, &long)])),
            Err(DhcpError::BadDomainName("name longer than 255 bytes"))
        );
        assert!(matches!(
            v6(&[v6::RELAY_FORW, 0, 0]),
            Err(DhcpError::Truncated { need: 34, .. })
        ));
        let mut relay = vec![v6::RELAY_FORW, 0];
        relay.extend_from_slice(&[0; 32]);
        assert_eq!(v6(&relay), Err(DhcpError::RelayWithoutMessage));
        // Relays wrapped in relays, deeper than any relay chain may be.
        let mut m = msg6(v6::REPLY, &[]);
        for _ in 0..=MAX_RELAY_DEPTH {
            let mut r = vec![v6::RELAY_REPL, 0];
            r.extend_from_slice(&[0; 32]);
            r.extend(opt6(OPT6_RELAY_MSG, &m));
            m = r;
        }
        assert_eq!(v6(&m), Err(DhcpError::RelayTooDeep));
    }

    #[test]
    fn ports_pick_the_protocol() {
        assert!(is_dhcp(&meta(67, 68, false)));
        assert!(is_dhcp(&meta(67, 67, false)));
        assert!(is_dhcp(&meta(546, 547, true)));
        assert!(!is_dhcp(&meta(67, 547, false)));
        let mut m = meta(67, 68, false);
        m.proto = 6;
        assert!(!is_dhcp(&m));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            cookie in proptest::prelude::any::<bool>(),
        ) {
            let mut p = bytes.clone();
            if cookie && p.len() >= 240 {
                p[0] = 2;
                p[2] = 6;
                p[236..240].copy_from_slice(&MAGIC_COOKIE);
            }
            let _ = v4(&p);
            let _ = v6(&bytes);
        }
    }
}
