//! Recovery against temporary files cut at every offset, live and dead writers, and sealed
//! segments put back under their temporary names.

use super::*;
use crate::store::fixtures::read_all;
use crate::store::{FlushHook, FlushReport, Store, StoreWriter, WriterConfig};
use crate::testing::sample;
use std::sync::{Arc, Mutex};

fn collecting(cfg: &mut WriterConfig) -> Arc<Mutex<Vec<FlushReport>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    cfg.on_flush = Some(FlushHook(Arc::new(move |r| {
        s.lock().unwrap().push(r.clone())
    })));
    seen
}

fn temp_files_in(dir: &Path) -> Vec<PathBuf> {
    temp_files(dir).unwrap()
}

/// (offset, length) of each block in a temporary file image.
fn block_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut at = HEADER_LEN;
    let mut out = Vec::new();
    while let Ok(h) = BlockHeader::parse(&bytes[at..]) {
        if h.payload_len == 0 {
            break;
        }
        let len = BLOCK_HEADER_LEN + h.payload_len as usize;
        out.push((at, len));
        at += len;
    }
    out
}

#[test]
fn every_cut_inside_the_last_block_recovers_exactly_the_complete_blocks() {
    let d = tempfile::tempdir().unwrap();
    let mut cfg = WriterConfig::new(d.path());
    cfg.block_records = 10;
    let seen = collecting(&mut cfg);
    let recs: Vec<FlowRecord> = (0..40).map(sample).collect();
    let mut w = StoreWriter::create(cfg).unwrap();
    for r in &recs {
        w.append(r).unwrap();
    }
    w.abandon();
    let temp = seen.lock().unwrap()[0].path.clone();
    assert_eq!(seen.lock().unwrap().len(), 4);
    let sealed = sealed_name(&temp).unwrap();
    let image = std::fs::read(&temp).unwrap();
    let spans = block_spans(&image);
    assert_eq!(spans.len(), 4);
    let (last, last_len) = spans[3];
    let end = last + last_len;
    // Every offset inside the last block, as a truncated file; every third one also as a
    // file of its full preallocated length whose tail is zeros (a crash before the rest was
    // copied) and with the last block's header not yet written (payload-first order).
    for cut in last..=end {
        let complete = if cut == end { 4 } else { 3 };
        let mut variants = vec![image[..cut].to_vec()];
        if cut % 3 == 0 || cut == end {
            let mut v = image.clone();
            v[cut..].fill(0);
            variants.push(v.clone());
            if cut < end {
                v[last..last + BLOCK_HEADER_LEN].fill(0);
                variants.push(v);
            }
        }
        for (k, v) in variants.into_iter().enumerate() {
            let _ = std::fs::remove_file(&sealed);
            std::fs::write(&temp, &v).unwrap();
            let r = recover_temp(&temp, |_, _| Ok(())).unwrap();
            assert_eq!(
                (r.blocks, r.records),
                (complete, complete * 10),
                "cut {cut} variant {k}"
            );
            assert!(r.torn_bytes <= (cut - last) as u64, "cut {cut} variant {k}");
            if k == 0 && cut < end && image[cut - 1] != 0 {
                assert_eq!(r.torn_bytes, (cut - last) as u64, "cut {cut}");
            }
            assert_eq!(r.sealed.as_deref(), Some(sealed.as_path()));
            assert!(!temp.exists());
            let seg = SegmentFile::open(&sealed).unwrap();
            assert_eq!(seg.entries.len() as u64, complete);
            drop(seg);
            let (got, st) = read_all(d.path(), None, None);
            assert!(st.problems.is_empty(), "{:?}", st.problems);
            assert_eq!(got, recs[..complete as usize * 10], "cut {cut} variant {k}");
        }
    }
}

