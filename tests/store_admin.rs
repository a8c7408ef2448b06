//! Retention, legal holds, audit log and verify: properties of the retention plan over a
//! synthetic store of 45+ days, and the `flowkeep` binary end to end on stores built by replaying
//! public captures (whose packet times are in the past: every command gets an explicit `--now`).

mod common;

use common::store::{
    audit_entries, hold_add, listing, rel, replayed, segments, small_store, store_of, t,
    verify_fails,
};
use common::{fixtures, ok, out, run, BIN};
use flowkeep::retention::{self, Policy, Reason};
use flowkeep::store::audit::{self, Action};
use flowkeep::store::holds::Hold;
use flowkeep::store::SegmentInfo;
use flowkeep::time::{Nanos, NANOS_PER_SEC};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

const DAY: Nanos = 86_400 * NANOS_PER_SEC;
const HOUR: Nanos = 3_600 * NANOS_PER_SEC;

// ---------------------------------------------------------------- plan properties

/// A real segment's info as the template, so that fields added to `SegmentInfo` need no change.
fn base() -> SegmentInfo {
    static BASE: std::sync::OnceLock<SegmentInfo> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let d = replayed(&["tcpdump__dns_tcp.pcap"]);
        segments(&store_of(&d))[0].clone()
    })
    .clone()
}

#[derive(Debug, Clone)]
struct Synthetic {
    width: Nanos,
    segments: Vec<SegmentInfo>,
    holds: Vec<Hold>,
    policy: Policy,
    now: Nanos,
}

/// 45 to 60 days of partitions (1 h, 6 h or 1 d wide), 0 to 3 segments each with records inside
/// their partition, a few unreadable ones, 0 to 4 holds anywhere in the span, a retention of
/// 1 to 40 days, sometimes a size limit, and "now" up to 2 days after the last partition.
fn synthetic() -> impl Strategy<Value = Synthetic> {
    let t0 = 1_767_225_600 * NANOS_PER_SEC; // 2026-01-01
    (
        prop_oneof![Just(HOUR), Just(6 * HOUR), Just(DAY)],
        45i64..=60,
        any::<u64>(),
        proptest::collection::vec((0i64..70 * DAY, 1i64..10 * DAY), 0..=4),
        1i64..=40,
        proptest::option::of(0u64..2_000_000),
        0i64..2 * DAY,
    )
        .prop_map(
            move |(width, days, seed, hold_ranges, ret_days, max_size, after)| {
                let mut rng = seed;
                let mut next = move |n: u64| {
                    // splitmix64: deterministic per case, so failures shrink and replay
                    rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = rng;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    (z ^ (z >> 31)) % n.max(1)
                };
                let parts = days * DAY / width;
                let mut segments = Vec::new();
                for p in 0..parts {
                    let start = t0 + p * width;
                    for k in 0..next(4) {
                        let a = next(width as u64) as i64;
                        let b = next(width as u64) as i64;
                        let mut s = SegmentInfo {
                            path: PathBuf::from(format!("/store/{p:05}/seg-{k}.fks")),
                            partition_start: start,
                            partition_end: start + width,
                            first: start + a.min(b),
                            last: start + a.max(b),
                            records: 1 + next(1000),
                            bytes: 100 + next(5000),
                            error: None,
                            ..base()
                        };
                        if next(50) == 0 {
                            s.error = Some("corrupt at byte 0: bad magic".into());
                            s.first = start;
                            s.last = start;
                        }
                        segments.push(s);
                    }
                }
                let holds = hold_ranges
                    .into_iter()
                    .enumerate()
                    .map(|(i, (from, len))| {
                        Hold::new(&format!("CASE-{i}"), t0 + from, t0 + from + len, t0)
                    })
                    .collect();
                let total: u64 = segments.iter().map(|s| s.bytes).sum();
                Synthetic {
                    width,
                    segments,
                    holds,
                    policy: Policy {
                        retention: Some(ret_days * DAY),
                        // Scaled so that the limit often bites.
                        max_size: max_size.map(|m| total * m / 2_000_000),
                    },
                    now: t0 + days * DAY + after,
                }
            },
        )
}

