//! The flow table: folds decoded packets into bidirectional flow records and decides when a
//! record ends. Time is whatever the caller passes in (packet time), so every rule here can be
//! tested without threads or clocks.

use crate::decode::PacketMeta;
use crate::record::{tcp_flags, EndReason, FlowRecord, Mac};
use crate::time::{Nanos, NANOS_PER_SEC};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use table::{Index, Slab};
use wheel::Wheel;

#[cfg(test)]
mod reference;
mod table;
mod wheel;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// A flow with no packet for this long ends (`idle`).
    pub idle_timeout: Nanos,
    /// A flow open this long is written out and starts a new record (`active`).
    pub active_timeout: Nanos,
    /// After both FINs or an RST, late packets (the last ACK, retransmissions) still count
    /// for this long before the record ends (`fin` / `rst`).
    pub tcp_end_timeout: Nanos,
    /// At most this many open flows (`None`: no limit; 0 acts as 1). A packet that would open
    /// one more first ends one flow with reason `evicted`: a flow filed under the earliest
    /// second of the expiry wheel whose earliest possible end (its last packet + the idle
    /// timeout, or sooner its FIN/RST linger or active timeout) still falls in that second,
    /// i.e. the flow idle longest, to one second's precision. A flow already past its idle
    /// timeout or FIN/RST linger ends with that reason instead, and is not counted.
    pub max_flows: Option<usize>,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            idle_timeout: 60 * NANOS_PER_SEC,
            active_timeout: 300 * NANOS_PER_SEC,
            tcp_end_timeout: 5 * NANOS_PER_SEC,
            max_flows: None,
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

/// How many packets ahead `update_batch` asks for a packet's index slot, and then its entry
/// (once the slot is there to say which entry): about a memory latency's worth of updates.
const SLOT_AHEAD: usize = 16;
const ENTRY_AHEAD: usize = 8;
/// Keys made ahead and not yet used; a power of two above SLOT_AHEAD.
const KEY_RING: usize = 32;

/// Non-first fragments are matched to their first fragment for this long.
const FRAGMENT_TIMEOUT: Nanos = 30 * NANOS_PER_SEC;
/// Bounds the fragment table, so a flood of first fragments cannot grow memory without limit.
const MAX_FRAGMENTS: usize = 65_536;

/// A side of a conversation as it orders: IPv4 before IPv6 (as `IpAddr` orders), then the
/// address as a number, then the port.
type Endpoint = (u8, u128, u16);

fn endpoint(addr: IpAddr, port: u16) -> Endpoint {
    match addr {
        IpAddr::V4(a) => (0, u128::from(u32::from(a)), port),
        IpAddr::V6(a) => (1, u128::from(a), port),
    }
}

fn ip(v6: bool, addr: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(addr))
    } else {
        IpAddr::V4(Ipv4Addr::from(addr as u32))
    }
}

/// Canonical (direction-free) key: both directions of a conversation find the same entry.
/// Addresses are numbers (IPv4 in the low 32 bits) with a family bit each: compact, and
/// hashed and compared as a few words instead of `IpAddr` enums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
struct FlowKey {
    lo: u128,
    hi: u128,
    lo_port: u16,
    hi_port: u16,
    vlan: u16,
    inner_vlan: u16,
    /// The capture source: the same conversation seen on two mirror ports is two flows, as
    /// exporters are kept apart in NetFlow collectors.
    interface: u16,
    /// ICMP/ICMPv6: the request's type * 256 + code, so that a reply joins its request.
    icmp: u16,
    proto: u8,
    /// Bit 0: `lo` is IPv6; bit 1: `hi` is IPv6.
    v6: u8,
}

impl FlowKey {
    fn hash(&self, state: &foldhash::fast::RandomState) -> u64 {
        let mut h = state.build_hasher();
        h.write_u128(self.lo);
        h.write_u128(self.hi);
        h.write_u128(
            u128::from(self.lo_port)
                | u128::from(self.hi_port) << 16
                | u128::from(self.vlan) << 32
                | u128::from(self.inner_vlan) << 48
                | u128::from(self.icmp) << 64
                | u128::from(self.proto) << 80
                | u128::from(self.v6) << 88
                | u128::from(self.interface) << 96,
        );
        h.finish()
    }
}

