//! The flow table as it was before its storage was rebuilt for speed: a `HashMap` keyed by
//! `IpAddr` endpoints, swept in full once a second. Tests run both on the same packets and
//! require the same records.

use super::{FlowConfig, FlowStats, FRAGMENT_TIMEOUT, MAX_FRAGMENTS, SWEEP_INTERVAL};
use crate::decode::PacketMeta;
use crate::record::{tcp_flags, EndReason, FlowRecord, Mac};
use crate::time::Nanos;
use std::collections::HashMap;
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

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub(super) struct RefTable {
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

impl RefTable {
    pub(super) fn new(cfg: FlowConfig) -> RefTable {
        RefTable {
            cfg,
            flows: FastMap::default(),
            fragments: FastMap::default(),
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
        self.fragments
            .retain(|_, f| now.saturating_sub(f.seen) < FRAGMENT_TIMEOUT);
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
