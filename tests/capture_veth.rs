//! `flowkeep capture` on a virtual wire: a veth pair whose far end sits in its own network
//! namespace, real captures sent through it with tcpreplay, and the stored flows compared with
//! tshark's per-address-pair counts of the same captures (fixtures/pcaps/reference/*.l3.tsv).
//! Needs root (namespaces, veth, packet sockets), iproute2 and tcpreplay (scripts/deps.sh
//! installs both); skipped, saying why, otherwise, and a failure under CI.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

mod common;
#[path = "common/leases.rs"]
mod leases;
use common::{
    add_reference, can_run, fixtures, is_root, pair_totals, records, reference, PairTotals, BIN,
};
/// Only a guard against a hung capture: every wait below ends on an event, not on time.
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why these tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("needs root for network namespaces and veth (CI runs as root)".into());
    }
    for (tool, arg) in [("ip", "-V"), ("tcpreplay", "--version")] {
        let found = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Some(format!("needs `{tool}` (scripts/deps.sh installs it)"));
        }
    }
    None
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A namespace and a veth pair: `outside` stays here (flowkeep captures on it), `inside` is in
/// the namespace (tcpreplay sends on it). Removed on drop, even when the test fails.
struct Wire {
    ns: String,
    outside: String,
    inside: String,
}

impl Wire {
    fn new() -> Wire {
        static N: AtomicU32 = AtomicU32::new(0);
        // Interface names are at most 15 bytes; unique per process and per test.
        let tag = format!(
            "{}{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::SeqCst)
        );
        let wire = Wire {
            ns: format!("flowkeep-test-{tag}"),
            outside: format!("fkA{tag}"),
            inside: format!("fkB{tag}"),
        };
        sh(&["ip", "netns", "add", &wire.ns]);
        // Captures hold frames larger than 1500 bytes (offloaded segments): a large MTU lets
        // tcpreplay send every one of them.
        sh(&[
            "ip",
            "link",
            "add",
            &wire.outside,
            "mtu",
            "65535",
            "type",
            "veth",
            "peer",
            "name",
            &wire.inside,
            "mtu",
            "65535",
        ]);
        sh(&["ip", "link", "set", &wire.inside, "netns", &wire.ns]);
        // No IPv6 of their own (router solicitations, MLD): only replayed frames cross the wire.
        sh(&[
            "sysctl",
            "-q",
            "-w",
            &format!("net.ipv6.conf.{}.disable_ipv6=1", wire.outside),
        ]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &wire.ns,
            "sysctl",
            "-q",
            "-w",
            &format!("net.ipv6.conf.{}.disable_ipv6=1", wire.inside),
        ]);
        sh(&["ip", "link", "set", &wire.outside, "up"]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &wire.ns,
            "ip",
            "link",
            "set",
            &wire.inside,
            "up",
        ]);
        wire
    }

    /// Sends a capture through the wire as fast as it goes; returns the frames sent.
    fn replay(&self, file: &str) -> u64 {
        self.replay_looped(file, 1)
    }

    /// [`Wire::replay`], adding tshark's counts of the capture to `expected`.
    fn replay_expected(&self, file: &str, expected: &mut PairTotals) -> u64 {
        add_reference(expected, file);
        self.replay(file)
    }

    /// Sends a capture `loops` times over, back to back.
    fn replay_looped(&self, file: &str, loops: u32) -> u64 {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "tcpreplay", "--topspeed"])
            .arg(format!("--intf1={}", self.inside))
            .arg(format!("--loop={loops}"))
            .arg(fixtures().join(file))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tcpreplay: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let count = |label: &str| -> u64 {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(label))
                .and_then(|rest| rest.trim().parse().ok())
                .unwrap_or_else(|| panic!("no '{label}' in tcpreplay's output: {text}"))
        };
        assert_eq!(count("Failed packets:"), 0, "{text}");
        count("Successful packets:")
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        // Deleting one end deletes its peer; deleting the namespace would too.
        let _ = Command::new("ip")
            .args(["link", "del", &self.outside])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

fn stored_totals(store: &Path) -> PairTotals {
    pair_totals(&records(store))
}

/// A running `flowkeep capture`, its stderr lines arriving on a channel.
struct Capture {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// What it said before "capturing on".
    preamble: Vec<String>,
}