#[test]
fn live_writer_open_segment_is_read_not_touched() {
    let d = tempfile::tempdir().unwrap();
    let mut cfg = WriterConfig::new(d.path());
    cfg.block_records = 10;
    let recs: Vec<FlowRecord> = (0..25).map(sample).collect();
    let mut w = StoreWriter::create(cfg).unwrap();
    for r in &recs {
        w.append(r).unwrap();
    }
    let r = recover(d.path()).unwrap();
    assert!(r.live_writer);
    assert!(r.segments.is_empty());
    let (got, st) = read_all(d.path(), None, None);
    assert_eq!(got, recs[..20]);
    assert_eq!(st.unsealed.len(), 1);
    assert!(st.problems.is_empty());
    w.flush_open().unwrap();
    assert_eq!(read_all(d.path(), None, None).0, recs);
    // A partly copied next block (garbage after the last complete one) is ignored silently.
    let temp = st.unsealed[0].clone();
    let len = {
        let f = File::open(&temp).unwrap();
        let scan = read_open_segment(
            &temp,
            &f,
            &mut BlockDecoder::new().unwrap(),
            &mut Vec::new(),
            &mut Vec::new(),
            |_, _| ControlFlow::Continue(()),
        )
        .unwrap();
        assert_eq!(scan.entries.len(), 3);
        scan.end
    };
    std::fs::OpenOptions::new()
        .write(true)
        .open(&temp)
        .unwrap()
        .write_all_at(&[7u8; 40], len)
        .unwrap();
    let (got, st) = read_all(d.path(), None, None);
    assert_eq!(got, recs);
    assert!(st.problems.is_empty(), "{:?}", st.problems);
    assert!(temp.exists());
    let stats = w.finish().unwrap();
    assert_eq!((stats.records, stats.blocks, stats.segments), (25, 3, 1));
    let (got, st) = read_all(d.path(), None, None);
    assert_eq!(got, recs);
    assert!(st.unsealed.is_empty());
}

#[test]
fn dead_writer_segments_are_read_by_readers_and_recovered_by_recover_or_a_writer() {
    let d = tempfile::tempdir().unwrap();
    let mut cfg = WriterConfig::new(d.path());
    cfg.block_records = 10;
    let recs: Vec<FlowRecord> = (0..28).map(sample).collect();
    let mut w = StoreWriter::create(cfg.clone()).unwrap();
    for r in &recs[..25] {
        w.append(r).unwrap();
    }
    w.flush_open().unwrap();
    for r in &recs[25..] {
        w.append(r).unwrap();
    }
    w.abandon();
    assert_eq!(temp_files_in(d.path()).len(), 1);
    // Reading leaves it as it is: its complete blocks are read, the file stays, and
    // verify says it is open.
    let log_before = std::fs::read(d.path().join(super::super::audit::AUDIT_LOG_NAME)).ok();
    let (got, st) = read_all(d.path(), None, None);
    assert_eq!((got.as_slice(), st.unsealed.len()), (&recs[..25], 1));
    let v = Store::open(d.path()).unwrap().verify().unwrap();
    assert_eq!(v.problem_count(), 0, "{:?}", v.problem_lines());
    assert_eq!(
        (v.open.len(), v.open[0].blocks, v.open[0].records),
        (1, 3, 25)
    );
    assert_eq!(
        Store::open(d.path()).unwrap().open_segments().unwrap(),
        v.open
    );
    assert_eq!(temp_files_in(d.path()).len(), 1);
    assert_eq!(
        std::fs::read(d.path().join(super::super::audit::AUDIT_LOG_NAME)).ok(),
        log_before
    );
    let r = recover(d.path()).unwrap();
    assert!(!r.live_writer && r.problems.is_empty());
    assert_eq!(r.segments.len(), 1);
    assert_eq!((r.segments[0].blocks, r.segments[0].records), (3, 25));
    assert_eq!(r.segments[0].torn_bytes, 0);
    assert!(r.segments[0]
        .to_string()
        .contains("kept 3 blocks (25 records)"));
    assert!(temp_files_in(d.path()).is_empty());
    assert_eq!(read_all(d.path(), None, None).0, recs[..25]);

    // A writer of a new process recovers too (and reports it), before it writes.
    let mut w = StoreWriter::create(cfg.clone()).unwrap();
    w.append(&recs[25]).unwrap();
    w.flush_open().unwrap();
    w.abandon();
    let w = StoreWriter::create(cfg).unwrap();
    assert_eq!(w.recovery().segments.len(), 1);
    assert_eq!(w.recovery().segments[0].records, 1);
    w.finish().unwrap();
    assert_eq!(read_all(d.path(), None, None).0.len(), 26);
}

