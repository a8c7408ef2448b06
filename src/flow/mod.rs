//! The flow table: folds decoded packets into bidirectional flow records and decides when a
//! record ends. Time is whatever the caller passes in (packet time), so every rule here can be
//! tested without threads or clocks.

use crate::decode::PacketMeta;
use crate::record::{tcp_flags, EndReason, FlowRecord, Mac};
use crate::time::{Nanos, NANOS_PER_SEC};
use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// A flow with no packet for this long ends (`idle`).
    pub idle_timeout: Nanos,
    /// A flow open this long is written out and starts a new record (`active`).
    pub active_timeout: Nanos,
    /// After both FINs or an RST, late packets (the last ACK, retransmissions) still count
    /// for this long before the record ends (`fin` / `rst`).
    pub tcp_end_timeout: Nanos,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            idle_timeout: 60 * NANOS_PER_SEC,
            active_timeout: 300 * NANOS_PER_SEC,
            tcp_end_timeout: 5 * NANOS_PER_SEC,
        }
    }
}

impl FlowConfig {
    /// The longest a record can stay in the table after its first packet: what a store writer
    /// must wait before sealing a partition.
    pub fn max_lifetime(&self) -> Nanos {
        self.active_timeout
            .saturating_add(self.idle_timeout.max(self.tcp_end_timeout))
            .saturating_add(SWEEP_INTERVAL)
    }
}

/// How often, in packet time, the table is swept for ended flows. Records end at most this
/// late after their timeout.
const SWEEP_INTERVAL: Nanos = NANOS_PER_SEC;

/// Non-first fragments are matched to their first fragment for this long.
const FRAGMENT_TIMEOUT: Nanos = 30 * NANOS_PER_SEC;
/// Bounds the fragment table, so a flood of first fragments cannot grow memory without limit.
const MAX_FRAGMENTS: usize = 65_536;

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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FragmentKey {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u32,
}

#[derive(Clone, Copy, Debug)]
struct FragmentPorts {
    sport: u16,
    dport: u16,
    seen: Nanos,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub packets: u64,
    pub bytes: u64,
    pub flows_created: u64,
    pub records: u64,
    /// Non-first fragments whose first fragment was not seen (counted in a port-0 flow).
    pub orphan_fragments: u64,
}

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub struct FlowTable {
    cfg: FlowConfig,
    flows: FastMap<FlowKey, Flow>,
    fragments: FastMap<FragmentKey, FragmentPorts>,
    /// The newest packet time seen: a capture whose clock steps back does not move it back.
    now: Nanos,
    next_sweep: Nanos,
    stats: FlowStats,
}

