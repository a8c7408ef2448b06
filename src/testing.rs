//! Test fixtures shared across modules: sample flow records and proptest strategies for them.
//! Compiled for tests only.

use crate::record::{EndReason, FlowRecord};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub fn sample(i: u64) -> FlowRecord {
    FlowRecord {
        first: 1_767_225_600_000_000_000 + i as i64 * 1_000_000,
        last: 1_767_225_600_000_000_000 + i as i64 * 1_000_000 + 5_000_000_000,
        proto: 6,
        src: IpAddr::V4(Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8)),
        sport: 40_000 + (i % 1000) as u16,
        dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dport: 443,
        vlan: 0,
        inner_vlan: 0,
        interface: 0,
        src_mac: Some([0, 0x1b, 0x21, 1, 2, 3]),
        dst_mac: Some([0, 0x1b, 0x21, 4, 5, 6]),
        packets: 10 + i % 7,
        bytes: 1500 * (10 + i % 7),
        rev_packets: 8,
        rev_bytes: 9000,
        tcp_flags: 0x1b,
        rev_tcp_flags: 0x1b,
        end: EndReason::Fin,
    }
}

/// What a block gives back: the records sorted by `first`, ties in push order.
pub fn block_order(recs: &[FlowRecord]) -> Vec<FlowRecord> {
    let mut v = recs.to_vec();
    v.sort_by_key(|r| r.first);
    v
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        // v4-mapped v6 must stay v6, not turn into v4
        any::<[u8; 4]>().prop_map(|b| IpAddr::V6(Ipv4Addr::from(b).to_ipv6_mapped())),
        // a few repeated addresses, so dictionaries have shared entries
        (0u8..3).prop_map(|i| IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))),
        (0u16..3).prop_map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))),
    ]
}

fn arb_mac() -> impl Strategy<Value = Option<[u8; 6]>> {
    prop_oneof![
        Just(None),
        any::<[u8; 6]>().prop_map(Some),
        // repeated MACs, as on a mirror port
        (0u8..3).prop_map(|i| Some([0, 0x1b, 0x21, 0, 0, i])),
    ]
}

fn arb_u64() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>(), 0u64..300]
}

fn arb_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0i64),
        any::<i64>(),
        // realistic µs-resolution times, so the time unit is above 1 ns
        (0i64..1_000_000).prop_map(|us| 1_767_225_600_000_000_000 + us * 1000),
    ]
}

pub fn arb_record() -> impl Strategy<Value = FlowRecord> {
    (
        (
            arb_i64(),
            arb_i64(),
            any::<u8>(),
            arb_ip(),
            arb_ip(),
            any::<u16>(),
            any::<u16>(),
        ),
        (any::<u16>(), any::<u16>(), arb_mac(), arb_mac()),
        (arb_u64(), arb_u64(), arb_u64(), arb_u64()),
        (any::<u8>(), any::<u8>(), 0u8..5, any::<u16>()),
    )
        .prop_map(
            |(
                (first, last, proto, src, dst, sport, dport),
                (vlan, inner_vlan, src_mac, dst_mac),
                (packets, bytes, rev_packets, rev_bytes),
                (tcp_flags, rev_tcp_flags, end, interface),
            )| FlowRecord {
                first,
                last,
                proto,
                src,
                sport,
                dst,
                dport,
                vlan,
                inner_vlan,
                interface,
                src_mac,
                dst_mac,
                packets,
                bytes,
                rev_packets,
                rev_bytes,
                tcp_flags,
                rev_tcp_flags,
                end: EndReason::from_u8(end).unwrap_or(EndReason::Idle),
            },
        )
}
