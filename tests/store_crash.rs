//! Crash safety of the store, end to end: `flowkeep replay` killed with SIGKILL at many points
//! keeps every block it reported flushed, reading commands read it without changing it, the next
//! writer or `flowkeep recover` recovers and says what it dropped, and `query` never fails; and a full disk (a small tmpfs, as root) is counted, never corrupts a
//! segment, and writing resumes once space is back.

use flowkeep::record::{EndReason, FlowRecord};
use flowkeep::store::{Store, StoreWriter, WriterConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv6Addr};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
use common::{pcap, skip_or_fail, Rng, BIN};
/// 2026-01-01T00:00:00Z in seconds.
const T0: u32 = 1_767_225_600;

fn ip_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A classic little-endian Ethernet pcap: one UDP packet per flow, `flows` flows, 10 ms apart
/// starting `start_s` seconds after T0.
fn write_pcap(path: &Path, flows: u32, start_s: u32) {
    let mut out = pcap::header(pcap::LINKTYPE_ETHERNET);
    for i in 0..flows {
        let mut frame = Vec::with_capacity(64);
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00]);
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(20u16 + 8 + 8).to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        ip[16..20].copy_from_slice(&[192, 0, 2, (i % 200) as u8]);
        let c = ip_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&(1024 + (i % 60_000) as u16).to_be_bytes());
        frame.extend_from_slice(&53u16.to_be_bytes());
        frame.extend_from_slice(&16u16.to_be_bytes());
        frame.extend_from_slice(&0u16.to_be_bytes());
        frame.extend_from_slice(&i.to_be_bytes());
        frame.extend_from_slice(&[0xab; 4]);
        let ms = u64::from(i) * 10;
        let sec = T0 + start_s + (ms / 1000) as u32;
        let usec = (ms % 1000) as u32 * 1000;
        pcap::push_packet(&mut out, sec, usec, frame.len() as u32, &frame);
    }
    std::fs::write(path, out).unwrap();
}

fn replay_args<'a>(pcap: &'a Path, store: &'a Path) -> Vec<&'a str> {
    vec![
        "replay",
        pcap.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--quiet",
        "--verbose",
        "--block-records",
        "64",
        "--partition",
        "1m",
        "--idle-timeout",
        "1s",
        "--active-timeout",
        "2s",
        "--workers",
        "2",
    ]
}

/// `flushed <path> block <n> records <k>`
fn parse_flush(line: &str) -> Option<(PathBuf, u64, u64)> {
    let rest = line.strip_prefix("flushed ")?;
    let (path, rest) = rest.rsplit_once(" block ")?;
    let (block, records) = rest.split_once(" records ")?;
    Some((
        PathBuf::from(path),
        block.parse().ok()?,
        records.parse().ok()?,
    ))
}

fn temp_files(store: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let Ok(rd) = std::fs::read_dir(store) else {
        return out;
    };
    for part in rd.flatten() {
        if let Ok(files) = std::fs::read_dir(part.path()) {
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.starts_with(".seg-") && name.ends_with(".fks.tmp") {
                    out.insert(f.path());
                }
            }
        }
    }
    out
}

fn sealed_name(temp: &Path) -> PathBuf {
    let name = temp.file_name().unwrap().to_str().unwrap();
    let stem = name
        .strip_prefix('.')
        .unwrap()
        .strip_suffix(".fks.tmp")
        .unwrap();
    temp.with_file_name(format!("{stem}.fks"))
}

