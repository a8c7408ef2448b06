//! DHCPv4 (RFC 2131/2132) and BOOTP replies without options (RFC 951): the fixed BOOTP header
//! and the options attribution reads, from the vendor area and, when overloaded, the file and
//! sname fields.

use super::{be_u32, truncated, DhcpError};
use crate::decode::PacketMeta;
use crate::record::dhcp::{v4, MAX_HOSTNAME_BYTES};
use crate::record::{LeaseObservation, Mac};
use std::net::{IpAddr, Ipv4Addr};

/// The fixed BOOTP header in front of the magic cookie.
const BOOTP_FIXED_LEN: usize = 236;
pub(super) const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;

fn ipv4_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    b.get(at..)?.first_chunk::<4>().map(|a| Ipv4Addr::from(*a))
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

/// Parses a DHCPv4 or BOOTP message `p` (see [`parse`](super::parse)).
pub(super) fn parse(
    meta: &PacketMeta,
    p: &[u8],
    out: &mut Vec<LeaseObservation>,
) -> Result<(), DhcpError> {
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

#[cfg(test)]
mod tests {
    use super::super::test_packets::*;
    use super::*;

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
}