fn held(s: &SegmentInfo, holds: &[Hold]) -> bool {
    holds.iter().any(|h| h.overlaps(s.first, s.last))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn retention_plan_properties(c in synthetic()) {
        let plan = retention::plan(&c.segments, &c.holds, &c.policy, c.now);
        let gone: BTreeSet<&PathBuf> = plan.delete.iter().map(|d| &d.segment.path).collect();
        prop_assert_eq!(gone.len(), plan.delete.len(), "a segment planned twice");
        let left: Vec<&SegmentInfo> =
            c.segments.iter().filter(|s| !gone.contains(&s.path)).collect();
        let retention = c.policy.retention.unwrap();
        let cutoff = c.now - retention;
        for s in &left {
            // No stored record older than retention + one partition, unless held or unreadable.
            if s.error.is_none() && !held(s, &c.holds) {
                prop_assert!(s.first >= cutoff - c.width, "kept too old: {s:?}");
                prop_assert!(s.last >= cutoff, "kept past retention: {s:?}");
            }
        }
        for d in &plan.delete {
            let s = &d.segment;
            // Never a held segment, never an unreadable one.
            prop_assert!(!held(s, &c.holds), "held segment deleted: {s:?}");
            prop_assert!(s.error.is_none());
            // Nothing holding a record younger than the retention goes for age.
            if let Reason::Age { .. } = d.reason {
                prop_assert!(s.last < cutoff, "young segment deleted for age: {s:?}");
            }
        }
        let total_left: u64 = left.iter().map(|s| s.bytes).sum();
        prop_assert_eq!(total_left, plan.bytes_after);
        if let Some(max) = c.policy.max_size {
            if total_left > max {
                // Only holds and unreadable segments may keep the store over its limit.
                prop_assert!(plan.over_size);
                prop_assert!(left.iter().all(|s| s.error.is_some() || held(s, &c.holds)));
            } else {
                prop_assert!(!plan.over_size);
            }
            // Size deletions take the oldest first: no unheld survivor is older than one of them.
            let newest_sized = plan
                .delete
                .iter()
                .filter(|d| matches!(d.reason, Reason::Size { .. }))
                .map(|d| d.segment.last)
                .max();
            if let Some(n) = newest_sized {
                for s in &left {
                    if s.error.is_none() && !held(s, &c.holds) {
                        prop_assert!(s.last >= n, "{s:?} kept, newer one deleted for size");
                    }
                }
            }
        } else {
            let all_age = plan.delete.iter().all(|d| matches!(d.reason, Reason::Age { .. }));
            prop_assert!(all_age);
        }
        // Everything kept for a hold is held (by the holds it names) and stays.
        for k in &plan.kept_for_hold {
            prop_assert!(!gone.contains(&k.segment.path));
            prop_assert!(!k.holds.is_empty());
            for name in &k.holds {
                let h = c.holds.iter().find(|h| &h.name == name).unwrap();
                prop_assert!(h.overlaps(k.segment.first, k.segment.last));
            }
        }
        // Every held segment that age alone would delete is reported as kept.
        for s in c.segments.iter().filter(|s| s.error.is_none() && s.last < cutoff && held(s, &c.holds)) {
            prop_assert!(plan.kept_for_hold.iter().any(|k| k.segment.path == s.path));
        }
    }
}

// ---------------------------------------------------------------- the binary, end to end