fn query_count(store: &Path) -> (usize, String) {
    let out = Command::new(BIN)
        .args([
            "query",
            "--store",
            store.to_str().unwrap(),
            "--format",
            "jsonl",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "query failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).lines().count(), stderr)
}

#[test]
fn kill_9_at_many_points_keeps_every_reported_block() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("synthetic.pcap");
    // 12 000 flows over two minutes: about 190 blocks of 64 records in 3 partitions per worker,
    // with seals during the run (partitions of one minute, flows that live at most seconds).
    write_pcap(&pcap, 12_000, 0);
    let later = dir.path().join("later.pcap");
    write_pcap(&later, 10, 600);

    let full_store = dir.path().join("full");
    let out = Command::new(BIN)
        .args(replay_args(&pcap, &full_store))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let total_flushes = stderr.lines().filter_map(parse_flush).count() as u64;
    let (full_records, _) = query_count(&full_store);
    assert_eq!(full_records, 12_000);
    assert!(total_flushes >= 150, "only {total_flushes} flush reports");

    let mut rng = Rng(0x5eed_f10e_cee9);
    let mut points = BTreeSet::new();
    while points.len() < 55 {
        points.insert(1 + rng.next() % total_flushes);
    }
    let mut recovered_lines = 0;
    let mut torn_seen = 0;
    for (i, &n) in points.iter().enumerate() {
        let store = dir.path().join(format!("kill-{n}"));
        let mut child = Command::new(BIN)
            .args(replay_args(&pcap, &store))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reported: BTreeMap<PathBuf, (u64, u64)> = BTreeMap::new();
        let mut seen = 0;
        for line in BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = line.unwrap();
            let Some((path, block, records)) = parse_flush(&line) else {
                continue;
            };
            let e = reported.entry(path).or_default();
            e.0 = e.0.max(block + 1);
            e.1 += records;
            seen += 1;
            if seen == n {
                child.kill().unwrap();
                break;
            }
        }
        child.wait().unwrap();
        assert_eq!(seen, n, "replay ended before flush report {n}");
        let left = temp_files(&store);

        // Reading commands change nothing: a query sees every block reported flushed, verify
        // finds the open segments no problem, and both leave them where they were.
        let want: u64 = reported.values().map(|v| v.1).sum();
        let (count, qerr) = query_count(&store);
        assert!(!qerr.contains("warning"), "kill at {n}: {qerr}");
        assert!(
            count as u64 >= want,
            "kill at {n}: {count} of {want} before recovery"
        );
        let out = Command::new(BIN)
            .args(["verify", "--store"])
            .arg(&store)
            .output()
            .unwrap();
        assert!(out.status.success(), "verify before recovery, kill at {n}");
        assert_eq!(temp_files(&store), left, "kill at {n}: a reader recovered");

        // The next writer recovers: half the time `flowkeep recover`, half another replay.
        let next_stderr = if i % 2 == 0 {
            let out = Command::new(BIN)
                .args(["recover", "--store"])
                .arg(&store)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "recover after kill at {n}: {err}");
            err
        } else {
            let out = Command::new(BIN)
                .args(replay_args(&later, &store))
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "replay after kill at {n}: {err}");
            err
        };
        for t in &left {
            let line = next_stderr
                .lines()
                .find(|l| l.starts_with(&format!("flowkeep: recovered {}:", t.display())))
                .unwrap_or_else(|| {
                    panic!(
                        "kill at {n}: no recovery line for {}:\n{next_stderr}",
                        t.display()
                    )
                });
            recovered_lines += 1;
            if !line.contains("dropped 0 bytes") {
                torn_seen += 1;
            }
        }
        assert!(
            temp_files(&store).is_empty(),
            "kill at {n}: temporary files left"
        );

        let (count, qerr) = query_count(&store);
        assert!(!qerr.contains("warning"), "kill at {n}: {qerr}");
        assert!(
            count as u64 >= want,
            "kill at {n}: {count} records, {want} reported flushed"
        );
        let segs: BTreeMap<PathBuf, (u64, u64)> = Store::open(&store)
            .unwrap()
            .segments()
            .unwrap()
            .into_iter()
            .map(|s| {
                assert!(s.error.is_none(), "kill at {n}: {:?}", s.error);
                (s.path, (s.blocks, s.records))
            })
            .collect();
        for (temp, (blocks, records)) in &reported {
            let sealed = sealed_name(temp);
            let got = segs
                .get(&sealed)
                .unwrap_or_else(|| panic!("kill at {n}: {} is missing", sealed.display()));
            assert!(
                got.0 >= *blocks && got.1 >= *records,
                "kill at {n}: {} has {got:?}, {blocks} blocks / {records} records were reported",
                sealed.display()
            );
        }
        // Every recovered segment entered the audit chain: verify finds nothing unexplained.
        let out = Command::new(BIN)
            .args(["verify", "--store"])
            .arg(&store)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "verify after the kill at {n}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!(
        "{} kills, {recovered_lines} segments recovered, {torn_seen} of them with a torn tail",
        points.len()
    );
    assert!(recovered_lines >= points.len());
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn noisy_record(rng: &mut Rng, first: i64) -> FlowRecord {
    let mut v6 = || Ipv6Addr::from((u128::from(rng.next()) << 64) | u128::from(rng.next()));
    let (src, dst) = (v6(), v6());
    FlowRecord {
        first,
        last: first + (rng.next() % 1_000_000_000) as i64,
        proto: 17,
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        sport: rng.next() as u16,
        dport: rng.next() as u16,
        vlan: 0,
        inner_vlan: 0,
        interface: 0,
        src_mac: None,
        dst_mac: None,
        packets: rng.next() >> 20,
        bytes: rng.next() >> 10,
        rev_packets: rng.next() >> 20,
        rev_bytes: rng.next() >> 10,
        tcp_flags: 0,
        rev_tcp_flags: 0,
        end: EndReason::Idle,
    }
}

