//! Who looked: every reading command appends one `access` entry with the SHA-256 of what it
//! answered, a read-only copy still answers (and says it did not record), `verify` checks the
//! entries, retention policy changes are recorded once each, `flowkeep audit` lists and
//! reports, and who-had says when its answer is a guess.

mod common;

use common::{fixtures, is_root, replay, run, skip_or_fail, text};
use flowkeep::store::access::Access;
use flowkeep::store::audit::{self, Action, AuditEntry};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::{Command, Output};

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn entries(store: &Path) -> Vec<AuditEntry> {
    audit::read_all(store).unwrap()
}

fn accesses(store: &Path) -> Vec<Access> {
    entries(store)
        .iter()
        .filter(|e| e.record.action == Action::Access)
        .map(|e| Access::parse(e.record.time, &e.record.reason).expect("an access reason"))
        .collect()
}

/// A store of `nDPI__iphone.pcap` (flows and DHCP leases, two segments).
fn iphone_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = replay(&fixtures().join("nDPI__iphone.pcap"), dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

fn flowkeep(store: &Path, args: &[&str]) -> Output {
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["--store", store.to_str().unwrap()]);
    run(&a)
}

/// Runs `args` and checks that it appended exactly one access entry, for `command`, whose
/// hash is that of its stdout; returns the entry and the output.
fn one_access(store: &Path, command: &str, args: &[&str]) -> (Access, Output) {
    let before = entries(store).len();
    let out = flowkeep(store, args);
    let after = entries(store);
    assert_eq!(after.len(), before + 1, "{args:?}: {}", text(&out.stderr));
    let a = accesses(store).pop().unwrap();
    assert_eq!(a.command, command);
    assert_eq!(a.uid, current_uid());
    (a, out)
}

fn current_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    text(&out.stdout).trim().parse().unwrap()
}

#[test]
fn a_query_records_one_access_with_the_hash_and_count_of_its_answer() {
    let dir = iphone_store();
    let (a, out) = one_access(
        dir.path(),
        "query",
        &["query", "--format", "jsonl", "--since", "2000-01-01", "udp"],
    );
    assert!(out.status.success());
    let lines = text(&out.stdout).lines().count() as u64;
    assert!(lines > 0);
    assert_eq!(a.records, lines);
    assert_eq!(a.sha256, sha256_hex(&out.stdout));
    assert_eq!(a.hashed, "stdout");
    assert_eq!(a.filter, "udp");
    assert_eq!(
        a.since,
        Some(flowkeep::time::parse_time("2000-01-01T00:00:00Z").unwrap())
    );
    assert_eq!(a.until, None);
    // The user's name, as /etc/passwd gives it.
    if is_root() {
        assert_eq!(a.user.as_deref(), Some("root"));
    }
    // In the log, the words are as FORMAT.md says.
    let e = entries(dir.path()).pop().unwrap();
    assert!(
        e.record.reason.starts_with(&format!("uid={} user=", a.uid)),
        "{}",
        e.record.reason
    );
    assert!(e.record.segment.is_none());
    // A table is hashed as printed too.
    let (a, out) = one_access(dir.path(), "query", &["query", "--format", "table"]);
    assert_eq!(a.sha256, sha256_hex(&out.stdout));
    assert_eq!(a.filter, "");
}

