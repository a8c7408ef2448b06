//! From frame bytes to the few header fields a flow needs ([`PacketMeta`]).

use crate::capture::Packet;
use crate::record::Mac;
use crate::time::Nanos;
use std::net::IpAddr;

/// IPv4/IPv6 fragment identity: non-first fragments carry no ports and are matched to their first
/// fragment by (addresses, protocol, id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fragment {
    pub id: u32,
    /// Offset 0: this fragment carries the transport header (ports).
    pub first: bool,
}

/// The outermost IP header of a frame and what sits right above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMeta {
    pub ts: Nanos,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    /// 0 when absent (non-first fragment, truncated header, protocol without ports); for
    /// ICMP/ICMPv6 `sport` is 0 and `dport` is `type * 256 + code`.
    pub sport: u16,
    pub dport: u16,
    pub vlan: u16,
    pub inner_vlan: u16,
    pub src_mac: Option<Mac>,
    pub dst_mac: Option<Mac>,
    /// IPv4 total length, or IPv6 payload length (jumbo payload length) + 40.
    pub ip_bytes: u64,
    pub tcp_flags: u8,
    pub frag: Option<Fragment>,
}

/// Why a frame gave no [`PacketMeta`]; counted, never logged one by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A well-formed frame that carries no IP (ARP, LLDP, PPPoE discovery, ...).
    NotIp,
    /// Damaged headers in front of, or in, the IP header.
    Malformed(&'static str),
}

pub fn decode(_pkt: &Packet<'_>) -> Result<PacketMeta, DecodeError> {
    unimplemented!("decode")
}
