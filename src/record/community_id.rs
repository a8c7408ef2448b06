//! Community ID v1 (<https://github.com/corelight/community-id-spec>): the flow hash Zeek,
//! Suricata, Arkime and Elastic print, so that a flowkeep record can be joined with their logs
//! by one string comparison.
//!
//! Hash input, all big-endian: seed (2 bytes), the two addresses (4 or 16 bytes each), the IP
//! protocol (1 byte), a zero byte, and for TCP, UDP, SCTP, ICMP and ICMPv6 the two ports (2
//! bytes each). The endpoints are put in order first (smaller address, then smaller port,
//! first), so both directions of a flow give the same ID. ICMP has no ports: the type stands
//! for the source port, and the destination port is the type of the answer for the
//! request/answer pairs Zeek knows (so a request and its reply share an ID), or else the code,
//! in which case the message is "one-way" and never reordered.

use crate::record::FlowRecord;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP6: u8 = 58;
const SCTP: u8 = 132;

/// Zeek's `ICMP4_counterpart` (echo, timestamp, info, router solicitation, address mask).
fn icmp4_counterpart(t: u8) -> Option<u8> {
    Some(match t {
        8 => 0,
        0 => 8,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        10 => 9,
        9 => 10,
        17 => 18,
        18 => 17,
        _ => return None,
    })
}

/// Zeek's `ICMP6_counterpart` (echo, MLD, router and neighbor discovery, who-are-you, home
/// agent address discovery).
fn icmp6_counterpart(t: u8) -> Option<u8> {
    Some(match t {
        128 => 129,
        129 => 128,
        130 => 131,
        131 => 130,
        133 => 134,
        134 => 133,
        135 => 136,
        136 => 135,
        139 => 140,
        140 => 139,
        144 => 145,
        145 => 144,
        _ => return None,
    })
}

/// The Community ID of a flow given as its tuple. For ICMP and ICMPv6, `sport` is the type and
/// `dport` the code, as the spec's reference implementation takes them; addresses of
/// different families give an empty string (no such flow exists).
pub fn community_id_v1(
    seed: u16,
    saddr: IpAddr,
    daddr: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
) -> String {
    let (mut sport, mut dport, one_way) = match proto {
        ICMP | ICMP6 => {
            // Type and code are single bytes; a wider value is not a real ICMP message, so
            // its low byte is as good as any.
            let (t, code) = (sport as u8, dport as u8);
            let counterpart = if proto == ICMP {
                icmp4_counterpart(t)
            } else {
                icmp6_counterpart(t)
            };
            match counterpart {
                Some(c) => (u16::from(t), u16::from(c), false),
                None => (u16::from(t), u16::from(code), true),
            }
        }
        _ => (sport, dport, false),
    };
    let (mut a, mut b) = match (saddr, daddr) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (Octets::V4(s.octets()), Octets::V4(d.octets())),
        (IpAddr::V6(s), IpAddr::V6(d)) => (Octets::V6(s.octets()), Octets::V6(d.octets())),
        _ => return String::new(),
    };
    let ordered = one_way || (a.bytes(), sport) < (b.bytes(), dport);
    if !ordered {
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut sport, &mut dport);
    }
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(a.bytes());
    h.update(b.bytes());
    h.update([proto, 0]);
    if matches!(proto, TCP | UDP | SCTP | ICMP | ICMP6) {
        h.update(sport.to_be_bytes());
        h.update(dport.to_be_bytes());
    }
    let digest: [u8; 20] = h.finalize().into();
    let mut out = String::with_capacity(30);
    out.push_str("1:");
    base64_into(&digest, &mut out);
    out
}

/// The Community ID (seed 0) of a stored record. flowkeep keeps an ICMP record's type and code
/// as `dport = type * 256 + code`, from its initiator's first message.
pub fn of_record(r: &FlowRecord) -> String {
    match r.proto {
        ICMP | ICMP6 => community_id_v1(0, r.src, r.dst, r.proto, r.dport >> 8, r.dport & 0xff),
        _ => community_id_v1(0, r.src, r.dst, r.proto, r.sport, r.dport),
    }
}