fn is_icmp(proto: u8) -> bool {
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

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> FlowTable {
        FlowTable {
            cfg,
            flows: FastMap::default(),
            fragments: FastMap::default(),
            now: Nanos::MIN,
            next_sweep: Nanos::MIN,
            stats: FlowStats::default(),
        }
    }

    pub fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    /// The newest packet time seen so far (`Nanos::MIN` before the first packet).
    pub fn now(&self) -> Nanos {
        self.now
    }

    /// Counts one packet. Records that this packet ends (a port reused after FIN, an active
    /// timeout) go to `out`; time-based endings are found by [`FlowTable::expire`].
    pub fn update(&mut self, pkt: &PacketMeta, out: &mut impl Extend<FlowRecord>) {
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
            if frag.first {
                if self.fragments.len() < MAX_FRAGMENTS || self.fragments.contains_key(&fkey) {
                    self.fragments.insert(
                        fkey,
                        FragmentPorts {
                            sport,
                            dport,
                            seen: pkt.ts,
                        },
                    );
                }
            } else {
                tcp_flag_bits = 0;
                match self.fragments.get(&fkey) {
                    Some(p) => (sport, dport) = (p.sport, p.dport),
                    None => {
                        self.stats.orphan_fragments += 1;
                        (sport, dport) = (0, 0);
                    }
                }
            }
        }

        // ICMP: no ports; the type/code is part of the key, replies folded onto requests.
        let mut reply_first = false;
        let mut icmp = 0;
        if is_icmp(pkt.proto) {
            let (ty, code) = ((dport >> 8) as u8, (dport & 0xff) as u8);
            match icmp_request_type(pkt.proto, ty) {
                Some(req) => {
                    icmp = u16::from(req) << 8 | u16::from(code);
                    reply_first = true;
                }
                None => icmp = dport,
            }
            (sport, dport) = (0, 0);
        } else if pkt.proto == 6 {
            let synack = tcp_flags::SYN | tcp_flags::ACK;
            reply_first = tcp_flag_bits & synack == synack;
        }

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

        let cfg = self.cfg;
        let new_flow = || Flow {
            // The sender starts the conversation, unless what we saw first is an answer.
            initiator_is_lo: from_lo != reply_first,
            first: pkt.ts,
            last: pkt.ts,
            packets: [0; 2],
            bytes: [0; 2],
            flags: [0; 2],
            macs: [None; 2],
            fin: [false; 2],
            closing: None,
        };
        let flow = match self.flows.entry(key) {
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
        };

        if flow.is_empty() {
            flow.first = pkt.ts;
            flow.last = pkt.ts;
        }
        flow.first = flow.first.min(pkt.ts);
        flow.last = flow.last.max(pkt.ts);
        let dir = if from_lo == flow.initiator_is_lo {
            INIT
        } else {
            RESP
        };
        flow.packets[dir] += 1;
        flow.bytes[dir] += pkt.ip_bytes;
        flow.flags[dir] |= tcp_flag_bits;
        if flow.macs[dir].is_none() {
            flow.macs[dir] = pkt.src_mac;
        }
        if flow.macs[1 - dir].is_none() {
            flow.macs[1 - dir] = pkt.dst_mac;
        }
        if pkt.proto == 6 && flow.closing.is_none() {
            if tcp_flag_bits & tcp_flags::RST != 0 {
                flow.closing = Some((EndReason::Rst, pkt.ts.saturating_add(cfg.tcp_end_timeout)));
            } else if tcp_flag_bits & tcp_flags::FIN != 0 {
                flow.fin[dir] = true;
                if flow.fin[INIT] && flow.fin[RESP] {
                    flow.closing =
                        Some((EndReason::Fin, pkt.ts.saturating_add(cfg.tcp_end_timeout)));
                }
            }
        }
    }

    /// Ends the flows whose time is up at `now` (idle, active, after FIN/RST). Cheap to call
    /// often: the table is only swept once per second of packet time.
    pub fn expire(&mut self, now: Nanos, out: &mut impl Extend<FlowRecord>) {
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
        self.fragments
            .retain(|_, f| now.saturating_sub(f.seen) < FRAGMENT_TIMEOUT);
    }

    /// Ends every flow still open (end of capture, shutdown) with reason `end`, or with its
    /// FIN/RST reason when it was already closing.
    pub fn flush(&mut self, out: &mut impl Extend<FlowRecord>) {
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
    use super::*;
    use crate::decode::Fragment;
    use std::net::Ipv4Addr;

    const S: Nanos = NANOS_PER_SEC;
    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));

    fn pkt(ts: Nanos, src: IpAddr, sport: u16, dst: IpAddr, dport: u16, flags: u8) -> PacketMeta {
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
        }
    }

    fn run(table: &mut FlowTable, pkts: &[PacketMeta]) -> Vec<FlowRecord> {
        let mut out = Vec::new();
        for p in pkts {
            table.update(p, &mut out);
            table.expire(p.ts, &mut out);
        }
        out
    }

    use crate::record::tcp_flags::{ACK, FIN, RST, SYN};

    #[test]
    fn both_directions_make_one_record_with_the_syn_sender_as_initiator() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut out = run(
            &mut t,
            &[
                pkt(0, A, 40000, B, 443, SYN),
                pkt(S / 10, B, 443, A, 40000, SYN | ACK),
                pkt(S / 5, A, 40000, B, 443, ACK),
            ],
        );
        assert!(out.is_empty());
        t.flush(&mut out);
        assert_eq!(out.len(), 1);
        let r = &out[0];
        assert_eq!((r.src, r.sport, r.dst, r.dport), (A, 40000, B, 443));
        assert_eq!((r.packets, r.rev_packets), (2, 1));
        assert_eq!((r.bytes, r.rev_bytes), (200, 100));
        assert_eq!((r.tcp_flags, r.rev_tcp_flags), (SYN | ACK, SYN | ACK));
        assert_eq!((r.first, r.last), (0, S / 5));
        assert_eq!(r.end, EndReason::End);
    }

    #[test]
    fn syn_ack_seen_first_makes_its_receiver_the_initiator() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut out = run(
            &mut t,
            &[
                pkt(0, B, 443, A, 40000, SYN | ACK),
                pkt(1, A, 40000, B, 443, ACK),
            ],
        );
        t.flush(&mut out);
        assert_eq!((out[0].src, out[0].sport), (A, 40000));
        assert_eq!((out[0].packets, out[0].rev_packets), (1, 1));
    }

    #[test]
    fn idle_timeout_ends_a_flow_and_the_next_packet_starts_another() {
        let mut t = FlowTable::new(FlowConfig::default());
        let out = run(
            &mut t,
            &[
                pkt(0, A, 1, B, 2, ACK),
                pkt(59 * S, B, 7, A, 8, ACK),
                pkt(61 * S, A, 1, B, 2, ACK),
            ],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].end, EndReason::Idle);
        assert_eq!(out[0].last, 0);
        assert_eq!(t.active_flows(), 2);
    }

    #[test]
    fn active_timeout_splits_a_long_flow_keeping_its_orientation() {
        let cfg = FlowConfig {
            active_timeout: 10 * S,
            ..FlowConfig::default()
        };
        let mut t = FlowTable::new(cfg);
        let pkts: Vec<_> = (0..25)
            .map(|i| {
                if i % 2 == 0 {
                    pkt(i * S, A, 1, B, 2, ACK)
                } else {
                    pkt(i * S, B, 2, A, 1, ACK)
                }
            })
            .collect();
        let mut out = run(&mut t, &pkts);
        t.flush(&mut out);
        let ends: Vec<_> = out.iter().map(|r| r.end).collect();
        assert_eq!(ends, [EndReason::Active, EndReason::Active, EndReason::End]);
        assert!(out.iter().all(|r| r.src == A && r.sport == 1));
        assert_eq!(
            out.iter().map(|r| r.packets + r.rev_packets).sum::<u64>(),
            25
        );
        assert!(out.iter().all(|r| r.last - r.first < 10 * S));
    }

    #[test]
    fn fin_from_both_sides_ends_after_the_linger_and_counts_the_last_ack() {
        let mut t = FlowTable::new(FlowConfig::default());
        let out = run(
            &mut t,
            &[
                pkt(0, A, 1, B, 2, SYN),
                pkt(S, A, 1, B, 2, FIN | ACK),
                pkt(2 * S, B, 2, A, 1, FIN | ACK),
                pkt(3 * S, A, 1, B, 2, ACK),
            ],
        );
        assert!(out.is_empty(), "still lingering");
        let mut out = Vec::new();
        t.expire(8 * S, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].end, EndReason::Fin);
        assert_eq!(out[0].packets + out[0].rev_packets, 4);
    }

    #[test]
    fn rst_ends_the_flow() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut out = run(
            &mut t,
            &[pkt(0, A, 1, B, 2, SYN), pkt(S, B, 2, A, 1, RST | ACK)],
        );
        t.expire(10 * S, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].end, EndReason::Rst);
        assert_eq!(out[0].rev_tcp_flags, RST | ACK);
    }

    #[test]
    fn new_syn_on_a_closing_tuple_starts_a_new_record() {
        let mut t = FlowTable::new(FlowConfig::default());
        let out = run(
            &mut t,
            &[
                pkt(0, A, 1, B, 2, SYN),
                pkt(1, B, 2, A, 1, RST),
                pkt(2, A, 1, B, 2, SYN),
            ],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].end, EndReason::Rst);
        assert_eq!(t.active_flows(), 1);
    }

    #[test]
    fn vlans_separate_flows() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut p2 = pkt(1, B, 2, A, 1, ACK);
        p2.vlan = 7;
        let mut out = run(&mut t, &[pkt(0, A, 1, B, 2, ACK), p2]);
        t.flush(&mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn icmp_reply_joins_its_request_and_keeps_type_code() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut req = pkt(0, A, 0, B, 8 << 8, 0);
        req.proto = 1;
        let mut rep = pkt(1, B, 0, A, 0, 0);
        rep.proto = 1;
        let mut out = run(&mut t, &[rep, req, rep]);
        t.flush(&mut out);
        assert_eq!(out.len(), 1);
        let r = &out[0];
        // The reply came first, so its receiver (A) initiated.
        assert_eq!((r.src, r.dst, r.sport, r.dport), (A, B, 0, 8 << 8));
        assert_eq!((r.packets, r.rev_packets), (1, 2));
    }

    #[test]
    fn fragments_follow_their_first_fragment_or_go_to_a_port_zero_flow() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut first = pkt(0, A, 5353, B, 53, 0);
        first.proto = 17;
        first.frag = Some(Fragment { id: 9, first: true });
        let mut later = pkt(1, A, 0, B, 0, 0);
        later.proto = 17;
        later.frag = Some(Fragment {
            id: 9,
            first: false,
        });
        let mut orphan = later;
        orphan.frag = Some(Fragment {
            id: 10,
            first: false,
        });
        let mut out = run(&mut t, &[first, later, orphan]);
        t.flush(&mut out);
        out.sort_by_key(|r| r.sport);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].sport, out[0].dport, out[0].packets), (0, 0, 1));
        assert_eq!((out[1].sport, out[1].dport, out[1].packets), (5353, 53, 2));
        assert_eq!(t.stats().orphan_fragments, 1);
    }

    #[test]
    fn clock_stepping_back_does_not_expire_or_corrupt_spans() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut out = run(
            &mut t,
            &[pkt(100 * S, A, 1, B, 2, ACK), pkt(90 * S, B, 2, A, 1, ACK)],
        );
        t.flush(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].first, out[0].last), (90 * S, 100 * S));
    }

    #[test]
    fn macs_are_kept_per_side() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut p = pkt(0, A, 1, B, 2, SYN);
        p.src_mac = Some([1; 6]);
        p.dst_mac = Some([2; 6]);
        let mut out = run(&mut t, &[p]);
        t.flush(&mut out);
        assert_eq!(out[0].src_mac, Some([1; 6]));
        assert_eq!(out[0].dst_mac, Some([2; 6]));
    }
}