/// Per-direction arrays are indexed by [`INIT`] (initiator → responder) and [`RESP`].
const INIT: usize = 0;
const RESP: usize = 1;

/// [`Entry::bits`]: the entry holds a flow.
const LIVE: u8 = 1;
/// The initiator is the key's `lo` side.
const INIT_IS_LO: u8 = 2;
/// `FIN << dir`: that direction sent a FIN.
const FIN: u8 = 4;
/// Both FINs or an RST were seen: the record ends at `deadline`.
const CLOSING: u8 = 16;
/// With `CLOSING`: it was an RST (else both FINs).
const CLOSING_RST: u8 = 32;
/// `MAC << dir`: that direction's MAC address is known.
const MAC: u8 = 64;

/// One flow: key and state in two cache lines (128 bytes, aligned), the key, times and
/// counters first. Counters are u64: a record's totals must not wrap.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Entry {
    key: FlowKey,
    first: Nanos,
    last: Nanos,
    packets: [u64; 2],
    bytes: [u64; 2],
    /// With `CLOSING`: when the record ends.
    deadline: Nanos,
    /// The wheel second this entry is filed under: no later than its earliest possible end.
    sched: i64,
    flags: [u8; 2],
    bits: u8,
    macs: [Mac; 2],
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.packets[INIT] == 0 && self.packets[RESP] == 0
    }

    fn closing(&self) -> Option<(EndReason, Nanos)> {
        if self.bits & CLOSING == 0 {
            None
        } else if self.bits & CLOSING_RST != 0 {
            Some((EndReason::Rst, self.deadline))
        } else {
            Some((EndReason::Fin, self.deadline))
        }
    }

    /// The earliest packet time at which a sweep could end this record (idle, active, or the
    /// FIN/RST linger), given what it has seen so far.
    fn due(&self, cfg: &FlowConfig) -> Nanos {
        let mut due = self.last.saturating_add(cfg.idle_timeout);
        if self.bits & CLOSING != 0 {
            due = due.min(self.deadline);
        }
        if !self.is_empty() {
            due = due.min(self.first.saturating_add(cfg.active_timeout));
        }
        due
    }

    fn record(&self, end: EndReason) -> FlowRecord {
        let k = &self.key;
        let lo = (ip(k.v6 & 1 != 0, k.lo), k.lo_port);
        let hi = (ip(k.v6 & 2 != 0, k.hi), k.hi_port);
        let (init, resp) = if self.bits & INIT_IS_LO != 0 {
            (lo, hi)
        } else {
            (hi, lo)
        };
        let mac = |dir: usize| (self.bits & (MAC << dir) != 0).then_some(self.macs[dir]);
        let is_icmp = is_icmp(k.proto);
        FlowRecord {
            first: self.first,
            last: self.last,
            proto: k.proto,
            src: init.0,
            sport: if is_icmp { 0 } else { init.1 },
            dst: resp.0,
            dport: if is_icmp { k.icmp } else { resp.1 },
            vlan: k.vlan,
            inner_vlan: k.inner_vlan,
            interface: k.interface,
            src_mac: mac(INIT),
            dst_mac: mac(RESP),
            packets: self.packets[INIT],
            bytes: self.bytes[INIT],
            rev_packets: self.packets[RESP],
            rev_bytes: self.bytes[RESP],
            tcp_flags: self.flags[INIT],
            rev_tcp_flags: self.flags[RESP],
            end,
        }
    }

    /// A new record for this key, nothing counted yet.
    fn reset(&mut self, ts: Nanos, initiator_is_lo: bool) {
        self.first = ts;
        self.last = ts;
        self.packets = [0; 2];
        self.bytes = [0; 2];
        self.flags = [0; 2];
        self.bits = LIVE | if initiator_is_lo { INIT_IS_LO } else { 0 };
    }

    /// Starts a new record for the same conversation (after an active timeout): same
    /// orientation and MACs, counters from zero.
    fn restart(&mut self) {
        self.packets = [0; 2];
        self.bytes = [0; 2];
        self.flags = [0; 2];
        self.bits &= !(FIN | FIN << 1 | CLOSING | CLOSING_RST);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FragmentKey {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u32,
    interface: u16,
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
    /// Records ended early (reason `evicted`) because the table held `max_flows` flows.
    pub evictions: u64,
}

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub struct FlowTable {
    cfg: FlowConfig,
    hasher: foldhash::fast::RandomState,
    index: Index,
    entries: Slab<Entry>,
    /// Every open flow is filed here under a second no later than its earliest possible end,
    /// so a sweep visits only flows that may end instead of the whole table.
    wheel: Wheel,
    /// A sweep's re-filings into seconds it is still working through (reused buffer).
    carry: Vec<(i64, u32)>,
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

/// The packet's canonical key (ports and flags as the fragment table corrected them), whether
/// its sender is the key's `lo` side, and whether it is an answer (a SYN-ACK, an ICMP reply).
#[inline]
fn canonical(pkt: &PacketMeta, sport: u16, dport: u16, tcp_flag_bits: u8) -> (FlowKey, bool, bool) {
    let (mut sport, mut dport) = (sport, dport);
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

    let s = endpoint(pkt.src, sport);
    let d = endpoint(pkt.dst, dport);
    let from_lo = s <= d;
    let (lo, hi) = if from_lo { (s, d) } else { (d, s) };
    let key = FlowKey {
        lo: lo.1,
        hi: hi.1,
        lo_port: lo.2,
        hi_port: hi.2,
        vlan: pkt.vlan,
        inner_vlan: pkt.inner_vlan,
        interface: pkt.interface,
        icmp,
        proto: pkt.proto,
        v6: lo.0 | hi.0 << 1,
    };
    (key, from_lo, reply_first)
}

/// A packet's canonical key, its hash tag, and which way it goes (see [`canonical`]).
#[derive(Clone, Copy, Default)]
struct Keyed {
    key: FlowKey,
    tag: u32,
    from_lo: bool,
    reply_first: bool,
}

fn second(t: Nanos) -> i64 {
    t.div_euclid(NANOS_PER_SEC)
}

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> FlowTable {
        FlowTable {
            cfg,
            hasher: foldhash::fast::RandomState::default(),
            index: Index::new(),
            entries: Slab::new(Entry::default()),
            wheel: Wheel::new(),
            carry: Vec::new(),
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
        self.index.len()
    }

    /// Bytes the table holds for its flows (index and entries, not the fragment map): divided
    /// by [`FlowTable::active_flows`], the memory cost of an open flow.
    pub fn state_bytes(&self) -> usize {
        self.index.bytes() + self.entries.bytes() + self.wheel.len() * 4
    }

    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    /// The newest packet time seen so far (`Nanos::MIN` before the first packet).
    pub fn now(&self) -> Nanos {
        self.now
    }

    /// Counts packets in order, exactly as [`FlowTable::update`] on each would; faster on a
    /// large table, because it reads ahead the memory of several packets at once.
    pub fn update_batch(&mut self, pkts: &[PacketMeta], out: &mut impl Extend<FlowRecord>) {
        // A software pipeline over the batch: packet i is counted while the entry of packet
        // i + ENTRY_AHEAD and the index slot of packet i + SLOT_AHEAD are on their way into
        // the cache, so the table's cache misses overlap with work instead of stalling it.
        // Each key is made and hashed once, SLOT_AHEAD packets before its update.
        let mut ring = [Keyed::default(); KEY_RING];
        let n = pkts.len();
        let keyed = |t: &FlowTable, p: &PacketMeta| {
            let (key, from_lo, reply_first) = canonical(p, p.sport, p.dport, p.tcp_flags);
            Keyed {
                tag: t.tag(&key),
                key,
                from_lo,
                reply_first,
            }
        };
        for (j, p) in pkts.iter().enumerate().take(SLOT_AHEAD) {
            ring[j % KEY_RING] = keyed(self, p);
            self.index.prefetch_home(ring[j % KEY_RING].tag);
        }
        for k in ring.iter().take(ENTRY_AHEAD.min(n)) {
            self.prefetch_entry(k.tag);
        }
        for (i, p) in pkts.iter().enumerate() {
            if let Some(ahead) = pkts.get(i + SLOT_AHEAD) {
                let k = keyed(self, ahead);
                self.index.prefetch_home(k.tag);
                ring[(i + SLOT_AHEAD) % KEY_RING] = k;
            }
            if i + ENTRY_AHEAD < n {
                self.prefetch_entry(ring[(i + ENTRY_AHEAD) % KEY_RING].tag);
            }
            let k = ring[i % KEY_RING];
            if p.frag.is_some() {
                // Its ports may come from the fragment table, as of the packets before it.
                self.update(p, out);
            } else {
                self.update_keyed(p, &k, p.tcp_flags, out);
            }
        }
    }

    /// Asks for the entry a lookup of `tag` will probably use (only a guess: fragments may
    /// get other keys, and earlier packets of the batch may change the table; a hint only).
    #[inline]
    fn prefetch_entry(&self, tag: u32) {
        if let Some(i) = self.index.tagged_entry(tag) {
            self.entries.prefetch(i);
        }
    }

    #[inline]
    fn tag(&self, key: &FlowKey) -> u32 {
        (key.hash(&self.hasher) >> 32) as u32
    }

    /// Counts one packet. Records that this packet ends (a port reused after FIN, an active
    /// timeout) go to `out`; time-based endings are found by [`FlowTable::expire`].
    pub fn update(&mut self, pkt: &PacketMeta, out: &mut impl Extend<FlowRecord>) {
        let (mut sport, mut dport) = (pkt.sport, pkt.dport);
        let mut tcp_flag_bits = pkt.tcp_flags;
        if let Some(frag) = pkt.frag {
            let fkey = FragmentKey {
                src: pkt.src,
                dst: pkt.dst,
                proto: pkt.proto,
                id: frag.id,
                interface: pkt.interface,
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

        let (key, from_lo, reply_first) = canonical(pkt, sport, dport, tcp_flag_bits);
        let keyed = Keyed {
            tag: self.tag(&key),
            key,
            from_lo,
            reply_first,
        };
        self.update_keyed(pkt, &keyed, tcp_flag_bits, out);
    }

    /// [`FlowTable::update`] once the packet's key is known (`tcp_flag_bits` as the fragment
    /// table corrected them).
    #[inline]
    fn update_keyed(
        &mut self,
        pkt: &PacketMeta,
        keyed: &Keyed,
        tcp_flag_bits: u8,
        out: &mut impl Extend<FlowRecord>,
    ) {
        self.now = self.now.max(pkt.ts);
        self.stats.packets += 1;
        self.stats.bytes += pkt.ip_bytes;
        let Keyed {
            ref key,
            from_lo,
            reply_first,
            tag,
        } = *keyed;
        // The sender starts the conversation, unless what we saw first is an answer.
        let initiator_is_lo = from_lo != reply_first;

        let cfg = self.cfg;
        let entries = &self.entries;
        // Whether the flow's earliest possible end may have moved earlier (it only moves later
        // otherwise): then it must be filed again.
        let mut refile = false;
        let idx = match self.index.find(tag, |i| entries.get(i).key == *key) {
            Ok(idx) => {
                let e = self.entries.get_mut(idx);
                let new_syn = pkt.proto == 6
                    && tcp_flag_bits & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
                // The sweep runs once a second, so a packet can find its flow already over:
                // timed out, closed and past its linger, or its 4-tuple reused by a new SYN.
                let ended = if e.is_empty() {
                    None
                } else if pkt.ts.saturating_sub(e.last) >= cfg.idle_timeout {
                    Some(EndReason::Idle)
                } else {
                    e.closing()
                        .filter(|&(_, deadline)| new_syn || pkt.ts >= deadline)
                        .map(|(reason, _)| reason)
                };
                if let Some(reason) = ended {
                    out.extend(std::iter::once(e.record(reason)));
                    self.stats.records += 1;
                    self.stats.flows_created += 1;
                    e.reset(pkt.ts, initiator_is_lo);
                    refile = true;
                } else if !e.is_empty() && pkt.ts.saturating_sub(e.first) >= cfg.active_timeout {
                    out.extend(std::iter::once(e.record(EndReason::Active)));
                    self.stats.records += 1;
                    e.restart();
                    refile = true;
                }
                idx
            }
            Err(pos) => {
                // Only a new flow can need room: one comparison, and none without a limit.
                let pos = match cfg.max_flows {
                    Some(max) if self.index.len() >= max => {
                        self.make_room(max.max(1), out);
                        // Removals shift slots of probe runs: look again where the key goes.
                        let entries = &self.entries;
                        self.index
                            .find(tag, |i| entries.get(i).key == *key)
                            .err()
                            .unwrap_or(pos)
                    }
                    _ => pos,
                };
                self.stats.flows_created += 1;
                let idx = self.entries.alloc();
                let e = self.entries.get_mut(idx);
                e.key = *key;
                e.sched = i64::MAX;
                e.reset(pkt.ts, initiator_is_lo);
                self.index.insert_at(pos, tag, idx);
                refile = true;
                idx
            }
        };

        let e = self.entries.get_mut(idx);
        if e.is_empty() {
            e.first = pkt.ts;
            e.last = pkt.ts;
            refile = true;
        }
        if pkt.ts < e.first {
            e.first = pkt.ts;
            refile = true;
        }
        e.last = e.last.max(pkt.ts);
        let dir = if from_lo == (e.bits & INIT_IS_LO != 0) {
            INIT
        } else {
            RESP
        };
        e.packets[dir] += 1;
        e.bytes[dir] += pkt.ip_bytes;
        e.flags[dir] |= tcp_flag_bits;
        if e.bits & (MAC << dir) == 0 {
            if let Some(m) = pkt.src_mac {
                e.macs[dir] = m;
                e.bits |= MAC << dir;
            }
        }
        if e.bits & (MAC << (1 - dir)) == 0 {
            if let Some(m) = pkt.dst_mac {
                e.macs[1 - dir] = m;
                e.bits |= MAC << (1 - dir);
            }
        }
        if pkt.proto == 6 && e.bits & CLOSING == 0 {
            if tcp_flag_bits & tcp_flags::RST != 0 {
                e.bits |= CLOSING | CLOSING_RST;
                e.deadline = pkt.ts.saturating_add(cfg.tcp_end_timeout);
                refile = true;
            } else if tcp_flag_bits & tcp_flags::FIN != 0 {
                e.bits |= FIN << dir;
                if e.bits & (FIN | FIN << 1) == FIN | FIN << 1 {
                    e.bits |= CLOSING;
                    e.deadline = pkt.ts.saturating_add(cfg.tcp_end_timeout);
                    refile = true;
                }
            }
        }
        if refile {
            let sec = second(e.due(&cfg));
            if sec < e.sched {
                e.sched = sec;
                self.wheel.push(sec, idx);
            }
        }
    }

    /// Ends flows until fewer than `max` are open, earliest wheel second first (see
    /// [`FlowConfig::max_flows`]). Stale filings met on the way are dropped or re-filed under
    /// their true second, as a sweep would, so each eviction costs a few wheel operations.
    #[cold]
    fn make_room(&mut self, max: usize, out: &mut impl Extend<FlowRecord>) {
        let cfg = self.cfg;
        let now = self.now;
        while self.index.len() >= max {
            let Some((sec, idx)) = self.wheel.pop_earliest() else {
                return; // every open flow is filed, so only an empty table gets here
            };
            let e = self.entries.get_mut(idx);
            if e.bits & LIVE == 0 || e.sched != sec {
                continue;
            }
            let s = second(e.due(&cfg));
            if s > sec {
                e.sched = s;
                self.wheel.push(s, idx);
                continue;
            }
            if !e.is_empty() {
                // Already over by the sweep's rules: its own reason, not an early cut.
                let reason = match e.closing() {
                    Some((reason, deadline)) if now >= deadline => reason,
                    _ if now.saturating_sub(e.last) >= cfg.idle_timeout => EndReason::Idle,
                    _ => {
                        self.stats.evictions += 1;
                        EndReason::Evicted
                    }
                };
                out.extend(std::iter::once(e.record(reason)));
                self.stats.records += 1;
            }
            e.bits = 0;
            let tag = (e.key.hash(&self.hasher) >> 32) as u32;
            self.index.remove(tag, idx);
            self.entries.release(idx);
        }
    }

    /// Ends the flows whose time is up at `now` (idle, active, after FIN/RST). Cheap to call
    /// often: flows are only looked at once per second of packet time, and then only those
    /// filed under a second that has come.
    pub fn expire(&mut self, now: Nanos, out: &mut impl Extend<FlowRecord>) {
        self.now = self.now.max(now);
        let now = self.now;
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now.saturating_add(SWEEP_INTERVAL);
        let cfg = self.cfg;
        let upto = second(now);
        let mut records = 0;
        let mut carry = std::mem::take(&mut self.carry);
        while let Some((sec, filed)) = self.wheel.pop_due(upto) {
            for &idx in &filed {
                let e = self.entries.get_mut(idx);
                // Ended, or filed again under another second since.
                if e.bits & LIVE == 0 || e.sched != sec {
                    continue;
                }
                // The same rules, in the same order, as a sweep over every flow.
                let mut remove = false;
                if let Some((reason, deadline)) = e.closing() {
                    if now >= deadline {
                        out.extend(std::iter::once(e.record(reason)));
                        records += 1;
                        remove = true;
                    }
                }
                if !remove && now.saturating_sub(e.last) >= cfg.idle_timeout {
                    if !e.is_empty() {
                        out.extend(std::iter::once(e.record(EndReason::Idle)));
                        records += 1;
                    }
                    remove = true;
                }
                if !remove && !e.is_empty() && now.saturating_sub(e.first) >= cfg.active_timeout {
                    out.extend(std::iter::once(e.record(EndReason::Active)));
                    records += 1;
                    e.restart();
                }
                if remove {
                    e.bits = 0;
                    let tag = (e.key.hash(&self.hasher) >> 32) as u32;
                    self.index.remove(tag, idx);
                    self.entries.release(idx);
                } else {
                    let s = second(e.due(&cfg));
                    e.sched = s;
                    if s <= upto {
                        // Not due yet within this second (or never, at the end of time):
                        // looked at again by the next sweep.
                        carry.push((s, idx));
                    } else {
                        self.wheel.push(s, idx);
                    }
                }
            }
            self.wheel.recycle(filed);
        }
        for (s, idx) in carry.drain(..) {
            self.wheel.push(s, idx);
        }
        self.carry = carry;
        self.stats.records += records;
        self.fragments
            .retain(|_, f| now.saturating_sub(f.seen) < FRAGMENT_TIMEOUT);
    }

    /// Ends every flow still open (end of capture, shutdown) with reason `end`, or with its
    /// FIN/RST reason when it was already closing.
    pub fn flush(&mut self, out: &mut impl Extend<FlowRecord>) {
        let mut records = 0;
        for (_, e) in self.entries.iter_used() {
            if e.bits & LIVE != 0 && !e.is_empty() {
                let reason = e.closing().map_or(EndReason::End, |(r, _)| r);
                out.extend(std::iter::once(e.record(reason)));
                records += 1;
            }
        }
        self.stats.records += records;
        self.index.clear();
        self.entries.clear();
        self.wheel.clear();
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
            interface: 0,
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
    fn interfaces_separate_flows_and_tag_their_records() {
        // The same conversation on two mirror ports: one record per port, each with both
        // directions, as nfdump keeps two exporters' flows apart.
        let mut t = FlowTable::new(FlowConfig::default());
        let mut pkts = Vec::new();
        for (i, iface) in [(0, 0u16), (1, 3), (2, 0), (3, 3)] {
            let mut fwd = pkt(i * S, A, 1000, B, 80, ACK);
            let mut rev = pkt(i * S + 1, B, 80, A, 1000, ACK);
            fwd.interface = iface;
            rev.interface = iface;
            pkts.extend([fwd, rev]);
        }
        run(&mut t, &pkts);
        let mut out = Vec::new();
        t.flush(&mut out);
        out.sort_by_key(|r| r.interface);
        assert_eq!(out.len(), 2, "{out:?}");
        for (r, iface) in out.iter().zip([0u16, 3]) {
            assert_eq!(r.interface, iface);
            assert_eq!((r.packets, r.rev_packets), (2, 2));
            assert_eq!((r.src, r.dst), (A, B));
        }
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
            let mut old = reference::RefTable::new(cfg);
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

    #[test]
    fn a_full_table_evicts_the_longest_idle_flows() {
        let cfg = FlowConfig {
            max_flows: Some(3),
            ..FlowConfig::default()
        };
        let mut t = FlowTable::new(cfg);
        let mut out = Vec::new();
        // Five flows, one packet each a few seconds apart, then the first three again.
        let mut pkts: Vec<_> = (0..5u16)
            .map(|i| pkt(i64::from(i) * 3 * S, A, 1000 + i, B, 80, ACK))
            .collect();
        pkts.push(pkt(20 * S, A, 1003, B, 80, ACK));
        pkts.push(pkt(21 * S, B, 80, A, 1004, ACK));
        for p in &pkts {
            t.update(p, &mut out);
            t.expire(p.ts, &mut out);
            assert!(t.active_flows() <= 3);
        }
        // Flow 3 came while 0, 1, 2 were open: 0 (idle longest) went; flow 4 pushed out 1.
        let evicted: Vec<_> = out.iter().map(|r| (r.sport, r.end, r.last)).collect();
        assert_eq!(
            evicted,
            [
                (1000, EndReason::Evicted, 0),
                (1001, EndReason::Evicted, 3 * S)
            ]
        );
        assert_eq!(t.stats().evictions, 2);
        t.flush(&mut out);
        assert_eq!(out.len(), 5);
        assert_eq!(t.stats().evictions, 2);
        assert_eq!(t.stats().records, 5);
        let packets: u64 = out.iter().map(|r| r.packets + r.rev_packets).sum();
        let bytes: u64 = out.iter().map(|r| r.bytes + r.rev_bytes).sum();
        assert_eq!((packets, bytes), (7, 700));
        let tail: Vec<_> = out[2..].iter().map(|r| (r.sport, r.end)).collect();
        assert!(tail.iter().all(|&(_, e)| e == EndReason::End), "{tail:?}");
    }

    #[test]
    fn a_flow_packets_keep_coming_to_is_not_evicted() {
        let cfg = FlowConfig {
            max_flows: Some(2),
            ..FlowConfig::default()
        };
        let mut t = FlowTable::new(cfg);
        let mut out = Vec::new();
        // Port 1 talks every second; each new port arrives while it and one other are open.
        // Port 1 was filed first (under its first packet's second), so only its re-filing on
        // eviction keeps it in.
        for i in 0..50i64 {
            t.update(&pkt(i * S, A, 1, B, 80, ACK), &mut out);
            t.update(&pkt(i * S + S / 2, A, 100 + i as u16, B, 80, ACK), &mut out);
            assert!(t.active_flows() <= 2);
        }
        assert_eq!(out.len(), 49);
        assert!(out
            .iter()
            .all(|r| r.sport != 1 && r.end == EndReason::Evicted));
        assert_eq!(t.stats().evictions, 49);
        t.flush(&mut out);
        let one: Vec<_> = out.iter().filter(|r| r.sport == 1).collect();
        assert_eq!((one.len(), one[0].packets), (1, 50));
    }

    #[test]
    fn a_flow_already_over_ends_with_its_own_reason_not_as_evicted() {
        let cfg = FlowConfig {
            max_flows: Some(1),
            ..FlowConfig::default()
        };
        let mut t = FlowTable::new(cfg);
        let mut out = Vec::new();
        t.update(&pkt(0, A, 1, B, 80, SYN), &mut out);
        t.update(&pkt(S, B, 80, A, 1, RST), &mut out);
        // No sweep ran: the table is full of a flow past its RST linger, then of an idle one.
        t.update(&pkt(10 * S, A, 2, B, 80, ACK), &mut out);
        t.update(&pkt(100 * S, A, 3, B, 80, ACK), &mut out);
        let ends: Vec<_> = out.iter().map(|r| (r.sport, r.end)).collect();
        assert_eq!(ends, [(1, EndReason::Rst), (2, EndReason::Idle)]);
        assert_eq!(t.stats().evictions, 0);
        assert_eq!(t.active_flows(), 1);
    }

    #[test]
    fn eviction_keeps_every_packet_on_a_large_random_load() {
        let cfg = FlowConfig {
            max_flows: Some(64),
            ..FlowConfig::default()
        };
        let mut t = FlowTable::new(cfg);
        let mut out = Vec::new();
        let mut x: u64 = 7;
        let mut bytes = 0;
        for i in 0..20_000i64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let port = (x >> 33) as u16 % 500;
            let mut p = pkt(
                i * S / 50,
                A,
                port,
                B,
                80,
                [ACK, FIN, RST][(x >> 20) as usize % 3],
            );
            p.ip_bytes = 40 + (x >> 40) % 1000;
            bytes += p.ip_bytes;
            t.update(&p, &mut out);
            if i % 100 == 0 {
                t.expire(p.ts, &mut out);
            }
            assert!(t.active_flows() <= 64);
        }
        t.flush(&mut out);
        let evicted = out.iter().filter(|r| r.end == EndReason::Evicted).count();
        assert!(evicted > 1000, "{evicted}");
        assert_eq!(t.stats().evictions, evicted as u64);
        assert_eq!(t.stats().records, out.len() as u64);
        let packets: u64 = out.iter().map(|r| r.packets + r.rev_packets).sum();
        let total: u64 = out.iter().map(|r| r.bytes + r.rev_bytes).sum();
        assert_eq!((packets, total), (20_000, bytes));
    }

    #[test]
    fn update_batch_equals_update_one_by_one() {
        let mut one = FlowTable::new(FlowConfig::default());
        let mut batch = FlowTable::new(FlowConfig::default());
        let pkts: Vec<_> = (0..1000)
            .map(|i| {
                pkt(
                    i * S / 100,
                    A,
                    (i % 70) as u16,
                    B,
                    80,
                    if i % 9 == 0 { FIN } else { ACK },
                )
            })
            .collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for p in &pkts {
            one.update(p, &mut a);
        }
        batch.update_batch(&pkts, &mut b);
        one.flush(&mut a);
        batch.flush(&mut b);
        let key = |r: &FlowRecord| (r.sport, r.first);
        a.sort_by_key(key);
        b.sort_by_key(key);
        assert_eq!(a, b);
        assert_eq!(a.len(), 70);
    }

    #[test]
    fn an_open_flow_costs_at_most_200_bytes() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut out = Vec::new();
        for i in 0..300_000u32 {
            let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i));
            t.update(&pkt(i64::from(i), src, 1, B, 2, ACK), &mut out);
        }
        assert_eq!(t.active_flows(), 300_000);
        let per_flow = t.state_bytes() / t.active_flows();
        assert!(per_flow <= 200, "{per_flow} bytes per flow");
        assert_eq!(std::mem::size_of::<Entry>(), 128);
    }
}
