//! `FlowTable::update` in steady state, with 10k and 100k flows open at once: a deterministic
//! synthetic stream of `PacketMeta` (both directions, TCP/UDP/ICMP, 15 % IPv6, 10 % VLAN,
//! packet trains, TCP connections that end with FIN and are replaced by new ones), with `expire`
//! called every 1024 packets as a worker does per batch. Throughput is in packets.

mod common;
use common::Rng;
use criterion::{BenchmarkId, Criterion, Throughput};
use flowkeep::decode::PacketMeta;
use flowkeep::flow::{FlowConfig, FlowTable};
use flowkeep::record::FlowRecord;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Packets in the pre-generated stream per concurrent flow (at least `MIN_STREAM`): enough that
/// about 95 % of the flows are touched in one pass. The bench cycles through the stream,
/// shifting time forward by its span on each wrap so that packet time never steps back.
const STREAM_PER_FLOW: usize = 6;
const MIN_STREAM: usize = 200_000;
/// Packets per measured iteration.
const CHUNK: usize = 8192;
/// Packets between `expire` calls (a worker's batch).
const EXPIRE_EVERY: usize = 1024;
/// Packet rate of the stream: the flow table sweeps once per second of packet time.
const PPS: i64 = 200_000;
const T0: i64 = 1_767_225_600_000_000_000;

#[derive(Clone, Copy)]
struct Slot {
    client: IpAddr,
    server: IpAddr,
    cport: u16,
    sport: u16,
    proto: u8,
    vlan: u16,
    /// Packets sent so far and packets this connection will send.
    sent: u32,
    total: u32,
}

fn new_slot(rng: &mut Rng, serial: u64) -> Slot {
    let v6 = rng.below(100) < 15;
    let (client, server) = if v6 {
        let c = 0x2001_0db8_000c_0000_0000_0000_0000_0000u128 | u128::from(serial);
        let s = 0x2001_0db8_0005_0000_0000_0000_0000_0000u128 | u128::from(rng.below(5000));
        (IpAddr::V6(Ipv6Addr::from(c)), IpAddr::V6(Ipv6Addr::from(s)))
    } else {
        let c = 0x0a00_0000u32 | (serial as u32 & 0x00ff_ffff);
        let s = 0xc612_0000u32 | rng.below(1 << 17) as u32;
        (IpAddr::V4(Ipv4Addr::from(c)), IpAddr::V4(Ipv4Addr::from(s)))
    };
    let class = rng.below(100);
    let (proto, sport) = match class {
        0..75 => (6, 443),
        75..97 => (17, if class < 90 { 443 } else { 53 }),
        _ => (if v6 { 58 } else { 1 }, 0),
    };
    Slot {
        client,
        server,
        cport: 32_768 + (serial % 28_000) as u16,
        sport,
        proto,
        vlan: if rng.below(10) == 0 {
            100 + rng.below(16) as u16
        } else {
            0
        },
        sent: 0,
        // Mean 200 packets: about PPS / 200 connections end per second of packet time.
        total: 20 + rng.below(360) as u32,
    }
}

