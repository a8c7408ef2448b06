//! What a hostile local user, a careless admin and a bad clock tried (issue 15): durations
//! without units, world-readable files, packets from the future, garbage temporary files, a
//! log that cannot be appended to, files root creates, damaged headers, symbolic links, verify
//! beside running writers.

mod common;

use common::store::{
    audit_entries, listing, replayed, segments, small_store, store_of, t, verify_fails,
};
use common::{fixtures, ok, out, run, BIN};
use flowkeep::store::audit::Action;
use std::path::{Path, PathBuf};

#[test]
fn a_retention_needs_a_unit_and_is_not_zero() {
    let d = replayed(&["tcpdump__dns_tcp.pcap"]);
    let dir = store_of(&d);
    let before = listing(&dir);
    for (value, says) in [
        ("30", "a unit is required"),
        ("0s", "greater than zero"),
        ("0d", "greater than zero"),
    ] {
        let o = run(&[
            "expire",
            "--store",
            dir.to_str().unwrap(),
            "--retention",
            value,
        ]);
        assert_eq!(o.status.code(), Some(2), "{value}: {}", out(&o));
        assert!(out(&o).contains(says), "{value}: {}", out(&o));
    }
    assert_eq!(listing(&dir), before);
}

/// Every file and directory under `dir` with its mode bits, permission part only.
fn modes(dir: &Path) -> Vec<(PathBuf, u32, bool)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = vec![(dir.to_path_buf(), 0, true)];
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                todo.push(p.clone());
            }
            out.push((p, m.permissions().mode() & 0o7777, m.is_dir()));
        }
    }
    out[0].1 = std::fs::metadata(dir).unwrap().permissions().mode() & 0o7777;
    out
}

#[test]
fn store_files_are_private_to_the_owner_and_group_whatever_the_umask() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("s");
    let s = dir.to_str().unwrap();
    // umask 000: every bit a create asks for is granted, so only what flowkeep asks counts.
    let sh = |cmd: String| {
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("umask 000; {cmd}"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{cmd}: {}", out(&o));
    };
    let bin = BIN;
    let pcap = fixtures().join("nDPI__iphone.pcap");
    sh(format!(
        "{bin} replay -q --store {s} --partition 1m {}",
        pcap.display()
    ));
    sh(format!(
        "{bin} hold add --store {s} --name M --from 2020-01-01T00:00:00Z --until open \
         --filter 'host 192.168.2.17' --now 2026-01-01T00:00:00Z"
    ));
    sh(format!(
        "{bin} expire --store {s} --retention 1d --now 2026-01-02T00:00:00Z"
    ));
    sh(format!("{bin} query --store {s} --hold M >/dev/null"));
    let all = modes(&dir);
    assert!(all.iter().any(|(p, _, _)| p.ends_with("audit.log")));
    assert!(all
        .iter()
        .any(|(p, _, _)| p.to_string_lossy().contains("holds/M/")));
    for (p, mode, is_dir) in all {
        let allowed = if is_dir { 0o750 } else { 0o640 };
        assert_eq!(mode & !allowed, 0, "{}: {mode:o}", p.display());
    }
}