fn scan_count(store: &Path) -> (u64, Vec<flowkeep::store::ScanProblem>) {
    let mut n = 0;
    let st = Store::open(store)
        .unwrap()
        .scan(None, None, |_, _| {
            n += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    (n, st.problems)
}

#[test]
fn disk_full_is_counted_and_writing_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let Some((mnt, _unmount)) = tmpfs(dir.path(), "4m") else {
        return;
    };
    let store = mnt.join("store");
    let filler = mnt.join("filler");
    // 2.5 MiB of 4: the first 1 MiB segment file fits, growing it to 2 MiB does not.
    std::fs::File::create(&filler)
        .unwrap()
        .write_all(&vec![1u8; 5 << 19])
        .unwrap();

    let hour: i64 = 3_600_000_000_000;
    let t0 = i64::from(T0) * 1_000_000_000;
    let mut cfg = WriterConfig::new(&store);
    cfg.block_records = 64;
    cfg.zstd_level = 1;
    let mut w = StoreWriter::create(cfg).unwrap();
    let mut rng = Rng(7);
    let mut i = 0i64;
    let err = loop {
        assert!(i < 200_000, "the disk never filled");
        if let Err(e) = w.append(&noisy_record(&mut rng, t0 + i)) {
            break e;
        }
        i += 1;
    };
    let msg = err.to_string();
    assert!(
        msg.contains(store.to_str().unwrap()) && msg.contains(".fks.tmp"),
        "{msg}"
    );
    assert!(msg.contains("No space left on device"), "{msg}");
    assert!(msg.contains("extending segment file"), "{msg}");
    let st = w.stats();
    assert_eq!(st.records_lost, 64, "{st:?}");
    // Still full: every further block is lost and counted, the writer does not stop.
    for k in 0..640 {
        let _ = w.append(&noisy_record(&mut rng, t0 + i + k));
    }
    let st = w.stats();
    assert_eq!(st.records_lost, 64 * 11, "{st:?}");
    // A live writer's open segment is readable meanwhile: exactly the blocks that were written.
    let (n, problems) = scan_count(&store);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(n, st.records - st.records_lost);
    // Sealing on a full disk works: the footer's room was kept free.
    let before_seal = w.stats();
    assert!(w.seal_before(t0 + hour).is_ok());
    assert_eq!(w.stats().segments, 1);
    assert_eq!(w.stats().records_lost, before_seal.records_lost);
    // A new partition cannot get a segment file: refused, counted, named.
    let e = w
        .append(&noisy_record(&mut rng, t0 + hour + 1))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("No space left on device") && e.contains("2026-01-01T01-00Z"),
        "{e}"
    );
    assert_eq!(w.stats().records_refused, 1);

    // Space comes back: writing resumes.
    std::fs::remove_file(&filler).unwrap();
    for k in 0..5_000 {
        w.append(&noisy_record(&mut rng, t0 + hour + 2 + k))
            .unwrap();
    }
    w.flush_open().unwrap();
    let st = w.finish().unwrap();
    assert_eq!(st.segments, 2);
    let (n, problems) = scan_count(&store);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(n, st.records - st.records_lost);
    assert!(temp_files(&store).is_empty());
    for s in Store::open(&store).unwrap().segments().unwrap() {
        assert!(s.error.is_none(), "{s:?}");
    }
    eprintln!(
        "disk full: {} records accepted, {} lost with their blocks, {} refused, {n} stored",
        st.records, st.records_lost, st.records_refused
    );
}

