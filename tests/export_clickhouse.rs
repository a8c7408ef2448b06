//! ClickHouse, the engine most flow-data fleets keep their records in: docs/EXPORT.md's
//! `CREATE TABLE`, word for word, in a real ClickHouse (chDB, the embedded engine from PyPI,
//! installed by scripts/deps.sh into /opt/flowkeep-venv), an export of real captures loaded
//! into it, and its counts, per-pair sums and a time-range query held to `flowkeep query`
//! and to tshark's per-pair counts.

mod common;

use common::{add_reference, pair_totals, records, run, skip_or_fail, text, PairTotals};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURES: [&str; 3] = ["nDPI__1kxun.pcap", "nDPI__sites.pcapng", "nDPI__stun.pcap"];

fn chdb_python() -> Option<PathBuf> {
    let python = PathBuf::from(
        std::env::var_os("FLOWKEEP_PYTHON")
            .unwrap_or_else(|| "/opt/flowkeep-venv/bin/python".into()),
    );
    let ok = Command::new(&python)
        .args(["-c", "import chdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    skip_or_fail(&format!(
        "no Python with chdb at {} (set FLOWKEEP_PYTHON, or run scripts/deps.sh)",
        python.display()
    ));
    None
}

/// The `CREATE TABLE flows` block of docs/EXPORT.md.
fn documented_ddl() -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/EXPORT.md"))
        .unwrap();
    let start = doc
        .find("```sql\nCREATE TABLE flows")
        .expect("EXPORT.md has the CREATE TABLE");
    let body = &doc[start + "```sql\n".len()..];
    body[..body.find("```").unwrap()].to_string()
}

const CHDB_SCRIPT: &str = r#"
import chdb, json, sys
from chdb import session
ddl, files, since, until = sys.argv[1:5]
s = session.Session()
s.query("CREATE DATABASE fk")
s.query(ddl.replace("CREATE TABLE flows", "CREATE TABLE fk.flows"))
s.query(f"INSERT INTO fk.flows SELECT * FROM file('{files}', Parquet)")
def q(sql):
    r = s.query(sql + " SETTINGS output_format_json_quote_64bit_integers = 0", "JSONCompact")
    return json.loads(str(r))["data"]
out = {}
out["totals"] = q("SELECT count(), sum(packets), sum(bytes), sum(rev_packets), sum(rev_bytes) FROM fk.flows")[0]
out["pairs"] = q("""
  SELECT if(src_addr <= dst_addr, src, dst) AS lo, if(src_addr <= dst_addr, dst, src) AS hi,
         sum(packets + rev_packets), sum(bytes + rev_bytes)
  FROM fk.flows GROUP BY lo, hi""")
out["range"] = q(f"""
  SELECT count() FROM fk.flows
  WHERE last >= parseDateTime64BestEffort('{since}', 9, 'UTC')
    AND first < parseDateTime64BestEffort('{until}', 9, 'UTC')""")[0][0]
out["partitions"] = q("SELECT count(DISTINCT partition) FROM system.parts WHERE database = 'fk' AND active")[0][0]
out["ttl"] = q("SELECT create_table_query FROM system.tables WHERE database = 'fk' AND name = 'flows'")[0][0]
print(json.dumps(out))
"#;

/// Nanoseconds since the epoch of an RFC 3339 UTC time.
fn ns(t: &str) -> i64 {
    common::epoch_secs(t) * 1_000_000_000
}

#[test]
fn clickhouse_loads_an_export_into_the_documented_table_and_agrees_with_query() {
    let Some(python) = chdb_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    for f in FIXTURES {
        let o = common::replay(&common::fixtures().join(f), &store, &[]);
        assert!(o.status.success(), "{}", common::out(&o));
    }
    let recs = records(&store);
    let out = dir.path().join("parquet");
    let to = format!("parquet:{}", out.display());
    let o = run(&["export", "--store", store.to_str().unwrap(), "--to", &to]);
    assert!(o.status.success(), "{}", common::out(&o));

    // The hour with the most records starting in it, and flowkeep's answer for it.
    let mut per_hour = std::collections::BTreeMap::<i64, usize>::new();
    for r in &recs {
        *per_hour
            .entry(ns(r["first"].as_str().unwrap()).div_euclid(3_600_000_000_000))
            .or_default() += 1;
    }
    let (&hour, _) = per_hour.iter().max_by_key(|(_, n)| **n).unwrap();
    let rfc = |h: i64| flowkeep::time::format_rfc3339(h * 3_600_000_000_000);
    let (since, until) = (rfc(hour), rfc(hour + 1));
    let o = run(&[
        "query",
        "--store",
        store.to_str().unwrap(),
        "--since",
        &since,
        "--until",
        &until,
        "--format",
        "jsonl",
    ]);
    let in_range = text(&o.stdout).lines().count() as u64;
    assert!(in_range > 0 && (in_range as usize) < recs.len());

    // The captures are years old: the documented 30-day TTL would drop them all on load.
    let ddl = documented_ddl();
    assert!(
        ddl.contains("TTL toDateTime(last) + INTERVAL 30 DAY")
            && ddl.contains("ttl_only_drop_parts = 1")
    );
    // 50 years: DateTime ends in 2106, and a TTL beyond it wraps round and drops everything.
    let ddl = ddl.replace("INTERVAL 30 DAY", "INTERVAL 50 YEAR");
    let files = format!("{}/*.parquet", out.display());
    let o = Command::new(&python)
        .args(["-c", CHDB_SCRIPT, &ddl, &files, &since, &until])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "chdb: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();

    let sum = |k: &str| recs.iter().map(|r| r[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(
        got["totals"],
        serde_json::json!([
            recs.len() as u64,
            sum("packets"),
            sum("bytes"),
            sum("rev_packets"),
            sum("rev_bytes")
        ])
    );
    let mut ch = PairTotals::new();
    for p in got["pairs"].as_array().unwrap() {
        let lo: IpAddr = p[0].as_str().unwrap().parse().unwrap();
        let hi: IpAddr = p[1].as_str().unwrap().parse().unwrap();
        let e = ch
            .entry((if lo.is_ipv4() { 4 } else { 6 }, lo, hi))
            .or_default();
        e.0 += p[2].as_u64().unwrap();
        e.1 += p[3].as_u64().unwrap();
    }
    let mut tshark = PairTotals::new();
    for f in FIXTURES {
        add_reference(&mut tshark, f);
    }
    assert_eq!(pair_totals(&recs), tshark, "flowkeep query against tshark");
    assert_eq!(ch, tshark, "ClickHouse against tshark");
    assert_eq!(
        got["range"].as_u64().unwrap(),
        in_range,
        "records overlapping {since}..{until}"
    );
    assert!(
        got["partitions"].as_u64().unwrap() > 1,
        "partitioned by day: {}",
        got["partitions"]
    );
    assert!(
        got["ttl"]
            .as_str()
            .unwrap()
            .contains("ttl_only_drop_parts = 1"),
        "{}",
        got["ttl"]
    );
}
