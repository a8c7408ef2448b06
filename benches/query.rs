//! Query costs per stored record, through `query::scan_matching` over a real store directory
//! (segment files, block index, zstd, columns): a full scan with no filter, a full scan with a
//! filter the block index cannot help (every record decoded and tested), and a one-address
//! query the index narrows to a few blocks. Throughput is in records of the whole store.

mod common;
use common::Rng;
use criterion::{Criterion, Throughput};
use flowkeep::query::{scan_matching, Filter};
use flowkeep::record::{EndReason, FlowRecord};
use flowkeep::store::{Store, StoreWriter, WriterConfig};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::ControlFlow;

const RECORDS: usize = 32 * 8192;
const T0: i64 = 1_767_225_600_000_000_000;

/// An hour of a busy link: 50 000 clients, Zipf-like servers, TCP/UDP 443 and DNS.
fn fill(dir: &std::path::Path) {
    let mut w = StoreWriter::create(WriterConfig::new(dir)).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = Rng(11);
    let step = 3_600_000_000_000 / RECORDS as i64;
    for i in 0..RECORDS {
        let first = T0 + i as i64 * step + rng.below(1_000_000) as i64;
        let spread = rng.below(4096) + 1;
        let (proto, dport) = match rng.below(100) {
            0..75 => (6u8, 443u16),
            75..90 => (17, 443),
            _ => (17, 53),
        };
        let packets = 1 + rng.below(40);
        w.append(&FlowRecord {
            first,
            last: first + rng.below(30_000_000_000) as i64,
            proto,
            src: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | rng.below(50_000) as u32)),
            sport: 32_768 + rng.below(28_000) as u16,
            dst: IpAddr::V4(Ipv4Addr::from(0xc612_0000 | rng.below(spread) as u32)),
            dport,
            vlan: 0,
            inner_vlan: 0,
            interface: 0,
            src_mac: Some([2, 0, 0, 0, 0, 1]),
            dst_mac: Some([2, 0, 0, 0, 0, 2]),
            packets,
            bytes: packets * 700,
            rev_packets: packets,
            rev_bytes: packets * 900,
            tcp_flags: if proto == 6 { 0x1b } else { 0 },
            rev_tcp_flags: if proto == 6 { 0x1b } else { 0 },
            end: EndReason::Idle,
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    w.finish().unwrap_or_else(|e| panic!("{e}"));
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    fill(dir.path());
    let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("query");
    g.throughput(Throughput::Elements(RECORDS as u64));
    for (name, expr) in [
        ("full_scan/no_filter", ""),
        (
            "full_scan/udp_port_53_and_bytes",
            "udp and dst port 53 and bytes > 20000",
        ),
        ("full_scan/bytes_over_10M", "bytes > 10000000"),
        ("indexed/one_host", "host 10.0.123.45"),
    ] {
        let filter = Filter::parse(expr).unwrap_or_else(|e| panic!("{e}"));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0u64;
                let stats = scan_matching(&store, None, None, &filter, |_, r| {
                    n += r.packets;
                    ControlFlow::Continue(())
                })
                .unwrap_or_else(|e| panic!("{e}"));
                black_box((n, stats.matched))
            })
        });
    }
    g.finish();
}

/// CPU time this thread has run, from the scheduler's own accounting (ns): unlike wall time,
/// it does not grow while other processes have the core, which on a shared machine is the
/// difference between a figure per core and a figure per share of one.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `FLOWKEEP_SCAN_ITERS=N`: instead of criterion, fill the store once and run a full scan N
/// times, printing records per CPU second: with no filter (every record built and passed to
/// the callback), or with the filter in `FLOWKEEP_SCAN_EXPR` (every record tested). With N = 0
/// it only fills, so that `valgrind --tool=callgrind` runs with N and 0 give the scan's
/// instructions by difference.
fn scan_only(iters: u32) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    fill(dir.path());
    let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let expr = std::env::var("FLOWKEEP_SCAN_EXPR").unwrap_or_default();
    let filter = Filter::parse(&expr).unwrap_or_else(|e| panic!("{e}"));
    let mut matched = 0u64;
    let (cpu0, wall0) = (thread_cpu_ns(), std::time::Instant::now());
    let mut n = 0u64;
    for _ in 0..iters {
        let stats = scan_matching(&store, None, None, &filter, |_, r| {
            n += r.packets;
            ControlFlow::Continue(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        matched += stats.matched;
    }
    let (cpu, wall) = (thread_cpu_ns() - cpu0, wall0.elapsed().as_nanos() as u64);
    let recs = RECORDS as u64 * u64::from(iters);
    let per_s = |ns: u64| recs as f64 * 1e9 / ns.max(1) as f64 / 1e6;
    println!(
        "full scan, filter '{expr}': {iters} × {RECORDS} records, {matched} matched; {:.2} M \
         records/s per CPU second ({:.1} ns/record), {:.2} M/s wall; checksum {}",
        per_s(cpu),
        cpu as f64 / recs.max(1) as f64,
        per_s(wall),
        black_box(n)
    );
}

common::bench_group!(bench);

fn main() {
    if let Some(iters) = std::env::var("FLOWKEEP_SCAN_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        scan_only(iters);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
