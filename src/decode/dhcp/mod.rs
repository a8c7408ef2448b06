//! DHCPv4 (RFC 2131/2132, and BOOTP replies without options, RFC 951) and DHCPv6 (RFC 8415)
//! messages as lease observations: who was given, gave back or asked for which address.
//!
//! Only what attribution needs is read; every length is checked against the bytes present, and
//! anything malformed is a [`DhcpError`] naming what is wrong, never a panic. Which messages
//! become observations, and what each field means, is documented on
//! [`LeaseObservation`](crate::record::LeaseObservation).

use super::PacketMeta;
use crate::capture::Packet;
use crate::record::dhcp::{
    DHCP4_CLIENT_PORT, DHCP4_SERVER_PORT, DHCP6_CLIENT_PORT, DHCP6_SERVER_PORT,
};
use crate::record::LeaseObservation;
use v6::MAX_RELAY_DEPTH;

#[cfg(test)]
mod test_packets;
mod v4;
mod v6;

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
        v6::parse(meta, payload, out)
    } else {
        v4::parse(meta, payload, out)
    }
}

/// What the pipeline does with each decoded frame: if it is DHCP (see [`is_dhcp`]), parses its
/// UDP payload and appends the lease observations to `out`. Returns whether the frame is DHCP
/// but could not be read (no UDP payload, or a [`DhcpError`]), which the caller counts as
/// malformed.
#[must_use = "a DHCP packet that could not be read is counted as malformed"]
pub fn collect_leases(
    meta: &PacketMeta,
    frame: &Packet<'_>,
    out: &mut Vec<LeaseObservation>,
) -> bool {
    if !is_dhcp(meta) {
        return false;
    }
    let parsed = super::udp_payload(frame).map(|payload| parse(meta, payload, out));
    !matches!(parsed, Some(Ok(())))
}

fn truncated(what: &'static str, need: usize, have: usize) -> DhcpError {
    DhcpError::Truncated { what, need, have }
}

fn be_u32(b: &[u8]) -> Option<u32> {
    b.first_chunk::<4>().map(|a| u32::from_be_bytes(*a))
}

#[cfg(test)]
mod tests {
    use super::test_packets::*;
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

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
                p[236..240].copy_from_slice(&v4::MAGIC_COOKIE);
            }
            let _ = v4(&p);
            let _ = v6(&bytes);
        }
    }

    #[test]
    fn collect_leases_reads_dhcp_frames_and_says_which_failed() {
        use crate::capture::LinkType;
        let frame = |dport: u16, payload: &[u8]| {
            let mut data = Vec::new();
            etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ipv4([192, 168, 0, 1], [192, 168, 0, 10], 64)
                .udp(67, dport)
                .write(&mut data, payload)
                .expect("frame");
            data
        };
        let collect = |data: &[u8], out: &mut Vec<LeaseObservation>| {
            let pkt = Packet {
                ts: 1_000,
                wire_len: data.len() as u32,
                link: LinkType::ETHERNET,
                data,
            };
            let meta = super::super::decode(&pkt).expect("decodes");
            collect_leases(&meta, &pkt, out)
        };
        let mut reply = vec![0u8; 236];
        reply[0] = 2;
        reply[16..20].copy_from_slice(&[192, 168, 0, 10]);
        let mut out = Vec::new();
        assert!(!collect(&frame(80, &reply), &mut out), "not DHCP");
        assert!(out.is_empty());
        assert!(!collect(&frame(68, &reply), &mut out), "a BOOTP reply");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].address, IpAddr::V4(Ipv4Addr::new(192, 168, 0, 10)));
        reply[0] = 9;
        assert!(collect(&frame(68, &reply), &mut out), "bad op");
        assert!(collect(&frame(68, &reply[..10]), &mut out), "cut");
        assert_eq!(out.len(), 1);
    }
}