#[test]
fn expire_deletes_exactly_the_old_unheld_segments_and_audits_them() {
    let d = replayed(&["nDPI__sites.pcapng"]);
    let dir = store_of(&d);
    let s = dir.to_str().unwrap();
    let before = segments(&dir);
    assert!(before.len() >= 30, "{} segments", before.len());
    assert_eq!(audit_entries(&dir).len(), before.len());
    ok(&["verify", "--store", s]);

    // A hold over two minutes of 2022-03-05 keeps those segments although they are old.
    let (hf, hu) = ("2022-03-05T12:18:30Z", "2022-03-05T12:20:00Z");
    ok(&hold_add(
        s,
        "CASE-7",
        hf,
        hu,
        &["--note", "court order 7", "--now", "2024-07-01T00:00:00Z"],
    ));
    let now = "2024-08-01T00:00:00Z";
    let cutoff = t(now) - 365 * DAY;
    let is_held = |x: &SegmentInfo| x.first < t(hu) && x.last >= t(hf);
    let expect_gone: BTreeSet<String> = before
        .iter()
        .filter(|x| x.last < cutoff && !is_held(x))
        .map(|x| rel(&dir, x))
        .collect();
    let expect_held: Vec<String> = before
        .iter()
        .filter(|x| x.last < cutoff && is_held(x))
        .map(|x| rel(&dir, x))
        .collect();
    assert!(
        expect_gone.len() >= 20 && expect_held.len() == 2,
        "{expect_held:?}"
    );
    assert!(before.len() - expect_gone.len() >= 10);

    // Dry run: the plan is printed, nothing changes.
    let files_before = listing(&dir);
    let log_before = std::fs::read(dir.join("audit.log")).unwrap();
    let text = ok(&[
        "expire",
        "--store",
        s,
        "--retention",
        "365d",
        "--dry-run",
        "--now",
        now,
    ]);
    for g in &expect_gone {
        assert!(text.contains(&format!("would delete  {g}")), "{g}\n{text}");
    }
    for h in &expect_held {
        assert!(
            text.contains(&format!("kept  {h}  held by CASE-7")),
            "{h}\n{text}"
        );
    }
    assert_eq!(listing(&dir), files_before);
    assert_eq!(std::fs::read(dir.join("audit.log")).unwrap(), log_before);

    // For real.
    let text = ok(&["expire", "--store", s, "--retention", "365d", "--now", now]);
    assert!(text.contains("age>365d now=2024-08-01T00:00:00"), "{text}");
    let after: BTreeSet<String> = segments(&dir).iter().map(|x| rel(&dir, x)).collect();
    let expect_left: BTreeSet<String> = before
        .iter()
        .map(|x| rel(&dir, x))
        .filter(|p| !expect_gone.contains(p))
        .collect();
    assert_eq!(after, expect_left);
    // Emptied partition directories are gone too.
    for g in &expect_gone {
        let pdir = dir.join(g.split('/').next().unwrap());
        assert!(!pdir.exists(), "{}", pdir.display());
    }
    // One expire entry per deleted segment, with its reason, hash and the operator's time.
    let log = audit_entries(&dir);
    let expired: Vec<_> = log
        .iter()
        .filter(|e| e.record.action == Action::Expire)
        .collect();
    let expired_paths: BTreeSet<String> = expired
        .iter()
        .map(|e| e.record.segment.as_ref().unwrap().path.clone())
        .collect();
    assert_eq!(expired_paths, expect_gone);
    for e in &expired {
        assert_eq!(e.record.time, t(now));
        assert!(e
            .record
            .reason
            .starts_with("age>365d now=2024-08-01T00:00:00"));
        let seal = log
            .iter()
            .find(|x| {
                x.record.action == Action::Seal
                    && x.record.segment.as_ref().unwrap().path
                        == e.record.segment.as_ref().unwrap().path
            })
            .unwrap();
        assert_eq!(
            seal.record.segment.as_ref().unwrap().sha256,
            e.record.segment.as_ref().unwrap().sha256
        );
    }
    assert!(log
        .iter()
        .any(|e| e.record.action == Action::HoldAdd && e.record.reason.contains("CASE-7")));
    // The store still verifies: every deletion is explained.
    let v = ok(&["verify", "--store", s]);
    assert!(v.contains("0 problem(s)"), "{v}");

    // Size: release the hold, then keep at most 3 segments' worth: the oldest go first.
    ok(&["hold", "release", "--store", s, "CASE-7", "--now", now]);
    let mut left = segments(&dir);
    left.sort_by_key(|x| x.last);
    let keep: u64 = left.iter().rev().take(3).map(|x| x.bytes).sum();
    let text = ok(&[
        "expire",
        "--store",
        s,
        "--max-size",
        &keep.to_string(),
        "--now",
        now,
    ]);
    let remaining: Vec<String> = segments(&dir).iter().map(|x| rel(&dir, x)).collect();
    let mut newest3: Vec<String> = left.iter().rev().take(3).map(|x| rel(&dir, x)).collect();
    newest3.sort();
    let mut remaining_sorted = remaining.clone();
    remaining_sorted.sort();
    assert_eq!(remaining_sorted, newest3, "{text}");
    assert!(text.contains(&format!("size>{keep} total=")), "{text}");
    ok(&["verify", "--store", s]);
}

#[test]
fn replay_with_retention_expires_relative_to_the_newest_packet() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("s");
    let s = dir.to_str().unwrap();
    let f = fixtures().join("nDPI__sites.pcapng");
    let text = ok(&[
        "replay",
        "-q",
        "--store",
        s,
        "--partition",
        "1m",
        "--retention",
        "2d",
        f.to_str().unwrap(),
    ]);
    assert!(
        text.contains("now = newest packet time 2024-08-01T19:21:50"),
        "{text}"
    );
    let left = segments(&dir);
    let newest = left.iter().map(|x| x.last).max().unwrap();
    assert!(left.len() >= 2, "{text}");
    assert!(left
        .iter()
        .all(|x| x.last >= newest - 2 * DAY - NANOS_PER_SEC));
    let log = audit_entries(&dir);
    assert!(
        log.iter()
            .filter(|e| e.record.action == Action::Expire)
            .count()
            >= 30
    );
    ok(&["verify", "--store", s]);
}

