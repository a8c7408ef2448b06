//! The per-block address summary kept in the segment footer: a Bloom filter over every source
//! and destination address of the block, so that a query for a few addresses reads only the
//! blocks that may hold them. A Bloom filter never says "absent" for an address that was added;
//! it says "maybe" for about 1-2 % of the others. The hash is fixed here and in `docs/FORMAT.md`
//! (it is part of the format: a reader must compute the same bits as the writer).

use crate::record::FlowRecord;
use std::net::IpAddr;

/// Bits of filter per distinct address: with [`HASHES`] probes the false-positive rate is
/// (1 − e^(−6/9))^6 ≈ 1.3 %.
pub const BITS_PER_ADDRESS: usize = 9;
/// Probes per address.
pub const HASHES: u8 = 6;
/// Largest filter, in bytes: bounds the footer for blocks with very many distinct addresses
/// (65 536 records, all distinct, would want 144 KiB). A full-size filter holds ~14 500
/// addresses at the target rate, enough for a default 8192-record block of a busy link (the
/// benchmark capture has ~9 900 per block; with an 8 KiB cap its false-positive rate was
/// 4.6 %, now 1.5 %); beyond that the rate rises, it never gives a false negative.
pub const MAX_FILTER_BYTES: usize = 16_384;
/// Most probes a reader accepts from a footer.
pub const MAX_HASHES: u8 = 16;

/// An address as the filter sees it: 16 bytes, IPv4 in its IPv4-mapped IPv6 form (so an IPv4
/// address and its mapped IPv6 twin share bits: a false positive at worst, never a miss).
pub fn addr_key(a: &IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The splitmix64 finaliser: a cheap full-avalanche 64-bit mix.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The two hashes of double hashing (Kirsch–Mitzenmacher): probe `i` sets bit
/// `(h1 + i·h2) mod m`. `h2` is odd so that the probes differ whenever `m` is a power of two.
fn hashes(key: &[u8; 16]) -> (u64, u64) {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&key[..8]);
    hi.copy_from_slice(&key[8..]);
    let h1 = mix(u64::from_le_bytes(lo).wrapping_add(mix(u64::from_le_bytes(hi))));
    let h2 = mix(h1 ^ 0x9e37_79b9_7f4a_7c15) | 1;
    (h1, h2)
}

/// Filter length in bytes for `distinct` addresses: a whole number of 8-byte words, at least one
/// word, at most [`MAX_FILTER_BYTES`]; 0 for no addresses.
pub fn filter_len(distinct: usize) -> usize {
    if distinct == 0 {
        return 0;
    }
    let bits = distinct.saturating_mul(BITS_PER_ADDRESS);
    bits.div_ceil(64).saturating_mul(8).min(MAX_FILTER_BYTES)
}

fn probes(key: &[u8; 16], hashes_n: u8, bits: u64) -> impl Iterator<Item = u64> {
    let (h1, h2) = hashes(key);
    (0..u64::from(hashes_n)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % bits)
}

/// Sets the bits of `key` in `filter` (whose length is a positive multiple of 8).
pub fn insert(filter: &mut [u8], hashes_n: u8, key: &[u8; 16]) {
    let bits = filter.len() as u64 * 8;
    if bits == 0 {
        return;
    }
    for bit in probes(key, hashes_n, bits) {
        // bit < filter.len() * 8, so the index is in range.
        if let Some(b) = filter.get_mut((bit / 8) as usize) {
            *b |= 1 << (bit % 8);
        }
    }
}

/// `false` only when `key` was certainly not inserted. An empty filter (length 0) knows nothing
/// and answers `true`.
pub fn may_contain(filter: &[u8], hashes_n: u8, key: &[u8; 16]) -> bool {
    let bits = filter.len() as u64 * 8;
    if bits == 0 || hashes_n == 0 {
        return true;
    }
    probes(key, hashes_n, bits).all(|bit| {
        filter
            .get((bit / 8) as usize)
            .is_none_or(|b| b & (1 << (bit % 8)) != 0)
    })
}

/// Builds the filter for `distinct` distinct address keys into `out` (cleared first); returns
/// the number of probes used (0 when there are no keys). `distinct` sets the filter's size, so
/// it must count the keys exactly as the writer does: IPv4 and IPv6 addresses apart, even an
/// IPv4 address and its IPv4-mapped twin.
pub fn build(keys: impl IntoIterator<Item = [u8; 16]>, distinct: usize, out: &mut Vec<u8>) -> u8 {
    out.clear();
    let len = filter_len(distinct);
    if len == 0 {
        return 0;
    }
    out.resize(len, 0);
    for k in keys {
        insert(out, HASHES, &k);
    }
    HASHES
}

/// The filter the writer stores for a block of these records, and its probe count: for
/// rebuilding a footer index from blocks (recovery of an unsealed segment). Allocates; not for
/// the hot path, where the block encoder's dictionaries already know the distinct addresses.
pub fn build_for_records(records: &[FlowRecord], out: &mut Vec<u8>) -> u8 {
    let mut keys: Vec<(bool, [u8; 16])> = records
        .iter()
        .flat_map(|r| [&r.src, &r.dst])
        .map(|a| (a.is_ipv6(), addr_key(a)))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    build(keys.iter().map(|k| k.1), keys.len(), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn hash_is_pinned() {
        // The hash is part of the on-disk format: changing it silently would make readers skip
        // blocks that hold the address. These values are also in docs/FORMAT.md.
        let k = addr_key(&IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(k, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
        let (h1, h2) = hashes(&k);
        assert_eq!((h1, h2), (PINNED_H1, PINNED_H2));
    }

    const PINNED_H1: u64 = 0x24e8_7172_2a0c_79bc;
    const PINNED_H2: u64 = 0x1410_ce37_a5e3_a8ef;

    #[test]
    fn false_positive_rate_near_target() {
        let keys: Vec<[u8; 16]> = (0..5000u32)
            .map(|i| addr_key(&IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))))
            .collect();
        let mut f = Vec::new();
        let k = build(keys.iter().copied(), keys.len(), &mut f);
        assert_eq!(f.len(), filter_len(5000));
        assert!(keys.iter().all(|key| may_contain(&f, k, key)));
        let fp = (0..100_000u32)
            .filter(|i| {
                may_contain(
                    &f,
                    k,
                    &addr_key(&IpAddr::V4(Ipv4Addr::from(0xc000_0000 + i))),
                )
            })
            .count();
        let rate = fp as f64 / 100_000.0;
        assert!((0.005..0.025).contains(&rate), "false-positive rate {rate}");
    }

    #[test]
    fn sizes_are_capped() {
        assert_eq!(filter_len(0), 0);
        assert_eq!(filter_len(1), 8);
        assert_eq!(filter_len(1_000_000), MAX_FILTER_BYTES);
        assert!(may_contain(&[], 0, &[0; 16]));
    }

    proptest! {
        #[test]
        fn never_a_false_negative(
            keys in proptest::collection::vec(any::<[u8; 16]>(), 0..3000),
            v6 in any::<[u8; 16]>(),
        ) {
            let mut all: Vec<[u8; 16]> = keys;
            all.push(addr_key(&IpAddr::V6(Ipv6Addr::from(v6))));
            let mut f = Vec::new();
            let k = build(all.iter().copied(), all.len(), &mut f);
            for key in &all {
                prop_assert!(may_contain(&f, k, key));
            }
        }
    }
}
