//! What the end-to-end tests share: the fixtures, tshark's per-address-pair reference, and
//! the same totals computed from `flowkeep query`'s JSON lines.
// Each test crate uses a different part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod pcap;
mod rng;
pub mod store;
#[allow(unused_imports)] // as dead_code above
pub use rng::Rng;

pub const BIN: &str = env!("CARGO_BIN_EXE_flowkeep");

/// `flowkeep ARGS`, run to its end.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// Standard output then standard error, as text.
pub fn out(o: &Output) -> String {
    text(&o.stdout) + &text(&o.stderr)
}

/// `flowkeep ARGS`, which must exit 0; what it printed ([`out`]).
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", out(&o));
    out(&o)
}

/// `flowkeep replay FILE --store STORE --quiet EXTRA`.
pub fn replay(file: &Path, store: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "replay",
        file.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// An output stream as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcaps")
}

/// Packets and IP-layer bytes per (IP version, lower address, higher address).
pub type PairTotals = BTreeMap<(u8, IpAddr, IpAddr), (u64, u64)>;

/// Adds tshark's counts for one capture (fixtures/pcaps/reference/FILE.l3.tsv) to `totals`.
pub fn add_reference(totals: &mut PairTotals, file: &str) {
    let path = fixtures().join("reference").join(format!("{file}.l3.tsv"));
    let text = std::fs::read_to_string(&path).unwrap();
    for line in text.lines().skip(1).filter(|l| !l.starts_with('#')) {
        let c: Vec<_> = line.split('\t').collect();
        let e = totals
            .entry((
                c[0].parse().unwrap(),
                c[1].parse().unwrap(),
                c[2].parse().unwrap(),
            ))
            .or_default();
        e.0 += c[3].parse::<u64>().unwrap();
        e.1 += c[4].parse::<u64>().unwrap();
    }
}

pub fn reference(file: &str) -> PairTotals {
    let mut totals = PairTotals::new();
    add_reference(&mut totals, file);
    totals
}

/// Every record of the store, as `flowkeep query --format jsonl` prints it.
pub fn records(store: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(BIN)
        .args(["query", "--format", "jsonl", "--store"])
        .arg(store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `flowkeep query --format jsonl --store STORE EXTRA`, which must exit 0: its records.
pub fn query_jsonl(store: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![
        "query",
        "--format",
        "jsonl",
        "--store",
        store.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(&args)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Seconds since the epoch of an RFC 3339 time as `query` prints it (UTC, `Z`), by hand: days
/// from the civil date (Howard Hinnant's algorithm), so the test shares no code with flowkeep.
pub fn epoch_secs(t: &str) -> i64 {
    let (y, m, d): (i64, i64, i64) = (
        t[0..4].parse().unwrap(),
        t[5..7].parse().unwrap(),
        t[8..10].parse().unwrap(),
    );
    let (hh, mm, ss): (i64, i64, i64) = (
        t[11..13].parse().unwrap(),
        t[14..16].parse().unwrap(),
        t[17..19].parse().unwrap(),
    );
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

/// A headless browser for screenshots, if one is installed (scripts/deps.sh installs chromium).
pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// A PNG screenshot of `page` at `width`×`height`, by `browser` headless; its bytes.
pub fn screenshot(browser: &str, page: &Path, shot: &Path, width: u32, height: u32) -> Vec<u8> {
    let _ = std::fs::remove_file(shot);
    let out = Command::new("timeout")
        .args([
            "120",
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(shot.exists(), "no screenshot: {}", text(&out.stderr));
    let png = std::fs::read(shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((w, h), (width, height));
    png
}

/// Records summed per address pair, both directions together, as the reference counts them.
pub fn pair_totals(recs: &[serde_json::Value]) -> PairTotals {
    let mut totals = PairTotals::new();
    for r in recs {
        let src: IpAddr = r["src"].as_str().unwrap().parse().unwrap();
        let dst: IpAddr = r["dst"].as_str().unwrap().parse().unwrap();
        let ver = if src.is_ipv4() { 4 } else { 6 };
        let (lo, hi) = if src <= dst { (src, dst) } else { (dst, src) };
        let e = totals.entry((ver, lo, hi)).or_default();
        e.0 += r["packets"].as_u64().unwrap() + r["rev_packets"].as_u64().unwrap();
        e.1 += r["bytes"].as_u64().unwrap() + r["rev_bytes"].as_u64().unwrap();
    }
    totals
}

/// Whether CI runs these tests (`CI=true`; any value but empty or `false` counts): CI runs as
/// root with every tool scripts/deps.sh installs, so there every test must really run.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// For a test that cannot run here, `why`: under CI a failure, for CI has all it needs;
/// elsewhere it says SKIPPED and why, and the caller returns.
pub fn skip_or_fail(why: &str) {
    assert!(!under_ci(), "cannot run under CI: {why}");
    eprintln!("SKIPPED: {why}");
}

/// [`skip_or_fail`] for a test that knows why it cannot run, if it cannot (`None`: it can).
/// False when the test must return.
pub fn can_run(why_not: Option<String>) -> bool {
    match why_not {
        None => true,
        Some(why) => {
            skip_or_fail(&why);
            false
        }
    }
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Copies a directory tree (a fixture store, so that a test cannot change the original).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
