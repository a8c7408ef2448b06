//! One record of a decoded block, read in place from its columns.

use super::{ColumnDecoder, F_DST_V6, F_SRC_V6, NO_MAC};
use crate::record::{EndReason, FlowFields, Mac};
use std::net::IpAddr;

/// One record of a decoded block, read in place from its columns.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    d: &'a ColumnDecoder,
    i: usize,
}

impl ColumnDecoder {
    /// Record `i` of the block, read from the loaded columns; fields of columns not loaded
    /// read as zero or absent.
    pub fn row(&self, i: usize) -> Row<'_> {
        Row { d: self, i }
    }
}

impl Row<'_> {
    fn flag(&self, bit: u8) -> bool {
        self.d.flags.get(self.i).is_some_and(|f| f & bit != 0)
    }

    fn at<T: Copy + Default>(&self, v: &[T]) -> T {
        v.get(self.i).copied().unwrap_or_default()
    }

    fn addr(&self, side: usize, v6_bit: u8) -> IpAddr {
        self.d
            .addr_of(self.flag(v6_bit), self.at(&self.d.addr[side]))
    }

    fn mac(&self, side: usize) -> Option<Mac> {
        self.d
            .mac_of(self.d.mac[side].get(self.i).copied().unwrap_or(NO_MAC))
    }
}

impl FlowFields for Row<'_> {
    fn first(&self) -> i64 {
        self.at(&self.d.firsts)
    }
    fn last(&self) -> i64 {
        self.at(&self.d.lasts)
    }
    fn proto(&self) -> u8 {
        self.at(&self.d.proto)
    }
    fn src(&self) -> IpAddr {
        self.addr(0, F_SRC_V6)
    }
    fn dst(&self) -> IpAddr {
        self.addr(1, F_DST_V6)
    }
    fn sport(&self) -> u16 {
        self.at(&self.d.u16s[0])
    }
    fn dport(&self) -> u16 {
        self.at(&self.d.u16s[1])
    }
    fn vlan(&self) -> u16 {
        self.at(&self.d.u16s[2])
    }
    fn inner_vlan(&self) -> u16 {
        self.at(&self.d.u16s[3])
    }
    fn src_mac(&self) -> Option<Mac> {
        self.mac(0)
    }
    fn dst_mac(&self) -> Option<Mac> {
        self.mac(1)
    }
    fn packets(&self) -> u64 {
        self.at(&self.d.counters[0])
    }
    fn bytes(&self) -> u64 {
        self.at(&self.d.counters[1])
    }
    fn rev_packets(&self) -> u64 {
        self.at(&self.d.counters[2])
    }
    fn rev_bytes(&self) -> u64 {
        self.at(&self.d.counters[3])
    }
    fn tcp_flags(&self) -> u8 {
        self.at(&self.d.small[0])
    }
    fn rev_tcp_flags(&self) -> u8 {
        self.at(&self.d.small[1])
    }
    fn end(&self) -> EndReason {
        EndReason::from_u8(self.at(&self.d.small[2])).unwrap_or(EndReason::Idle)
    }
}
