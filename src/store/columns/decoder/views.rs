//! Whole loaded columns, for filters that test a block at once.

use super::{ColumnDecoder, F_DST_V6, F_SRC_V6};
use crate::record::Mac;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

impl ColumnDecoder {
    /// The loaded columns as slices of `records()` values, for filters that test a whole block
    /// at once; a column not loaded is empty.
    pub fn flags(&self) -> &[u8] {
        &self.flags
    }
    pub fn protos(&self) -> &[u8] {
        &self.proto
    }
    pub fn sports(&self) -> &[u16] {
        &self.u16s[0]
    }
    pub fn dports(&self) -> &[u16] {
        &self.u16s[1]
    }
    pub fn vlans(&self) -> &[u16] {
        &self.u16s[2]
    }
    pub fn inner_vlans(&self) -> &[u16] {
        &self.u16s[3]
    }
    /// Packets, bytes, reverse packets, reverse bytes.
    pub fn counters(&self) -> [&[u64]; 4] {
        let [a, b, c, d] = &self.counters;
        [a, b, c, d]
    }
    /// TCP flags, reverse TCP flags, end reason codes.
    pub fn flag_bytes(&self) -> [&[u8]; 3] {
        let [a, b, c] = &self.small;
        [a, b, c]
    }

    /// Sets `out[i]` to whether record `i`'s source (`src`) or destination address passes
    /// `pred`, which is asked once per distinct address of the block, not once per record.
    pub fn addr_hits(&self, src: bool, pred: impl Fn(IpAddr) -> bool, out: &mut [bool]) {
        let v4: Vec<bool> = self
            .v4
            .iter()
            .map(|e| pred(IpAddr::V4(Ipv4Addr::from(*e))))
            .collect();
        let v6: Vec<bool> = self
            .v6
            .iter()
            .map(|e| pred(IpAddr::V6(Ipv6Addr::from(*e))))
            .collect();
        let (ids, bit) = if src {
            (&self.addr[0], F_SRC_V6)
        } else {
            (&self.addr[1], F_DST_V6)
        };
        for ((o, &id), &f) in out.iter_mut().zip(ids).zip(&self.flags) {
            let hits = if f & bit != 0 { &v6 } else { &v4 };
            *o = hits.get(id as usize).copied().unwrap_or(false);
        }
    }

    /// [`ColumnDecoder::addr_hits`] for the source or destination MAC (`None`: no MAC).
    pub fn mac_hits(&self, src: bool, pred: impl Fn(Option<Mac>) -> bool, out: &mut [bool]) {
        let hits: Vec<bool> = self.macs.iter().map(|m| pred(Some(*m))).collect();
        let none = pred(None);
        let ids = if src { &self.mac[0] } else { &self.mac[1] };
        for (o, &id) in out.iter_mut().zip(ids) {
            *o = hits.get(id as usize).copied().unwrap_or(none);
        }
    }
}