#[test]
fn hold_add_list_release() {
    let d = replayed(&["tcpdump__dns_tcp.pcap"]);
    let dir = store_of(&d);
    let s = dir.to_str().unwrap();
    let (jan, feb) = ("2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z");
    ok(&hold_add(
        s,
        "CASE-123",
        jan,
        feb,
        &[
            "--filter",
            "host 203.0.113.7",
            "--note",
            "preservation request 42",
            "--now",
            "2024-01-01T00:00:00Z",
        ],
    ));
    let o = run(&hold_add(s, "CASE-123", jan, feb, &[]));
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("already exists"), "{}", out(&o));
    let o = run(&hold_add(s, "BACKWARDS", feb, jan, &[]));
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    // A filter `query` would not understand is refused, pointing at the word.
    let o = run(&hold_add(
        s,
        "TYPO",
        jan,
        feb,
        &["--filter", "host 203.0.113.7 andd port 53"],
    ));
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("'andd'"), "{}", out(&o));
    let list = ok(&["hold", "list", "--store", s]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(lines[0].starts_with("NAME"));
    for want in [
        "CASE-123",
        "2020-01-01T00:00:00.000000000Z",
        "2020-02-01T00:00:00.000000000Z",
        "2024-01-01T00:00:00.000000000Z",
        "host 203.0.113.7",
        "preservation request 42",
    ] {
        assert!(lines[1].contains(want), "{want}: {list}");
    }
    let info = ok(&["info", "--store", s, "--now", "2024-01-01T00:00:00Z"]);
    assert!(
        info.contains("holds          1") && info.contains("CASE-123"),
        "{info}"
    );
    let o = run(&["hold", "release", "--store", s, "CASE-999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("no hold named 'CASE-999'"), "{}", out(&o));
    ok(&[
        "hold",
        "release",
        "--store",
        s,
        "CASE-123",
        "--now",
        "2024-02-01T00:00:00Z",
    ]);
    // A filtered hold stays listed, released, until expire has deleted its copies.
    let list = ok(&[
        "hold",
        "list",
        "--store",
        s,
        "--now",
        "2024-02-01T00:00:00Z",
    ]);
    assert!(list.lines().nth(1).unwrap().contains("released"), "{list}");
    ok(&[
        "expire",
        "--store",
        s,
        "--retention",
        "100000d",
        "--now",
        "2024-02-01T00:00:00Z",
    ]);
    assert_eq!(ok(&["hold", "list", "--store", s]).lines().count(), 1);
    let actions: Vec<Action> = audit_entries(&dir)
        .iter()
        .map(|e| e.record.action)
        .filter(|a| matches!(a, Action::HoldAdd | Action::HoldRelease))
        .collect();
    assert_eq!(actions, vec![Action::HoldAdd, Action::HoldRelease]);
    ok(&["verify", "--store", s]);
}

#[test]
fn verify_catches_a_flipped_byte() {
    let (_d, dir, segs) = small_store();
    let seg = &segs[1];
    let mut bytes = std::fs::read(&seg.path).unwrap();
    // Inside the first block's payload.
    bytes[64 + 20] ^= 0x01;
    std::fs::write(&seg.path, bytes).unwrap();
    let name = rel(&dir, seg);
    verify_fails(&dir, &[&name, "altered"]);
    // The block checksum catches it too, naming the file.
    verify_fails(&dir, &[seg.path.to_str().unwrap()]);
}

/// A damaged block is skipped and the rest answered, but the answer is marked incomplete: a
/// script passing it on must not mistake it for the whole truth.
#[test]
fn questions_over_a_damaged_block_exit_incomplete() {
    let (_d, dir, segs) = small_store();
    let store = dir.to_str().unwrap();
    let jsonl = |o: &Output| String::from_utf8_lossy(&o.stdout).lines().count();
    let whole = run(&["query", "--store", store, "--format", "jsonl"]);
    assert_eq!(whole.status.code(), Some(0), "{}", out(&whole));
    let seg = &segs[1];
    let mut bytes = std::fs::read(&seg.path).unwrap();
    bytes[64 + 20] ^= 0x01;
    std::fs::write(&seg.path, bytes).unwrap();
    let damaged = run(&["query", "--store", store, "--format", "jsonl"]);
    assert_eq!(damaged.status.code(), Some(3), "{}", out(&damaged));
    let err = String::from_utf8_lossy(&damaged.stderr);
    assert!(err.contains(seg.path.to_str().unwrap()), "{err}");
    assert!(err.contains("answer is incomplete"), "{err}");
    // Only that block's records are missing.
    let lost = jsonl(&whole) - jsonl(&damaged);
    assert!(
        lost > 0 && lost as u64 <= seg.records,
        "lost {lost} of {}",
        seg.records
    );
    let stats = run(&["stats", "--store", store, "--by", "proto"]);
    assert_eq!(stats.status.code(), Some(3), "{}", out(&stats));
}

#[test]
fn verify_catches_a_truncated_segment() {
    let (_d, dir, segs) = small_store();
    let seg = &segs[0];
    let bytes = std::fs::read(&seg.path).unwrap();
    std::fs::write(&seg.path, &bytes[..bytes.len() - 10]).unwrap();
    verify_fails(&dir, &[&rel(&dir, seg), "truncated"]);
}

#[test]
fn verify_catches_a_deleted_segment() {
    let (_d, dir, segs) = small_store();
    let seg = segs.last().unwrap();
    std::fs::remove_file(&seg.path).unwrap();
    verify_fails(&dir, &[&rel(&dir, seg), "missing"]);
}

#[test]
fn verify_catches_an_unexplained_segment() {
    let (_d, dir, segs) = small_store();
    let seg = &segs[0];
    let copy = seg.path.with_file_name("seg-00000000-00000007.fks");
    std::fs::copy(&seg.path, &copy).unwrap();
    let rel_copy = audit::relative(&dir, &copy);
    verify_fails(&dir, &[&rel_copy, "unexplained"]);
}

#[test]
fn verify_catches_an_edited_audit_line() {
    let (_d, dir, _segs) = small_store();
    let path = dir.join("audit.log");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // Claim one record more in the second entry.
    let mut f: Vec<String> = lines[1].split('\t').map(String::from).collect();
    let n: u64 = f[8].parse().unwrap();
    f[8] = (n + 1).to_string();
    lines[1] = f.join("\t");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    verify_fails(&dir, &["audit.log line 2", "hash does not match"]);
    verify_fails(&dir, &["audit.log line 3", "chain broken"]);
}

#[test]
fn info_summarises_the_store() {
    let (_d, dir, segs) = small_store();
    let s = dir.to_str().unwrap();
    let text = ok(&[
        "info",
        "--store",
        s,
        "--now",
        "2030-01-01T00:00:00Z",
        "--segments",
    ]);
    let records: u64 = segs.iter().map(|x| x.records).sum();
    let bytes: u64 = segs.iter().map(|x| x.bytes).sum();
    let first = segs.iter().map(|x| x.first).min().unwrap();
    assert!(
        text.contains(&format!("segments       {}\n", segs.len())),
        "{text}"
    );
    assert!(
        text.contains(&format!("records        {records}\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("bytes          {bytes} (")),
        "{text}"
    );
    assert!(text.contains(&format!(
        "first record   {}",
        flowkeep::time::format_rfc3339(first)
    )));
    assert!(text.contains("oldest age     "));
    for x in &segs {
        assert!(text.contains(&rel(&dir, x)), "{text}");
    }
    assert!(text.contains("PACKETS") && text.contains("MALFORMED"));
    // nDPI__stun.pcap: 201 frames (MANIFEST), counted once each across the segments.
    assert!(text.contains("captured       201 frames, "), "{text}");
}

#[test]
fn concurrent_processes_keep_every_hold_and_an_unbroken_chain() {
    // Several `hold add` processes at once, each a read-modify-write of holds.json and an
    // append to audit.log, beside an expire: no hold may be lost, the chain must stay whole.
    let (_d, dir, _segs) = small_store();
    let s = dir.to_str().unwrap().to_string();
    let children: Vec<_> = (0..12)
        .map(|i| {
            let name = format!("CASE-{i}");
            let mut c = Command::new(BIN);
            if i == 6 {
                c.args(["expire", "--store", &s, "--retention", "3650d"]);
                c.args(["--now", "2026-01-01T00:00:00Z"]);
            } else {
                c.args(hold_add(
                    &s,
                    &name,
                    "2020-01-01T00:00:00Z",
                    "2021-01-01T00:00:00Z",
                    &[],
                ));
            }
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let list = ok(&["hold", "list", "--store", &s]);
    for i in (0..12).filter(|&i| i != 6) {
        assert!(
            list.contains(&format!("CASE-{i} ")),
            "CASE-{i} lost:\n{list}"
        );
    }
    let v = run(&["verify", "--store", &s]);
    assert_eq!(v.status.code(), Some(0), "{}", out(&v));
}
