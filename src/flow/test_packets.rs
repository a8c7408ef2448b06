//! Packets and a driver for the flow table's tests.

use super::FlowTable;
use crate::decode::PacketMeta;
use crate::record::FlowRecord;
use crate::time::{Nanos, NANOS_PER_SEC};
use std::net::{IpAddr, Ipv4Addr};

pub(super) use crate::record::tcp_flags::{ACK, FIN, RST, SYN};

pub(super) const S: Nanos = NANOS_PER_SEC;
pub(super) const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
pub(super) const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));

/// A TCP packet of 100 bytes, without MACs, VLANs or fragmentation.
pub(super) fn pkt(
    ts: Nanos,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    flags: u8,
) -> PacketMeta {
    PacketMeta {
        ts,
        src,
        dst,
        proto: 6,
        sport,
        dport,
        vlan: 0,
        inner_vlan: 0,
        src_mac: None,
        dst_mac: None,
        ip_bytes: 100,
        tcp_flags: flags,
        frag: None,
        interface: 0,
    }
}

/// Counts `pkts` one by one, sweeping at each packet's time, as a worker would.
pub(super) fn run(table: &mut FlowTable, pkts: &[PacketMeta]) -> Vec<FlowRecord> {
    let mut out = Vec::new();
    for p in pkts {
        table.update(p, &mut out);
        table.expire(p.ts, &mut out);
    }
    out
}
