//! Fault injection in the style of SQLite's I/O-error tests (issue 15): the binary built with
//! the `fault-injection` feature fails the N-th file operation that changes the disk
//! (`FLOWKEEP_FAULT=any:N:ERRNO`, src/fs/fault.rs), for every N a command reaches, with ENOSPC
//! and with EIO. After each: the command exits non-zero, names the error and does not panic;
//! the next writer recovers; `flowkeep verify` passes; and no record the store held or the
//! command reported stored is missing (nor is any record there that should not be).
//!
//! The commands: a replay into a new store (a few seals: one-minute partitions, small blocks),
//! an expire that deletes a segment, keeps a held one and sweeps a released hold's copies, a
//! filtered and a whole hold add, a hold release, and a writer's start-up recovery of a
//! killed replay's temporary segment. One worker, so that operations come in the same order
//! in every run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

mod common;
use common::{copy_dir, fixtures, pcap, text, BIN};

/// The errnos injected, and how the error they cause reads.
const ERRNOS: [(&str, &str); 2] = [
    ("ENOSPC", "No space left on device"),
    ("EIO", "Input/output error"),
];
/// A replay that seals a few segments: the android fixture spans two one-minute partitions.
const SMALL: [&str; 7] = [
    "--workers",
    "1",
    "--partition",
    "1m",
    "--block-records",
    "16",
    "--quiet",
];
const FROM: &str = "2020-02-23T10:46:00Z";
const UNTIL: &str = "2020-02-23T10:48:00Z";
const NOW: &str = "2026-12-01T00:00:00Z";

/// `flowkeep ARGS` with `FLOWKEEP_FAULT` set to `fault`, or unset.
fn flowkeep(args: &[String], fault: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("FLOWKEEP_FAULT");
    if let Some(f) = fault {
        c.env("FLOWKEEP_FAULT", f);
    }
    c.output().unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// `flowkeep ARGS`, which must succeed.
fn must(args: &[String]) -> String {
    let o = flowkeep(args, None);
    assert!(o.status.success(), "{args:?}: {}", common::out(&o));
    common::out(&o)
}

/// Every record of the live store as `query --format jsonl` lines, sorted; `None` when the
/// query fails.
fn records(store: &Path) -> Result<Vec<String>, String> {
    let o = flowkeep(
        &strings(&["query", "--format", "jsonl", "--store", &path(store)]),
        None,
    );
    if !o.status.success() {
        return Err(format!(
            "query exits {:?}: {}",
            o.status.code(),
            text(&o.stderr)
        ));
    }
    let mut v: Vec<String> = text(&o.stdout).lines().map(String::from).collect();
    v.sort();
    Ok(v)
}

/// Whether the sorted multiset `small` is contained in the sorted multiset `big`; the first
/// line of `small` that is not, if any.
fn missing_from<'a>(small: &'a [String], big: &[String]) -> Option<&'a String> {
    let mut it = big.iter().peekable();
    for s in small {
        while it.peek().is_some_and(|b| *b < s) {
            it.next();
        }
        if it.next() != Some(s) {
            return Some(s);
        }
    }
    None
}

/// Records a replay reported stored: its summary's `flows written` when it got that far, else
/// the blocks `--verbose` reported flushed.
fn reported(stdout: &str, stderr: &str) -> usize {
    let written = stdout
        .lines()
        .find_map(|l| l.strip_prefix("flows written")?.trim().parse().ok());
    let flushed = stderr
        .lines()
        .filter_map(|l| {
            l.strip_prefix("flushed ")?
                .rsplit_once(" records ")?
                .1
                .parse::<usize>()
                .ok()
        })
        .sum();
    written.unwrap_or(0usize).max(flushed)
}

/// An empty capture: the smallest writer start, which recovers what a dead writer left.
fn empty_pcap(dir: &Path) -> PathBuf {
    let p = dir.join("empty.pcap");
    std::fs::write(&p, pcap::header(pcap::LINKTYPE_RAW)).unwrap();
    p
}

