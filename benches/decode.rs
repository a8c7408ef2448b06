//! Reader-thread and worker hot paths over real frames: `decode::decode`, `Dispatcher::hash`, and
//! `FileSource` iteration. Throughput is in packets (frames), so the report reads as packets/s.
//! `fixtures` is a mix of three captures; `well_formed_fixtures` every capture the tshark oracle
//! (tests/decode_oracle.rs) holds `decode` to, one frame of each kind it meets.

mod common;
use common::pcap;
use criterion::{BatchSize, Criterion, Throughput};
use flowkeep::capture::{FileSource, LinkType, Next, Packet, PacketSource};
use flowkeep::decode::{decode, decode_slow, DecodeError, Dispatcher, PacketMeta};
use std::hint::black_box;
use std::path::PathBuf;

/// Real captures with a mix of link types, VLANs, IPv6, tunnels and damage.
const FIXTURES: &[&str] = &[
    "nDPI__1kxun.pcap",
    "nDPI__sites.pcapng",
    "pcap-parser__wireshark_samples-test.pcapng",
];

/// Frames copied out of a capture into one buffer, so that the benches touch memory the way the
/// worker does (its batch is one contiguous buffer) and not the file parser.
struct Frames {
    data: Vec<u8>,
    headers: Vec<(i64, u32, LinkType, usize, usize)>,
}

impl Frames {
    fn packets(&self) -> impl Iterator<Item = Packet<'_>> {
        self.headers
            .iter()
            .map(|&(ts, wire_len, link, start, end)| Packet {
                ts,
                wire_len,
                link,
                data: &self.data[start..end],
            })
    }

    fn len(&self) -> u64 {
        self.headers.len() as u64
    }
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/pcaps")
        .join(name)
}

/// Every fixture MANIFEST.tsv does not mark as damaged or odd.
fn well_formed_fixtures() -> Vec<String> {
    let path = fixture_path("MANIFEST.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows = text.lines().map(|l| l.split('\t').collect::<Vec<_>>());
    let header = rows.next().expect("MANIFEST.tsv header");
    let notes = header
        .iter()
        .position(|c| *c == "notes")
        .expect("notes column");
    rows.filter(|row| !row[0].is_empty())
        .filter(|row| {
            let n = row.get(notes).copied().unwrap_or_default();
            !(n.starts_with("MALFORMED") || n.starts_with("ODD"))
        })
        .map(|row| row[0].to_string())
        .collect()
}

fn load<S: AsRef<str>>(names: &[S]) -> Frames {
    let mut frames = Frames {
        data: Vec::new(),
        headers: Vec::new(),
    };
    for name in names {
        let path = fixture_path(name.as_ref());
        let mut src = FileSource::open(&path).unwrap_or_else(|e| panic!("{e}"));
        loop {
            match src.next_packet() {
                Ok(Next::Packet(p)) => {
                    let start = frames.data.len();
                    frames.data.extend_from_slice(p.data);
                    frames
                        .headers
                        .push((p.ts, p.wire_len, p.link, start, frames.data.len()));
                }
                Ok(Next::Idle) => continue,
                // Damage at the end of a fixture is part of the fixture: keep what came before.
                Ok(Next::End) | Err(_) => break,
            }
        }
    }
    frames
}

/// A classic pcap (microsecond, Ethernet) of `n` minimum-size IPv4/TCP frames over 1000 flows:
/// the worst case for the per-packet cost of reading a file.
fn synthetic_pcap(n: u32) -> Vec<u8> {
    let mut out = pcap::header(pcap::LINKTYPE_ETHERNET);
    out.reserve(n as usize * (16 + 60));
    let base_sec = 1_767_225_600u32;
    for i in 0..n {
        let flow = i % 1000;
        let mut frame = [0u8; 60];
        frame[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut frame[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, (flow >> 8) as u8, flow as u8]);
        ip[16..20].copy_from_slice(&[198, 18, 0, 1]);
        let tcp = &mut frame[34..54];
        tcp[0..2].copy_from_slice(&(40_000 + flow as u16).to_be_bytes());
        tcp[2..4].copy_from_slice(&443u16.to_be_bytes());
        tcp[12] = 0x50;
        tcp[13] = 0x10;
        pcap::push_packet(
            &mut out,
            base_sec + i / 100_000,
            (i % 100_000) * 10,
            64,
            &frame,
        );
    }
    out
}

/// `n` frames, alternately VLAN-tagged IPv4/TCP and untagged IPv6/TCP over 1000 flows: the
/// benchmark mix's other two kinds, which the fast path takes since 6f6d6b7.
fn synthetic_vlan_and_ipv6(n: u32) -> Frames {
    let mut f = Frames {
        data: Vec::new(),
        headers: Vec::new(),
    };
    for i in 0..n {
        let flow = i % 1000;
        let start = f.data.len();
        let d = &mut f.data;
        d.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2]);
        if i % 2 == 0 {
            d.extend_from_slice(&[0x81, 0x00, 0x00, 0x64, 0x08, 0x00, 0x45, 0, 0, 40]);
            d.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, (flow >> 8) as u8]);
            d.extend_from_slice(&[flow as u8, 198, 18, 0, 1]);
        } else {
            d.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 20, 6, 64]);
            d.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            d.extend_from_slice(&[(flow >> 8) as u8, flow as u8]);
            d.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        }
        d.extend_from_slice(&(40_000 + flow as u16).to_be_bytes());
        d.extend_from_slice(&[0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff]);
        d.extend_from_slice(&[0, 0, 0, 0]);
        let wire = (d.len() - start) as u32;
        f.headers.push((
            1_767_225_600_000_000_000,
            wire,
            LinkType::ETHERNET,
            start,
            d.len(),
        ));
    }
    f
}

