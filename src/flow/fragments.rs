//! Ports for IP fragments: only a datagram's first fragment carries them, so the later ones are
//! counted with the ports their first fragment had.

use super::FastMap;
use crate::decode::{Fragment, PacketMeta};
use crate::time::{Nanos, NANOS_PER_SEC};
use std::hash::Hash;
use std::net::IpAddr;

/// Non-first fragments are matched to their first fragment for this long.
const FRAGMENT_TIMEOUT: Nanos = 30 * NANOS_PER_SEC;
/// Bounds the fragment table, so a flood of first fragments cannot grow memory without limit.
const MAX_FRAGMENTS: usize = 65_536;

/// Which datagram a fragment belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct FragmentKey {
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    pub(super) proto: u8,
    pub(super) id: u32,
    pub(super) interface: u16,
}

#[derive(Clone, Copy, Debug)]
struct FragmentPorts {
    sport: u16,
    dport: u16,
    seen: Nanos,
}

/// The ports of the first fragments seen lately, by datagram (`K`: what identifies one).
pub(super) struct Fragments<K> {
    ports: FastMap<K, FragmentPorts>,
}

impl<K> Default for Fragments<K> {
    fn default() -> Self {
        Fragments {
            ports: FastMap::default(),
        }
    }
}

impl<K: Hash + Eq> Fragments<K> {
    /// The ports and TCP flags the fragment `pkt` counts with: a first fragment its own (and
    /// they are kept for the rest), a later one its first fragment's and no flags, or port 0
    /// when that was not seen (counted in `orphans`).
    #[inline]
    pub(super) fn ports(
        &mut self,
        key: K,
        frag: Fragment,
        pkt: &PacketMeta,
        orphans: &mut u64,
    ) -> (u16, u16, u8) {
        let (sport, dport) = (pkt.sport, pkt.dport);
        if frag.first {
            if self.ports.len() < MAX_FRAGMENTS || self.ports.contains_key(&key) {
                self.ports.insert(
                    key,
                    FragmentPorts {
                        sport,
                        dport,
                        seen: pkt.ts,
                    },
                );
            }
            return (sport, dport, pkt.tcp_flags);
        }
        match self.ports.get(&key) {
            Some(p) => (p.sport, p.dport, 0),
            None => {
                *orphans += 1;
                (0, 0, 0)
            }
        }
    }

    /// Forgets the first fragments seen too long before `now` to still be matched.
    pub(super) fn expire(&mut self, now: Nanos) {
        self.ports
            .retain(|_, f| now.saturating_sub(f.seen) < FRAGMENT_TIMEOUT);
    }

    pub(super) fn clear(&mut self) {
        self.ports.clear();
    }
}