fn stream(flows: usize, seed: u64) -> Vec<PacketMeta> {
    let mut rng = Rng(seed);
    let mut serial = 0u64;
    let mut slots: Vec<Slot> = (0..flows)
        .map(|_| {
            serial += 1;
            new_slot(&mut rng, serial)
        })
        .collect();
    let len = (flows * STREAM_PER_FLOW).max(MIN_STREAM);
    let mut out = Vec::with_capacity(len);
    let mut cur = 0usize;
    for i in 0..len {
        // Packet trains: half the time the previous flow sends again.
        if rng.below(2) == 0 {
            cur = rng.below(flows as u64) as usize;
        }
        let s = &mut slots[cur];
        s.sent += 1;
        let from_client = s.sent <= 1 || rng.below(2) == 0;
        let last_two = s.total - s.sent;
        let tcp_flags = match (s.proto, s.sent, last_two) {
            (6, 1, _) => 0x02,
            (6, 2, _) => 0x12,
            (6, _, 1) | (6, _, 0) => 0x11,
            (6, _, _) => 0x18,
            _ => 0,
        };
        // The FIN pair goes one each way.
        let from_client = match (s.proto, last_two) {
            (6, 1) => true,
            (6, 0) => false,
            _ => from_client,
        };
        let (src, dst, sp, dp) = if from_client {
            (s.client, s.server, s.cport, s.sport)
        } else {
            (s.server, s.client, s.sport, s.cport)
        };
        let (sp, dp) = if s.proto == 1 || s.proto == 58 {
            let t: u16 = match (s.proto, from_client) {
                (1, true) => 8,
                (1, false) => 0,
                (_, true) => 128,
                _ => 129,
            };
            (0, t * 256)
        } else {
            (sp, dp)
        };
        let mac = |a: u8| Some([0x02, 0, 0, 0, a, (cur & 0xff) as u8]);
        out.push(PacketMeta {
            ts: T0 + i as i64 * (1_000_000_000 / PPS),
            src,
            dst,
            proto: s.proto,
            sport: sp,
            dport: dp,
            vlan: s.vlan,
            inner_vlan: 0,
            src_mac: mac(1),
            dst_mac: mac(2),
            ip_bytes: 40 + rng.below(1461),
            tcp_flags,
            frag: None,
            interface: 0,
        });
        if s.sent >= s.total {
            serial += 1;
            *s = new_slot(&mut rng, serial);
        }
    }
    out
}

/// A flow table fed from `stream` in chunks, carrying its position across iterations.
struct Feeder {
    table: FlowTable,
    stream: Vec<PacketMeta>,
    pos: usize,
    shift: i64,
    out: Vec<FlowRecord>,
    /// Feed `update_batch` a worker's batch at a time instead of `update` per packet.
    batched: bool,
    batch: Vec<PacketMeta>,
}

impl Feeder {
    fn new(flows: usize, batched: bool) -> Feeder {
        Feeder {
            table: FlowTable::new(FlowConfig::default()),
            stream: stream(flows, flows as u64),
            pos: 0,
            shift: 0,
            out: Vec::with_capacity(4 * CHUNK),
            batched,
            batch: Vec::with_capacity(EXPIRE_EVERY),
        }
    }

    fn chunk(&mut self) -> usize {
        let span = self.stream.len() as i64 * (1_000_000_000 / PPS);
        for _ in 0..CHUNK {
            if self.pos == self.stream.len() {
                self.pos = 0;
                self.shift += span;
            }
            let mut m = self.stream[self.pos];
            m.ts += self.shift;
            if self.batched {
                self.batch.push(m);
            } else {
                self.table.update(black_box(&m), &mut self.out);
            }
            self.pos += 1;
            if self.pos % EXPIRE_EVERY == 0 {
                if self.batched {
                    self.table
                        .update_batch(black_box(&self.batch), &mut self.out);
                    self.batch.clear();
                }
                self.table.expire(m.ts, &mut self.out);
            }
        }
        let n = self.out.len();
        self.out.clear();
        n
    }
}

fn bench_flow(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_table");
    g.throughput(Throughput::Elements(CHUNK as u64));
    for flows in [10_000usize, 100_000] {
        for (name, batched) in [("update+expire", false), ("update_batch+expire", true)] {
            let mut f = Feeder::new(flows, batched);
            g.bench_function(BenchmarkId::new(name, flows), |b| {
                b.iter(|| black_box(f.chunk()))
            });
            // Shows what "steady state" meant for this run.
            eprintln!(
                "flow_table/{name}/{flows}: {} flows open at the end, {} records written, {} state bytes per open flow",
                f.table.active_flows(),
                f.table.stats().records,
                f.table.state_bytes() / f.table.active_flows().max(1)
            );
        }
    }
    g.finish();
}

common::bench_main!(bench_flow);
