//! DHCPv6 (RFC 8415): the innermost message of any relay wrapping, and of its options the
//! client DUID, the FQDN and the addresses in IA_NA/IA_TA.

use super::{be_u32, truncated, DhcpError};
use crate::decode::PacketMeta;
use crate::record::dhcp::{v6, MAX_HOSTNAME_BYTES};
use crate::record::{LeaseObservation, Mac};
use std::net::{IpAddr, Ipv6Addr};

const OPT6_CLIENTID: u16 = 1;
const OPT6_IA_NA: u16 = 3;
const OPT6_IA_TA: u16 = 4;
const OPT6_IAADDR: u16 = 5;
const OPT6_RELAY_MSG: u16 = 9;
const OPT6_FQDN: u16 = 39;
/// Relay-forward/reply nesting RFC 8415 allows (HOP_COUNT_LIMIT).
pub(super) const MAX_RELAY_DEPTH: usize = 32;

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..)?
        .first_chunk::<2>()
        .map(|a| u16::from_be_bytes(*a))
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

/// Parses a DHCPv6 message `p`, relayed or not (see [`parse`](super::parse)).
pub(super) fn parse(
    meta: &PacketMeta,
    p: &[u8],
    out: &mut Vec<LeaseObservation>,
) -> Result<(), DhcpError> {
    let (msg, base) = innermost(p)?;
    if msg.len() < 4 {
        return Err(truncated("DHCPv6 message header", 4, msg.len()));
    }
    let message = msg[0];
    if message == 0 || message > 36 {
        return Err(DhcpError::BadMessageType(message));
    }
    let xid = u32::from_be_bytes([0, msg[1], msg[2], msg[3]]);
    let options = message_options(&msg[4..], base + 4)?;
    observe(meta, message, xid, &options, out);
    Ok(())
}

/// The message inside any relay wrapping, and the byte of `p` it starts at: relays wrap the
/// client's or server's message, and attribution wants that one.
fn innermost(p: &[u8]) -> Result<(&[u8], usize), DhcpError> {
    let mut msg = p;
    let mut base = 0;
    let mut depth = 0;
    while let Some(&(v6::RELAY_FORW | v6::RELAY_REPL)) = msg.first() {
        depth += 1;
        if depth > MAX_RELAY_DEPTH {
            return Err(DhcpError::RelayTooDeep);
        }
        // msg-type, hop-count, link-address (16), peer-address (16).
        if msg.len() < 34 {
            return Err(truncated("DHCPv6 relay header", 34, msg.len()));
        }
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
    Ok((msg, base))
}

/// The DHCPv6 options attribution reads.
#[derive(Default)]
struct V6Options<'a> {
    duid: Option<&'a [u8]>,
    hostname: Option<String>,
    /// (address, valid lifetime) of every IAADDR in an IA_NA or IA_TA.
    addrs: Vec<(Ipv6Addr, u32)>,
}

/// Reads a message's options `area` (at byte `base` of the message).
fn message_options(area: &[u8], base: usize) -> Result<V6Options<'_>, DhcpError> {
    let mut o = V6Options::default();
    v6_options(area, base, |code, value, at| {
        match code {
            OPT6_CLIENTID => o.duid = Some(value),
            OPT6_FQDN => {
                let (_flags, name) = value.split_first().ok_or(DhcpError::BadOptionLength {
                    code,
                    len: 0,
                    expected: "at least 1",
                })?;
                let name = domain_name(name)?;
                o.hostname = (!name.is_empty()).then_some(name);
            }
            OPT6_IA_NA | OPT6_IA_TA => ia_addresses(code, value, at, &mut o.addrs)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(o)
}

/// Appends to `addrs` the (address, valid lifetime) of every IAADDR inside IA_NA or IA_TA
/// option `code`, whose `value` is at byte `at` of the message.
fn ia_addresses(
    code: u16,
    value: &[u8],
    at: usize,
    addrs: &mut Vec<(Ipv6Addr, u32)>,
) -> Result<(), DhcpError> {
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
            let fixed = value
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
    })
}

/// Appends the observations message type `message` makes of what its options say.
fn observe(
    meta: &PacketMeta,
    message: u8,
    xid: u32,
    o: &V6Options<'_>,
    out: &mut Vec<LeaseObservation>,
) {
    let from_server = matches!(message, v6::ADVERTISE | v6::REPLY | v6::RECONFIGURE);
    // Without a link-layer DUID, the client's own Ethernet address: the destination of what
    // the server sends, the source of what the client sends (a relay's, when relayed).
    let client_mac = o.duid.and_then(duid_mac).or(if from_server {
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
        hostname: o.hostname.clone(),
        server: from_server.then_some(meta.src),
        xid,
    };
    match message {
        v6::REPLY | v6::RELEASE | v6::DECLINE => {
            let lease = |valid| (message == v6::REPLY).then_some(valid);
            out.extend(o.addrs.iter().map(|&(a, valid)| obs(a, lease(valid))));
        }
        v6::SOLICIT | v6::REQUEST | v6::RENEW | v6::REBIND if o.hostname.is_some() => {
            let a = o.addrs.first().map_or(Ipv6Addr::UNSPECIFIED, |&(a, _)| a);
            out.push(obs(a, None));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_packets::*;
    use super::*;

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
}
