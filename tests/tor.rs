//! Tor exit lists end to end, with a hand-made list (fixtures/tor/): `tor import` keeps the
//! document byte for byte with an `import` entry; `query --tor` and `who-had` mark exactly the
//! addresses the list shows as exits during each record (worked out here from the list's text
//! by this test's own reading of the format); verify catches a list altered or removed; the
//! store's retention deletes a list with an `expire` entry unless a hold covers it; a file that
//! is not an exit list is refused with its line and leaves nothing behind.

mod common;

use common::{epoch_secs, ok, out, pcap, query_jsonl, run, text};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

const DAY: u32 = 1_795_996_800; // 2026-11-30T00:00:00Z

fn list_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tor/exit-addresses-2026-11-30.txt")
}

/// One UDP datagram as a raw IP packet.
fn udp(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let udp = [0x30, 0x39, 0x01, 0xbb, 0, 8, 0, 0];
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = vec![0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0];
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&udp);
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&udp);
            p
        }
        _ => unreachable!(),
    }
}

/// A store with one record per (seconds after DAY, src, dst), each far from the others.
fn store_with(d: &Path, flows: &[(u32, &str, &str)]) -> PathBuf {
    let mut f = pcap::header(pcap::LINKTYPE_RAW);
    let mut flows = flows.to_vec();
    flows.sort();
    for (at, src, dst) in &flows {
        let p = udp(src.parse().unwrap(), dst.parse().unwrap());
        pcap::push_packet(&mut f, DAY + at, 0, p.len() as u32, &p);
    }
    let capture = d.join("flows.pcap");
    std::fs::write(&capture, f).unwrap();
    let store = d.join("store");
    let o = common::replay(&capture, &store, &[]);
    assert!(o.status.success(), "{}", out(&o));
    store
}