#[test]
fn a_packet_stamped_in_the_future_does_not_expire_the_history() {
    // The iphone capture (2020) with one more packet, a copy of its last, stamped 2106.
    let d = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixtures().join("nDPI__iphone.pcap")).unwrap();
    let le = bytes[0] == 0xd4;
    let mut at = 24;
    let mut last = 24;
    while at + 16 <= bytes.len() {
        let f = [bytes[at + 8], bytes[at + 9], bytes[at + 10], bytes[at + 11]];
        let incl = if le {
            u32::from_le_bytes(f)
        } else {
            u32::from_be_bytes(f)
        } as usize;
        last = at;
        at += 16 + incl;
    }
    let mut pkt = bytes[last..].to_vec();
    let future: u32 = 4_294_000_000; // 2106-01-26
    pkt[..4].copy_from_slice(&if le {
        future.to_le_bytes()
    } else {
        future.to_be_bytes()
    });
    bytes.extend_from_slice(&pkt);
    let pcap = d.path().join("future.pcap");
    std::fs::write(&pcap, &bytes).unwrap();
    let dir = d.path().join("s");
    let o = run(&[
        "replay",
        "-q",
        "--store",
        dir.to_str().unwrap(),
        "--retention",
        "30d",
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    // 30 days from 2106, or from the wall clock, would reach past the 2020 capture; from its
    // newest trusted packet they do not.
    let text = out(&o);
    assert!(
        text.contains(
            "warning: 1 packets stamped more than 300 s after the wall clock (newest 2106-"
        ),
        "{text}"
    );
    assert!(text.contains("future packets 1 "), "{text}");
    assert!(
        text.contains("expire (now = newest packet time 2020-"),
        "{text}"
    );
    assert!(
        text.contains("leaving out the 1 packets stamped after the wall clock"),
        "{text}"
    );
    let left = segments(&dir);
    assert!(
        left.iter().any(|s| s.first < t("2021-01-01T00:00:00Z")),
        "history expired"
    );
    assert!(!audit_entries(&dir)
        .iter()
        .any(|e| e.record.action == Action::Expire));
}

#[test]
fn verify_reports_a_temporary_segment_it_cannot_explain() {
    let (_d, dir, segs) = small_store();
    let garbage = segs[0]
        .path
        .with_file_name(".seg-00000009-00000000.fks.tmp");
    std::fs::write(
        &garbage,
        b"not a segment, not zeros either: garbage".repeat(4),
    )
    .unwrap();
    let s = dir.to_str().unwrap();
    let q = run(&["query", "--store", s]);
    assert_eq!(q.status.code(), Some(3), "{}", out(&q));
    let text = verify_fails(&dir, &["temporary segment"]);
    assert!(text.contains(".seg-00000009-00000000.fks.tmp"), "{text}");
}

#[test]
fn expire_keeps_a_segment_whose_deletion_it_cannot_log() {
    let (_d, dir, segs) = small_store();
    // A log an older flowkeep let a 70 kB note into: nothing can be appended after it.
    let log = dir.join("audit.log");
    let mut text = std::fs::read(&log).unwrap();
    text.extend(std::iter::repeat_n(b'n', 70_000));
    text.push(b'\n');
    std::fs::write(&log, &text).unwrap();
    let s = dir.to_str().unwrap();
    let o = run(&[
        "expire",
        "--store",
        s,
        "--retention",
        "1d",
        "--now",
        "2030-01-01T00:00:00Z",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("longer than"), "{}", out(&o));
    for seg in &segs {
        assert!(
            seg.path.exists(),
            "{} deleted without an entry",
            seg.path.display()
        );
    }
}

#[test]
fn files_root_creates_in_a_store_belong_to_the_store_owner() {
    use std::os::unix::fs::MetadataExt;
    if !common::is_root() {
        common::skip_or_fail("needs root, to create files for another user");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("s");
    std::fs::create_dir(&dir).unwrap();
    // nobody:nogroup, as a capture started with --user nobody would own its store.
    let (uid, gid) = (65_534, 65_534);
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    let s = dir.to_str().unwrap();
    let pcap = fixtures().join("nDPI__iphone.pcap");
    ok(&[
        "replay",
        "-q",
        "--store",
        s,
        "--partition",
        "1m",
        pcap.to_str().unwrap(),
    ]);
    ok(&[
        "hold",
        "add",
        "--store",
        s,
        "--name",
        "OWN",
        "--from",
        "2020-01-01T00:00:00Z",
        "--until",
        "open",
        "--filter",
        "host 192.168.2.17",
        "--now",
        "2026-01-01T00:00:00Z",
    ]);
    ok(&[
        "expire",
        "--store",
        s,
        "--retention",
        "1d",
        "--now",
        "2026-01-02T00:00:00Z",
    ]);
    let all = modes(&dir);
    assert!(all.len() > 8, "{all:?}");
    for (p, _, _) in all {
        let m = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (uid, gid),
            "{} is not the store owner's",
            p.display()
        );
    }
}

#[test]
fn a_segment_with_a_damaged_header_expires_by_its_seal_entry() {
    let (_d, dir, segs) = small_store();
    let s = dir.to_str().unwrap();
    // One flipped byte in the header's magic: the file no longer says its own span.
    let victim = &segs[0].path;
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[1] ^= 0xff;
    std::fs::write(victim, &bytes).unwrap();
    let o = run(&[
        "expire",
        "--store",
        s,
        "--retention",
        "1d",
        "--now",
        "2030-01-01T00:00:00Z",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        out(&o).contains("its age is taken from its seal entry"),
        "{}",
        out(&o)
    );
    assert!(
        !victim.exists(),
        "the damaged segment outlived its retention"
    );
    assert!(segments(&dir).is_empty());
    // A file no seal entry explains cannot be decided: kept, and the exit status says so.
    let pdir = dir.join("2013-01-01T00-00Z");
    std::fs::create_dir_all(&pdir).unwrap();
    let stray = pdir.join("seg-00000099-00000000.fks");
    std::fs::write(&stray, b"garbage, not a segment").unwrap();
    let o = run(&[
        "expire",
        "--store",
        s,
        "--retention",
        "1d",
        "--now",
        "2030-01-01T00:00:00Z",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("could not be decided"), "{}", out(&o));
    assert!(stray.exists());
}

#[test]
fn a_store_never_follows_a_symbolic_link() {
    use std::os::unix::fs::symlink;
    let (d, dir, segs) = small_store();
    let s = dir.to_str().unwrap();
    let pcap = fixtures().join("nDPI__iphone.pcap");
    // .lock → a file elsewhere: replay refuses, and the file is untouched.
    let victim = d.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::fs::remove_file(dir.join(".lock")).ok();
    symlink(&victim, dir.join(".lock")).unwrap();
    let o = run(&["replay", "-q", "--store", s, pcap.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0), "{}", out(&o));
    assert!(out(&o).contains("symbolic link"), "{}", out(&o));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    std::fs::remove_file(dir.join(".lock")).unwrap();
    // audit.log → elsewhere: a hold is refused and nothing is appended to the target.
    let log = dir.join("audit.log");
    std::fs::rename(&log, d.path().join("real.log")).unwrap();
    symlink(&victim, &log).unwrap();
    let o = run(&[
        "hold",
        "add",
        "--store",
        s,
        "--name",
        "L",
        "--from",
        "2020-01-01T00:00:00Z",
        "--until",
        "2020-01-02T00:00:00Z",
    ]);
    assert_ne!(o.status.code(), Some(0), "{}", out(&o));
    assert!(out(&o).contains("symbolic link"), "{}", out(&o));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    std::fs::remove_file(&log).unwrap();
    std::fs::rename(d.path().join("real.log"), &log).unwrap();
    // A partition directory that is a link to elsewhere: expire deletes nothing through it.
    let outside = d.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::copy(&segs[0].path, outside.join("seg-00000042-00000000.fks")).unwrap();
    symlink(&outside, dir.join("2001-01-01T00-00Z")).unwrap();
    ok(&[
        "expire",
        "--store",
        s,
        "--retention",
        "1d",
        "--now",
        "2030-01-01T00:00:00Z",
    ]);
    assert!(
        outside.join("seg-00000042-00000000.fks").exists(),
        "deleted outside the store"
    );
    verify_fails(&dir, &["2001-01-01T00-00Z: a symbolic link"]);
}

#[test]
fn verify_beside_a_running_replay_raises_no_false_alarm() {
    let d = tempfile::tempdir().unwrap();
    let pcap = fixtures().join("nDPI__sites.pcapng");
    let mut verified = 0;
    for round in 0..6 {
        let dir = d.path().join(format!("s{round}"));
        let s = dir.to_str().unwrap().to_string();
        // A store to verify from the start, then a replay sealing a segment a minute.
        ok(&[
            "replay",
            "-q",
            "--store",
            &s,
            fixtures().join("nDPI__iphone.pcap").to_str().unwrap(),
        ]);
        let mut replay = std::process::Command::new(BIN)
            .args([
                "replay",
                "-q",
                "--partition",
                "1m",
                "--workers",
                "2",
                "--store",
                &s,
            ])
            .arg(&pcap)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        loop {
            let done = replay.try_wait().unwrap().is_some();
            let o = run(&["verify", "--store", &s]);
            assert_eq!(o.status.code(), Some(0), "round {round}: {}", out(&o));
            verified += 1;
            if done {
                break;
            }
        }
        assert!(replay.wait().unwrap().success());
    }
    assert!(verified >= 12);
}
