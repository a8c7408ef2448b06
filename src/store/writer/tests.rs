//! Tests of writing: partition routing, segment names, sealing, refused configurations and
//! directories.

use super::*;
use crate::store::fixtures::{read_all, rec, sorted, write, HOUR, T0};
use crate::store::{Store, StoreError};
use crate::testing::{arb_record, sample};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn writer_scan_round_trip(recs in proptest::collection::vec(arb_record(), 0..60)) {
        let d = tempfile::tempdir().unwrap();
        // Whole-range timestamps land in partitions near the ends of time: the writer must
        // either store a record or refuse it, and whatever it stores must come back.
        let mut cfg = WriterConfig::new(d.path());
        cfg.block_records = 7;
        let mut w = StoreWriter::create(cfg).unwrap();
        let mut kept = Vec::new();
        for r in &recs {
            if w.append(r).is_ok() {
                kept.push(r.clone());
            }
        }
        let stats = w.finish().unwrap();
        prop_assert_eq!(stats.records, kept.len() as u64);
        let (got, scan) = read_all(d.path(), None, None);
        prop_assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        prop_assert_eq!(sorted(got), sorted(kept));
    }
}

#[test]
fn capture_stats_go_to_the_newest_open_segment_or_the_next_one() {
    use crate::store::CaptureStats;
    let d = tempfile::tempdir().unwrap();
    let mut w = StoreWriter::create(WriterConfig::new(d.path())).unwrap();
    let one = CaptureStats {
        frames: 10,
        kernel_drops: 2,
        ..CaptureStats::default()
    };
    // Nothing open: kept for the next segment.
    w.add_capture_stats(&one);
    w.append(&rec(T0 + 1, T0 + 2, 1)).unwrap();
    w.add_capture_stats(&CaptureStats {
        frames: 5,
        malformed: 1,
        flags: crate::store::segment::CAPTURE_MACS_NOT_STORED,
        ..CaptureStats::default()
    });
    w.append(&rec(T0 + HOUR + 1, T0 + HOUR + 2, 2)).unwrap();
    // Two partitions open: only the newest gets these, so sums stay exact.
    w.add_capture_stats(&CaptureStats {
        frames: u64::MAX - 15,
        records_not_stored: 3,
        ..CaptureStats::default()
    });
    w.finish().unwrap();
    let segs = Store::open(d.path()).unwrap().segments().unwrap();
    assert_eq!(
        segs[0].capture,
        CaptureStats {
            frames: 15,
            kernel_drops: 2,
            malformed: 1,
            flags: 1,
            ..CaptureStats::default()
        }
    );
    assert_eq!(
        segs[1].capture,
        CaptureStats {
            frames: u64::MAX - 15,
            records_not_stored: 3,
            ..CaptureStats::default()
        }
    );
}

#[test]
fn many_blocks_round_trip_in_order() {
    let d = tempfile::tempdir().unwrap();
    let recs: Vec<FlowRecord> = (0..10_000).map(sample).collect();
    let stats = write(d.path(), &recs, |c| c.block_records = 1000);
    assert_eq!(stats.records, 10_000);
    assert_eq!(stats.blocks, 10);
    assert_eq!(stats.segments, 1);
    let (got, scan) = read_all(d.path(), None, None);
    assert_eq!(got, recs);
    assert_eq!(scan.blocks_read, 10);
    assert!(scan.problems.is_empty() && scan.unsealed.is_empty());
    let seg = &Store::open(d.path()).unwrap().segments().unwrap()[0];
    assert_eq!(seg.bytes, std::fs::metadata(&seg.path).unwrap().len());
    assert_eq!(seg.bytes, stats.bytes);
    eprintln!(
        "synthetic: {} bytes for {} records = {:.1} bytes/record",
        seg.bytes,
        seg.records,
        seg.bytes as f64 / seg.records as f64
    );
}

#[test]
fn partition_routing_three_partitions() {
    let d = tempfile::tempdir().unwrap();
    // Out of order on purpose, and one record that outlives its partition: records go by
    // `first` and are never split.
    let recs = vec![
        rec(T0 + 2 * HOUR + 5, T0 + 2 * HOUR + 6, 1),
        rec(T0, T0 + 3 * HOUR, 2),
        rec(T0 + HOUR - 1, T0 + HOUR, 3),
        rec(T0 + HOUR, T0 + HOUR + 1, 4),
    ];
    let stats = write(d.path(), &recs, |_| {});
    assert_eq!(stats.segments, 3);
    let names: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names,
        [
            crate::store::lock::LOCK_NAME,
            "2026-01-01T00-00Z",
            "2026-01-01T01-00Z",
            "2026-01-01T02-00Z",
            crate::store::audit::AUDIT_LOG_NAME,
            MARKER_NAME,
            crate::store::evidence::STORE_ID_NAME,
        ]
    );
    for p in &names[1..4] {
        let files: Vec<_> = std::fs::read_dir(d.path().join(p)).unwrap().collect();
        assert_eq!(files.len(), 1, "{p}");
    }
    let segs = Store::open(d.path()).unwrap().segments().unwrap();
    let starts: Vec<_> = segs
        .iter()
        .map(|s| (s.partition_start, s.partition_end, s.records))
        .collect();
    assert_eq!(
        starts,
        [
            (T0, T0 + HOUR, 2),
            (T0 + HOUR, T0 + 2 * HOUR, 1),
            (T0 + 2 * HOUR, T0 + 3 * HOUR, 1)
        ]
    );
    assert_eq!((segs[0].first, segs[0].last), (T0, T0 + 3 * HOUR));
    assert!(segs.iter().all(|s| s.error.is_none() && s.blocks == 1));
}

