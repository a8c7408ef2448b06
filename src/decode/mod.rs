//! From frame bytes to the few header fields a flow needs ([`PacketMeta`]).

#[cfg(test)]
mod damage_tests;
pub mod dhcp;
mod dispatch;
mod fast;
mod ip;
mod link;
#[cfg(test)]
mod link_tests;
mod nflog;
mod pseudowire;
#[cfg(test)]
mod test_frames;

pub use dispatch::Dispatcher;

use crate::capture::Packet;
use crate::record::Mac;
use crate::time::Nanos;
use ip::Addrs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The UDP payload of `pkt` (as far as it was captured, and no further than the UDP length
/// says), for the few packets whose payload is read (DHCP); `None` for anything else,
/// including fragments. Parses the headers again: cheaper than carrying an offset for every
/// packet when almost none need it.
pub fn udp_payload<'a>(pkt: &Packet<'a>) -> Option<&'a [u8]> {
    let l2 = link::locate_ip(pkt.link, pkt.data, pkt.wire_len).ok()?;
    let ip = pkt.data.get(l2.ip_off..)?;
    let payload = match l2.version {
        link::IpVersion::V4 => etherparse::LaxIpv4Slice::from_slice(ip)
            .ok()?
            .0
            .payload()
            .clone(),
        link::IpVersion::V6 => etherparse::LaxIpv6Slice::from_slice(ip)
            .ok()?
            .0
            .payload()
            .clone(),
    };
    if payload.fragmented || payload.ip_number != etherparse::ip_number::UDP {
        return None;
    }
    let udp = payload.payload;
    let len = usize::from(link::be16(udp, 4)?);
    udp.get(8..len.clamp(8, udp.len().max(8)))
}

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
    /// Index of the capture source the frame came from (`FlowRecord::interface`); `decode`
    /// leaves it 0 and the pipeline sets it.
    pub interface: u16,
}

/// Why a frame gave no [`PacketMeta`]; counted, never logged one by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A well-formed frame that carries no IP (ARP, LLDP, PPPoE discovery, ...).
    NotIp,
    /// Damaged headers in front of, or in, the IP header.
    Malformed(&'static str),
}

/// The outermost IP header of `pkt` and its transport ports/flags. Tunnels are not opened: the
/// outer header is the flow, as NetFlow exporters see it. An Ethernet pseudowire over MPLS is a
/// link, not a tunnel: the IP inside its Ethernet frame is the outermost. Frames cut by the snap length still
/// decode as long as both IP addresses were captured.
pub fn decode(pkt: &Packet<'_>) -> Result<PacketMeta, DecodeError> {
    match fast::eth_ip(pkt) {
        Some(meta) => Ok(meta),
        None => decode_slow(pkt),
    }
}

/// [`decode`] without its fast path for plain Ethernet/IPv4/TCP-or-UDP frames: the general walk
/// every frame can take. Public so that tests and benches can hold the fast path against it.
pub fn decode_slow(pkt: &Packet<'_>) -> Result<PacketMeta, DecodeError> {
    let p = ip::parse(pkt)?;
    let (src, dst) = match p.addrs {
        Addrs::V4 { src, dst } => (
            IpAddr::V4(Ipv4Addr::from(src)),
            IpAddr::V4(Ipv4Addr::from(dst)),
        ),
        Addrs::V6 { src, dst } => (
            IpAddr::V6(Ipv6Addr::from(src)),
            IpAddr::V6(Ipv6Addr::from(dst)),
        ),
    };
    Ok(PacketMeta {
        ts: pkt.ts,
        src,
        dst,
        proto: p.proto,
        sport: p.sport,
        dport: p.dport,
        vlan: p.l2.vlan,
        inner_vlan: p.l2.inner_vlan,
        src_mac: p.l2.src_mac,
        dst_mac: p.l2.dst_mac,
        ip_bytes: p.ip_bytes,
        tcp_flags: p.tcp_flags,
        frag: p.frag,
        interface: 0,
    })
}
