//! Records built from a block's loaded columns.

use super::{ColumnDecoder, F_DST_V6, F_SRC_V6, NO_MAC};
use crate::record::{EndReason, FlowRecord, Mac};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

impl ColumnDecoder {
    /// Appends records `rows` (a range within the block) to `out`, built from the loaded
    /// columns, which must be all of them. Callers take ranges small enough for the records to
    /// stay in cache until they are used. The records are filled in three passes of a few
    /// columns each: one pass over all nineteen columns keeps more iterators than there are
    /// registers, and spilling them cost more than walking the (cached) records three times.
    pub fn assemble(&self, rows: std::ops::Range<usize>, out: &mut Vec<FlowRecord>) {
        fn part<'v, T>(v: &'v [T], rows: &std::ops::Range<usize>) -> &'v [T] {
            v.get(rows.clone()).unwrap_or_default()
        }
        let [sport, dport, vlan, ivlan, iface] = &self.u16s;
        let [tf, rtf, end] = &self.small;
        let [pk, by, rpk, rby] = &self.counters;
        let start = out.len();
        // Times, counters and the one-byte columns.
        let times = part(&self.firsts, &rows)
            .iter()
            .zip(part(&self.lasts, &rows));
        let counters = part(pk, &rows)
            .iter()
            .zip(part(by, &rows))
            .zip(part(rpk, &rows))
            .zip(part(rby, &rows));
        let bytes = part(&self.proto, &rows)
            .iter()
            .zip(part(tf, &rows))
            .zip(part(rtf, &rows))
            .zip(part(end, &rows));
        out.extend(times.zip(counters).zip(bytes).map(
            |(((&first, &last), (((&pk, &by), &rpk), &rby)), (((&proto, &tf), &rtf), &end))| {
                record_core(first, last, proto, [pk, by, rpk, rby], [tf, rtf, end])
            },
        ));
        let built = out.get_mut(start..).unwrap_or_default();
        // Addresses and MACs.
        let addrs = part(&self.addr[0], &rows)
            .iter()
            .zip(part(&self.addr[1], &rows));
        let macs = part(&self.mac[0], &rows)
            .iter()
            .zip(part(&self.mac[1], &rows));
        for ((r, &f), ((&src, &dst), (&src_mac, &dst_mac))) in built
            .iter_mut()
            .zip(part(&self.flags, &rows))
            .zip(addrs.zip(macs))
        {
            r.src = self.addr_of(f & F_SRC_V6 != 0, src);
            r.dst = self.addr_of(f & F_DST_V6 != 0, dst);
            r.src_mac = self.mac_of(src_mac);
            r.dst_mac = self.mac_of(dst_mac);
        }
        // Ports, VLANs, interface.
        let u16s = part(sport, &rows)
            .iter()
            .zip(part(dport, &rows))
            .zip(part(vlan, &rows))
            .zip(part(ivlan, &rows))
            .zip(part(iface, &rows));
        for (r, ((((&sport, &dport), &vlan), &ivlan), &iface)) in built.iter_mut().zip(u16s) {
            r.sport = sport;
            r.dport = dport;
            r.vlan = vlan;
            r.inner_vlan = ivlan;
            r.interface = iface;
        }
    }

    /// [`ColumnDecoder::assemble`] for chosen records (ascending indexes within the block),
    /// in the same three passes.
    pub fn assemble_rows(&self, rows: &[u32], out: &mut Vec<FlowRecord>) {
        fn at<T: Copy + Default>(v: &[T], i: u32) -> T {
            v.get(i as usize).copied().unwrap_or_default()
        }
        let [sport, dport, vlan, ivlan, iface] = &self.u16s;
        let [tf, rtf, end] = &self.small;
        let [pk, by, rpk, rby] = &self.counters;
        let start = out.len();
        out.extend(rows.iter().map(|&i| {
            record_core(
                at(&self.firsts, i),
                at(&self.lasts, i),
                at(&self.proto, i),
                [at(pk, i), at(by, i), at(rpk, i), at(rby, i)],
                [at(tf, i), at(rtf, i), at(end, i)],
            )
        }));
        let built = out.get_mut(start..).unwrap_or_default();
        for (r, &i) in built.iter_mut().zip(rows) {
            let f = at(&self.flags, i);
            r.src = self.addr_of(f & F_SRC_V6 != 0, at(&self.addr[0], i));
            r.dst = self.addr_of(f & F_DST_V6 != 0, at(&self.addr[1], i));
            r.src_mac = self.mac_of(self.mac[0].get(i as usize).copied().unwrap_or(NO_MAC));
            r.dst_mac = self.mac_of(self.mac[1].get(i as usize).copied().unwrap_or(NO_MAC));
        }
        for (r, &i) in built.iter_mut().zip(rows) {
            r.sport = at(sport, i);
            r.dport = at(dport, i);
            r.vlan = at(vlan, i);
            r.inner_vlan = at(ivlan, i);
            r.interface = at(iface, i);
        }
    }

    #[inline]
    pub(super) fn addr_of(&self, v6: bool, id: u32) -> IpAddr {
        if v6 {
            IpAddr::V6(Ipv6Addr::from(
                self.v6.get(id as usize).copied().unwrap_or([0; 16]),
            ))
        } else {
            IpAddr::V4(Ipv4Addr::from(
                self.v4.get(id as usize).copied().unwrap_or([0; 4]),
            ))
        }
    }

    #[inline]
    pub(super) fn mac_of(&self, id: u32) -> Option<Mac> {
        self.macs.get(id as usize).copied()
    }
}

/// The first of the three passes that build a record: times, counters and the one-byte
/// columns; the addresses, MACs, ports, VLANs and interface are filled in by the later passes.
#[inline(always)]
fn record_core(
    first: i64,
    last: i64,
    proto: u8,
    [packets, bytes, rev_packets, rev_bytes]: [u64; 4],
    [tcp_flags, rev_tcp_flags, end]: [u8; 3],
) -> FlowRecord {
    FlowRecord {
        first,
        last,
        proto,
        src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        sport: 0,
        dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        dport: 0,
        vlan: 0,
        inner_vlan: 0,
        interface: 0,
        src_mac: None,
        dst_mac: None,
        packets,
        bytes,
        rev_packets,
        rev_bytes,
        tcp_flags,
        rev_tcp_flags,
        end: EndReason::from_u8(end).unwrap_or(EndReason::Idle),
    }
}