enum Octets {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Octets {
    fn bytes(&self) -> &[u8] {
        match self {
            Octets::V4(b) => b,
            Octets::V6(b) => b,
        }
    }
}

/// Standard base64 with padding (RFC 4648 §4). Written here rather than taken from a crate: it
/// encodes one 20-byte digest per record, and every published test vector exercises it.
fn base64_into(data: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |v: u32| char::from(ALPHABET[(v & 63) as usize]);
    for chunk in data.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sym(n >> 18));
        out.push(sym(n >> 12));
        out.push(if chunk.len() > 1 { sym(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sym(n) } else { '=' });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (proto, saddr, daddr, sport, dport, seed 0, seed 1). Source: corelight/community-id-spec,
    /// baseline/baseline_deflt.json and baseline/baseline_seed1.json (commit c4ec2bc). The
    /// baseline lists ICMP with sport = type and dport = the counterpart type or the code, which
    /// is what `community_id_v1` takes as (type, code) for these messages. Protocol 46 (RSVP)
    /// has no ports (`null` in the baseline).
    #[rustfmt::skip]
    const BASELINE: &[(u8, &str, &str, u16, u16, &str, &str)] = &[
        (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 136,
         "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
        (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 135,
         "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
        (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 135, 136,
         "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
        (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 136, 135,
         "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
        (58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0,
         "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=", "1:lVEtCZpYu84Xqaa++3lXFyuu2n4="),
        (58, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 1, 4,
         "1:hLZd0XGWojozrvxqE0dWB1iM6R0=", "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8="),
        (58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 129,
         "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
        (58, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", 129, 128,
         "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
        (58, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 134,
         "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=", "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8="),
        (58, "fe80::260:97ff:fe07:69ea", "ff02::1", 134, 133,
         "1:pkvHqCL88/tg1k4cPigmZXUtL00=", "1:K/ee5UCqAMAQXDorP5nSa2CGLjc="),
        (1, "192.168.0.89", "192.168.0.1", 8, 0,
         "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        (1, "192.168.0.1", "192.168.0.89", 0, 8,
         "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        (1, "10.0.0.1", "10.0.0.2", 11, 0,
         "1:YHxtAirCG//0OzkcVAukqKQN9xM=", "1:XjUibYHaafLQ3pxQeiMI8g25q20="),
        (6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25,
         "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
        (6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943,
         "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
        (132, "192.168.170.8", "192.168.170.56", 7, 7,
         "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
        (132, "192.168.170.56", "192.168.170.8", 7, 7,
         "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
        (6, "128.232.110.120", "66.35.250.204", 34855, 80,
         "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
        (6, "66.35.250.204", "128.232.110.120", 80, 34855,
         "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
        (17, "192.168.1.52", "8.8.8.8", 54585, 53,
         "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        (17, "8.8.8.8", "192.168.1.52", 53, 54585,
         "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        (46, "10.1.12.1", "10.1.12.2", 0, 0,
         "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
        (46, "10.1.12.2", "10.1.12.1", 0, 0,
         "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
    ];

    #[test]
    fn published_baseline_seed_0_and_1() {
        for &(proto, s, d, sp, dp, seed0, seed1) in BASELINE {
            let (s, d) = (s.parse().unwrap(), d.parse().unwrap());
            assert_eq!(
                community_id_v1(0, s, d, proto, sp, dp),
                seed0,
                "{proto} {s} {d} {sp} {dp}"
            );
            assert_eq!(
                community_id_v1(1, s, d, proto, sp, dp),
                seed1,
                "{proto} {s} {d} {sp} {dp}"
            );
        }
    }

    /// Zeek's community-id btest (`test_it` over conn_ids, seed 0): 1.2.3.4:1122 → 5.6.7.8:3344.
    #[test]
    fn zeek_conn_id_vectors() {
        let (a, b) = ("1.2.3.4".parse().unwrap(), "5.6.7.8".parse().unwrap());
        assert_eq!(
            community_id_v1(0, a, b, TCP, 1122, 3344),
            "1:wCb3OG7yAFWelaUydu0D+125CLM="
        );
        assert_eq!(
            community_id_v1(0, a, b, UDP, 1122, 3344),
            "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="
        );
    }

    #[test]
    fn records_use_the_icmp_type_and_code_they_store() {
        let mut r = crate::testing::sample(1);
        r.proto = ICMP;
        r.src = "192.168.0.1".parse().unwrap();
        r.dst = "192.168.0.89".parse().unwrap();
        r.sport = 0;
        r.dport = 0; // echo reply, type 0 code 0: the reply's ID is the request's
        assert_eq!(of_record(&r), "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
        r.src = "10.0.0.1".parse().unwrap();
        r.dst = "10.0.0.2".parse().unwrap();
        r.dport = 11 << 8; // time exceeded, code 0: one-way
        assert_eq!(of_record(&r), "1:YHxtAirCG//0OzkcVAukqKQN9xM=");
        r.proto = TCP;
        r.src = "66.35.250.204".parse().unwrap();
        r.dst = "128.232.110.120".parse().unwrap();
        (r.sport, r.dport) = (80, 34855);
        assert_eq!(of_record(&r), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    }

    #[test]
    fn mixed_families_give_no_id() {
        let v4 = "10.0.0.1".parse().unwrap();
        let v6 = "::1".parse().unwrap();
        assert_eq!(community_id_v1(0, v4, v6, TCP, 1, 2), "");
    }

    #[test]
    fn base64_rfc4648_vectors() {
        // RFC 4648 §10.
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut s = String::new();
            base64_into(input.as_bytes(), &mut s);
            assert_eq!(s, want);
        }
    }
}