#[test]
fn stats_who_had_and_export_record_their_answers() {
    let dir = iphone_store();
    let (a, out) = one_access(
        dir.path(),
        "stats",
        &["stats", "--by", "host", "--format", "jsonl"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(a.sha256, sha256_hex(&out.stdout));
    assert!(a.records > 0);
    // who-had: the address and the window asked about.
    let (a, out) = one_access(
        dir.path(),
        "who-had",
        &[
            "who-had",
            "192.168.2.1",
            "--at",
            "2000-01-01T00:00:00Z",
            "--window",
            "1m",
            "--format",
            "jsonl",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "nothing known then");
    assert_eq!(a.sha256, sha256_hex(&out.stdout));
    assert_eq!(a.filter, "host 192.168.2.1");
    assert_eq!(
        a.since,
        Some(flowkeep::time::parse_time("1999-12-31T23:59:00Z").unwrap())
    );
    // export to Parquet: the files written, concatenated in the order listed.
    let pq = tempfile::tempdir().unwrap();
    let to = format!("parquet:{}", pq.path().join("out").display());
    let (a, out) = one_access(dir.path(), "export", &["export", "--to", &to]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut bytes = Vec::new();
    for line in text(&out.stdout).lines() {
        if let Some(rest) = line.strip_prefix("file ") {
            let path = rest.trim().split(" (").next().unwrap();
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(!bytes.is_empty());
    assert_eq!(a.hashed, "files");
    assert_eq!(a.sha256, sha256_hex(&bytes));
    assert_eq!(a.records, 51);
}

#[test]
fn explain_and_failed_commands_record_nothing() {
    let dir = iphone_store();
    let before = entries(dir.path()).len();
    let out = flowkeep(dir.path(), &["query", "--explain", "--format", "jsonl"]);
    assert!(out.status.success());
    let out = flowkeep(dir.path(), &["query", "host"]);
    assert!(!out.status.success());
    let out = flowkeep(
        dir.path(),
        &[
            "who-had",
            "10.0.0.1",
            "--at",
            "2020-01-01",
            "--format",
            "csv",
        ],
    );
    assert!(!out.status.success());
    assert_eq!(entries(dir.path()).len(), before);
}

#[test]
fn verify_checks_access_entries_and_an_edited_one_fails() {
    let dir = iphone_store();
    flowkeep(dir.path(), &["query", "--format", "jsonl"]);
    flowkeep(dir.path(), &["stats", "--by", "host", "--format", "jsonl"]);
    let out = flowkeep(dir.path(), &["verify"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("0 problem(s)"));
    // Someone makes their look smaller.
    let log = dir.path().join(audit::AUDIT_LOG_NAME);
    let orig = std::fs::read_to_string(&log).unwrap();
    let edited = orig.replacen("records=51 ", "records=5 ", 1);
    assert_ne!(edited, orig);
    std::fs::write(&log, edited).unwrap();
    let out = flowkeep(dir.path(), &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("hash does not match"),
        "{}",
        text(&out.stdout)
    );
}

/// Gives `path` and everything under it to read, not to write, for every user.
fn read_only_for_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).unwrap();
    let mode = if meta.is_dir() { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    if meta.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            read_only_for_others(&e.unwrap().path());
        }
    }
}

#[test]
fn a_read_only_copy_answers_and_says_the_access_is_not_recorded() {
    if !is_root() {
        skip_or_fail("running as another user needs root (setpriv)");
        return;
    }
    let dir = iphone_store();
    read_only_for_others(dir.path());
    let before = std::fs::read(dir.path().join(audit::AUDIT_LOG_NAME)).unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(common::BIN)
            .args(args)
            .arg("--store")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = as_nobody(&["query", "--format", "jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 51);
    assert!(
        text(&out.stderr).contains("flowkeep: note: this access is not recorded: "),
        "{}",
        text(&out.stderr)
    );
    // who-had keeps its own exit status.
    let out = as_nobody(&[
        "who-had",
        "192.168.2.1",
        "--at",
        "2000-01-01",
        "--format",
        "jsonl",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("this access is not recorded"));
    let after = std::fs::read(dir.path().join(audit::AUDIT_LOG_NAME)).unwrap();
    assert_eq!(before, after);
}

#[test]
fn who_had_from_flows_alone_is_unconfirmed_and_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let out = replay(
        &fixtures().join("libpcap__ipv6_ext_headers.pcap"),
        dir.path(),
        &[],
    );
    assert!(out.status.success());
    let ask = |format: &str| {
        flowkeep(
            dir.path(),
            &[
                "who-had",
                "2001:db8::1",
                "--at",
                "2025-04-11T15:34:48Z",
                "--format",
                format,
            ],
        )
    };
    let out = ask("jsonl");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "flows", "{v}");
    assert_eq!(v["confirmed"], false, "{v}");
    assert_eq!(v["mac"], "00:00:00:00:00:01", "{v}");
    assert_eq!(v["mac_locally_administered"], false, "{v}");
    assert_eq!(v["other_macs"], serde_json::json!([]), "{v}");
    let out = ask("table");
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stdout).contains("unconfirmed"),
        "{}",
        text(&out.stdout)
    );
}

fn policies(store: &Path) -> Vec<String> {
    entries(store)
        .iter()
        .filter(|e| e.record.action == Action::Policy)
        .map(|e| e.record.reason.clone())
        .collect()
}

#[test]
fn a_policy_entry_is_recorded_once_per_change_before_its_deletions() {
    let dir = iphone_store();
    let expire = |args: &[&str]| {
        let mut a = vec!["expire", "--now", "2030-01-01T00:00:00Z"];
        a.extend_from_slice(args);
        let out = flowkeep(dir.path(), &a);
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    // A dry run records nothing.
    expire(&["--max-size", "500G", "--dry-run"]);
    assert!(policies(dir.path()).is_empty());
    expire(&["--max-size", "500G"]);
    expire(&["--max-size", "500G"]);
    assert_eq!(policies(dir.path()), ["old=none new=max size 500G"]);
    expire(&["--retention", "30d", "--max-size", "500G"]);
    assert_eq!(
        policies(dir.path()),
        [
            "old=none new=max size 500G",
            "old=max size 500G new=retention 30d, max size 500G"
        ]
    );
    // The new policy deleted everything (all of 2019 is older than 30 days in 2030): its
    // entry comes before the first expire entry.
    let all = entries(dir.path());
    let policy_at = all
        .iter()
        .rposition(|e| e.record.action == Action::Policy)
        .unwrap();
    let first_expire = all
        .iter()
        .position(|e| e.record.action == Action::Expire)
        .expect("an expire entry");
    assert!(policy_at < first_expire);
    // replay --retention records its policy the same way.
    let out = replay(
        &fixtures().join("nDPI__iphone.pcap"),
        dir.path(),
        &["--retention", "7d"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        policies(dir.path()).last().unwrap(),
        "old=retention 30d, max size 500G new=retention 7d"
    );
    let out = flowkeep(dir.path(), &["verify"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
}

#[test]
fn audit_lists_entries_by_kind_and_time() {
    let dir = iphone_store();
    flowkeep(dir.path(), &["query", "--format", "jsonl"]);
    flowkeep(dir.path(), &["stats", "--by", "host", "--format", "jsonl"]);
    let out = flowkeep(
        dir.path(),
        &["audit", "--kind", "access", "--format", "jsonl"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{}", text(&out.stdout));
    assert!(listed
        .iter()
        .all(|v| v["action"] == "access" && v["segment"].is_null()));
    let all = entries(dir.path());
    assert_eq!(listed[1]["hash"], all.last().unwrap().hash.as_str());
    assert!(listed[0]["reason"]
        .as_str()
        .unwrap()
        .contains("command=query"));
    // The seals are older than any access: --until before the first access leaves them only.
    let first_access = all
        .iter()
        .find(|e| e.record.action == Action::Access)
        .unwrap();
    let until = flowkeep::time::format_rfc3339(first_access.record.time);
    let out = flowkeep(dir.path(), &["audit", "--until", &until, "--format", "csv"]);
    let csv = text(&out.stdout);
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("seq,time,action,segment,"));
    assert!(lines.all(|l| l.split(',').nth(2) == Some("seal")), "{csv}");
    // The table names the action.
    let out = flowkeep(
        dir.path(),
        &["audit", "--kind", "seal", "--format", "table"],
    );
    assert_eq!(
        text(&out.stdout).lines().count(),
        3,
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn the_report_shows_deletions_per_day_and_accesses_per_user() {
    let dir = iphone_store();
    flowkeep(dir.path(), &["query", "--format", "jsonl"]);
    flowkeep(dir.path(), &["query", "--format", "jsonl", "udp"]);
    // One of the two segments goes by size on 2030-01-01; the rest by age on 2030-02-01.
    let out = flowkeep(
        dir.path(),
        &[
            "expire",
            "--max-size",
            "2000",
            "--now",
            "2030-01-01T12:00:00Z",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = flowkeep(
        dir.path(),
        &["audit", "--report", "--now", "2030-01-02T00:00:00Z"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    let day1 = report
        .lines()
        .find(|l| l.trim_start().starts_with("2030-01-01"))
        .unwrap_or_else(|| panic!("{report}"));
    let words: Vec<&str> = day1.split_whitespace().collect();
    assert_eq!(words[1], "1", "one segment: {day1}");
    assert!(
        day1.contains("size>2000B x1") || day1.contains("size>"),
        "{day1}"
    );
    assert!(day1.contains("max size"), "{day1}");
    assert!(
        report.contains("oldest record left  2020-02-23T10:4"),
        "{report}"
    );
    assert!(
        report.contains("expire last ran     2030-01-01T12:00:00"),
        "{report}"
    );
    let me = text(&Command::new("id").arg("-un").output().unwrap().stdout)
        .trim()
        .to_string();
    let user = report
        .lines()
        .find(|l| l.trim_start().starts_with(me.as_str()) && l.contains("query 2"))
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(user.split_whitespace().nth(2), Some("2"), "{user}");
    assert!(report.contains("policy history (1)"), "{report}");
    let out = flowkeep(
        dir.path(),
        &[
            "expire",
            "--retention",
            "30d",
            "--now",
            "2030-02-01T00:00:00Z",
        ],
    );
    assert!(out.status.success());
    let out = flowkeep(
        dir.path(),
        &[
            "audit",
            "--report",
            "--format",
            "jsonl",
            "--now",
            "2030-02-02T00:00:00Z",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let days = v["deletions"].as_array().unwrap();
    assert_eq!(days.len(), 2, "{v}");
    assert_eq!(days[1]["day"], "2030-02-01");
    assert_eq!(days[1]["policies"][0], "retention 30d");
    assert_eq!(
        days[0]["records"].as_u64().unwrap() + days[1]["records"].as_u64().unwrap(),
        51
    );
    assert_eq!(v["policies"].as_array().unwrap().len(), 2);
    assert!(v["oldest_record"].is_null());
}

/// `flowkeep query | head`: the reader goes away, the answer was seen as far as it went, and
/// that is recorded (exit status 0 as before).
#[test]
fn an_answer_cut_short_by_its_reader_is_recorded() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    // More than a pipe holds (about 110 kB of JSON lines), so the writer meets a closed pipe.
    for f in [
        "nDPI__tcp_scan.pcapng",
        "nDPI__sites.pcapng",
        "nDPI__1kxun.pcap",
    ] {
        assert!(replay(&fixtures().join(f), dir.path(), &[])
            .status
            .success());
    }
    let before = accesses(dir.path()).len();
    let mut child = Command::new(common::BIN)
        .args(["query", "--format", "jsonl", "--store"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with('{'));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let all = accesses(dir.path());
    assert_eq!(all.len(), before + 1);
    let a = all.last().unwrap();
    assert!(a.records > 0 && a.records < 269, "{a:?}");
}

#[test]
fn an_ipfix_export_records_the_hash_of_the_messages_sent() {
    let dir = iphone_store();
    let collector = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = format!("ipfix+udp://{}", collector.local_addr().unwrap());
    let (a, out) = one_access(dir.path(), "export", &["export", "--to", &to]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(a.hashed, "messages");
    assert_eq!(a.records, 51);
    collector
        .set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok(n) = collector.recv(&mut buf) {
        received.extend_from_slice(&buf[..n]);
    }
    assert!(!received.is_empty());
    assert_eq!(a.sha256, sha256_hex(&received));
}

#[test]
fn a_disclosure_records_its_access_with_the_hash_of_its_manifest() {
    let d = iphone_store();
    let out_dir = tempfile::tempdir().unwrap();
    let bundle = out_dir.path().join("case");
    let (a, out) = one_access(
        d.path(),
        "disclose",
        &[
            "disclose",
            "--case",
            "C-1",
            "--since",
            "2020-01-01T00:00:00Z",
            "--until",
            "2030-01-01T00:00:00Z",
            "--out",
            bundle.to_str().unwrap(),
            "host",
            "192.168.2.1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest = std::fs::read(bundle.join("manifest.json")).unwrap();
    assert_eq!(a.sha256, sha256_hex(&manifest));
    assert_eq!(a.hashed, "manifest");
    assert_eq!(a.filter, "host 192.168.2.1");
    let csv = std::fs::read_to_string(bundle.join("records.csv")).unwrap();
    assert_eq!(
        a.records,
        csv.lines().count() as u64 - 1,
        "the bundle's records"
    );
}