/// A store of the first flow with the fixture list imported, and the list's path in it.
fn store_with_list(d: &Path) -> (PathBuf, PathBuf) {
    let store = store_with(d, &FLOWS[..1]);
    let s = store.to_str().unwrap();
    ok(&["tor", "import", list_file().to_str().unwrap(), "--store", s]);
    let list = std::fs::read_dir(store.join("tor"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    (store, list)
}

/// `expire --retention 2d` of the store `s` at `now`.
fn expire_2d(s: &str, now: &str) -> std::process::Output {
    run(&["expire", "--store", s, "--retention", "2d", "--now", now])
}

const FLOWS: &[(u32, &str, &str)] = &[
    (8 * 3600, "10.0.0.5", "198.51.100.7"), // inside relay A's span
    (12 * 3600, "10.0.0.5", "198.51.100.7"), // after it
    (8 * 3600 + 60, "10.0.0.5", "198.51.100.9"), // never listed
    (6 * 3600, "203.0.113.50", "10.0.0.6"), // relay C, as the source
    (9 * 3600, "2001:db8::1", "2001:db8::7"), // relay B, IPv6
    (1800, "2001:db8::1", "2001:db8::7"),   // before B was published
];

/// This test's reading of the list: per address, the relay and the span from the earliest to
/// the latest of Published, LastStatus and the address's own test time.
fn spans(list: &str) -> Vec<(IpAddr, String, i64, i64)> {
    let secs = |date: &str, time: &str| epoch_secs(&format!("{date}T{time}Z"));
    let (mut fp, mut times) = (String::new(), Vec::new());
    let mut out = Vec::new();
    for line in list.lines() {
        let w: Vec<&str> = line.split(' ').collect();
        match w[0] {
            "ExitNode" => (fp, times) = (w[1].to_string(), Vec::new()),
            "Published" | "LastStatus" => times.push(secs(w[1], w[2])),
            "ExitAddress" => {
                let mut all = times.clone();
                all.push(secs(w[2], w[3]));
                let (from, until) = (*all.iter().min().unwrap(), *all.iter().max().unwrap());
                out.push((w[1].parse().unwrap(), fp.clone(), from, until));
            }
            _ => {}
        }
    }
    out
}

fn expected_mark(
    spans: &[(IpAddr, String, i64, i64)],
    addr: &str,
    first: i64,
    last: i64,
) -> Option<String> {
    let addr: IpAddr = addr.parse().unwrap();
    spans
        .iter()
        .filter(|(a, _, from, until)| *a == addr && *from <= last && *until >= first)
        .min_by_key(|(_, fp, from, _)| (*from, fp.clone()))
        .map(|(_, fp, _, _)| fp.clone())
}

#[test]
fn import_keeps_the_list_and_query_marks_exactly_the_exits() {
    let d = tempfile::tempdir().unwrap();
    let store = store_with(d.path(), FLOWS);
    let s = store.to_str().unwrap();
    let list = list_file();
    let imported = ok(&["tor", "import", list.to_str().unwrap(), "--store", s]);
    assert!(
        imported.starts_with("imported  tor/exit-list-"),
        "{imported}"
    );
    assert!(
        imported.contains("relays 3  exit addresses 4"),
        "{imported}"
    );
    let again = ok(&["tor", "import", list.to_str().unwrap(), "--store", s]);
    assert!(again.starts_with("already imported"), "{again}");

    // The document itself, private to the store's owner, with one import entry.
    let kept: Vec<PathBuf> = std::fs::read_dir(store.join("tor"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        std::fs::read(&kept[0]).unwrap(),
        std::fs::read(&list).unwrap()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&kept[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & !0o640, 0, "{mode:o}");
    let entries = ok(&[
        "audit", "--store", s, "--kind", "import", "--format", "jsonl",
    ]);
    assert_eq!(
        entries.lines().filter(|l| l.starts_with('{')).count(),
        1,
        "{entries}"
    );

    let spans = spans(&std::fs::read_to_string(&list).unwrap());
    let recs = query_jsonl(&store, &["--tor"]);
    assert_eq!(recs.len(), FLOWS.len());
    let mut marked = 0;
    for r in &recs {
        let (first, last) = (
            epoch_secs(r["first"].as_str().unwrap()),
            epoch_secs(r["last"].as_str().unwrap()),
        );
        for side in ["src", "dst"] {
            let want = expected_mark(&spans, r[side].as_str().unwrap(), first, last);
            let got = r[format!("{side}_tor_exit")].as_str().map(str::to_string);
            assert_eq!(got, want, "{side} of {r}");
            marked += usize::from(want.is_some());
        }
    }
    assert_eq!(
        marked, 3,
        "relay A inside its span, C as a source, B over IPv6"
    );
    assert_eq!(
        query_jsonl(&store, &[]).len(),
        FLOWS.len(),
        "without --tor, no new fields"
    );
    assert!(query_jsonl(&store, &[])[0].get("dst_tor_exit").is_none());

    // who-had: the same mark for an address at a moment.
    let who_had = |at: &str, format: &str| {
        run(&[
            "who-had",
            "--store",
            s,
            "198.51.100.7",
            "--at",
            at,
            "--format",
            format,
        ])
    };
    let who = |at: &str| -> serde_json::Value {
        serde_json::from_str(text(&who_had(at, "jsonl").stdout).trim()).unwrap()
    };
    let inside = who("2026-11-30T08:00:00Z");
    assert_eq!(
        inside["tor_exit"]["fingerprint"],
        "0011BD2485AD45D984EC4159C88FC066E5E3300E"
    );
    assert_eq!(
        inside["tor_exit"]["until"],
        "2026-11-30T09:08:01.000000000Z"
    );
    assert!(who("2026-11-30T12:00:00Z")["tor_exit"].is_null());
    // The table says the same in one line, built from the same exit as the JSON.
    let table = |at: &str| text(&who_had(at, "table").stdout);
    assert!(table("2026-11-30T08:00:00Z").contains(
        "tor exit     relay 0011BD2485AD45D984EC4159C88FC066E5E3300E (listed \
         2026-11-29T17:40:28.000000000Z .. 2026-11-30T09:08:01.000000000Z)"
    ));
    assert!(!table("2026-11-30T12:00:00Z").contains("tor exit"));
    // No device is known for the address (no lease, and a raw capture has no MACs), but at
    // 08:00 it was a Tor exit: status 5, where 12:00 gets the 1 of "nothing known".
    let status = |at: &str| who_had(at, "jsonl").status.code();
    assert_eq!(status("2026-11-30T08:00:00Z"), Some(5));
    assert_eq!(status("2026-11-30T12:00:00Z"), Some(1));
}

#[test]
fn verify_checks_each_list_against_its_import_entry() {
    let d = tempfile::tempdir().unwrap();
    let store = store_with(d.path(), &FLOWS[..1]);
    let s = store.to_str().unwrap();
    ok(&["tor", "import", list_file().to_str().unwrap(), "--store", s]);
    let clean = ok(&["verify", "--store", s]);
    assert!(clean.contains("1 Tor exit list(s) checked"), "{clean}");
    assert!(clean.contains("; 0 problem(s)"), "{clean}");

    let kept = std::fs::read_dir(store.join("tor"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&kept).unwrap();
    let at = bytes.iter().position(|&b| b == b'7').unwrap();
    bytes[at] = b'8'; // 198.51.100.7 becomes .8: a different relay address
    std::fs::write(&kept, &bytes).unwrap();
    let o = run(&["verify", "--store", s]);
    assert_ne!(o.status.code(), Some(0));
    assert!(out(&o).contains("altered"), "{}", out(&o));

    std::fs::remove_file(&kept).unwrap();
    let o = run(&["verify", "--store", s]);
    assert_ne!(o.status.code(), Some(0));
    assert!(out(&o).contains("missing"), "{}", out(&o));
}

#[test]
fn retention_deletes_a_list_with_an_entry_unless_a_hold_covers_it() {
    let d = tempfile::tempdir().unwrap();
    let store = store_with(d.path(), &FLOWS[..1]);
    let s = store.to_str().unwrap();
    ok(&["tor", "import", list_file().to_str().unwrap(), "--store", s]);
    let expire = |now: &str| ok(&["expire", "--store", s, "--retention", "2d", "--now", now]);

    // Still within the retention: kept.
    let within = expire("2026-12-01T12:00:00Z");
    assert!(!within.contains("tor/"), "{within}");
    // A hold over the list's day keeps it past the retention.
    ok(&[
        "hold",
        "add",
        "--store",
        s,
        "--name",
        "CASE-1",
        "--from",
        "2026-11-30T00:00:00Z",
        "--until",
        "2026-11-30T12:00:00Z",
        "--now",
        "2026-12-01T12:00:00Z",
    ]);
    let held = expire("2026-12-05T00:00:00Z");
    assert!(
        held.contains("kept  tor/exit-list-") && held.contains("held by CASE-1"),
        "{held}"
    );
    ok(&[
        "hold",
        "release",
        "--store",
        s,
        "CASE-1",
        "--now",
        "2026-12-05T00:00:00Z",
    ]);
    // A filtered hold keeps the list in place as well: the held records' marks need it.
    ok(&[
        "hold",
        "add",
        "--store",
        s,
        "--name",
        "CASE-2",
        "--from",
        "2026-11-30T07:00:00Z",
        "--until",
        "2026-11-30T09:00:00Z",
        "--filter",
        "host 10.0.0.5",
        "--now",
        "2026-12-05T00:00:00Z",
    ]);
    let filtered = expire("2026-12-05T00:00:00Z");
    assert!(filtered.contains("held by CASE-2"), "{filtered}");
    ok(&[
        "hold",
        "release",
        "--store",
        s,
        "CASE-2",
        "--now",
        "2026-12-05T00:00:00Z",
    ]);
    let gone = expire("2026-12-05T00:00:01Z");
    assert!(gone.contains("deleted  tor/exit-list-"), "{gone}");
    assert!(gone.contains("age>2d"), "{gone}");
    assert_eq!(
        std::fs::read_dir(store.join("tor")).map_or(0, |d| d.count()),
        0
    );
    let entries = ok(&[
        "audit", "--store", s, "--kind", "expire", "--format", "jsonl",
    ]);
    assert!(entries.contains("tor/exit-list-"), "{entries}");
    let clean = ok(&["verify", "--store", s]);
    assert!(clean.contains("; 0 problem(s)"), "{clean}");
    // Nothing to mark any more.
    assert!(query_jsonl(&store, &["--tor"])
        .iter()
        .all(|r| r["dst_tor_exit"].is_null()));
}

#[test]
fn a_list_that_no_longer_parses_is_aged_by_its_import_entry() {
    let d = tempfile::tempdir().unwrap();
    let (store, list) = store_with_list(d.path());
    let s = store.to_str().unwrap();
    std::fs::write(&list, "not an exit list\n").unwrap();
    // The list's span (2026-11-29..30) is within 2 days: decided, and kept.
    let o = expire_2d(s, "2026-12-01T00:00:00Z");
    let printed = out(&o);
    assert_eq!(o.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains("note  tor/exit-list-")
            && printed.contains("its age is taken from its import entry"),
        "{printed}"
    );
    assert!(list.exists(), "{printed}");
    // Past it: deleted, with an expire entry, although the file says nothing of its span.
    let o = expire_2d(s, "2026-12-05T00:00:00Z");
    let printed = out(&o);
    assert_eq!(o.status.code(), Some(0), "{printed}");
    assert!(printed.contains("deleted  tor/exit-list-"), "{printed}");
    assert!(!list.exists(), "{printed}");
    let entries = ok(&[
        "audit", "--store", s, "--kind", "expire", "--format", "jsonl",
    ]);
    assert!(entries.contains("tor/exit-list-"), "{entries}");
}

#[test]
fn retention_keeps_a_list_no_entry_explains_and_says_why() {
    let d = tempfile::tempdir().unwrap();
    let (store, _) = store_with_list(d.path());
    let s = store.to_str().unwrap();
    // Put there by hand, named as an import names a list: no import entry, and nothing in
    // it says its span.
    let stray = store.join("tor/exit-list-2026-11-01T00-00Z-0123456789abcdef.txt");
    std::fs::write(&stray, "not an exit list\n").unwrap();
    let o = expire_2d(s, "2026-12-05T00:00:00Z");
    let printed = out(&o);
    assert_eq!(o.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("problem  tor/exit-list-2026-11-01T00-00Z")
            && printed.contains("unreadable and no import entry says the span it covers: kept"),
        "{printed}"
    );
    assert!(stray.exists());
    // The imported list beside it was decided as usual.
    assert!(printed.contains("deleted  tor/exit-list-"), "{printed}");
}

#[test]
fn a_file_that_is_not_an_exit_list_is_refused_and_leaves_nothing() {
    let d = tempfile::tempdir().unwrap();
    let store = store_with(d.path(), &FLOWS[..1]);
    let s = store.to_str().unwrap();
    let bad = d.path().join("bad.txt");
    let good = std::fs::read_to_string(list_file()).unwrap();
    std::fs::write(
        &bad,
        good.replace("ExitAddress 203.0.113.51", "ExitAddres 203.0.113.51"),
    )
    .unwrap();
    let o = run(&["tor", "import", bad.to_str().unwrap(), "--store", s]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(text(&o.stderr).contains("bad.txt: line 13:"), "{}", out(&o));
    assert!(
        !store.join("tor").exists() || std::fs::read_dir(store.join("tor")).unwrap().count() == 0
    );
    let entries = ok(&[
        "audit", "--store", s, "--kind", "import", "--format", "jsonl",
    ]);
    assert_eq!(entries.lines().filter(|l| l.starts_with('{')).count(), 0);
    // From standard input, as `curl ... | flowkeep tor import -`.
    let o = std::process::Command::new(common::BIN)
        .args(["tor", "import", "-", "--store", s])
        .stdin(std::fs::File::open(list_file()).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    assert!(text(&o.stdout).starts_with("imported"), "{}", out(&o));
}

#[test]
fn importing_into_an_older_store_first_says_format_5_in_its_marker() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    let old = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/stores/format4");
    common::copy_dir(&old, &store);
    let marker = || std::fs::read_to_string(store.join("flowkeep-store")).unwrap();
    assert_eq!(marker(), "flowkeep store\nformat 4\n");
    let s = store.to_str().unwrap();
    ok(&["tor", "import", list_file().to_str().unwrap(), "--store", s]);
    assert_eq!(marker(), "flowkeep store\nformat 5\n");
    let clean = ok(&["verify", "--store", s]);
    assert!(clean.contains("; 0 problem(s)"), "{clean}");
}
