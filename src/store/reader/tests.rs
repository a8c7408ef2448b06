//! Tests of reading: time and address skipping, damage reported and stepped over.

use super::*;
use crate::record::FlowRecord;
use crate::store::fixtures::{read_all, rec, sorted, write, HOUR, T0};
use crate::store::segment::SegmentFile;
use crate::store::{StoreWriter, WriterConfig, MARKER_NAME};
use crate::testing::sample;
use proptest::prelude::*;
use std::net::IpAddr;
use std::ops::ControlFlow;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// A query for some addresses returns exactly the records that have one of them, and
    /// reads only the blocks that hold one (plus a few false positives).
    #[test]
    fn address_filter_never_misses(
        hosts in proptest::collection::vec(any::<u32>(), 1..400),
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 300..1500),
        query in proptest::collection::vec(any::<prop::sample::Index>(), 1..3),
        stranger in any::<[u8; 16]>(),
    ) {
        let d = tempfile::tempdir().unwrap();
        let recs: Vec<FlowRecord> = picks
            .iter()
            .enumerate()
            .map(|(i, p)| FlowRecord {
                src: IpAddr::V4(hosts[p.index(hosts.len())].into()),
                dst: IpAddr::V4(hosts[(p.index(hosts.len()) + 1) % hosts.len()].into()),
                ..rec(T0 + i as i64 * 1000, T0 + i as i64 * 1000 + 5, i as u64)
            })
            .collect();
        write(d.path(), &recs, |c| c.block_records = 50);
        let mut addrs: Vec<IpAddr> =
            query.iter().map(|q| IpAddr::V4(hosts[q.index(hosts.len())].into())).collect();
        addrs.push(IpAddr::V6(stranger.into()));
        let store = Store::open(d.path()).unwrap();
        let mut got = Vec::new();
        let s = store
            .scan_filtered(None, None, Some(&addrs), |_, r| {
                got.push(r.clone());
                ControlFlow::Continue(())
            })
            .unwrap();
        let want: Vec<FlowRecord> = recs
            .iter()
            .filter(|r| addrs.contains(&r.src) || addrs.contains(&r.dst))
            .cloned()
            .collect();
        prop_assert_eq!(sorted(got), sorted(want));
        let holding = recs
            .chunks(50)
            .filter(|c| c.iter().any(|r| addrs.contains(&r.src) || addrs.contains(&r.dst)))
            .count() as u64;
        let blocks = recs.len().div_ceil(50) as u64;
        prop_assert_eq!(s.blocks_read + s.blocks_skipped_by_address, blocks);
        prop_assert!(s.blocks_read >= holding);
        // ~1.3 % false positives per address per block (≤ 3 addresses here, so ≤ 4 %):
        // a margin of 25 % + 3 blocks keeps this test from ever flaking.
        let slack = (blocks - holding) / 4 + 3;
        prop_assert!(s.blocks_read <= holding + slack, "{} read, {} hold", s.blocks_read, holding);
    }
}

#[test]
fn address_query_skips_blocks_without_the_address() {
    let d = tempfile::tempdir().unwrap();
    let recs: Vec<FlowRecord> = (0..10_000).map(sample).collect();
    write(d.path(), &recs, |c| c.block_records = 1000);
    // sample(i) has src 10.0.(i>>8).(i&255): one address, in exactly one block.
    let target: IpAddr = "10.0.20.3".parse().unwrap();
    let store = Store::open(d.path()).unwrap();
    let mut got = Vec::new();
    let s = store
        .scan_filtered(None, None, Some(&[target]), |_, r| {
            got.push(r.clone());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(got, [sample(20 * 256 + 3)]);
    assert!(s.blocks_read <= 2, "{s:?}");
    assert_eq!(s.blocks_read + s.blocks_skipped_by_address, 10);
    // An empty address list matches nothing; None matches everything.
    let s = store
        .scan_filtered(None, None, Some(&[]), |_, _| ControlFlow::Continue(()))
        .unwrap();
    assert_eq!((s.records, s.blocks_read), (0, 0));
    let s = store
        .scan_filtered(None, None, None, |_, _| ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(s.records, 10_000);
}

#[test]
fn segments_of_format_1_are_refused_as_old() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), &[sample(1)], |_| {});
    let path = Store::open(d.path()).unwrap().segments().unwrap()[0]
        .path
        .clone();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8] = 1;
    let crc = crc32c::crc32c(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let info = &Store::open(d.path()).unwrap().segments().unwrap()[0];
    let e = info.error.as_deref().unwrap();
    assert!(
        e.contains("older development build") && e.contains("re-create the store"),
        "{e}"
    );
}