/// Live capture (a clock is given) writes its pending records out at least once a second of
/// packet time, even with blocks far larger than a second's records.
#[test]
fn live_pipeline_flushes_open_segments_every_second() {
    use flowkeep::pipeline::{self, PipelineConfig};
    use flowkeep::store::{FlushHook, FlushReport};
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("two-minutes.pcap");
    write_pcap(&pcap, 12_000, 0);
    let flushes = |clock: Option<pipeline::Clock>| {
        let store = dir.path().join(format!("s{}", clock.is_some()));
        let seen: Arc<Mutex<Vec<FlushReport>>> = Arc::default();
        let s = Arc::clone(&seen);
        let mut wcfg = WriterConfig::new(&store);
        wcfg.on_flush = Some(FlushHook(Arc::new(move |r| {
            s.lock().unwrap().push(r.clone())
        })));
        let mut cfg = PipelineConfig::new(wcfg);
        cfg.workers = 2;
        let paths = [pcap.clone()];
        let summary = pipeline::run(
            &cfg,
            pipeline::file_sources(&paths),
            &AtomicBool::new(false),
            clock,
            &mut |_, _, _| {},
        )
        .unwrap();
        assert_eq!(summary.store.records, 12_000);
        assert_eq!(scan_count(&store), (12_000, vec![]));
        let n = seen.lock().unwrap().len();
        n
    };
    fn clock() -> i64 {
        i64::from(T0) * 1_000_000_000
    }
    let replay_blocks = flushes(None);
    let live_blocks = flushes(Some(clock));
    // 120 s of packets: a flush per second per worker that has records pending.
    assert!(replay_blocks <= 6, "{replay_blocks}");
    assert!(live_blocks >= 120, "{live_blocks}");
}

/// Mounts a tmpfs of `size` at `dir/mnt` (or says why not, failing under CI).
fn tmpfs(dir: &Path, size: &str) -> Option<(PathBuf, Unmount)> {
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        skip_or_fail("cannot mount a tmpfs to fill (needs root)");
        return None;
    }
    Some((mnt.clone(), Unmount(mnt)))
}

#[test]
fn replay_that_could_not_store_records_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let Some((mnt, _unmount)) = tmpfs(dir.path(), "2m") else {
        return;
    };
    // Room for the store's small files, not for a segment's first megabyte.
    std::fs::File::create(mnt.join("filler"))
        .unwrap()
        .write_all(&vec![1u8; (2 << 20) - (256 << 10)])
        .unwrap();
    let store = mnt.join("store");
    let o = Command::new(BIN)
        .args(["replay", "-q", "--store"])
        .arg(&store)
        .arg(common::fixtures().join("nDPI__iphone.pcap"))
        .output()
        .unwrap();
    let text = common::out(&o);
    assert!(text.contains("flows lost"), "{text}");
    assert_eq!(o.status.code(), Some(1), "{text}");
    // No segment file could be made to count them in: the summary says the store cannot.
    let lost = number_near(&text, "flows lost", true);
    assert_eq!(
        number_near(&text, "of them are missing from the store", false),
        lost,
        "{text}"
    );
    // With stdout closed (`replay ... | head`) the summary is not seen: the status still is.
    let mut child = Command::new(BIN)
        .args(["replay", "-q", "--store"])
        .arg(&store)
        .arg(common::fixtures().join("nDPI__iphone.pcap"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(1));
}