fn count_packets(bytes: Vec<u8>) -> u64 {
    let mut src = FileSource::from_bytes("bench", bytes).unwrap_or_else(|e| panic!("{e}"));
    let mut n = 0u64;
    let mut captured = 0u64;
    while let Ok(Next::Packet(p)) = src.next_packet() {
        n += 1;
        captured += p.data.len() as u64;
    }
    black_box(captured);
    n
}

/// IP bytes of the frames that decode: a result the optimiser cannot drop.
fn decode_all(frames: &Frames) -> u64 {
    decode_all_by(frames, decode)
}

/// `decode_all` by the general path alone.
fn decode_all_slow(frames: &Frames) -> u64 {
    decode_all_by(frames, decode_slow)
}

fn decode_all_by(frames: &Frames, by: fn(&Packet<'_>) -> Result<PacketMeta, DecodeError>) -> u64 {
    let mut ok = 0u64;
    for p in frames.packets() {
        if let Ok(m) = by(black_box(&p)) {
            ok += m.ip_bytes;
        }
    }
    black_box(ok)
}

fn hash_all(d: &mut Dispatcher, frames: &Frames) -> u64 {
    let mut acc = 0u64;
    for p in frames.packets() {
        acc ^= d.hash(black_box(&p));
    }
    black_box(acc)
}

fn bench_decode(c: &mut Criterion) {
    let all = load(FIXTURES);
    let well_formed = load(&well_formed_fixtures());
    let synth = synthetic_pcap(100_000);
    let synth_frames = {
        let mut src =
            FileSource::from_bytes("synthetic", synth.clone()).unwrap_or_else(|e| panic!("{e}"));
        let mut f = Frames {
            data: Vec::new(),
            headers: Vec::new(),
        };
        while let Ok(Next::Packet(p)) = src.next_packet() {
            let start = f.data.len();
            f.data.extend_from_slice(p.data);
            f.headers
                .push((p.ts, p.wire_len, p.link, start, f.data.len()));
        }
        f
    };
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(all.len()));
    g.bench_function("fixtures", |b| b.iter(|| decode_all(&all)));
    g.throughput(Throughput::Elements(well_formed.len()));
    g.bench_function("well_formed_fixtures", |b| {
        b.iter(|| decode_all(&well_formed))
    });
    g.throughput(Throughput::Elements(synth_frames.len()));
    g.bench_function("synthetic_tcp4_60B", |b| {
        b.iter(|| decode_all(&synth_frames))
    });
    // The general path alone, on the frames the fast path takes: what the fast path saves.
    g.bench_function("synthetic_tcp4_60B_slow_path", |b| {
        b.iter(|| decode_all_slow(&synth_frames))
    });
    let mixed = synthetic_vlan_and_ipv6(100_000);
    assert_eq!(decode_all(&mixed), decode_all_slow(&mixed));
    g.throughput(Throughput::Elements(mixed.len()));
    g.bench_function("synthetic_vlan4_and_ipv6", |b| {
        b.iter(|| decode_all(&mixed))
    });
    g.bench_function("synthetic_vlan4_and_ipv6_slow_path", |b| {
        b.iter(|| decode_all_slow(&mixed))
    });
    g.finish();

    let mut g = c.benchmark_group("dispatcher_hash");
    g.throughput(Throughput::Elements(all.len()));
    g.bench_function("fixtures", |b| {
        let mut d = Dispatcher::new();
        b.iter(|| hash_all(&mut d, &all))
    });
    g.throughput(Throughput::Elements(well_formed.len()));
    g.bench_function("well_formed_fixtures", |b| {
        let mut d = Dispatcher::new();
        b.iter(|| hash_all(&mut d, &well_formed))
    });
    // What the reader does now: the frames are decoded anyway, and their packets dispatched.
    let metas: Vec<_> = all.packets().filter_map(|p| decode(&p).ok()).collect();
    g.throughput(Throughput::Elements(metas.len() as u64));
    g.bench_function("fixtures_decoded", |b| {
        let mut d = Dispatcher::new();
        b.iter(|| {
            let mut acc = 0u64;
            for m in &metas {
                acc ^= d.hash_meta(black_box(m));
            }
            black_box(acc)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("file_source");
    for name in ["nDPI__1kxun.pcap", "nDPI__sites.pcapng"] {
        let bytes = std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let n = count_packets(bytes.clone());
        g.throughput(Throughput::Elements(n));
        g.bench_function(format!("open_iterate/{name}"), |b| {
            b.iter_batched(
                || bytes.clone(),
                |bytes| assert_eq!(count_packets(bytes), n),
                BatchSize::LargeInput,
            )
        });
    }
    let n = count_packets(synth.clone());
    assert_eq!(n, 100_000);
    g.throughput(Throughput::Elements(n));
    g.bench_function("open_iterate/synthetic_100k_60B", |b| {
        b.iter_batched(
            || synth.clone(),
            |bytes| assert_eq!(count_packets(bytes), n),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

common::bench_main!(bench_decode);