#[test]
fn two_writers_same_partition_distinct_files() {
    let d = tempfile::tempdir().unwrap();
    let cfg = WriterConfig::new(d.path());
    // Same writer id, both open at once, then a later run: names must still not collide.
    let mut w1 = StoreWriter::create(cfg.clone()).unwrap();
    let mut w2 = StoreWriter::create(cfg.clone()).unwrap();
    w1.append(&rec(T0 + 1, T0 + 2, 1)).unwrap();
    w2.append(&rec(T0 + 3, T0 + 4, 2)).unwrap();
    w2.finish().unwrap();
    w1.finish().unwrap();
    write(d.path(), &[rec(T0 + 5, T0 + 6, 3)], |_| {});
    let mut other = cfg;
    other.writer_id = 7;
    write(d.path(), &[rec(T0 + 7, T0 + 8, 4)], |c| *c = other);
    let segs = Store::open(d.path()).unwrap().segments().unwrap();
    let mut names: Vec<_> = segs
        .iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "seg-00000000-00000000.fks",
            "seg-00000000-00000001.fks",
            "seg-00000000-00000002.fks",
            "seg-00000007-00000000.fks"
        ]
    );
    assert_eq!(read_all(d.path(), None, None).0.len(), 4);
}

#[test]
fn concurrent_writer_threads_never_collide() {
    let d = tempfile::tempdir().unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let cfg = WriterConfig::new(d.path());
            std::thread::spawn(move || {
                let mut w = StoreWriter::create(cfg).unwrap();
                for i in 0..50 {
                    w.append(&rec(T0 + i, T0 + i + 1, t * 100 + i as u64))
                        .unwrap();
                }
                w.finish().unwrap()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().segments, 1);
    }
    let segs = Store::open(d.path()).unwrap().segments().unwrap();
    assert_eq!(segs.len(), 4);
    assert_eq!(read_all(d.path(), None, None).0.len(), 200);
}

#[test]
fn seal_before_seals_only_finished_partitions() {
    let d = tempfile::tempdir().unwrap();
    let mut w = StoreWriter::create(WriterConfig::new(d.path())).unwrap();
    w.append(&rec(T0 + 10, T0 + 20, 1)).unwrap();
    w.append(&rec(T0 + HOUR + 10, T0 + HOUR + 20, 2)).unwrap();
    w.seal_before(T0 + HOUR - 1).unwrap();
    assert_eq!(w.stats().segments, 0);
    w.seal_before(T0 + HOUR).unwrap();
    assert_eq!(w.stats().segments, 1);
    let (got, s) = read_all(d.path(), None, None);
    assert_eq!(got.len(), 1);
    assert_eq!(s.unsealed.len(), 1);
    assert!(s.unsealed[0]
        .to_string_lossy()
        .ends_with(".seg-00000000-00000000.fks.tmp"));
    // A late record for the sealed partition goes to a new segment, not into the sealed one.
    w.append(&rec(T0 + 30, T0 + 40, 3)).unwrap();
    let stats = w.finish().unwrap();
    assert_eq!((stats.segments, stats.records), (3, 3));
    let (got, s) = read_all(d.path(), None, None);
    assert_eq!(got.len(), 3);
    assert!(s.unsealed.is_empty());
}

#[test]
fn large_segments_roll_over() {
    let d = tempfile::tempdir().unwrap();
    let recs: Vec<FlowRecord> = (0..3000).map(sample).collect();
    let stats = write(d.path(), &recs, |c| {
        c.block_records = 100;
        c.max_segment_bytes = 4096;
        c.zstd_level = 1;
    });
    assert!(stats.segments > 2, "{stats:?}");
    let (got, _) = read_all(d.path(), None, None);
    assert_eq!(sorted(got), sorted(recs));
}

#[test]
fn create_refuses_files_and_unwritable_paths() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let e = StoreWriter::create(WriterConfig::new(&file)).err().unwrap();
    assert!(e.to_string().contains(&file.display().to_string()), "{e}");
    let under = file.join("store");
    let e = StoreWriter::create(WriterConfig::new(&under))
        .err()
        .unwrap();
    assert!(e.to_string().contains(&under.display().to_string()), "{e}");
    // A populated directory without a marker is somebody else's: not written into.
    let e = StoreWriter::create(WriterConfig::new(d.path()))
        .err()
        .unwrap();
    assert!(e.to_string().contains("not a flowkeep store"), "{e}");
    assert!(!d.path().join(MARKER_NAME).exists());
}

#[test]
fn newer_store_format_is_refused_by_writer_and_reader() {
    let d = tempfile::tempdir().unwrap();
    let newer = FORMAT_VERSION + 1;
    std::fs::write(
        d.path().join(MARKER_NAME),
        format!("flowkeep store\nformat {newer}\n"),
    )
    .unwrap();
    let e = StoreWriter::create(WriterConfig::new(d.path()))
        .err()
        .unwrap();
    assert!(e.to_string().contains("upgrade flowkeep"), "{e}");
    let e = Store::open(d.path()).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::UnsupportedVersion {
                found,
                supported: FORMAT_VERSION,
                ..
            } if found == newer
        ),
        "{e}"
    );
}

#[test]
fn bad_config_is_refused() {
    let d = tempfile::tempdir().unwrap();
    for tweak in [
        (|c: &mut WriterConfig| c.partition = 90 * NANOS_PER_SEC) as fn(&mut WriterConfig),
        |c| c.partition = 0,
        |c| c.block_records = 0,
        |c| c.block_records = 1 << 20,
        |c| c.zstd_level = 99,
        |c| c.max_segment_bytes = 0,
    ] {
        let mut cfg = WriterConfig::new(d.path());
        tweak(&mut cfg);
        assert!(matches!(
            StoreWriter::create(cfg),
            Err(StoreError::Config(_))
        ));
    }
}
