//! Crypto-PAn: prefix-preserving address anonymisation (Xu, Fan, Ammar, Moon, "Prefix-Preserving
//! IP Address Anonymization", ICNP 2002), the algorithm nfdump's nfanon and yacryptopan
//! implement; held to yacryptopan's outputs for the same key. Two addresses that share their first n bits
//! map to two addresses that share their first n bits, and no more than the originals did.
//!
//! The 32-byte key: AES-128 key = key[0..16]; pad = AES(key[16..32]). For bit i of the address
//! (from the most significant), the block AES encrypts is the address's first i bits followed by
//! the pad's remaining bits (an IPv4 address is the top 32 bits of the 128-bit block); the
//! output's bit i is the address's bit i XOR the most significant bit of that encryption.

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A Crypto-PAn instance: the AES key schedule and the pad, made once per key.
#[derive(Clone)]
pub struct CryptoPan {
    aes: Aes128,
    pad: u128,
}

impl CryptoPan {
    pub fn new(key: &[u8; 32]) -> CryptoPan {
        let aes = Aes128::new(GenericArray::from_slice(&key[..16]));
        let mut pad = GenericArray::clone_from_slice(&key[16..]);
        aes.encrypt_block(&mut pad);
        let pad = u128::from_be_bytes(pad.into());
        CryptoPan { aes, pad }
    }

    /// The first `BITS` bits of `addr` (left-aligned in 128 bits) anonymised; the rest as they
    /// were. The `BITS` blocks do not depend on each other's encryption, so they are encrypted
    /// together (AES-NI pipelines several blocks at once).
    fn anonymize_bits<const BITS: usize>(&self, addr: u128) -> u128 {
        let mut blocks = [GenericArray::default(); BITS];
        for (i, block) in blocks.iter_mut().enumerate() {
            // The original's first i bits, then the pad's.
            let mask = if i == 0 { 0 } else { !0u128 << (128 - i) };
            let input = (addr & mask) | (self.pad & !mask);
            block.copy_from_slice(&input.to_be_bytes());
        }
        self.aes.encrypt_blocks(&mut blocks);
        let mut flips = 0u128;
        for (i, block) in blocks.iter().enumerate() {
            flips |= u128::from(block[0] >> 7) << (127 - i);
        }
        addr ^ flips
    }

    pub fn anonymize_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        let addr = u128::from(u32::from(a)) << 96;
        Ipv4Addr::from((self.anonymize_bits::<32>(addr) >> 96) as u32)
    }

    pub fn anonymize_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(self.anonymize_bits::<128>(u128::from(a)))
    }

    pub fn anonymize(&self, a: IpAddr) -> IpAddr {
        match a {
            IpAddr::V4(v4) => IpAddr::V4(self.anonymize_v4(v4)),
            IpAddr::V6(v6) => IpAddr::V6(self.anonymize_v6(v6)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8; 32] = b"boojahyoo3vaeToong0Eijee7Ahz3yee";

    /// yacryptopan 1.0.2's outputs for the key above.
    #[test]
    fn matches_the_reference_values() {
        let c = CryptoPan::new(KEY);
        for (a, want) in [
            ("128.11.68.132", "128.115.63.68"),
            ("129.118.74.4", "129.121.74.3"),
            ("130.132.252.244", "130.132.227.10"),
            ("0.0.0.0", "14.61.191.192"),
            ("255.255.255.255", "251.247.238.16"),
            ("::1", "e3d:bfc0:1fe3:61f:dfa0:1a1f:f0f1:883e"),
            ("2001:db8::1", "3041:e87:cfc0:1800:187f:e4d0:7f1c:701"),
        ] {
            let got = c.anonymize(a.parse().unwrap());
            assert_eq!(got, want.parse::<IpAddr>().unwrap(), "{a}");
        }
    }

    fn common_prefix(a: u128, b: u128) -> u32 {
        (a ^ b).leading_zeros()
    }

    /// Pairs sharing exactly n leading bits map to outputs sharing exactly n leading bits.
    #[test]
    fn preserves_prefixes_exactly() {
        let c = CryptoPan::new(KEY);
        let base: u32 = 0xC0A8_1234;
        for n in 0..32 {
            // Flip bit n (from the top) and something below it.
            let other = base ^ (1 << (31 - n)) ^ (0x5A5A_5A5A & (u32::MAX >> n >> 1));
            let (x, y) = (
                c.anonymize_v4(Ipv4Addr::from(base)),
                c.anonymize_v4(Ipv4Addr::from(other)),
            );
            let shared = (u32::from(x) ^ u32::from(y)).leading_zeros();
            assert_eq!(shared, n, "v4 prefix {n}");
        }
        let base: u128 = 0x2001_0db8_85a3_0000_0000_8a2e_0370_7334;
        for n in [0u32, 1, 7, 31, 32, 48, 63, 64, 100, 127] {
            let other = base ^ (1u128 << (127 - n));
            let x = u128::from(c.anonymize_v6(Ipv6Addr::from(base)));
            let y = u128::from(c.anonymize_v6(Ipv6Addr::from(other)));
            assert_eq!(common_prefix(x, y), n, "v6 prefix {n}");
        }
    }

    #[test]
    fn another_key_gives_another_mapping() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mut k = *KEY;
        k[31] ^= 1;
        assert_ne!(
            CryptoPan::new(KEY).anonymize(a),
            CryptoPan::new(&k).anonymize(a)
        );
        // Deterministic for one key.
        assert_eq!(
            CryptoPan::new(KEY).anonymize(a),
            CryptoPan::new(KEY).anonymize(a)
        );
    }
}
