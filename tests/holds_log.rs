//! Issue 15, defect 5: the holds file is checked against the audit log. A hold narrowed,
//! removed or added by hand in `holds.json` is a verify problem, and expire refuses to delete
//! anything while the two disagree; with the file restored, both go on as before.

mod common;

use common::{ok, out, run};
use flowkeep::record::{EndReason, FlowRecord};
use flowkeep::store::{Store, StoreWriter, WriterConfig};
use flowkeep::time::{format_rfc3339, parse_time, Nanos, NANOS_PER_SEC};
use std::path::Path;

const DAY: Nanos = 86_400 * NANOS_PER_SEC;

fn t0() -> Nanos {
    parse_time("2026-01-01T00:00:00Z").unwrap()
}

/// One record an hour for ten days, in daily partitions: ten segments.
fn ten_days(dir: &Path) {
    let mut cfg = WriterConfig::new(dir);
    cfg.partition = DAY;
    let mut w = StoreWriter::create(cfg).unwrap();
    for h in 0..240i64 {
        let first = t0() + h * 3_600 * NANOS_PER_SEC;
        w.append(&FlowRecord {
            first,
            last: first + NANOS_PER_SEC,
            proto: 17,
            src: "198.51.100.7".parse().unwrap(),
            sport: 5_000 + h as u16,
            dst: "192.0.2.53".parse().unwrap(),
            dport: 53,
            vlan: 0,
            inner_vlan: 0,
            interface: 0,
            src_mac: None,
            dst_mac: None,
            packets: 1,
            bytes: 80,
            rev_packets: 1,
            rev_bytes: 120,
            tcp_flags: 0,
            rev_tcp_flags: 0,
            end: EndReason::Idle,
        })
        .unwrap();
    }
    w.finish().unwrap();
}

fn segments(dir: &Path) -> usize {
    Store::open(dir).unwrap().segments().unwrap().len()
}

/// verify's exit status and output.
fn verify(dir: &Path) -> (Option<i32>, String) {
    let o = run(&["verify", "--store", dir.to_str().unwrap()]);
    (o.status.code(), out(&o))
}

fn expire(dir: &Path) -> (Option<i32>, String) {
    let o = run(&[
        "expire",
        "--store",
        dir.to_str().unwrap(),
        "--retention",
        "1d",
        "--now",
        &format_rfc3339(t0() + 11 * DAY),
    ]);
    (o.status.code(), out(&o))
}

#[test]
fn a_holds_file_changed_by_hand_is_found_and_stops_expire() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("s");
    ten_days(&dir);
    let s = dir.to_str().unwrap();
    ok(&[
        "hold",
        "add",
        "--store",
        s,
        "--name",
        "CASE-1",
        "--from",
        &format_rfc3339(t0() + DAY),
        "--until",
        &format_rfc3339(t0() + 4 * DAY),
        "--now",
        &format_rfc3339(t0() + 10 * DAY),
    ]);
    assert_eq!(verify(&dir).0, Some(0), "{}", verify(&dir).1);
    let holds = dir.join("holds.json");
    let good = std::fs::read_to_string(&holds).unwrap();
    let json: serde_json::Value = serde_json::from_str(&good).unwrap();

    let mut narrowed = json.clone();
    narrowed["holds"][0]["until"] = format_rfc3339(t0() + 2 * DAY).into();
    let mut extra = json.clone();
    let mut second = json["holds"][0].clone();
    second["name"] = "CASE-2".into();
    extra["holds"].as_array_mut().unwrap().push(second);
    let mut removed = json.clone();
    removed["holds"] = serde_json::json!([]);
    for (what, edited, says) in [
        ("narrowed", &narrowed, "the audit log (line"),
        ("added", &extra, "hold 'CASE-2': no hold-add entry"),
        ("removed", &removed, "hold 'CASE-1' (added or renewed"),
    ] {
        std::fs::write(&holds, serde_json::to_string_pretty(edited).unwrap()).unwrap();
        let (status, text) = verify(&dir);
        assert_eq!(status, Some(1), "{what}: {text}");
        assert!(text.contains("PROBLEM holds.json: "), "{what}: {text}");
        assert!(text.contains(says), "{what}: {text}");
        let (status, text) = expire(&dir);
        assert_eq!(status, Some(1), "{what}: {text}");
        assert!(text.contains("not expiring anything"), "{what}: {text}");
        assert!(!text.contains("panicked"), "{what}: {text}");
        assert_eq!(segments(&dir), 10, "{what}: expire deleted something");
    }

    std::fs::write(&holds, &good).unwrap();
    assert_eq!(verify(&dir).0, Some(0));
    let (status, text) = expire(&dir);
    assert_eq!(status, Some(0), "{text}");
    // Days 1, 2 and 3 stand for the hold, day 10 for the retention (a record of day 3 ends
    // after midnight, so the day-4 partition's first record is inside the hold too).
    let left = Store::open(&dir).unwrap().segments().unwrap();
    assert!(
        left.iter()
            .all(|s| s.last >= t0() + DAY && (s.first < t0() + 4 * DAY || s.last >= t0() + 9 * DAY)),
        "{left:?}"
    );
    assert!(left.len() < 10 && left.len() >= 3, "{}", left.len());
    assert_eq!(verify(&dir).0, Some(0), "{}", verify(&dir).1);
}
