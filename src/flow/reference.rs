//! The flow table as it was before its storage was rebuilt for speed: a `HashMap` keyed by
//! `IpAddr` endpoints, swept in full once a second. Tests run both on the same packets and
//! require the same records. The fragment tracking and the ICMP/SYN-ACK keying are the table's
//! own (one copy of each): what this holds the table to is its storage, expiry and counting.

use super::config::SWEEP_INTERVAL;
use super::fragments::Fragments;
use super::key::{is_icmp, key_ports};
use super::{FastMap, FlowConfig, FlowStats};
use crate::decode::PacketMeta;
use crate::record::{tcp_flags, EndReason, FlowRecord, Mac};
use crate::time::Nanos;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Endpoint {
    addr: IpAddr,
    port: u16,
}

/// Canonical (direction-free) key: both directions of a conversation find the same entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FlowKey {
    vlan: u16,
    inner_vlan: u16,
    proto: u8,
    /// ICMP/ICMPv6: the request's type * 256 + code, so that a reply joins its request.
    icmp: u16,
    lo: Endpoint,
    hi: Endpoint,
}

/// Per-direction arrays are indexed by [`INIT`] (initiator → responder) and [`RESP`].
const INIT: usize = 0;
const RESP: usize = 1;

#[derive(Clone, Debug)]
struct Flow {
    initiator_is_lo: bool,
    first: Nanos,
    last: Nanos,
    packets: [u64; 2],
    bytes: [u64; 2],
    flags: [u8; 2],
    macs: [Option<Mac>; 2],
    fin: [bool; 2],
    /// Set once both FINs or an RST were seen: the reason and when the record ends.
    closing: Option<(EndReason, Nanos)>,
}

impl Flow {
    fn is_empty(&self) -> bool {
        self.packets[INIT] == 0 && self.packets[RESP] == 0
    }

    fn record(&self, key: &FlowKey, end: EndReason) -> FlowRecord {
        let (init, resp) = if self.initiator_is_lo {
            (key.lo, key.hi)
        } else {
            (key.hi, key.lo)
        };
        let is_icmp = is_icmp(key.proto);
        FlowRecord {
            first: self.first,
            last: self.last,
            proto: key.proto,
            src: init.addr,
            sport: if is_icmp { 0 } else { init.port },
            dst: resp.addr,
            dport: if is_icmp { key.icmp } else { resp.port },
            vlan: key.vlan,
            inner_vlan: key.inner_vlan,
            interface: 0,
            src_mac: self.macs[INIT],
            dst_mac: self.macs[RESP],
            packets: self.packets[INIT],
            bytes: self.bytes[INIT],
            rev_packets: self.packets[RESP],
            rev_bytes: self.bytes[RESP],
            tcp_flags: self.flags[INIT],
            rev_tcp_flags: self.flags[RESP],
            end,
        }
    }

    /// Starts a new record for the same conversation (after an active timeout): same
    /// orientation, counters from zero.
    fn restart(&mut self) {
        self.packets = [0; 2];
        self.bytes = [0; 2];
        self.flags = [0; 2];
        self.fin = [false; 2];
        self.closing = None;
    }

