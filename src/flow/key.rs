//! The canonical flow key: the same for both directions of a conversation, with ICMP replies
//! folded onto their requests, and its hash.

use crate::decode::PacketMeta;
use crate::record::tcp_flags;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A side of a conversation as it orders: IPv4 before IPv6 (as `IpAddr` orders), then the
/// address as a number, then the port.
type Endpoint = (u8, u128, u16);

#[inline]
fn endpoint(addr: IpAddr, port: u16) -> Endpoint {
    match addr {
        IpAddr::V4(a) => (0, u128::from(u32::from(a)), port),
        IpAddr::V6(a) => (1, u128::from(a), port),
    }
}

pub(super) fn ip(v6: bool, addr: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(addr))
    } else {
        IpAddr::V4(Ipv4Addr::from(addr as u32))
    }
}

/// Canonical (direction-free) key: both directions of a conversation find the same entry.
/// Addresses are numbers (IPv4 in the low 32 bits) with a family bit each: compact, and
/// hashed and compared as a few words instead of `IpAddr` enums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
pub(super) struct FlowKey {
    pub(super) lo: u128,
    pub(super) hi: u128,
    pub(super) lo_port: u16,
    pub(super) hi_port: u16,
    pub(super) vlan: u16,
    pub(super) inner_vlan: u16,
    /// The capture source: the same conversation seen on two mirror ports is two flows, as
    /// exporters are kept apart in NetFlow collectors.
    pub(super) interface: u16,
    /// ICMP/ICMPv6: the request's type * 256 + code, so that a reply joins its request.
    pub(super) icmp: u16,
    pub(super) proto: u8,
    /// Bit 0: `lo` is IPv6; bit 1: `hi` is IPv6.
    pub(super) v6: u8,
}

impl FlowKey {
    #[inline]
    pub(super) fn hash(&self, state: &foldhash::fast::RandomState) -> u64 {
        let mut h = state.build_hasher();
        h.write_u128(self.lo);
        h.write_u128(self.hi);
        h.write_u128(
            u128::from(self.lo_port)
                | u128::from(self.hi_port) << 16
                | u128::from(self.vlan) << 32
                | u128::from(self.inner_vlan) << 48
                | u128::from(self.icmp) << 64
                | u128::from(self.proto) << 80
                | u128::from(self.v6) << 88
                | u128::from(self.interface) << 96,
        );
        h.finish()
    }
}

#[inline]
pub(super) fn is_icmp(proto: u8) -> bool {
    proto == 1 || proto == 58
}

/// For ICMP replies, the request type they answer, so both land in one bidirectional record.
fn icmp_request_type(proto: u8, icmp_type: u8) -> Option<u8> {
    match (proto, icmp_type) {
        (1, 0) => Some(8),      // echo reply
        (1, 14) => Some(13),    // timestamp reply
        (1, 16) => Some(15),    // information reply
        (1, 18) => Some(17),    // address mask reply
        (58, 129) => Some(128), // echo reply
        _ => None,
    }
}

/// The ports a packet is keyed by, its key's ICMP type/code, and whether it is an answer (a
/// SYN-ACK, an ICMP reply), so that what was seen first of a flow need not be its initiator.
#[inline]
pub(super) fn key_ports(
    proto: u8,
    sport: u16,
    dport: u16,
    tcp_flag_bits: u8,
) -> (u16, u16, u16, bool) {
    let (mut sport, mut dport) = (sport, dport);
    // ICMP: no ports; the type/code is part of the key, replies folded onto requests.
    let mut reply_first = false;
    let mut icmp = 0;
    if is_icmp(proto) {
        let (ty, code) = ((dport >> 8) as u8, (dport & 0xff) as u8);
        match icmp_request_type(proto, ty) {
            Some(req) => {
                icmp = u16::from(req) << 8 | u16::from(code);
                reply_first = true;
            }
            None => icmp = dport,
        }
        (sport, dport) = (0, 0);
    } else if proto == 6 {
        let synack = tcp_flags::SYN | tcp_flags::ACK;
        reply_first = tcp_flag_bits & synack == synack;
    }
    (sport, dport, icmp, reply_first)
}

/// The packet's canonical key (ports and flags as the fragment table corrected them), whether
/// its sender is the key's `lo` side, and whether it is an answer (a SYN-ACK, an ICMP reply).
// Always: once `key_ports` was split out of it, LLVM stopped inlining it into the per-packet
// key making of `update_batch` and called it instead.
#[inline(always)]
pub(super) fn canonical(
    pkt: &PacketMeta,
    sport: u16,
    dport: u16,
    tcp_flag_bits: u8,
) -> (FlowKey, bool, bool) {
    let (sport, dport, icmp, reply_first) = key_ports(pkt.proto, sport, dport, tcp_flag_bits);
    let s = endpoint(pkt.src, sport);
    let d = endpoint(pkt.dst, dport);
    let from_lo = s <= d;
    let (lo, hi) = if from_lo { (s, d) } else { (d, s) };
    let key = FlowKey {
        lo: lo.1,
        hi: hi.1,
        lo_port: lo.2,
        hi_port: hi.2,
        vlan: pkt.vlan,
        inner_vlan: pkt.inner_vlan,
        interface: pkt.interface,
        icmp,
        proto: pkt.proto,
        v6: lo.0 | hi.0 << 1,
    };
    (key, from_lo, reply_first)
}

/// A packet's canonical key, its hash tag, and which way it goes (see [`canonical`]).
#[derive(Clone, Copy, Default)]
pub(super) struct Keyed {
    pub(super) key: FlowKey,
    pub(super) tag: u32,
    pub(super) from_lo: bool,
    pub(super) reply_first: bool,
}