impl Capture {
    fn start(interface: &str, store: &Path, extra: &[&str]) -> Capture {
        Capture::start_on(&[interface], store, extra)
    }

    fn start_on(interfaces: &[&str], store: &Path, extra: &[&str]) -> Capture {
        let mut child = Command::new(BIN)
            .arg("capture")
            .args(interfaces.iter().flat_map(|i| ["--interface", i]))
            .arg("--store")
            .arg(store)
            // No `--filter inbound`: libpcap 1.10 drops about half of these frames in user
            // space with it while the kernel counts them received. The outside end has no
            // address and no IPv6, so this host sends nothing on it by itself.
            .args(if extra.contains(&"--workers") {
                &[][..]
            } else {
                &["--workers", "2"][..]
            })
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("capture: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut cap = Capture {
            child,
            lines,
            preamble: Vec::new(),
        };
        loop {
            match cap.lines.recv_timeout(EVENT_TIMEOUT) {
                Ok(l) if l.contains("capturing on") => return cap,
                Ok(l) => cap.preamble.push(l),
                Err(e) => panic!("waiting for 'capturing on': {e}: {:?}", cap.preamble),
            }
        }
    }

    /// Blocks until a stderr line contains `what`; returns it.
    fn wait_for(&mut self, what: &str) -> String {
        loop {
            match self.lines.recv_timeout(EVENT_TIMEOUT) {
                Ok(l) if l.contains(what) => return l,
                Ok(_) => {}
                Err(e) => panic!("waiting for '{what}' on the capture's stderr: {e}"),
            }
        }
    }

    fn signal(&self, sig: &str) {
        sh(&["kill", &format!("-{sig}"), &self.child.id().to_string()]);
    }

    /// Whether a line before "capturing on" contains `what`.
    fn said(&self, what: &str) -> bool {
        self.preamble.iter().any(|l| l.contains(what))
    }

    /// SIGHUP, and blocks until both workers have sealed their open segments.
    fn seal(&mut self) {
        self.signal("HUP");
        for _ in 0..2 {
            self.wait_for("rotation: open segments sealed");
        }
    }

    /// SIGINT, then the summary on stdout.
    fn stop(mut self) -> String {
        self.signal("INT");
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{out}");
        out
    }
}

/// From the summary: frames read, and the kernel's and the interface's drops.
fn frames_and_drops(summary: &str) -> (u64, u64) {
    let field = |label: &str| -> Option<&str> {
        summary
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .map(str::trim)
    };
    let frames = field("packets ").and_then(|v| v.parse().ok()).unwrap();
    let [_, dropped, if_dropped] = handle_counts(summary, "kernel ");
    (frames, dropped + if_dropped)
}

/// No drop: every address pair matches tshark exactly. Drops: every frame sent is either
/// stored (read) or counted as dropped, and nothing stored exceeds what was sent.
fn check(summary: &str, sent: u64, expected: &PairTotals, stored: &PairTotals) {
    let (frames, dropped) = frames_and_drops(summary);
    eprintln!("sent {sent} frames, read {frames}, dropped {dropped}");
    assert_eq!(sent, frames + dropped, "{summary}");
    if dropped == 0 {
        assert_eq!(stored, expected);
    } else {
        for (pair, (p, b)) in stored {
            let (ep, eb) = expected.get(pair).copied().unwrap_or_default();
            assert!(
                *p <= ep && *b <= eb,
                "{pair:?}: stored {p}/{b}, sent {ep}/{eb}"
            );
        }
    }
}

#[test]
fn captures_sent_over_a_veth_pair_match_the_reference_per_address_pair() {
    let Some((wire, store)) = wire_and_store() else {
        return;
    };
    let files = [
        "nDPI__1kxun.pcap",
        "nDPI__iphone.pcap",
        "nDPI__android.pcap",
    ];
    let cap = Capture::start(&wire.outside, store.path(), &[]);
    let mut sent = 0;
    let mut expected = PairTotals::new();
    for f in files {
        sent += wire.replay_expected(f, &mut expected);
    }
    let summary = cap.stop();
    check(&summary, sent, &expected, &stored_totals(store.path()));
}