/// The command run again without a fault: it must leave the complete command's records and
/// nothing for `verify` to note.
fn redo(sc: &Scenario, store: &Path) -> Problems {
    let o = flowkeep(&Bench::args(sc, store), None);
    if !o.status.success() {
        return vec![format!(
            "run again, exits {:?}: {}",
            o.status.code(),
            text(&o.stderr)
        )];
    }
    let mut p = Problems::new();
    if records(store).as_ref() != Ok(&sc.keep) {
        p.push("run again, it leaves other records than the complete run".into());
    }
    let v = flowkeep(&strings(&["verify", "--store", &path(store)]), None);
    if !v.status.success() || text(&v.stdout).contains("NOTE") {
        p.push(format!(
            "verify after running it again: {}",
            common::out(&v)
        ));
    }
    p
}

/// What a command did to a store beyond its records: the holds and what they keep, the
/// store's sums (less its path and the wall clock's age).
fn effect(store: &Path) -> String {
    let s = path(store);
    let holds = flowkeep(&strings(&["hold", "list", "--store", &s]), None);
    let info = flowkeep(&strings(&["info", "--store", &s]), None);
    let info: Vec<&str> = std::str::from_utf8(&info.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("store ") && !l.starts_with("oldest age"))
        .collect();
    let mut lists: Vec<String> = std::fs::read_dir(store.join("tor"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    lists.sort();
    text(&holds.stdout) + &info.join("\n") + "\ntor: " + &lists.join(" ")
}

/// One command to fail at every operation it reaches.
struct Scenario {
    name: &'static str,
    /// The store the command runs on, copied afresh for each run; `None`: a new store.
    template: Option<PathBuf>,
    /// The command; `{store}` stands for the copy.
    args: Vec<String>,
    /// Every record the store held that the command may not remove, sorted (for expire: what
    /// a complete expire keeps); plus, for a replay, those it reports stored.
    keep: Vec<String>,
    /// Every record that may be there afterwards (the complete command's), sorted.
    allowed: Vec<String>,
    /// Whether running the command again, without a fault, must finish what the failed run
    /// left (expire: leaving exactly `keep`, and nothing for `verify` to note).
    redo: bool,
}

/// What the run without a fault left: its call sites, and its [`effect`] once recovered.
struct Clean {
    count: u64,
    sites: Vec<String>,
    effect: String,
}

/// What a check of one run found wrong.
type Problems = Vec<String>;

/// The dirs and the empty capture every run shares.
struct Bench {
    work: PathBuf,
    empty: PathBuf,
}

impl Bench {
    fn store(&self, sc: &Scenario, tag: &str) -> PathBuf {
        let s = self.work.join(format!("{}-{tag}", sc.name));
        let _ = std::fs::remove_dir_all(&s);
        if let Some(t) = &sc.template {
            copy_dir(t, &s);
        }
        s
    }

    fn args(sc: &Scenario, store: &Path) -> Vec<String> {
        sc.args
            .iter()
            .map(|a| a.replace("{store}", &path(store)))
            .collect()
    }

    /// The writer start that must recover whatever a failed command left.
    fn recover(&self, store: &Path) -> Output {
        let mut a = strings(&["replay", &path(&self.empty), "--store", &path(store)]);
        a.extend(strings(&SMALL));
        flowkeep(&a, None)
    }

    /// Runs `sc` counting its operations: how many, the call sites reached, the effect.
    fn count(&self, sc: &Scenario) -> Clean {
        let store = self.store(sc, "count");
        let o = flowkeep(&Self::args(sc, &store), Some("any:0:EIO"));
        let err = text(&o.stderr);
        assert!(o.status.success(), "{}: {}{err}", sc.name, text(&o.stdout));
        let counts = err
            .lines()
            .find_map(|l| l.strip_prefix("flowkeep: fault counts: "))
            .unwrap_or_else(|| panic!("{}: no counts (built without the feature?)", sc.name));
        let any = counts
            .split(' ')
            .find_map(|c| c.strip_prefix("any="))
            .and_then(|n| n.parse().ok())
            .unwrap();
        let sites = err
            .lines()
            .filter_map(|l| l.strip_prefix("flowkeep: fault site: "))
            .map(|s| s.rsplit_once(' ').unwrap().0.to_string())
            .collect();
        assert!(self.recover(&store).status.success());
        let effect = effect(&store);
        let _ = std::fs::remove_dir_all(&store);
        Clean {
            count: any,
            sites,
            effect,
        }
    }

    /// Runs `sc` with operation `n` failing with `errno`, then recovers, verifies and compares.
    /// A command may survive a fault only by doing all it should (a reader that cannot
    /// create `.lock` opens it read-only): exit 0 with the clean run's effect is a tolerated
    /// fault, counted in `tolerated`.
    fn run(
        &self,
        sc: &Scenario,
        clean: &Clean,
        n: u64,
        errno: (&str, &str),
    ) -> (Problems, Option<String>) {
        let (errno, says) = errno;
        let store = self.store(sc, &format!("{n}-{errno}"));
        let o = flowkeep(&Self::args(sc, &store), Some(&format!("any:{n}:{errno}")));
        let (out, err) = (text(&o.stdout), text(&o.stderr));
        let mut p = Problems::new();
        let injected = format!("flowkeep: fault injected: any {n} ");
        let site = err.lines().find(|l| l.starts_with(&injected)).unwrap_or("");
        if site.is_empty() {
            p.push("the fault was not reached".into());
        }
        if o.status.code() == Some(101) || err.contains("panicked") {
            p.push("panicked".into());
        }
        let named = err
            .lines()
            .any(|l| !l.starts_with(&injected) && l.contains(says));
        if !o.status.success() && !named {
            p.push(format!("no line says {says:?}"));
        }
        let r = self.recover(&store);
        if !r.status.success() {
            p.push(format!(
                "the next writer exits {:?}: {}",
                r.status.code(),
                text(&r.stderr)
            ));
        }
        let v = flowkeep(&strings(&["verify", "--store", &path(&store)]), None);
        if !v.status.success() {
            p.push(format!(
                "verify exits {:?}: {}",
                v.status.code(),
                common::out(&v)
            ));
        }
        p.extend(self.compare(sc, &store, reported(&out, &err)));
        if sc.redo {
            p.extend(redo(sc, &store));
        }
        let tolerated = o.status.success().then(|| {
            let at = site.rsplit_once(" at ").map_or("", |s| s.1);
            let at = at.split(": ").next().unwrap_or("");
            format!("{at} ({})", if named { "named" } else { "silent" })
        });
        if tolerated.is_some() && effect(&store) != clean.effect {
            p.push(format!(
                "exit status 0, but not all was done:\n{}\ninstead of\n{}",
                effect(&store),
                clean.effect
            ));
        }
        if !p.is_empty() {
            p.insert(0, format!("{} {n} {errno} [{}]:\n{err}", sc.name, site));
        }
        let _ = std::fs::remove_dir_all(&store);
        (p, tolerated)
    }

    /// The records after recovery against what the scenario allows.
    fn compare(&self, sc: &Scenario, store: &Path, reported: usize) -> Problems {
        let got = match records(store) {
            Ok(g) => g,
            Err(e) => return vec![e],
        };
        let mut p = Problems::new();
        if let Some(r) = missing_from(&sc.keep, &got) {
            p.push(format!("record missing: {r}"));
        }
        if got.len() < sc.keep.len() + reported {
            p.push(format!(
                "{} records, {} kept + {reported} reported stored",
                got.len(),
                sc.keep.len()
            ));
        }
        if let Some(r) = missing_from(&got, &sc.allowed) {
            p.push(format!("record that should not be there: {r}"));
        }
        p
    }

    /// Every N for both errnos; panics with every problem found.
    fn every_fault(&self, sc: &Scenario) {
        let t = Instant::now();
        let clean = self.count(sc);
        let count = clean.count;
        assert!(count > 0, "{}: no operation reached", sc.name);
        let mut problems = Vec::new();
        let mut tolerated = std::collections::BTreeSet::new();
        let mut tolerated_runs = 0;
        for n in 1..=count {
            for e in ERRNOS {
                let (p, t) = self.run(sc, &clean, n, e);
                problems.extend(p);
                tolerated_runs += usize::from(t.is_some());
                tolerated.extend(t);
            }
        }
        eprintln!(
            "faults: {}: {count} operations at {} call sites, {} runs ({tolerated_runs} faults \
             tolerated, exit 0 with all done, at {tolerated:?}), {:.1} s\n  {}",
            sc.name,
            clean.sites.len(),
            count * 2,
            t.elapsed().as_secs_f64(),
            clean.sites.join("\n  ")
        );
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

fn bench(dir: &Path) -> Bench {
    let work = dir.join("runs");
    std::fs::create_dir(&work).unwrap();
    Bench {
        empty: empty_pcap(dir),
        work,
    }
}

/// The android fixture replayed into `store`.
fn base_store(store: &Path) {
    let mut a = strings(&["replay"]);
    a.push(path(&fixtures().join("nDPI__android.pcap")));
    a.extend(strings(&["--store", &path(store)]));
    a.extend(strings(&SMALL));
    must(&a);
}

fn hold_add(store: &Path, name: &str, until: &str, filter: Option<&str>) -> Vec<String> {
    let s = path(store);
    let mut a = strings(&["hold", "add", "--store", &s, "--name", name, "--from", FROM]);
    a.extend(strings(&[
        "--until",
        until,
        "--now",
        NOW,
        "--expires",
        "never",
    ]));
    if let Some(f) = filter {
        a.extend(strings(&["--filter", f]));
    }
    a
}

/// The records `args` leave in a copy of `template` when nothing fails.
fn records_after(dir: &Path, template: &Path, args: &[String]) -> Vec<String> {
    let s = dir.join("clean");
    let _ = std::fs::remove_dir_all(&s);
    copy_dir(template, &s);
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("{store}", &path(&s)))
        .collect();
    must(&args);
    records(&s).unwrap()
}

#[test]
fn every_fault_in_a_replay_into_a_new_store() {
    let d = tempfile::tempdir().unwrap();
    let b = bench(d.path());
    let full = d.path().join("full");
    base_store(&full);
    let mut args = strings(&["replay"]);
    args.push(path(&fixtures().join("nDPI__android.pcap")));
    args.extend(strings(&["--store", "{store}", "--verbose"]));
    args.extend(strings(&SMALL));
    b.every_fault(&Scenario {
        name: "replay",
        template: None,
        args,
        keep: Vec::new(),
        allowed: records(&full).unwrap(),
        redo: false,
    });
}

#[test]
fn every_fault_in_an_expire() {
    let d = tempfile::tempdir().unwrap();
    let b = bench(d.path());
    let t = d.path().join("template");
    base_store(&t);
    // A whole hold keeps the first partition's segment; a released filtered hold's copies go.
    must(&hold_add(&t, "kept", "2020-02-23T10:47:00Z", None));
    must(&hold_add(&t, "gone", UNTIL, Some("proto 17")));
    must(&strings(&[
        "hold",
        "release",
        "--store",
        &path(&t),
        "gone",
        "--now",
        NOW,
    ]));
    let args = strings(&["expire", "--store", "{store}", "--retention", "60s"]);
    let args = [args, strings(&["--now", "2020-02-23T10:49:00Z"])].concat();
    let before = records(&t).unwrap();
    let keep = records_after(d.path(), &t, &args);
    assert!(
        keep.len() < before.len() && !keep.is_empty(),
        "expire deletes a part"
    );
    b.every_fault(&Scenario {
        name: "expire",
        template: Some(t),
        args,
        keep,
        allowed: before,
        redo: true,
    });
}

#[test]
fn every_fault_in_a_tor_import() {
    let d = tempfile::tempdir().unwrap();
    let b = bench(d.path());
    let t = d.path().join("template");
    base_store(&t);
    let list =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tor/exit-addresses-2026-11-30.txt");
    let before = records(&t).unwrap();
    // A failed import leaves either no list and no entry, or its entry and a temporary file
    // that the next writer renames into place; verify is clean either way, and importing
    // again finishes the job.
    b.every_fault(&Scenario {
        name: "tor-import",
        template: Some(t),
        args: strings(&[
            "tor",
            "import",
            &path(&list),
            "--store",
            "{store}",
            "--now",
            NOW,
        ]),
        keep: before.clone(),
        allowed: before,
        redo: true,
    });
}

/// A hold add or release changes no record of the live store.
fn every_fault_in_a_hold_command(name: &'static str, setup: &[Vec<String>], args: Vec<String>) {
    let d = tempfile::tempdir().unwrap();
    let b = bench(d.path());
    let t = d.path().join("template");
    base_store(&t);
    for a in setup {
        let a: Vec<String> = a.iter().map(|x| x.replace("{store}", &path(&t))).collect();
        must(&a);
    }
    let before = records(&t).unwrap();
    b.every_fault(&Scenario {
        name,
        template: Some(t),
        args,
        keep: before.clone(),
        allowed: before,
        redo: false,
    });
}

#[test]
fn every_fault_in_a_filtered_hold_add() {
    let args = hold_add(Path::new("{store}"), "case", UNTIL, Some("proto 17"));
    every_fault_in_a_hold_command("hold-add-filtered", &[], args);
}

#[test]
fn every_fault_in_a_whole_hold_add() {
    let args = hold_add(Path::new("{store}"), "case", UNTIL, None);
    every_fault_in_a_hold_command("hold-add-whole", &[], args);
}

#[test]
fn every_fault_in_a_hold_release() {
    let setup = hold_add(Path::new("{store}"), "case", UNTIL, Some("proto 17"));
    let args = strings(&[
        "hold", "release", "--store", "{store}", "case", "--now", NOW,
    ]);
    every_fault_in_a_hold_command("hold-release", &[setup], args);
}

/// A raw-IP pcap of `flows` one-packet UDP flows 10 ms apart: long enough to kill mid-way.
fn synthetic_pcap(path: &Path, flows: u32) {
    let mut out = pcap::header(pcap::LINKTYPE_RAW);
    for i in 0..flows {
        let mut ip = [0u8; 28];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&28u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        ip[16..20].copy_from_slice(&[192, 0, 2, 1]);
        let sum: u32 = ip[..20]
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        let sum = (sum & 0xffff) + (sum >> 16);
        ip[10..12].copy_from_slice(&(!((sum & 0xffff) + (sum >> 16)) as u16).to_be_bytes());
        ip[20..22].copy_from_slice(&(1024 + (i % 60_000) as u16).to_be_bytes());
        ip[22..24].copy_from_slice(&53u16.to_be_bytes());
        ip[24..26].copy_from_slice(&8u16.to_be_bytes());
        let ms = u64::from(i) * 10;
        let sec = 1_767_225_600 + (ms / 1000) as u32;
        pcap::push_packet(&mut out, sec, (ms % 1000) as u32 * 1000, 28, &ip);
    }
    std::fs::write(path, out).unwrap();
}

/// A store whose writer was killed (SIGKILL) after reporting blocks flushed: a temporary
/// segment for the next writer to recover. Returns the records it reported flushed.
fn killed_writer(dir: &Path, store: &Path) -> usize {
    let capture = dir.join("long.pcap");
    synthetic_pcap(&capture, 20_000);
    let mut args = strings(&[
        "replay",
        &path(&capture),
        "--store",
        &path(store),
        "--verbose",
    ]);
    // Blocks of 4 records: far more flush lines than a pipe holds, so the writer waits on
    // this test's reading and is killed mid-way, whatever the machine's speed.
    args.extend(strings(&["--idle-timeout", "1s", "--block-records", "4"]));
    args.extend(strings(&["--workers", "1", "--partition", "1m", "--quiet"]));
    let mut child = Command::new(BIN)
        .args(&args)
        .env_remove("FLOWKEEP_FAULT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut flushed = 0;
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for _ in 0..5 {
        let line = lines.next().unwrap().unwrap();
        flushed += reported("", &line);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    flushed
}

#[test]
fn every_fault_in_a_writers_recovery_after_a_crash() {
    let d = tempfile::tempdir().unwrap();
    let b = bench(d.path());
    let t = d.path().join("template");
    base_store(&t);
    let flushed = killed_writer(d.path(), &t);
    let mut args = strings(&["replay", &path(&b.empty), "--store", "{store}"]);
    args.extend(strings(&SMALL));
    let after = records_after(d.path(), &t, &args);
    let base = d.path().join("base");
    base_store(&base);
    assert!(
        after.len() >= records(&base).unwrap().len() + flushed && flushed > 0,
        "the clean recovery keeps the {flushed} records reported flushed"
    );
    b.every_fault(&Scenario {
        name: "recovery",
        template: Some(t),
        args,
        keep: after.clone(),
        allowed: after,
        redo: false,
    });
}