#[test]
fn sealed_but_not_renamed_and_empty_temp_files() {
    let d = tempfile::tempdir().unwrap();
    let mut cfg = WriterConfig::new(d.path());
    cfg.block_records = 10;
    let recs: Vec<FlowRecord> = (0..15).map(sample).collect();
    let mut w = StoreWriter::create(cfg).unwrap();
    for r in &recs {
        w.append(r).unwrap();
    }
    w.finish().unwrap();
    let seg = Store::open(d.path()).unwrap().segments().unwrap()[0]
        .path
        .clone();
    // Killed between the fsync of the sealed file and its rename.
    let temp = seg.with_file_name(".seg-00000000-00000000.fks.tmp");
    std::fs::rename(&seg, &temp).unwrap();
    // Killed right after creating a temporary file, and after writing only its zeros.
    let empty = seg.with_file_name(".seg-00000000-00000001.fks.tmp");
    std::fs::write(&empty, b"").unwrap();
    let zeros = seg.with_file_name(".seg-00000000-00000002.fks.tmp");
    std::fs::write(&zeros, vec![0u8; 4096]).unwrap();
    // Between its seal entry and its rename the file is what the entry says: no problem.
    let v = Store::open(d.path()).unwrap().verify().unwrap();
    assert_eq!(v.problem_count(), 0, "{:?}", v.problem_lines());
    let entries = crate::store::audit::read_lines(d.path()).unwrap().len();
    let r = recover(d.path()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.segments.len(), 3);
    // Its seal entry explains it: recovery adds none.
    assert_eq!(
        crate::store::audit::read_lines(d.path()).unwrap().len(),
        entries
    );
    assert!(r.segments[0].sealed_before.is_none());
    assert_eq!((r.segments[0].blocks, r.segments[0].records), (2, 15));
    assert_eq!(r.segments[0].sealed.as_deref(), Some(seg.as_path()));
    assert!(r.segments[1..]
        .iter()
        .all(|s| s.sealed.is_none() && s.blocks == 0));
    assert!(!empty.exists() && !zeros.exists());
    assert_eq!(read_all(d.path(), None, None).0, recs);
}

/// A sealed segment renamed back to its temporary name and cut short: verify says so and
/// changes nothing; recovery keeps what is left and says it had been sealed; verify says
/// so for ever after.
#[test]
fn a_sealed_segment_put_back_under_its_temporary_name_is_a_problem() {
    let d = tempfile::tempdir().unwrap();
    let mut cfg = WriterConfig::new(d.path());
    cfg.block_records = 10;
    let recs: Vec<FlowRecord> = (0..35).map(sample).collect();
    let mut w = StoreWriter::create(cfg).unwrap();
    for r in &recs {
        w.append(r).unwrap();
    }
    w.finish().unwrap();
    let seg = Store::open(d.path()).unwrap().segments().unwrap()[0]
        .path
        .clone();
    let third = SegmentFile::open(&seg).unwrap().entries[2].offset as usize;
    let temp = seg.with_file_name(".seg-00000000-00000000.fks.tmp");
    std::fs::rename(&seg, &temp).unwrap();
    let image = std::fs::read(&temp).unwrap();
    std::fs::write(&temp, &image[..third + 5]).unwrap();
    let log = d.path().join(crate::store::audit::AUDIT_LOG_NAME);
    let log_before = std::fs::read(&log).unwrap();
    let v = Store::open(d.path()).unwrap().verify().unwrap();
    assert!(
        v.problem_lines()
            .iter()
            .any(|l| l.contains(".seg-00000000-00000000.fks.tmp: truncated")),
        "{:?}",
        v.problem_lines()
    );
    assert!(temp.exists() && !seg.exists());
    assert_eq!(std::fs::read(&log).unwrap(), log_before);

    let r = recover(d.path()).unwrap();
    assert_eq!(r.segments.len(), 1);
    assert_eq!(r.segments[0].records, 20);
    assert_eq!(r.segments[0].sealed_before.map(|(_, n)| n), Some(35));
    assert!(r.segments[0].to_string().contains("PROBLEM"));
    let v = Store::open(d.path()).unwrap().verify().unwrap();
    let lines = v.problem_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("recovered") && lines[0].contains("after it had been sealed"),
        "{lines:?}"
    );
}
