//! Counting a packet: find or open its flow, end what the packet shows is over, count it, and
//! file the flow again if its earliest end moved earlier. The per-packet hot path.

use super::config::FlowConfig;
use super::entry::Entry;
use super::fragments::FragmentKey;
use super::key::{canonical, FlowKey, Keyed};
use super::wheel::Wheel;
use super::{second, FlowTable};
use crate::decode::PacketMeta;
use crate::record::{EndReason, FlowRecord};
use crate::time::Nanos;

/// How many packets ahead `update_batch` asks for a packet's index slot, and then its entry
/// (once the slot is there to say which entry): about a memory latency's worth of updates.
const SLOT_AHEAD: usize = 16;
const ENTRY_AHEAD: usize = 8;
/// Keys made ahead and not yet used; a power of two above SLOT_AHEAD.
const KEY_RING: usize = 32;

impl FlowTable {
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
            (sport, dport, tcp_flag_bits) =
                self.fragments
                    .ports(fkey, frag, pkt, &mut self.stats.orphan_fragments);
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
        let (idx, mut refile) = match self.index.find(tag, |i| entries.get(i).key == *key) {
            Ok(idx) => {
                let restarted =
                    self.end_if_over(idx, pkt, tcp_flag_bits, initiator_is_lo, &cfg, out);
                (idx, restarted)
            }
            Err(pos) => (self.open(pos, key, tag, pkt.ts, initiator_is_lo, out), true),
        };

        let e = self.entries.get_mut(idx);
        refile |= e.count(pkt, from_lo, tcp_flag_bits, &cfg);
        if refile {
            file_earlier(&mut self.wheel, e, idx, &cfg);
        }
    }

    /// Writes out the record of flow `idx` if the packet shows it is over (the packet then
    /// starts a new one) or has been open for the active timeout (it goes on in a new record).
    /// Whether it did, which makes the flow's earliest end earlier.
    #[inline]
    fn end_if_over(
        &mut self,
        idx: u32,
        pkt: &PacketMeta,
        tcp_flag_bits: u8,
        initiator_is_lo: bool,
        cfg: &FlowConfig,
        out: &mut impl Extend<FlowRecord>,
    ) -> bool {
        let e = self.entries.get_mut(idx);
        if let Some(reason) = e.ended_by(pkt, tcp_flag_bits, cfg) {
            out.extend(std::iter::once(e.record(reason)));
            self.stats.records += 1;
            self.stats.flows_created += 1;
            e.reset(pkt.ts, initiator_is_lo);
            true
        } else if !e.is_empty() && pkt.ts.saturating_sub(e.first) >= cfg.active_timeout {
            out.extend(std::iter::once(e.record(EndReason::Active)));
            self.stats.records += 1;
            e.restart();
            true
        } else {
            false
        }
    }

    /// Opens a flow for `key` (hash tag `tag`), whose lookup ended at index slot `pos`, first
    /// ending another if the table is full. Returns the new entry.
    #[inline]
    fn open(
        &mut self,
        pos: usize,
        key: &FlowKey,
        tag: u32,
        ts: Nanos,
        initiator_is_lo: bool,
        out: &mut impl Extend<FlowRecord>,
    ) -> u32 {
        // Only a new flow can need room: one comparison, and none without a limit.
        let pos = match self.cfg.max_flows {
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
        e.reset(ts, initiator_is_lo);
        self.index.insert_at(pos, tag, idx);
        idx
    }
}

/// Files entry `idx` under the second of its earliest possible end, if that is earlier than
/// the second it is filed under.
#[inline]
fn file_earlier(wheel: &mut Wheel, e: &mut Entry, idx: u32, cfg: &FlowConfig) {
    let sec = second(e.due(cfg));
    if sec < e.sched {
        e.sched = sec;
        wheel.push(sec, idx);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_packets::*;
    use super::*;

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
}