    /// Counts a packet, keeps the MACs it is the first to show, and takes note of its FIN or
    /// RST.
    fn count(&mut self, pkt: &PacketMeta, from_lo: bool, tcp_flag_bits: u8, cfg: &FlowConfig) {
        if self.is_empty() {
            self.first = pkt.ts;
            self.last = pkt.ts;
        }
        self.first = self.first.min(pkt.ts);
        self.last = self.last.max(pkt.ts);
        let dir = if from_lo == self.initiator_is_lo {
            INIT
        } else {
            RESP
        };
        self.packets[dir] += 1;
        self.bytes[dir] += pkt.ip_bytes;
        self.flags[dir] |= tcp_flag_bits;
        if self.macs[dir].is_none() {
            self.macs[dir] = pkt.src_mac;
        }
        if self.macs[1 - dir].is_none() {
            self.macs[1 - dir] = pkt.dst_mac;
        }
        if pkt.proto == 6 && self.closing.is_none() {
            if tcp_flag_bits & tcp_flags::RST != 0 {
                self.closing = Some((EndReason::Rst, pkt.ts.saturating_add(cfg.tcp_end_timeout)));
            } else if tcp_flag_bits & tcp_flags::FIN != 0 {
                self.fin[dir] = true;
                if self.fin[INIT] && self.fin[RESP] {
                    self.closing =
                        Some((EndReason::Fin, pkt.ts.saturating_add(cfg.tcp_end_timeout)));
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FragmentKey {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u32,
}

pub(super) struct RefTable {
    cfg: FlowConfig,
    flows: FastMap<FlowKey, Flow>,
    fragments: Fragments<FragmentKey>,
    /// The newest packet time seen: a capture whose clock steps back does not move it back.
    now: Nanos,
    next_sweep: Nanos,
    stats: FlowStats,
}

impl RefTable {
    pub(super) fn new(cfg: FlowConfig) -> RefTable {
        RefTable {
            cfg,
            flows: FastMap::default(),
            fragments: Fragments::default(),
            now: Nanos::MIN,
            next_sweep: Nanos::MIN,
            stats: FlowStats::default(),
        }
    }

    pub(super) fn active_flows(&self) -> usize {
        self.flows.len()
    }

    pub(super) fn stats(&self) -> FlowStats {
        self.stats
    }

    /// Counts one packet. Records that this packet ends (a port reused after FIN, an active
    /// timeout) go to `out`; time-based endings are found by `expire`.
    pub(super) fn update(&mut self, pkt: &PacketMeta, out: &mut impl Extend<FlowRecord>) {
        self.now = self.now.max(pkt.ts);
        self.stats.packets += 1;
        self.stats.bytes += pkt.ip_bytes;

        let (mut sport, mut dport) = (pkt.sport, pkt.dport);
        let mut tcp_flag_bits = pkt.tcp_flags;
        if let Some(frag) = pkt.frag {
            let fkey = FragmentKey {
                src: pkt.src,
                dst: pkt.dst,
                proto: pkt.proto,
                id: frag.id,
            };
            (sport, dport, tcp_flag_bits) =
                self.fragments
                    .ports(fkey, frag, pkt, &mut self.stats.orphan_fragments);
        }

        let (sport, dport, icmp, reply_first) = key_ports(pkt.proto, sport, dport, tcp_flag_bits);
        let s = Endpoint {
            addr: pkt.src,
            port: sport,
        };
        let d = Endpoint {
            addr: pkt.dst,
            port: dport,
        };
        let from_lo = s <= d;
        let (lo, hi) = if from_lo { (s, d) } else { (d, s) };
        let key = FlowKey {
            vlan: pkt.vlan,
            inner_vlan: pkt.inner_vlan,
            proto: pkt.proto,
            icmp,
            lo,
            hi,
        };
        // The sender starts the conversation, unless what we saw first is an answer.
        let initiator_is_lo = from_lo != reply_first;
        let cfg = self.cfg;
        let flow = self.flow_for(key, pkt, tcp_flag_bits, initiator_is_lo, out);
        flow.count(pkt, from_lo, tcp_flag_bits, &cfg);
    }

    /// The flow `pkt` counts in: a new one if there was none, or if the packet shows the one
    /// there is over (its record goes to `out`, as does that of a flow at its active timeout).
    fn flow_for(
        &mut self,
        key: FlowKey,
        pkt: &PacketMeta,
        tcp_flag_bits: u8,
        initiator_is_lo: bool,
        out: &mut impl Extend<FlowRecord>,
    ) -> &mut Flow {
        let cfg = self.cfg;
        let new_flow = || Flow {
            initiator_is_lo,
            first: pkt.ts,
            last: pkt.ts,
            packets: [0; 2],
            bytes: [0; 2],
            flags: [0; 2],
            macs: [None; 2],
            fin: [false; 2],
            closing: None,
        };
        match self.flows.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let flow = e.into_mut();
                let new_syn = pkt.proto == 6
                    && tcp_flag_bits & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
                // The sweep runs once a second, so a packet can find its flow already over:
                // timed out, closed and past its linger, or its 4-tuple reused by a new SYN.
                let ended = if flow.is_empty() {
                    None
                } else if pkt.ts.saturating_sub(flow.last) >= cfg.idle_timeout {
                    Some(EndReason::Idle)
                } else {
                    flow.closing
                        .filter(|&(_, deadline)| new_syn || pkt.ts >= deadline)
                        .map(|(reason, _)| reason)
                };
                if let Some(reason) = ended {
                    out.extend(std::iter::once(flow.record(&key, reason)));
                    self.stats.records += 1;
                    self.stats.flows_created += 1;
                    *flow = new_flow();
                } else if !flow.is_empty()
                    && pkt.ts.saturating_sub(flow.first) >= cfg.active_timeout
                {
                    out.extend(std::iter::once(flow.record(&key, EndReason::Active)));
                    self.stats.records += 1;
                    flow.restart();
                }
                flow
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                self.stats.flows_created += 1;
                e.insert(new_flow())
            }
        }
    }

    /// Ends the flows whose time is up at `now` (idle, active, after FIN/RST). Cheap to call
    /// often: the table is only swept once per second of packet time.
    pub(super) fn expire(&mut self, now: Nanos, out: &mut impl Extend<FlowRecord>) {
        self.now = self.now.max(now);
        let now = self.now;
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now.saturating_add(SWEEP_INTERVAL);
        let cfg = self.cfg;
        let mut records = 0;
        self.flows.retain(|key, flow| {
            if let Some((reason, deadline)) = flow.closing {
                if now >= deadline {
                    out.extend(std::iter::once(flow.record(key, reason)));
                    records += 1;
                    return false;
                }
            }
            if now.saturating_sub(flow.last) >= cfg.idle_timeout {
                if !flow.is_empty() {
                    out.extend(std::iter::once(flow.record(key, EndReason::Idle)));
                    records += 1;
                }
                return false;
            }
            if !flow.is_empty() && now.saturating_sub(flow.first) >= cfg.active_timeout {
                out.extend(std::iter::once(flow.record(key, EndReason::Active)));
                records += 1;
                flow.restart();
            }
            true
        });
        self.stats.records += records;
        self.fragments.expire(now);
    }

    /// Ends every flow still open (end of capture, shutdown) with reason `end`, or with its
    /// FIN/RST reason when it was already closing.
    pub(super) fn flush(&mut self, out: &mut impl Extend<FlowRecord>) {
        let mut records = 0;
        for (key, flow) in self.flows.drain() {
            if !flow.is_empty() {
                let reason = flow.closing.map_or(EndReason::End, |(r, _)| r);
                out.extend(std::iter::once(flow.record(&key, reason)));
                records += 1;
            }
        }
        self.stats.records += records;
        self.fragments.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_packets::*;
    use super::super::FlowTable;
    use super::*;
    use crate::decode::Fragment;
    use std::net::Ipv4Addr;

    /// The rebuilt table against the old one (kept in `reference`) on random streams that
    /// hit every rule: few hosts and ports (reuse), SYN/FIN/RST, ICMP requests and replies,
    /// IPv4 and IPv6, VLANs, fragments, MACs, a clock that sometimes steps back, and
    /// timeouts short enough that idle, active and linger endings all happen often.
    #[test]
    fn same_records_as_the_reference_table() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let hosts: Vec<IpAddr> = (0..6u8)
            .map(|i| {
                if i < 4 {
                    IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))
                } else {
                    IpAddr::V6(std::net::Ipv6Addr::new(
                        0x2001,
                        0xdb8,
                        0,
                        0,
                        0,
                        0,
                        0,
                        i.into(),
                    ))
                }
            })
            .collect();
        let mut ends = std::collections::BTreeSet::new();
        for round in 0..40 {
            let cfg = FlowConfig {
                idle_timeout: (1 + rnd(8) as i64) * S / 2,
                active_timeout: (1 + rnd(12) as i64) * S / 2,
                tcp_end_timeout: rnd(4) as i64 * S / 2,
                max_flows: None,
            };
            let mut new = FlowTable::new(cfg);
            let mut old = RefTable::new(cfg);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut ts = 1_700_000_000 * S;
            for i in 0..4000 {
                ts += if rnd(50) == 0 {
                    -(rnd(3 * S as u64) as i64)
                } else {
                    rnd(S as u64 / 8) as i64
                };
                let side = rnd(2) as usize * 2;
                let (src, dst) = (hosts[side + rnd(2) as usize], hosts[side + rnd(2) as usize]);
                let mut p = pkt(ts, src, rnd(3) as u16, dst, rnd(3) as u16, 0);
                p.proto = [6, 6, 6, 17, 1, 58][rnd(6) as usize];
                p.tcp_flags = [SYN, SYN | ACK, ACK, FIN | ACK, RST, ACK][rnd(6) as usize];
                if p.proto == 1 || p.proto == 58 {
                    p.sport = 0;
                    p.dport = [0, 8 << 8, 3 << 8 | 1, 128 << 8, 129 << 8][rnd(5) as usize];
                }
                p.vlan = (rnd(8) == 0) as u16;
                p.ip_bytes = 40 + rnd(1500);
                if rnd(4) == 0 {
                    p.src_mac = Some([rnd(3) as u8; 6]);
                    p.dst_mac = Some([9; 6]);
                }
                if rnd(20) == 0 {
                    p.frag = Some(Fragment {
                        id: rnd(3) as u32,
                        first: rnd(2) == 0,
                    });
                }
                new.update(&p, &mut a);
                old.update(&p, &mut b);
                if rnd(16) == 0 {
                    let at = ts + rnd(2 * S as u64) as i64;
                    new.expire(at, &mut a);
                    old.expire(at, &mut b);
                    assert_eq!(
                        new.active_flows(),
                        old.active_flows(),
                        "round {round} packet {i}"
                    );
                }
            }
            new.flush(&mut a);
            old.flush(&mut b);
            let sorted = |v: &[FlowRecord]| {
                let mut s: Vec<String> = v.iter().map(|r| format!("{r:?}")).collect();
                s.sort();
                s
            };
            assert_eq!(sorted(&a), sorted(&b), "round {round}");
            assert_eq!(new.stats(), old.stats(), "round {round}");
            ends.extend(a.iter().map(|r| r.end));
        }
        // All but `evicted`: without a limit nothing is evicted (tested on its own below).
        assert_eq!(
            ends.len(),
            EndReason::ALL.len() - 1,
            "every ending was exercised"
        );
    }
}