#[test]
fn two_veth_pairs_in_one_capture_keep_their_records_apart_by_interface() {
    if !can_run(skip_reason()) {
        return;
    }
    let (a, b) = (Wire::new(), Wire::new());
    let store = store_for("nobody");
    let cap = Capture::start_on(&[&a.outside, &b.outside], store.path(), &[]);
    // Different captures on each port, and one capture on both: its conversations are seen on
    // two ports and must give one set of records per port.
    let on_a = ["nDPI__1kxun.pcap", "nDPI__iphone.pcap"];
    let on_b = ["nDPI__android.pcap", "nDPI__iphone.pcap"];
    let mut sent = 0;
    let mut expected = [PairTotals::new(), PairTotals::new()];
    for (wire, files, exp) in [(&a, &on_a, 0), (&b, &on_b, 1)] {
        for f in files {
            sent += wire.replay_expected(f, &mut expected[exp]);
        }
    }
    let summary = cap.stop();
    let (frames, dropped) = frames_and_drops(&summary);
    eprintln!("sent {sent} frames, read {frames}, dropped {dropped}");
    assert_eq!(sent, frames + dropped, "{summary}");
    // Each port's counters on its own line too.
    for w in [&a, &b] {
        assert!(
            summary.lines().any(|l| {
                l.split_whitespace().next() == Some(w.outside.as_str()) && l.contains(" received ")
            }),
            "{summary}"
        );
    }
    let recs = records(store.path());
    for (wire, exp) in [(&a, &expected[0]), (&b, &expected[1])] {
        let mine: Vec<serde_json::Value> = recs
            .iter()
            .filter(|r| r["interface"] == wire.outside.as_str())
            .cloned()
            .collect();
        eprintln!("{}: {} records", wire.outside, mine.len());
        if dropped == 0 {
            assert_eq!(&pair_totals(&mine), exp, "{}", wire.outside);
        }
    }
    let tagged = recs
        .iter()
        .filter(|r| r["interface"] == a.outside.as_str() || r["interface"] == b.outside.as_str())
        .count();
    assert_eq!(
        tagged,
        recs.len(),
        "every record names one of the two ports"
    );
    // The store says which ports its segments saw.
    let line = info_line(store.path(), &["--segments"], "interfaces");
    assert!(
        line.ends_with(&format!("{}, {}", a.outside, b.outside)),
        "{line}"
    );
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    assert!(out.status.success(), "no user {user}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A fresh store directory owned by `user`, whom capture becomes after opening the interface.
fn store_for(user: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(uid_of(user)), None).unwrap();
    dir
}

/// What most tests here start with: a wire, and a store for `nobody`. `None` when these tests
/// cannot run here ([`can_run`]: SKIPPED, or a failure under CI); the test returns.
fn wire_and_store() -> Option<(Wire, tempfile::TempDir)> {
    can_run(skip_reason()).then(|| (Wire::new(), store_for("nobody")))
}

/// The sealed segments under the store.
fn sealed_segments(store: &Path) -> Vec<PathBuf> {
    files_under(store)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "fks"))
        .collect()
}

/// The line of `flowkeep info ARGS --store STORE` that starts with `label`.
fn info_line(store: &Path, args: &[&str], label: &str) -> String {
    let out = Command::new(BIN)
        .arg("info")
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&out.stdout);
    info.lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no '{label}' line: {info}"))
        .to_string()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn capture_drops_root_to_the_given_user_and_writes_as_it() {
    use std::os::unix::fs::MetadataExt;
    let Some((wire, store)) = wire_and_store() else {
        return;
    };
    let nobody = uid_of("nobody");
    let cap = Capture::start(&wire.outside, store.path(), &["--user", "nobody"]);
    let mut expected = PairTotals::new();
    let sent = wire.replay_expected("nDPI__iphone.pcap", &mut expected);
    let summary = cap.stop();
    check(&summary, sent, &expected, &stored_totals(store.path()));
    assert!(!sealed_segments(store.path()).is_empty());
    for f in files_under(store.path()) {
        assert_eq!(
            std::fs::metadata(&f).unwrap().uid(),
            nobody,
            "{} is not owned by nobody",
            f.display()
        );
    }
}

#[test]
fn capture_refuses_a_store_the_user_cannot_write_naming_both() {
    if !can_run(skip_reason()) {
        return;
    }
    let wire = Wire::new();
    // tempdir() makes a 0700 directory owned by root.
    let store = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["capture", "--interface", &wire.outside, "--user", "nobody"])
        .arg("--store")
        .arg(store.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("flowkeep: error: "), "{err}");
    assert!(last.contains(&store.path().display().to_string()), "{err}");
    assert!(last.contains("user 'nobody'"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!err.contains("capturing on"), "{err}");
}

