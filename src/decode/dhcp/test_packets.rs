//! The packet a DHCP message comes in, and parsing a message as if it came in one.

use super::{parse, DhcpError};
use crate::decode::PacketMeta;
use crate::record::LeaseObservation;
use std::net::{IpAddr, Ipv4Addr};

/// A UDP packet with MACs between two IPv6 link-local or two private IPv4 hosts.
pub(super) fn meta(sport: u16, dport: u16, v6: bool) -> PacketMeta {
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

/// Parses `p` as a DHCPv4 message from a server to a client.
pub(super) fn v4(p: &[u8]) -> Result<Vec<LeaseObservation>, DhcpError> {
    let mut out = Vec::new();
    parse(&meta(67, 68, false), p, &mut out).map(|()| out)
}

/// Parses `p` as a DHCPv6 message from a server to a client.
pub(super) fn v6(p: &[u8]) -> Result<Vec<LeaseObservation>, DhcpError> {
    let mut out = Vec::new();
    parse(&meta(547, 546, true), p, &mut out).map(|()| out)
}
