//! Ending flows by time: the once-a-second sweep of the flows filed under seconds that have
//! come, eviction when the table is full, and the flush at the end of a capture.

use super::config::SWEEP_INTERVAL;
use super::entry::LIVE;
use super::{second, FlowTable};
use crate::record::{EndReason, FlowRecord};
use crate::time::Nanos;

impl FlowTable {
    /// Ends flows until fewer than `max` are open, earliest wheel second first (see
    /// [`FlowConfig::max_flows`](super::FlowConfig::max_flows)). Stale filings met on the way
    /// are dropped or re-filed under their true second, as a sweep would, so each eviction
    /// costs a few wheel operations.
    #[cold]
    pub(super) fn make_room(&mut self, max: usize, out: &mut impl Extend<FlowRecord>) {
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
        self.fragments.expire(now);
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
    use super::super::test_packets::*;
    use super::super::FlowConfig;
    use super::*;

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
}