/// Packet time is checked against the clock handed in (the wall clock, fixed here): a frame
/// stamped more than the tolerance after it is counted and never becomes the trusted newest
/// time, one within the tolerance is trusted.
#[test]
fn packets_stamped_after_the_wall_clock_are_counted_and_not_trusted() {
    use flowkeep::pipeline::{self, PipelineConfig, CLOCK_TOLERANCE};
    use std::sync::atomic::AtomicBool;

    const S: i64 = 1_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let tolerance_s = (CLOCK_TOLERANCE / S) as u32;
    let files = [
        (dir.path().join("now.pcap"), 100, 0),
        // Just within the tolerance of a wall clock an hour after T0.
        (dir.path().join("drift.pcap"), 1, 3_600 + tolerance_s - 1),
        // Ten days ahead of it.
        (dir.path().join("future.pcap"), 3, 10 * 86_400),
    ];
    for (p, n, start) in &files {
        write_pcap(p, *n, *start);
    }
    fn wall() -> i64 {
        (i64::from(T0) + 3_600) * 1_000_000_000
    }
    let mut cfg = PipelineConfig::new(WriterConfig::new(dir.path().join("s")));
    cfg.workers = 1;
    cfg.wall_clock = Some(wall);
    let paths: Vec<PathBuf> = files.iter().map(|f| f.0.clone()).collect();
    let replay = |cfg: &PipelineConfig| {
        let never = AtomicBool::new(false);
        pipeline::run(
            cfg,
            pipeline::file_sources(&paths),
            &never,
            None,
            &mut |_, _, _| {},
        )
        .unwrap()
    };
    let summary = replay(&cfg);
    assert_eq!(summary.frames, 104);
    assert_eq!(summary.future_packets, 3);
    let drift = (i64::from(T0) + 3_600 + i64::from(tolerance_s) - 1) * S;
    assert_eq!(summary.trusted_last_ts, Some(drift));
    assert!(summary.last_ts > Some(wall() + 9 * 86_400 * S));
    // Their flows are stored all the same.
    assert_eq!(summary.store.records, 104);
    // Without a wall clock every packet time is trusted.
    cfg.wall_clock = None;
    cfg.store.dir = dir.path().join("t");
    let summary = replay(&cfg);
    assert_eq!(summary.future_packets, 0);
    assert_eq!(summary.trusted_last_ts, summary.last_ts);
}

/// Records of all the store holds, keyed by their fields, so two stores' contents compare.
fn stored(store: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    Store::open(store)
        .unwrap()
        .scan(None, None, |_, r| {
            out.insert(format!("{r:?}"));
            ControlFlow::Continue(())
        })
        .unwrap();
    out
}

/// `n` one-packet UDP flows between random addresses and ports, 10 ms apart from T0: records
/// that compress little, so a few tens of thousands fill a segment file's first MiB.
fn write_random_pcap(path: &Path, n: u32) {
    let mut rng = Rng(11);
    let mut out = pcap::header(pcap::LINKTYPE_ETHERNET);
    for i in 0..n {
        let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&36u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..20].copy_from_slice(&rng.next().to_be_bytes());
        let c = ip_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&(rng.next() as u32 | 0x0400_0001).to_be_bytes());
        frame.extend_from_slice(&16u16.to_be_bytes());
        frame.extend_from_slice(&[0; 2]);
        frame.extend_from_slice(&rng.next().to_be_bytes());
        let ms = u64::from(i) * 10;
        let (sec, usec) = (T0 + (ms / 1000) as u32, (ms % 1000) as u32 * 1000);
        pcap::push_packet(&mut out, sec, usec, frame.len() as u32, &frame);
    }
    std::fs::write(path, out).unwrap();
}

/// The number after `label` in `text` (`label 12`, `12 label`: the first digits after or the
/// last before it).
fn number_near(text: &str, label: &str, after: bool) -> u64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no '{label}' in {text}"));
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let n = if after {
        let rest = &text[at + label.len()..];
        digits(rest.split_whitespace().next().unwrap())
    } else {
        digits(text[..at].split_whitespace().last().unwrap())
    };
    n.parse()
        .unwrap_or_else(|_| panic!("no number by '{label}' in {text}"))
}

