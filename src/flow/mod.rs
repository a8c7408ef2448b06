//! The flow table: folds decoded packets into bidirectional flow records and decides when a
//! record ends. Time is whatever the caller passes in (packet time), so every rule here can be
//! tested without threads or clocks.

use crate::time::{Nanos, NANOS_PER_SEC};
use entry::Entry;
use fragments::{FragmentKey, Fragments};
use std::collections::HashMap;
use table::{Index, Slab};
use wheel::Wheel;

mod config;
mod entry;
mod expiry;
mod fragments;
mod key;
#[cfg(test)]
mod reference;
mod stats;
mod table;
#[cfg(test)]
mod test_packets;
mod update;
mod wheel;

pub use config::FlowConfig;
pub use stats::FlowStats;

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
    fragments: Fragments<FragmentKey>,
    /// The newest packet time seen: a capture whose clock steps back does not move it back.
    now: Nanos,
    next_sweep: Nanos,
    stats: FlowStats,
}

#[inline]
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
            fragments: Fragments::default(),
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
}

#[cfg(test)]
mod tests {
    use super::test_packets::*;
    use super::*;
    use crate::decode::Fragment;
    use crate::record::EndReason;
    use std::net::{IpAddr, Ipv4Addr};

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
