//! Which worker gets a packet: a symmetric hash of the flow key, computed on the reader thread.

use super::ip::{parse, Addrs, Parsed};
use super::Fragment;
use crate::capture::Packet;

/// Slots in the first-fragment table: a power of two. Overwriting is fine: a lost entry only
/// sends the later fragments of one datagram by their addresses-only hash.
const FRAG_SLOTS: usize = 1024;

const K0: u64 = 0xa076_1d64_78bd_642f;
const K1: u64 = 0xe703_7ed1_a0b4_28db;
const K2: u64 = 0x8ebc_6af0_9c88_c6e3;
const K3: u64 = 0x5899_65cc_7537_4cc3;

#[derive(Clone, Copy, Default)]
struct FragSlot {
    /// Fingerprint of (addresses, proto, id); 0 = empty.
    key: u64,
    hash: u64,
}

/// Spreads packets over workers so that both directions of a flow, and every fragment of a
/// datagram whose first fragment came first, land on the same worker.
pub struct Dispatcher {
    seed: u64,
    frags: Box<[FragSlot]>,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher with a fixed seed: the same capture spreads the same way on every run.
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// A dispatcher whose hash depends on `seed`, so that outsiders cannot aim many flows at one
    /// worker.
    pub fn with_seed(seed: u64) -> Self {
        Dispatcher {
            seed: mix(seed ^ K3, K2),
            frags: vec![FragSlot::default(); FRAG_SLOTS].into_boxed_slice(),
        }
    }

    /// Symmetric flow hash of `pkt`; 0 for frames without a decodable IP header.
    pub fn hash(&mut self, pkt: &Packet<'_>) -> u64 {
        let Ok(p) = parse(pkt) else {
            return 0;
        };
        let (a, b) = addr_words(&p.addrs);
        // The flow table joins ICMP replies to their requests, whose type/code (carried in
        // `dport`) differ: hashing ICMP by addresses alone keeps both on one worker.
        let (sport, dport) = if matches!(p.proto, 1 | 58) {
            (0, 0)
        } else {
            (p.sport, p.dport)
        };
        match p.frag {
            None => self.flow_hash(&p, a, b, sport, dport),
            Some(Fragment { id, first: true }) => {
                let h = self.flow_hash(&p, a, b, sport, dport);
                let key = self.frag_key(&p, a, b, id);
                if let Some(slot) = self.frags.get_mut(slot_index(key)) {
                    *slot = FragSlot { key, hash: h };
                }
                h
            }
            Some(Fragment { id, first: false }) => {
                let key = self.frag_key(&p, a, b, id);
                match self.frags.get(slot_index(key)) {
                    Some(slot) if slot.key == key => slot.hash,
                    _ => self.flow_hash(&p, a, b, 0, 0),
                }
            }
        }
    }

    fn flow_hash(&self, p: &Parsed, a: u128, b: u128, pa: u16, pb: u16) -> u64 {
        let ((lo, plo), (hi, phi)) = if (a, pa) <= (b, pb) {
            ((a, pa), (b, pb))
        } else {
            ((b, pb), (a, pa))
        };
        let tail = (u64::from(plo) << 32) | (u64::from(phi) << 16) | u64::from(p.proto);
        self.words(lo, hi, tail, is_v6(&p.addrs))
    }

    /// Directional on purpose: fragments of one datagram all go the same way.
    fn frag_key(&self, p: &Parsed, src: u128, dst: u128, id: u32) -> u64 {
        let tail = (u64::from(id) << 8) | u64::from(p.proto);
        // Never 0, which marks an empty slot.
        self.words(src, dst, tail, is_v6(&p.addrs)) | 1
    }

    fn words(&self, a: u128, b: u128, tail: u64, v6: bool) -> u64 {
        let h = mix(a as u64 ^ K0, (a >> 64) as u64 ^ self.seed);
        let h = mix(h ^ b as u64 ^ K1, (b >> 64) as u64 ^ K2);
        mix(h ^ tail ^ K3, u64::from(v6) ^ K0)
    }
}

fn is_v6(a: &Addrs) -> bool {
    matches!(a, Addrs::V6 { .. })
}

fn slot_index(key: u64) -> usize {
    (key >> 40) as usize & (FRAG_SLOTS - 1)
}

/// Folded 64×64→128 multiply (as in wyhash): cheap, and every input bit reaches the output.
fn mix(x: u64, y: u64) -> u64 {
    let m = u128::from(x) * u128::from(y);
    (m as u64) ^ ((m >> 64) as u64)
}

fn addr_words(a: &Addrs) -> (u128, u128) {
    match a {
        Addrs::V4 { src, dst } => (
            u128::from(u32::from_be_bytes(*src)),
            u128::from(u32::from_be_bytes(*dst)),
        ),
        Addrs::V6 { src, dst } => (u128::from_be_bytes(*src), u128::from_be_bytes(*dst)),
    }
}