fn temp_segments(store: &Path) -> Vec<PathBuf> {
    files_under(store)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(".seg-") && name.ends_with(".fks.tmp")
        })
        .collect()
}

/// `.seg-X-S.fks.tmp` → `seg-X-S.fks`, in the same directory.
fn sealed_name(tmp: &Path) -> PathBuf {
    let name = tmp.file_name().unwrap().to_string_lossy();
    let sealed = &name[1..name.len() - ".tmp".len()];
    tmp.with_file_name(sealed)
}

#[test]
fn sighup_seals_open_segments_and_capture_goes_on() {
    let Some((wire, store)) = wire_and_store() else {
        return;
    };
    // Flows that end with FIN or RST are written at once, so segments are open after the first
    // replay; --verbose says when their first block is on disk.
    let mut cap = Capture::start(
        &wire.outside,
        store.path(),
        &["--verbose", "--tcp-end-timeout", "0s"],
    );
    let mut expected = PairTotals::new();
    let mut sent = wire.replay_expected("nDPI__1kxun.pcap", &mut expected);
    cap.wait_for("flushed ");
    let open = temp_segments(store.path());
    assert!(!open.is_empty(), "{:?}", files_under(store.path()));

    cap.seal();
    for tmp in &open {
        assert!(!tmp.exists(), "{} still open after SIGHUP", tmp.display());
        assert!(sealed_name(tmp).exists(), "{} not sealed", tmp.display());
    }

    // Still capturing: the second capture lands too, and nothing of either is lost.
    sent += wire.replay_expected("nDPI__android.pcap", &mut expected);
    let summary = cap.stop();
    check(&summary, sent, &expected, &stored_totals(store.path()));
    assert!(temp_segments(store.path()).is_empty());
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The text of /metrics once `ready` holds of it, scraped until then (at most EVENT_TIMEOUT).
fn metrics_once(addr: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + EVENT_TIMEOUT;
    loop {
        let resp = http_get(addr, "/metrics");
        assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
        let text = resp.split("\r\n\r\n").nth(1).unwrap().to_string();
        if ready(&text) {
            return text;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[test]
fn metrics_endpoint_reports_what_was_captured() {
    let Some((wire, store)) = wire_and_store() else {
        return;
    };
    // Flows that end with FIN or RST are written at once (--tcp-end-timeout 0s), so a second
    // capture below gives something to seal for the store's size; --verbose says when.
    let mut cap = Capture::start(
        &wire.outside,
        store.path(),
        &[
            "--metrics",
            "127.0.0.1:0",
            "--verbose",
            "--tcp-end-timeout",
            "0s",
        ],
    );
    let addr = cap
        .preamble
        .iter()
        .find_map(|l| l.split("http://").nth(1))
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics address in {:?}", cap.preamble))
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let mut expected = PairTotals::new();
    let mut sent = wire.replay_expected("nDPI__iphone.pcap", &mut expected);
    let (packets, bytes) = expected
        .values()
        .fold((0, 0), |(p, b), (ep, eb)| (p + ep, b + eb));
    // The reader publishes once a second or when the link goes quiet, the workers after
    // every batch: scrape until the counts have caught up with what was sent.
    let text = metrics_once(&addr, |text| {
        metric(text, "flowkeep_frames_total") == sent
            && metric(text, "flowkeep_packets_total") == packets
    });
    assert_eq!(metric(&text, "flowkeep_bytes_total"), bytes);
    assert_eq!(metric(&text, "flowkeep_kernel_drops_total"), 0);
    assert_eq!(metric(&text, "flowkeep_interface_drops_total"), 0);
    assert_eq!(metric(&text, "flowkeep_malformed_frames_total"), 0);
    // Nothing has timed out yet (60 s idle): the flows are all still in memory.
    assert!(metric(&text, "flowkeep_active_flows") > 0, "{text}");
    assert!(http_get(&addr, "/other").starts_with("HTTP/1.1 404"));
    // Nothing sealed yet: the store's size counts sealed segments only.
    assert_eq!(metric(&text, "flowkeep_store_bytes"), 0, "{text}");
    assert!(
        !text.contains("\nflowkeep_oldest_record_age_seconds "),
        "{text}"
    );
    // Seal what is open (flows go on in new segments), then the store's size and its oldest
    // record show, once the listing is read again (at most every 5 s).
    sent += wire.replay_expected("nDPI__1kxun.pcap", &mut expected);
    cap.wait_for("flushed ");
    cap.seal();
    let sealed: u64 = sealed_segments(store.path())
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(sealed > 0);
    let text = metrics_once(&addr, |text| metric(text, "flowkeep_store_bytes") > 0);
    assert_eq!(metric(&text, "flowkeep_store_bytes"), sealed, "{text}");
    // Live records carry the wall clock's time: the oldest is from this test's own minute.
    let age = metric(&text, "flowkeep_oldest_record_age_seconds");
    assert!(age <= EVENT_TIMEOUT.as_secs(), "{text}");
    let summary = cap.stop();
    check(&summary, sent, &expected, &stored_totals(store.path()));
}

#[test]
fn with_a_small_ring_every_frame_is_either_stored_or_counted_as_dropped() {
    let Some((wire, store)) = wire_and_store() else {
        return;
    };
    // A 1 MiB ring against 50 MB at tcpreplay's top speed: the kernel usually drops some
    // (1413 of 34460 here). Whether it does or not, nothing may go missing uncounted.
    let cap = Capture::start(&wire.outside, store.path(), &["--buffer", "1M"]);
    let loops = 20;
    let sent = wire.replay_looped("nDPI__1kxun.pcap", loops);
    let summary = cap.stop();
    let expected: PairTotals = reference("nDPI__1kxun.pcap")
        .into_iter()
        .map(|(k, (p, b))| (k, (p * u64::from(loops), b * u64::from(loops))))
        .collect();
    assert_eq!(
        expected.values().map(|v| v.0).sum::<u64>(),
        sent,
        "every frame of this capture is an IP packet"
    );
    let stored = stored_totals(store.path());
    check(&summary, sent, &expected, &stored);
    let (frames, dropped) = frames_and_drops(&summary);
    assert_eq!(stored.values().map(|v| v.0).sum::<u64>() + dropped, sent);
    // The drops are bound to the data: the sealed segments' metadata says how complete it is.
    let captured = info_line(store.path(), &[], "captured");
    assert!(
        captured.contains(&format!(" {frames} frames,")),
        "{captured}"
    );
    let [_, by_kernel, by_interface] = handle_counts(&summary, "kernel ");
    assert!(
        captured.contains(&format!(
            "dropped {by_kernel} by the kernel, {by_interface} by the interface"
        )),
        "{captured} vs {summary}"
    );
}

#[test]
fn a_direction_filter_is_warned_about() {
    let Some((wire, store)) = wire_and_store() else {
        return;
    };
    let cap = Capture::start(&wire.outside, store.path(), &["--filter", "inbound and ip"]);
    assert!(
        cap.said("warning: --filter with inbound/outbound"),
        "{:?}",
        cap.preamble
    );
    cap.stop();
}

/// Frames of a capture file that a BPF filter passes, by libpcap (as the capture's handles
/// filter the same frames off the wire).
fn frames_passing(file: &str, filter: &str) -> u64 {
    let mut cap = pcap::Capture::from_file(fixtures().join(file)).unwrap();
    cap.filter(filter, true).unwrap();
    let mut n = 0;
    while cap.next_packet().is_ok() {
        n += 1;
    }
    n
}

/// "LABEL received R, dropped D, interface dropped I" from the summary.
fn handle_counts(summary: &str, label: &str) -> [u64; 3] {
    let line = summary
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no '{label}' line: {summary}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    nums.try_into()
        .unwrap_or_else(|n| panic!("{label}: {n:?}: {summary}"))
}

/// At the default snap length (128 bytes, which cuts every DHCP message) the second, DHCP-only
/// handle still stores every lease observation tshark reads in the captures, while the flows
/// count each packet once (the l3 reference) and the main handle's cut copies are not parsed.
#[test]
fn leases_are_stored_from_live_capture_at_the_default_snap_length() {
    let Some((wire, store)) = wire_and_store() else {
        return;
    };
    // The fixtures with DHCP whose frames are whole and Ethernet (tcpreplay sends those as
    // they are); leases.tsv is tshark's reading of each.
    let files = [
        "nDPI__1kxun.pcap",
        "nDPI__android.pcap",
        "nDPI__iphone.pcap",
        "tcpdump__dhcp-rfc3004.pcap",
        "tcpdump__dhcp-rfc4388.pcap",
        "tcpdump__dhcpv4v6-rfc5970-rfc8572.pcap",
        "tcpdump__dhcpv6-ia-na.pcap",
        "tcpdump__dhcpv6-ia-pd.pcap",
    ];
    let cap = Capture::start(&wire.outside, store.path(), &[]);
    assert!(cap.said("DHCP read whole"), "{:?}", cap.preamble);
    let mut sent = 0;
    let mut dhcp_sent = 0;
    let mut expected_flows = PairTotals::new();
    // Live times are the wire's, not the files': observations are compared without them.
    let mut expected_leases = Vec::new();
    let mut malformed = 0;
    for f in files {
        sent += wire.replay_expected(f, &mut expected_flows);
        dhcp_sent += frames_passing(f, flowkeep::capture::DHCP_FILTER);
        let rows = leases::rows(f);
        malformed += leases::malformed(&rows);
        expected_leases.extend(leases::expected(&rows).into_iter().map(untimed));
    }
    let summary = cap.stop();
    check(
        &summary,
        sent,
        &expected_flows,
        &stored_totals(store.path()),
    );
    let [received, dropped, if_dropped] = handle_counts(&summary, "dhcp handle");
    eprintln!("{dhcp_sent} DHCP-port frames sent; DHCP handle received {received}, dropped {dropped}+{if_dropped}");
    assert_eq!((dropped, if_dropped), (0, 0), "{summary}");
    assert_eq!(received, dhcp_sent, "{summary}");

    let stored = leases::stored(store.path());
    let mut got: Vec<_> = stored.iter().map(leases::key).map(untimed).collect();
    got.sort();
    expected_leases.sort();
    eprintln!("{} lease observations stored", got.len());
    assert_eq!(got, expected_leases);
    // The captures hold this much DHCP: a guard against a silently empty comparison.
    assert!(got.len() >= 45, "{}", got.len());
    // Every DHCP message was parsed from the whole copy, but those tshark calls malformed;
    // the cut ones were not tried.
    assert!(
        summary.contains(&format!(
            "dhcp leases    {} observations stored, {malformed} DHCP packets not parsed",
            got.len()
        )),
        "{summary}"
    );

    // who-had answers from them: the last DHCPv4 ACK is the holder of its address just after.
    let ack = stored
        .iter()
        .filter(|l| !l.v6 && l.message == 5)
        .max_by_key(|l| l.time)
        .expect("an ACK");
    let out = Command::new(BIN)
        .args(["who-had", "--format", "jsonl", "--store"])
        .arg(store.path())
        .arg(ack.address.to_string())
        .arg("--at")
        .arg(flowkeep::time::format_rfc3339(ack.time + 1))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "dhcp", "{v}");
    assert_eq!(
        v["mac"].as_str().map(str::to_string),
        ack.client_mac.as_ref().map(flowkeep::record::format_mac),
        "{v}"
    );
}

/// With --no-dhcp-handle only the main handle captures: DHCP cut by the snap length gives no
/// observation, and each cut message is counted as not parsed.
#[test]
fn without_the_dhcp_handle_the_default_snap_length_records_no_lease() {
    let Some((wire, store)) = wire_and_store() else {
        return;
    };
    let file = "tcpdump__dhcp-rfc4388.pcap";
    let cap = Capture::start(&wire.outside, store.path(), &["--no-dhcp-handle"]);
    assert!(!cap.said("DHCP read whole"), "{:?}", cap.preamble);
    let sent = wire.replay(file);
    let summary = cap.stop();
    check(
        &summary,
        sent,
        &reference(file),
        &stored_totals(store.path()),
    );
    assert!(!summary.contains("dhcp handle"), "{summary}");
    assert!(leases::stored(store.path()).is_empty());
    let dhcp = frames_passing(file, flowkeep::capture::DHCP_FILTER);
    assert!(dhcp > 0);
    assert!(
        summary.contains(&format!(
            "dhcp leases    0 observations stored, {dhcp} DHCP packets not parsed"
        )),
        "{summary}"
    );
}

/// A lease observation with its time left out (zero): live times are the wire's.
fn untimed(mut k: leases::Key) -> leases::Key {
    k.0 = 0;
    k
}

/// Ethernet fixtures whose flows a wrong fanout would split or merge: fragments (IPv4 and
/// IPv6), tunnels (IP in IP, GRE, VXLAN, Geneve, MPLS over UDP, Ethernet over MPLS), VLAN and
/// QinQ tags, PPPoE, and a busy capture with both directions of many flows.
const FANOUT_FIXTURES: [&str; 18] = [
    "suricata-verify__ipv4frags.pcap",
    "nDPI__dns_fragmented.pcap",
    "tcpdump__icmpv6-rfc7112.pcap",
    "libpcap__ipv6_ext_headers.pcap",
    "libpcap__ah-ipip-ping.pcap",
    "nDPI__4in4tunnel.pcap",
    "nDPI__6in4tunnel.pcap",
    "tcpdump__various_gre.pcap",
    "nDPI__vxlan.pcap",
    "tcpdump__geneve.pcap",
    "tcpdump__mpls-over-udp.pcap",
    "flowkeep__eompls-cw.pcap",
    "flowkeep__eompls-nocw.pcap",
    "suricata-verify__eve-flow-vlan-02_input.pcap",
    "tcpdump__802.1ad_QinQ.pcap",
    "suricata-verify__pppoe_input.pcap",
    "tcpdump__pppoe.pcap",
    "nDPI__1kxun.pcap",
];

/// A store's records as sorted JSON lines without what depends on when and how each capture
/// saw them (times, and why a flow ended: idle sweeps run on each process's own clock).
fn untimed_records(store: &Path) -> Vec<String> {
    let mut recs: Vec<String> = records(store)
        .into_iter()
        .map(|mut r| {
            let m = r.as_object_mut().unwrap();
            for k in ["first", "last", "end"] {
                assert!(m.remove(k).is_some(), "no '{k}' in a record");
            }
            r.to_string()
        })
        .collect();
    recs.sort();
    recs
}

/// The same frames, seen at once by a capture spread over two rings and by a single reader,
/// give the same records: no flow is split between workers or merged across them, fragments
/// and tunnels included, and each ring took a share.
#[test]
fn fanout_over_two_workers_stores_what_a_single_reader_stores() {
    let Some((wire, fanned)) = wire_and_store() else {
        return;
    };
    let single = store_for("nobody");
    let fan = Capture::start(&wire.outside, fanned.path(), &["--fanout", "on"]);
    assert!(fan.said("each reading its own ring"), "{:?}", fan.preamble);
    let one = Capture::start(
        &wire.outside,
        single.path(),
        &["--fanout", "off", "--workers", "1"],
    );
    let mut sent = 0;
    let mut expected = PairTotals::new();
    for f in FANOUT_FIXTURES {
        sent += wire.replay_expected(f, &mut expected);
    }
    let (fan_summary, one_summary) = (fan.stop(), one.stop());
    for summary in [&fan_summary, &one_summary] {
        assert_eq!(frames_and_drops(summary), (sent, 0), "{summary}");
    }
    assert!(!one_summary.contains("fanout"), "{one_summary}");
    let line = fan_summary
        .lines()
        .find(|l| l.starts_with("fanout         2 rings per interface, received "))
        .unwrap_or_else(|| panic!("{fan_summary}"));
    let rings: Vec<u64> = line
        .split_once("received ")
        .and_then(|(_, rest)| rest.split_once(';'))
        .map(|(counts, _)| counts.split(" / ").map(|n| n.parse().unwrap()).collect())
        .unwrap_or_else(|| panic!("{line}"));
    eprintln!("{line}");
    assert_eq!(rings.len(), 2, "{line}");
    assert_eq!(rings[0] + rings[1], sent, "{line}");
    assert!(
        rings[0] > 0 && rings[1] > 0,
        "one ring took everything: {line}"
    );

    let (got, want) = (
        untimed_records(fanned.path()),
        untimed_records(single.path()),
    );
    assert!(got.len() >= 200, "{} records", got.len());
    assert_eq!(got, want);
    // And both agree with tshark's per-pair counts of the files.
    assert_eq!(stored_totals(fanned.path()), expected);
}
