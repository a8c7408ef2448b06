//! Block encode and decode throughput on an 8192-record block shaped like the benchmark
//! capture: µs times, mostly IPv4 with some IPv6, a few thousand hosts, two MACs.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flowkeep::record::{EndReason, FlowRecord};
use flowkeep::store::block::{BlockDecoder, BlockEncoder};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

const RECORDS: usize = 8192;

fn realistic(n: usize) -> Vec<FlowRecord> {
    (0..n as u64)
        .map(|i| {
            // A cheap deterministic scramble, so no RNG crate is needed.
            let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
            let first = 1_767_225_600_000_000_000 + (i * 60 + h % 3_000) as i64 * 1000;
            let v6 = h % 7 == 0;
            FlowRecord {
                first,
                last: first + (h % 20_000_000) as i64 * 1000,
                proto: [6, 6, 6, 17, 17, 1][(h % 6) as usize],
                src: if v6 {
                    IpAddr::V6(Ipv6Addr::new(
                        0x2001,
                        0xdb8,
                        0,
                        (h % 40) as u16,
                        0,
                        0,
                        0,
                        (h % 3000) as u16,
                    ))
                } else {
                    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (h % 20_000) as u32))
                },
                sport: 1024 + (h % 60_000) as u16,
                dst: if v6 {
                    IpAddr::V6(Ipv6Addr::new(
                        0x2606,
                        0x4700,
                        0,
                        0,
                        0,
                        0,
                        0,
                        (h % 200) as u16,
                    ))
                } else {
                    IpAddr::V4(Ipv4Addr::from(0xc633_6400 + (h % 3000) as u32))
                },
                dport: [443, 443, 80, 53, 8080][(h % 5) as usize],
                vlan: if h % 10 == 0 { 100 } else { 0 },
                inner_vlan: 0,
                src_mac: Some([0, 0x1b, 0x21, 0, 0, 1]),
                dst_mac: Some([0, 0x1b, 0x21, 0, 0, 2]),
                packets: 1 + h % 40,
                bytes: 60 + h % 60_000,
                rev_packets: h % 50,
                rev_bytes: h % 80_000,
                tcp_flags: 0x1b,
                rev_tcp_flags: 0x12,
                end: EndReason::ALL[(h % 5) as usize],
            }
        })
        .collect()
}

fn blocks(c: &mut Criterion) {
    let recs = realistic(RECORDS);
    let mut g = c.benchmark_group("store_block");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.sample_size(20);
    for level in [1, 3] {
        let mut enc = BlockEncoder::new(level).expect("zstd level");
        g.bench_with_input(BenchmarkId::new("encode", level), &recs, |b, recs| {
            b.iter(|| {
                for r in recs {
                    enc.push(r);
                }
                black_box(enc.finish().expect("encode").0.len())
            })
        });
    }
    let block = {
        let mut enc = BlockEncoder::new(3).expect("zstd level");
        for r in &recs {
            enc.push(r);
        }
        enc.finish().expect("encode").0.to_vec()
    };
    let mut dec = BlockDecoder::new().expect("decoder");
    let mut out = Vec::new();
    g.bench_function("decode", |b| {
        b.iter(|| {
            dec.decode_into(black_box(&block), &mut out)
                .expect("decode");
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, blocks);
criterion_main!(benches);
