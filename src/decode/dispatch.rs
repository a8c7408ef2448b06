//! Which worker gets a packet: a symmetric hash of the flow key, computed on the reader thread.

use super::ip::{parse, Addrs};
use super::{Fragment, PacketMeta};
use crate::capture::Packet;
use std::net::IpAddr;

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
        self.hash_fields(a, b, is_v6(&p.addrs), p.proto, p.sport, p.dport, p.frag)
    }

    /// The same hash as [`Dispatcher::hash`] of the frame `meta` was decoded from, without
    /// parsing the frame again: the reader decodes each frame once and dispatches the result.
    pub fn hash_meta(&mut self, meta: &PacketMeta) -> u64 {
        let (a, v6) = ip_word(meta.src);
        let (b, _) = ip_word(meta.dst);
        self.hash_fields(a, b, v6, meta.proto, meta.sport, meta.dport, meta.frag)
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn hash_fields(
        &mut self,
        a: u128,
        b: u128,
        v6: bool,
        proto: u8,
        sport: u16,
        dport: u16,
        frag: Option<Fragment>,
    ) -> u64 {
        // The flow table joins ICMP replies to their requests, whose type/code (carried in
        // `dport`) differ: hashing ICMP by addresses alone keeps both on one worker.
        let (sport, dport) = if matches!(proto, 1 | 58) {
            (0, 0)
        } else {
            (sport, dport)
        };
        match frag {
            None => self.flow_hash(proto, v6, a, b, sport, dport),
            Some(Fragment { id, first: true }) => {
                let h = self.flow_hash(proto, v6, a, b, sport, dport);
                let key = self.frag_key(proto, v6, a, b, id);
                if let Some(slot) = self.frags.get_mut(slot_index(key)) {
                    *slot = FragSlot { key, hash: h };
                }
                h
            }
            Some(Fragment { id, first: false }) => {
                let key = self.frag_key(proto, v6, a, b, id);
                match self.frags.get(slot_index(key)) {
                    Some(slot) if slot.key == key => slot.hash,
                    _ => self.flow_hash(proto, v6, a, b, 0, 0),
                }
            }
        }
    }

    fn flow_hash(&self, proto: u8, v6: bool, a: u128, b: u128, pa: u16, pb: u16) -> u64 {
        let ((lo, plo), (hi, phi)) = if (a, pa) <= (b, pb) {
            ((a, pa), (b, pb))
        } else {
            ((b, pb), (a, pa))
        };
        let tail = (u64::from(plo) << 32) | (u64::from(phi) << 16) | u64::from(proto);
        self.words(lo, hi, tail, v6)
    }

    /// Directional on purpose: fragments of one datagram all go the same way.
    fn frag_key(&self, proto: u8, v6: bool, src: u128, dst: u128, id: u32) -> u64 {
        let tail = (u64::from(id) << 8) | u64::from(proto);
        // Never 0, which marks an empty slot.
        self.words(src, dst, tail, v6) | 1
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

/// An address as [`addr_words`] numbers it (IPv4 in the low 32 bits), and whether it is IPv6.
fn ip_word(a: IpAddr) -> (u128, bool) {
    match a {
        IpAddr::V4(a) => (u128::from(u32::from(a)), false),
        IpAddr::V6(a) => (u128::from(a), true),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_frames::*;
    use super::*;
    use crate::capture::{FileSource, LinkType, Next, PacketSource};

    /// Over every frame of every fixture capture, in order (so first fragments are remembered
    /// before their followers), dispatching the decoded packet picks the same worker as
    /// dispatching the frame.
    #[test]
    fn hash_meta_agrees_with_hash_on_every_fixture_frame() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcaps");
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .expect("fixtures/pcaps")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "pcap" || x == "pcapng" || x == "cap")
            })
            .collect();
        paths.sort();
        let (mut frames, mut decoded) = (0, 0);
        for path in &paths {
            let Ok(mut src) = FileSource::open(path) else {
                continue;
            };
            let (mut by_frame, mut by_meta) = (Dispatcher::new(), Dispatcher::new());
            while let Ok(Next::Packet(pkt)) = src.next_packet() {
                frames += 1;
                let h = by_frame.hash(&pkt);
                match crate::decode::decode(&pkt) {
                    Ok(meta) => {
                        decoded += 1;
                        assert_eq!(h, by_meta.hash_meta(&meta), "{}", path.display());
                    }
                    Err(_) => assert_eq!(h, 0, "{}", path.display()),
                }
            }
        }
        assert!(paths.len() >= 50 && decoded > 10_000, "{frames} frames");
    }

    // ---- dispatch ----

    fn hash(d: &mut Dispatcher, link: LinkType, data: &[u8]) -> u64 {
        d.hash(&pkt(link, data))
    }

    #[test]
    fn hash_is_symmetric() {
        let mut d = Dispatcher::new();
        let ab = hash(&mut d, LinkType::RAW, &ipv4(6, A4, B4, &tcp(40000, 443, 2)));
        let ba = hash(
            &mut d,
            LinkType::RAW,
            &ipv4(6, B4, A4, &tcp(443, 40000, 0x12)),
        );
        assert_eq!(ab, ba);
        assert_ne!(ab, 0);
        let other_port = hash(&mut d, LinkType::RAW, &ipv4(6, A4, B4, &tcp(40001, 443, 2)));
        assert_ne!(ab, other_port);
        let other_proto = hash(&mut d, LinkType::RAW, &ipv4(17, A4, B4, &udp(40000, 443)));
        assert_ne!(ab, other_proto);
        // Same address both ends: the ports decide the order.
        let x = hash(&mut d, LinkType::RAW, &ipv4(17, A4, A4, &udp(1, 2)));
        let y = hash(&mut d, LinkType::RAW, &ipv4(17, A4, A4, &udp(2, 1)));
        assert_eq!(x, y);
        let ab6 = hash(&mut d, LinkType::RAW, &ipv6(17, A6, B6, &udp(1000, 53)));
        let ba6 = hash(&mut d, LinkType::RAW, &ipv6(17, B6, A6, &udp(53, 1000)));
        assert_eq!(ab6, ba6);
        assert_ne!(ab6, ab);
    }

    #[test]
    fn icmp_replies_hash_like_their_requests() {
        let mut d = Dispatcher::new();
        let req = hash(
            &mut d,
            LinkType::RAW,
            &ipv4(1, A4, B4, &[8, 0, 0, 0, 0, 1, 0, 1]),
        );
        let rep = hash(
            &mut d,
            LinkType::RAW,
            &ipv4(1, B4, A4, &[0, 0, 0, 0, 0, 1, 0, 1]),
        );
        assert_eq!(req, rep);
        let req6 = hash(
            &mut d,
            LinkType::RAW,
            &ipv6(58, A6, B6, &[128, 0, 0, 0, 0, 1, 0, 1]),
        );
        let rep6 = hash(
            &mut d,
            LinkType::RAW,
            &ipv6(58, B6, A6, &[129, 0, 0, 0, 0, 1, 0, 1]),
        );
        assert_eq!(req6, rep6);
    }

    #[test]
    fn hash_ignores_the_link_layer() {
        let mut d = Dispatcher::new();
        let raw = hash(&mut d, LinkType::RAW, &udp4());
        assert_eq!(raw, hash(&mut d, LinkType::ETHERNET, &eth(0x0800, &udp4())));
        assert_eq!(
            raw,
            hash(&mut d, LinkType::LINUX_SLL, &sll(1, 6, 0x0800, &udp4()))
        );
        let vlan = eth(0x8100, &cat(&[&[0, 9, 8, 0], &udp4()]));
        assert_eq!(raw, hash(&mut d, LinkType::ETHERNET, &vlan));
    }

    #[test]
    fn hash_of_non_ip_and_malformed_is_zero() {
        let mut d = Dispatcher::new();
        assert_eq!(hash(&mut d, LinkType::ETHERNET, &eth(0x0806, &[0; 28])), 0);
        assert_eq!(hash(&mut d, LinkType::ETHERNET, &[1, 2, 3]), 0);
        assert_eq!(hash(&mut d, LinkType(147), &udp4()), 0);
    }

    #[test]
    fn hash_depends_on_the_seed() {
        let a = Dispatcher::with_seed(1).hash(&pkt(LinkType::RAW, &udp4()));
        let b = Dispatcher::with_seed(2).hash(&pkt(LinkType::RAW, &udp4()));
        assert_ne!(a, b);
        assert_eq!(
            a,
            Dispatcher::with_seed(1).hash(&pkt(LinkType::RAW, &udp4()))
        );
    }

    #[test]
    fn fragments_hash_like_their_first_fragment() {
        let mut d = Dispatcher::new();
        let payload = cat(&[&udp(1000, 53), &[0; 16]]);
        let whole = hash(&mut d, LinkType::RAW, &ipv4(17, A4, B4, &payload));
        let reply = hash(&mut d, LinkType::RAW, &ipv4(17, B4, A4, &udp(53, 1000)));
        let first = hash(
            &mut d,
            LinkType::RAW,
            &ipv4_full(17, A4, B4, 7, 0x2000, &payload),
        );
        let middle = hash(
            &mut d,
            LinkType::RAW,
            &ipv4_full(17, A4, B4, 7, 0x2003, &payload),
        );
        let last = hash(
            &mut d,
            LinkType::RAW,
            &ipv4_full(17, A4, B4, 7, 0x0006, &payload),
        );
        assert_eq!(first, whole);
        assert_eq!(first, reply);
        assert_eq!((middle, last), (first, first));
        // A later fragment of an unseen datagram: addresses and protocol only, the same for every
        // such fragment of that pair, and not the first fragment's value.
        let orphan_a = hash(
            &mut d,
            LinkType::RAW,
            &ipv4_full(17, A4, B4, 8, 0x0006, &payload),
        );
        let orphan_b = hash(
            &mut d,
            LinkType::RAW,
            &ipv4_full(17, B4, A4, 9, 0x0003, &payload),
        );
        assert_eq!(orphan_a, orphan_b);
        assert_ne!(orphan_a, first);
        assert_ne!(orphan_a, 0);

        let first6 = ipv6(44, A6, B6, &cat(&[&frag6(17, 0, true, 77), &udp(1000, 53)]));
        let later6 = ipv6(44, A6, B6, &cat(&[&frag6(17, 3, false, 77), &[0; 8]]));
        let whole6 = hash(&mut d, LinkType::RAW, &udp6());
        assert_eq!(hash(&mut d, LinkType::RAW, &first6), whole6);
        assert_eq!(hash(&mut d, LinkType::RAW, &later6), whole6);
    }

    #[test]
    fn fragment_table_survives_many_datagrams() {
        let mut d = Dispatcher::new();
        let payload = cat(&[&udp(1000, 53), &[0; 16]]);
        let whole = hash(&mut d, LinkType::RAW, &ipv4(17, A4, B4, &payload));
        // Interleave 5000 datagrams: each first fragment then its tail, as a busy link would.
        for id in 0..5000u16 {
            let first = ipv4_full(17, A4, B4, id, 0x2000, &payload);
            let tail = ipv4_full(17, A4, B4, id, 0x0003, &payload);
            assert_eq!(hash(&mut d, LinkType::RAW, &first), whole);
            assert_eq!(hash(&mut d, LinkType::RAW, &tail), whole, "id {id}");
        }
    }
}
