//! Store costs per record: block encode (columns + zstd + CRC + address filter) and decode
//! (CRC + unzstd + columns) of a full 8192-record block, and `StoreWriter` append + finish
//! (segment files, fsync) into a temporary directory. Throughput is in records.

mod common;
use common::Rng;
use criterion::{BatchSize, Criterion, Throughput};
use flowkeep::record::{EndReason, FlowRecord};
use flowkeep::store::block::{BlockDecoder, BlockEncoder, DEFAULT_ZSTD_LEVEL};
use flowkeep::store::{decode_block, encode_block, StoreWriter, WriterConfig};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const BLOCK: usize = 8192;
/// Records per writer iteration: eight full blocks, so that opening and sealing the segment
/// (two fsyncs and a rename) is spread over a realistic amount of data.
const WRITER_RECORDS: usize = 8 * BLOCK;
const T0: i64 = 1_767_225_600_000_000_000;

impl Rng {
    /// Heavy-tailed packet count: most flows are a handful of packets, a few are large.
    fn packets(&mut self) -> u64 {
        let shift = self.below(16);
        1 + (self.below(8) << shift) / 4
    }
}

/// Records as a flow table emits them over a minute of a busy link: `first` roughly increasing,
/// 15 % IPv6, 10 % VLAN-tagged, TCP/UDP/ICMP, MACs present, counters heavy-tailed.
fn records(n: usize, seed: u64) -> Vec<FlowRecord> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let v6 = rng.below(100) < 15;
            let client = rng.below(50_000);
            // Zipf-like: popular servers take most flows.
            let spread = rng.below(4096) + 1;
            let server = rng.below(spread);
            let (src, dst) = if v6 {
                (
                    IpAddr::V6(Ipv6Addr::from(
                        0x2001_0db8_000c_0000_0000_0000_0000_0000u128 | u128::from(client),
                    )),
                    IpAddr::V6(Ipv6Addr::from(
                        0x2001_0db8_0005_0000_0000_0000_0000_0000u128 | u128::from(server),
                    )),
                )
            } else {
                (
                    IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 | client as u32)),
                    IpAddr::V4(Ipv4Addr::from(0xc612_0000u32 | server as u32)),
                )
            };
            let class = rng.below(100);
            let (proto, sport, dport) = match class {
                0..75 => (6u8, 32_768 + rng.below(28_000) as u16, 443u16),
                75..90 => (17, 32_768 + rng.below(28_000) as u16, 443),
                90..97 => (17, 32_768 + rng.below(28_000) as u16, 53),
                _ => (
                    if v6 { 58 } else { 1 },
                    0,
                    if v6 { 128 * 256 } else { 8 * 256 },
                ),
            };
            let first = T0 + i as i64 * 7_000_000 - rng.below(30_000_000_000) as i64;
            let last = first + rng.below(60_000_000_000) as i64;
            let packets = rng.packets();
            let rev_packets = if rng.below(20) == 0 { 0 } else { rng.packets() };
            let (flags, rev_flags, end) = if proto == 6 {
                match rng.below(100) {
                    0..80 => (0x1b, 0x1b, EndReason::Fin),
                    80..88 => (0x16, 0x14, EndReason::Rst),
                    88..95 => (0x18, 0x18, EndReason::Idle),
                    _ => (0x18, 0x10, EndReason::Active),
                }
            } else {
                (0, 0, EndReason::Idle)
            };
            let vlan = if rng.below(10) == 0 {
                100 + rng.below(16) as u16
            } else {
                0
            };
            FlowRecord {
                first,
                last,
                proto,
                src,
                sport,
                dst,
                dport,
                vlan,
                inner_vlan: 0,
                interface: 0,
                src_mac: Some([0x02, 0x42, 0, 0, (client >> 8) as u8, client as u8]),
                dst_mac: Some([0x00, 0x1b, 0x21, 0x0a, 0x0b, (vlan & 0xff) as u8]),
                packets,
                bytes: packets * (40 + rng.below(1461)),
                rev_packets,
                rev_bytes: rev_packets * (40 + rng.below(1461)),
                tcp_flags: flags,
                rev_tcp_flags: rev_flags,
                end,
            }
        })
        .collect()
}

fn bench_store(c: &mut Criterion) {
    let recs = records(BLOCK, 1);
    let block = encode_block(&recs).unwrap_or_else(|e| panic!("{e}"));
    // A block keeps its records sorted by first time (a stable sort).
    let mut sorted = recs.clone();
    sorted.sort_by_key(|r| r.first);
    assert!(decode_block(&block).unwrap_or_else(|e| panic!("{e}")) == sorted);
    eprintln!(
        "store: one block of {BLOCK} records is {} bytes ({:.1} bytes/record, zstd level {DEFAULT_ZSTD_LEVEL})",
        block.len(),
        block.len() as f64 / BLOCK as f64
    );

    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(BLOCK as u64));
    g.bench_function("block_encode/8192", |b| {
        let mut enc = BlockEncoder::new(DEFAULT_ZSTD_LEVEL).unwrap_or_else(|e| panic!("{e}"));
        b.iter(|| {
            for r in &recs {
                enc.push(black_box(r));
            }
            let (bytes, summary) = enc.finish().unwrap_or_else(|e| panic!("{e}"));
            black_box(bytes.len() + summary.filter.len())
        })
    });
    g.bench_function("block_decode/8192", |b| {
        let mut dec = BlockDecoder::new().unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::with_capacity(BLOCK);
        b.iter(|| {
            dec.decode_into(black_box(&block), &mut out)
                .unwrap_or_else(|e| panic!("{e}"));
            black_box(out.len())
        })
    });

    let many = records(WRITER_RECORDS, 2);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut run = 0u64;
    g.throughput(Throughput::Elements(WRITER_RECORDS as u64));
    g.bench_function("writer_append_finish/65536", |b| {
        b.iter_batched(
            || {
                run += 1;
                let dir = tmp.path().join(format!("store-{run}"));
                StoreWriter::create(WriterConfig::new(&dir)).unwrap_or_else(|e| panic!("{e}"))
            },
            |mut w| {
                for r in &many {
                    w.append(black_box(r)).unwrap_or_else(|e| panic!("{e}"));
                }
                let stats = w.finish().unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(stats.records, WRITER_RECORDS as u64);
                stats.bytes
            },
            // The writer holds no records, only buffers: one per iteration is fine.
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

common::bench_main!(bench_store);
