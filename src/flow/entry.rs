//! One flow's state: counters per direction, times, TCP closing state and MACs, packed into
//! two cache lines.

use super::config::FlowConfig;
use super::key::{ip, is_icmp, FlowKey};
use crate::decode::PacketMeta;
use crate::record::{tcp_flags, EndReason, FlowRecord, Mac};
use crate::time::Nanos;

/// Per-direction arrays are indexed by [`INIT`] (initiator → responder) and [`RESP`].
pub(super) const INIT: usize = 0;
pub(super) const RESP: usize = 1;

/// [`Entry::bits`]: the entry holds a flow.
pub(super) const LIVE: u8 = 1;
/// The initiator is the key's `lo` side.
pub(super) const INIT_IS_LO: u8 = 2;
/// `FIN << dir`: that direction sent a FIN.
pub(super) const FIN: u8 = 4;
/// Both FINs or an RST were seen: the record ends at `deadline`.
pub(super) const CLOSING: u8 = 16;
/// With `CLOSING`: it was an RST (else both FINs).
pub(super) const CLOSING_RST: u8 = 32;
/// `MAC << dir`: that direction's MAC address is known.
pub(super) const MAC: u8 = 64;

/// One flow: key and state in two cache lines (128 bytes, aligned), the key, times and
/// counters first. Counters are u64: a record's totals must not wrap.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
pub(super) struct Entry {
    pub(super) key: FlowKey,
    pub(super) first: Nanos,
    pub(super) last: Nanos,
    pub(super) packets: [u64; 2],
    pub(super) bytes: [u64; 2],
    /// With `CLOSING`: when the record ends.
    pub(super) deadline: Nanos,
    /// The wheel second this entry is filed under: no later than its earliest possible end.
    pub(super) sched: i64,
    pub(super) flags: [u8; 2],
    pub(super) bits: u8,
    pub(super) macs: [Mac; 2],
}

impl Entry {
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.packets[INIT] == 0 && self.packets[RESP] == 0
    }

    #[inline]
    pub(super) fn closing(&self) -> Option<(EndReason, Nanos)> {
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
    #[inline]
    pub(super) fn due(&self, cfg: &FlowConfig) -> Nanos {
        let mut due = self.last.saturating_add(cfg.idle_timeout);
        if self.bits & CLOSING != 0 {
            due = due.min(self.deadline);
        }
        if !self.is_empty() {
            due = due.min(self.first.saturating_add(cfg.active_timeout));
        }
        due
    }

    pub(super) fn record(&self, end: EndReason) -> FlowRecord {
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
    #[inline]
    pub(super) fn reset(&mut self, ts: Nanos, initiator_is_lo: bool) {
        self.first = ts;
        self.last = ts;
        self.packets = [0; 2];
        self.bytes = [0; 2];
        self.flags = [0; 2];
        self.bits = LIVE | if initiator_is_lo { INIT_IS_LO } else { 0 };
    }

    /// Starts a new record for the same conversation (after an active timeout): same
    /// orientation and MACs, counters from zero.
    #[inline]
    pub(super) fn restart(&mut self) {
        self.packets = [0; 2];
        self.bytes = [0; 2];
        self.flags = [0; 2];
        self.bits &= !(FIN | FIN << 1 | CLOSING | CLOSING_RST);
    }

    /// Whether a packet finds its flow already over, and why: the sweep runs once a second, so
    /// a flow can be timed out, closed and past its linger, or have its 4-tuple reused by a
    /// new SYN before the sweep ends it.
    #[inline]
    pub(super) fn ended_by(
        &self,
        pkt: &PacketMeta,
        tcp_flag_bits: u8,
        cfg: &FlowConfig,
    ) -> Option<EndReason> {
        let new_syn =
            pkt.proto == 6 && tcp_flag_bits & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
        if self.is_empty() {
            None
        } else if pkt.ts.saturating_sub(self.last) >= cfg.idle_timeout {
            Some(EndReason::Idle)
        } else {
            self.closing()
                .filter(|&(_, deadline)| new_syn || pkt.ts >= deadline)
                .map(|(reason, _)| reason)
        }
    }

    /// Counts a packet in its direction, keeps the MACs it is the first to show, and takes
    /// note of a TCP RST or FIN: an RST, or the FIN that makes both, starts the linger after
    /// which the record ends. Whether the record's earliest possible end may have moved
    /// earlier (its start moved, or a linger began).
    #[inline]
    pub(super) fn count(
        &mut self,
        pkt: &PacketMeta,
        from_lo: bool,
        tcp_flag_bits: u8,
        cfg: &FlowConfig,
    ) -> bool {
        let mut earlier = false;
        if self.is_empty() {
            self.first = pkt.ts;
            self.last = pkt.ts;
            earlier = true;
        }
        if pkt.ts < self.first {
            self.first = pkt.ts;
            earlier = true;
        }
        self.last = self.last.max(pkt.ts);
        let dir = if from_lo == (self.bits & INIT_IS_LO != 0) {
            INIT
        } else {
            RESP
        };
        self.packets[dir] += 1;
        self.bytes[dir] += pkt.ip_bytes;
        self.flags[dir] |= tcp_flag_bits;
        if self.bits & (MAC << dir) == 0 {
            if let Some(m) = pkt.src_mac {
                self.macs[dir] = m;
                self.bits |= MAC << dir;
            }
        }
        if self.bits & (MAC << (1 - dir)) == 0 {
            if let Some(m) = pkt.dst_mac {
                self.macs[1 - dir] = m;
                self.bits |= MAC << (1 - dir);
            }
        }
        if pkt.proto == 6 && self.bits & CLOSING == 0 {
            if tcp_flag_bits & tcp_flags::RST != 0 {
                self.bits |= CLOSING | CLOSING_RST;
                self.deadline = pkt.ts.saturating_add(cfg.tcp_end_timeout);
                earlier = true;
            } else if tcp_flag_bits & tcp_flags::FIN != 0 {
                self.bits |= FIN << dir;
                if self.bits & (FIN | FIN << 1) == FIN | FIN << 1 {
                    self.bits |= CLOSING;
                    self.deadline = pkt.ts.saturating_add(cfg.tcp_end_timeout);
                    earlier = true;
                }
            }
        }
        earlier
    }
}
