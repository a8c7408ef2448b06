//! Records into column data.

use super::dictionary::{mac_key, Dict, PutDict};
use super::planar::put_planar;
use super::{Layout, F_DST_MAC, F_DST_V6, F_SRC_MAC, F_SRC_V6, MAX_TIME_EXP};
use crate::record::FlowRecord;
use crate::store::address_filter;
use std::net::{IpAddr, Ipv4Addr};

/// Reusable buffers for encoding blocks: after the first few blocks, encoding allocates nothing.
pub struct ColumnEncoder {
    /// (first, arrival index): sorting these pairs is a stable sort by `first` that needs no
    /// scratch memory and touches no record.
    order: Vec<(i64, u32)>,
    /// The records in column order, so that each column pass reads memory sequentially.
    sorted: Vec<FlowRecord>,
    col: Vec<u8>,
    v4: Dict<u32, 4>,
    v6: Dict<u128, 16>,
    macs: Dict<u64, 6>,
}

impl Default for ColumnEncoder {
    fn default() -> Self {
        ColumnEncoder::new()
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl ColumnEncoder {
    pub fn new() -> ColumnEncoder {
        ColumnEncoder {
            order: Vec::new(),
            sorted: Vec::new(),
            col: Vec::new(),
            v4: Dict::new(),
            v6: Dict::new(),
            macs: Dict::new(),
        }
    }

    /// Appends the column data of `recs` in `layout` to `out` (codecs 1 and 2 only for tests of
    /// old segments); `recs.len()` must be at most `MAX_BLOCK_RECORDS`
    /// (the caller checks). Also builds the address filter into `filter` and returns its probe
    /// count.
    pub fn encode(
        &mut self,
        recs: &[FlowRecord],
        layout: Layout,
        out: &mut Vec<u8>,
        filter: &mut Vec<u8>,
    ) -> u8 {
        let planar = layout == Layout::Codec4;
        self.sort(recs);
        self.put_flags(out);
        self.put_times(planar, out);
        self.put_proto_ports_vlans(out);
        self.put_dictionaries(out);
        self.put_counters_and_flag_bytes(planar, out);
        // Column 18 (codec 2): the capture interface index, byte-planar like the ports. One
        // interface gives a column of zeros, which zstd reduces to a few bytes.
        if layout.with_interface() {
            put_u16s(&mut self.col, &self.sorted, |r| r.interface, out);
        }
        // The filter covers the distinct addresses, which the dictionaries already found.
        let keys = self
            .v4
            .values
            .iter()
            .map(|v| Ipv4Addr::from(*v).to_ipv6_mapped().octets())
            .chain(self.v6.values.iter().copied());
        address_filter::build(keys, self.v4.values.len() + self.v6.values.len(), filter)
    }

    /// Sorting by `first` turns the first-time column into small non-negative deltas; ties
    /// keep their order of arrival.
    fn sort(&mut self, recs: &[FlowRecord]) {
        self.order.clear();
        self.order
            .extend(recs.iter().enumerate().map(|(i, r)| (r.first, i as u32)));
        self.order.sort_unstable();
        self.sorted.clear();
        self.sorted.extend(
            self.order
                .iter()
                .filter_map(|&(_, i)| recs.get(i as usize))
                .cloned(),
        );
    }

    /// Column 0: which address families and MACs each record has.
    fn put_flags(&mut self, out: &mut Vec<u8>) {
        let col = &mut self.col;
        col.clear();
        col.extend(self.sorted.iter().map(|r| {
            let mut f = 0;
            if r.src.is_ipv6() {
                f |= F_SRC_V6;
            }
            if r.dst.is_ipv6() {
                f |= F_DST_V6;
            }
            if r.src_mac.is_some() {
                f |= F_SRC_MAC;
            }
            if r.dst_mac.is_some() {
                f |= F_DST_MAC;
            }
            f
        }));
        put_col(out, col);
    }

    /// Columns 1 and 2: first (base + deltas) and last − first, in the largest unit 10^e ns
    /// that divides every delta and duration (pcap gives µs, so usually e = 3).
    fn put_times(&mut self, planar: bool, out: &mut Vec<u8>) {
        let col = &mut self.col;
        let sorted = || self.sorted.iter();
        let base = sorted().next().map(|r| r.first);
        let deltas = || {
            let mut p = base.unwrap_or(0);
            sorted().map(move |r| {
                let d = r.first.wrapping_sub(p) as u64;
                p = r.first;
                d
            })
        };
        let durations = || sorted().map(|r| r.last.wrapping_sub(r.first) as u64);
        let exp = time_exp(deltas().chain(durations()));
        let unit = 10u64.pow(u32::from(exp));
        col.clear();
        if let Some(base) = base {
            col.push(exp);
            col.extend_from_slice(&base.to_le_bytes());
            put_u64s(col, planar, || deltas().skip(1).map(|d| d / unit));
        }
        put_col(out, col);
        col.clear();
        put_u64s(col, planar, || durations().map(|d| d / unit));
        put_col(out, col);
    }

    /// Column 3: protocol; 4-7: ports and VLANs.
    fn put_proto_ports_vlans(&mut self, out: &mut Vec<u8>) {
        self.col.clear();
        self.col.extend(self.sorted.iter().map(|r| r.proto));
        put_col(out, &self.col);
        let u16_cols: [fn(&FlowRecord) -> u16; 4] =
            [|r| r.sport, |r| r.dport, |r| r.vlan, |r| r.inner_vlan];
        for get in u16_cols {
            put_u16s(&mut self.col, &self.sorted, get, out);
        }
    }

    /// Columns 8-10: the IPv4, IPv6 and MAC dictionaries.
    fn put_dictionaries(&mut self, out: &mut Vec<u8>) {
        self.v4.clear();
        self.v6.clear();
        self.macs.clear();
        for r in &self.sorted {
            for (a, src) in [(&r.src, true), (&r.dst, false)] {
                match a {
                    IpAddr::V4(v4) => self.v4.add(u32::from(*v4), v4.octets(), src),
                    IpAddr::V6(v6) => self.v6.add(u128::from(*v6), v6.octets(), src),
                }
            }
            for (m, src) in [(&r.src_mac, true), (&r.dst_mac, false)] {
                if let Some(m) = m {
                    self.macs.add(mac_key(m), *m, src);
                }
            }
        }
        for dict in [
            &mut self.v4 as &mut dyn PutDict,
            &mut self.v6,
            &mut self.macs,
        ] {
            self.col.clear();
            dict.put_into(&mut self.col);
            put_col(out, &self.col);
        }
    }

    /// Columns 11-14: counters; 15-17: TCP flags and end reason.
    fn put_counters_and_flag_bytes(&mut self, planar: bool, out: &mut Vec<u8>) {
        let col = &mut self.col;
        let sorted = || self.sorted.iter();
        let counters: [fn(&FlowRecord) -> u64; 4] = [
            |r| r.packets,
            |r| r.bytes,
            |r| r.rev_packets,
            |r| r.rev_bytes,
        ];
        for get in counters {
            col.clear();
            put_u64s(col, planar, || sorted().map(get));
            put_col(out, col);
        }
        let bytes: [fn(&FlowRecord) -> u8; 3] =
            [|r| r.tcp_flags, |r| r.rev_tcp_flags, |r| r.end as u8];
        for get in bytes {
            col.clear();
            col.extend(sorted().map(get));
            put_col(out, col);
        }
    }
}

/// A column of `u64` values: fixed-width planar (codec 4), else LEB128 varints.
#[inline]
fn put_u64s<I: Iterator<Item = u64>>(col: &mut Vec<u8>, planar: bool, vals: impl Fn() -> I) {
    if planar {
        put_planar(col, vals);
    } else {
        for v in vals() {
            put_varint(col, v);
        }
    }
}

/// A column of `u16` values, byte-planar: all low bytes, then all high bytes.
fn put_u16s(
    col: &mut Vec<u8>,
    sorted: &[FlowRecord],
    get: impl Fn(&FlowRecord) -> u16,
    out: &mut Vec<u8>,
) {
    col.clear();
    col.extend(sorted.iter().map(|r| get(r) as u8));
    col.extend(sorted.iter().map(|r| (get(r) >> 8) as u8));
    put_col(out, col);
}

/// The largest e ≤ 9 such that 10^e divides every value.
fn time_exp(values: impl Iterator<Item = u64>) -> u8 {
    let mut exp = MAX_TIME_EXP;
    let mut unit = 10u64.pow(u32::from(exp));
    for v in values {
        while exp > 0 && v % unit != 0 {
            exp -= 1;
            unit /= 10;
        }
        if exp == 0 {
            break;
        }
    }
    exp
}

fn put_col(out: &mut Vec<u8>, col: &[u8]) {
    // A column is at most MAX_BYTES_PER_RECORD × 65 536 bytes, far inside u32.
    out.extend_from_slice(&(col.len() as u32).to_le_bytes());
    out.extend_from_slice(col);
}