/// A replay that fills the disk exits 1, says how many records it could not store, and the
/// store's own count (`records not stored` in `flowkeep info`) is the same number: blocks lost
/// while writing, and the last block lost at the end, are both counted into the segment's
/// footer. What was stored before is all still there and verify passes.
#[test]
fn replay_that_fills_the_disk_exits_1_and_the_store_counts_what_it_lost() {
    let dir = tempfile::tempdir().unwrap();
    let Some((mnt, _unmount)) = tmpfs(dir.path(), "2m") else {
        return;
    };
    let store = mnt.join("store");
    let replay = |file: &Path| {
        Command::new(BIN)
            .args(["replay", "-q", "--workers", "1", "--store"])
            .arg(&store)
            .arg(file)
            .output()
            .unwrap()
    };
    let earlier = replay(&common::fixtures().join("nDPI__iphone.pcap"));
    assert_eq!(earlier.status.code(), Some(0), "{}", common::out(&earlier));
    let before = stored(&store);
    assert!(!before.is_empty());
    // Room for a segment file's first MiB and a little more, not for growing it to 2 MiB.
    let free = rustix::fs::statvfs(&mnt).unwrap();
    let avail = free.f_bavail * free.f_frsize;
    std::fs::File::create(mnt.join("filler"))
        .unwrap()
        .write_all(&vec![1u8; (avail - (9 << 17)) as usize])
        .unwrap();
    let pcap = dir.path().join("random.pcap");
    write_random_pcap(&pcap, 120_000);
    let o = replay(&pcap);
    let text = common::out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let lost = number_near(&text, "flows lost", true);
    let written = number_near(&text, "flows written", true);
    assert!(lost > 0 && written > 0, "{text}");
    assert_eq!(lost + written, 120_000, "{text}");
    assert!(!text.contains("missing from the store"), "{text}");
    let info = Command::new(BIN)
        .args(["info", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let info = common::out(&info);
    assert_eq!(
        number_near(&info, "records not stored", false),
        lost,
        "{info}"
    );
    let v = Command::new(BIN)
        .args(["verify", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", common::out(&v));
    let after = stored(&store);
    assert!(before.is_subset(&after), "records stored earlier are gone");
    assert_eq!(after.len() as u64, before.len() as u64 + written);
}

fn run(args: &[&str], store: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issue 15, defect 4: a sealed segment renamed to its temporary name and cut short used to be
/// "recovered" by `verify` itself (a well-formed `recover` entry, 0 problems, records gone).
/// Reading commands now leave it alone and verify calls it truncated; `flowkeep recover` keeps
/// what is left and says it had been sealed; verify says so from then on.
#[test]
fn truncation_under_a_temporary_name_is_not_laundered_by_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("synthetic.pcap");
    write_pcap(&pcap, 300, 0);
    let store = dir.path().join("store");
    let out = Command::new(BIN)
        .args(replay_args(&pcap, &store))
        .output()
        .unwrap();
    assert!(out.status.success());
    let seg = Store::open(&store).unwrap().segments().unwrap()[0].clone();
    assert!(seg.blocks >= 2, "{seg:?}");
    let name = seg.path.file_name().unwrap().to_str().unwrap();
    let temp = seg.path.with_file_name(format!(".{}.tmp", name));
    let bytes = std::fs::read(&seg.path).unwrap();
    std::fs::write(&temp, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::remove_file(&seg.path).unwrap();
    let log = store.join("audit.log");
    let log_before = std::fs::read(&log).unwrap();

    for cmd in [
        &["verify"][..],
        &["query"],
        &["info"],
        &["stats", "--by", "src"],
    ] {
        let (status, stdout, stderr) = run(cmd, &store);
        assert_ne!(status, 101, "{cmd:?} panicked: {stderr}");
        assert!(temp.exists(), "{cmd:?} changed the temporary file");
        assert!(!seg.path.exists(), "{cmd:?} sealed it");
        if cmd == ["info"] {
            assert!(stdout.contains("open segments  1 ("), "{stdout}");
        }
        if cmd == ["verify"] {
            assert_eq!(status, 1, "{stdout}");
            assert!(stdout.contains(": truncated:"), "{stdout}");
        }
    }
    // Only the access entries that answering adds.
    let log_after = String::from_utf8(std::fs::read(&log).unwrap()).unwrap();
    let added = log_after
        .strip_prefix(std::str::from_utf8(&log_before).unwrap())
        .expect("the log was rewritten");
    assert!(
        added
            .lines()
            .all(|l| l.split('\t').nth(2) == Some("access")),
        "a reader wrote more than access entries:\n{added}"
    );

    let (status, _, stderr) = run(&["recover"], &store);
    assert_eq!(status, 1, "{stderr}");
    assert!(
        stderr.contains("PROBLEM: it had been sealed before"),
        "{stderr}"
    );
    assert!(seg.path.exists() && !temp.exists());
    let (status, stdout, _) = run(&["verify"], &store);
    assert_eq!(status, 1);
    assert!(stdout.contains("after it had been sealed"), "{stdout}");
}