#[test]
fn time_range_edges() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (T0 + 100, T0 + 200);
    // One record per partition so segment skipping shows in the counts.
    write(
        d.path(),
        &[rec(a, b, 1), rec(T0 + 5 * HOUR, T0 + 5 * HOUR + 1, 2)],
        |_| {},
    );
    let count = |since, until| read_all(d.path(), since, until).0.len();
    assert_eq!(count(Some(b), None), 2, "since == last is inside");
    assert_eq!(
        count(Some(b + 1), Some(T0 + HOUR)),
        0,
        "since after last is outside"
    );
    assert_eq!(count(None, Some(a)), 0, "until == first is outside");
    assert_eq!(
        count(None, Some(a + 1)),
        1,
        "until just after first is inside"
    );
    assert_eq!(
        count(Some(a + 50), Some(a + 60)),
        1,
        "window inside the record overlaps"
    );
    assert_eq!(count(Some(T0 + 5 * HOUR + 1), Some(T0 + 5 * HOUR + 2)), 1);
    let (_, s) = read_all(d.path(), Some(b + 1), Some(T0 + HOUR));
    assert_eq!((s.segments_read, s.segments_skipped), (0, 2));
    let (_, s) = read_all(d.path(), None, Some(T0 + HOUR));
    assert_eq!((s.segments_read, s.segments_skipped, s.records), (1, 1, 1));
}

#[test]
fn blocks_are_skipped_by_time() {
    let d = tempfile::tempdir().unwrap();
    let recs: Vec<FlowRecord> = (0..100)
        .map(|i| rec(T0 + i * 1000, T0 + i * 1000 + 10, i as u64))
        .collect();
    write(d.path(), &recs, |c| c.block_records = 10);
    let (got, s) = read_all(d.path(), Some(T0 + 25_000), Some(T0 + 45_000));
    assert_eq!(got, recs[25..45]);
    // Blocks 2..=4 hold records overlapping [25 000, 45 000); the other seven are skipped.
    assert_eq!((s.blocks_read, s.blocks_skipped), (3, 7));
}

#[test]
fn flipped_byte_in_block_is_reported_and_other_blocks_read() {
    let d = tempfile::tempdir().unwrap();
    let recs: Vec<FlowRecord> = (0..30).map(sample).collect();
    write(d.path(), &recs, |c| c.block_records = 10);
    let seg =
        SegmentFile::open(&Store::open(d.path()).unwrap().segments().unwrap()[0].path).unwrap();
    let victim = seg.entries[1];
    let path = seg.path.clone();
    drop(seg);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = victim.offset as usize + 30;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let (got, s) = read_all(d.path(), None, None);
    assert_eq!(s.blocks_read, 2);
    assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
    let p = s.problems[0].to_string();
    assert!(p.contains(&path.display().to_string()), "{p}");
    assert!(p.contains("checksum"), "{p}");
    assert!(p.contains(&format!("byte {}", victim.offset + 16)), "{p}");
    assert_eq!(s.problems[0].path(), path);
    assert_eq!(s.problems[0].offset(), Some(victim.offset + 16));
    assert_eq!(got, [&recs[..10], &recs[20..]].concat());
}

#[test]
fn truncated_or_damaged_segments_do_not_panic() {
    let d = tempfile::tempdir().unwrap();
    let recs: Vec<FlowRecord> = (0..50).map(sample).collect();
    write(d.path(), &recs, |c| c.block_records = 10);
    let path = Store::open(d.path()).unwrap().segments().unwrap()[0]
        .path
        .clone();
    let good = std::fs::read(&path).unwrap();
    let mut cuts: Vec<usize> = (0..good.len()).step_by(37).collect();
    cuts.extend([
        good.len() - 1,
        good.len() - 24,
        good.len() - 25,
        0,
        1,
        63,
        64,
    ]);
    for cut in cuts {
        std::fs::write(&path, &good[..cut]).unwrap();
        let store = Store::open(d.path()).unwrap();
        let infos = store.segments().unwrap();
        assert!(infos[0].error.is_some(), "cut at {cut} went unnoticed");
        let (got, s) = read_all(d.path(), None, None);
        assert!(got.is_empty() && s.problems.len() == 1, "cut {cut}");
    }
    // Every single-byte flip in the header, footer and trailer is caught (checksums, magic),
    // never a panic.
    let footer_len = u32::from_le_bytes(good[good.len() - 16..good.len() - 12].try_into().unwrap());
    let footer_start = good.len() - 24 - footer_len as usize;
    for at in (0..64).chain(footer_start..good.len()) {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();
        let infos = Store::open(d.path()).unwrap().segments().unwrap();
        assert!(infos[0].error.is_some(), "flip at {at} went unnoticed");
    }
    std::fs::write(&path, &good).unwrap();
    assert_eq!(read_all(d.path(), None, None).0, recs);
}

#[test]
fn open_refuses_non_store_dirs() {
    let d = tempfile::tempdir().unwrap();
    let e = Store::open(d.path()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "not a flowkeep store: {} (no flowkeep-store marker file)",
            d.path().display()
        )
    );
    assert!(Store::open(d.path().join("missing")).is_err());
    // A fresh store is readable and empty.
    let s = d.path().join("s");
    StoreWriter::create(WriterConfig::new(&s))
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(s.join(MARKER_NAME)).unwrap(),
        "flowkeep store\nformat 5\n"
    );
    assert!(Store::open(&s).unwrap().segments().unwrap().is_empty());
}
