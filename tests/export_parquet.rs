//! End to end: replay real captures (IPv4, IPv6, 802.1Q and QinQ) into a store, `flowkeep
//! export --to parquet:DIR`, and read the files with a real engine, DuckDB (Python package
//! from PyPI, installed by scripts/deps.sh into /opt/flowkeep-venv). Its answers must equal
//! `flowkeep query --format jsonl` of the same store, record by record, and tshark's per-pair
//! counts; its view of the schema must be the logical types docs/EXPORT.md promises.

mod common;

use common::{add_reference, pair_totals, records, run, skip_or_fail, text, PairTotals};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// IPv4 and IPv6 (1kxun, sites: 22 pcapng interfaces), 802.1Q (stun), QinQ (vlan-02).
const FIXTURES: [&str; 4] = [
    "nDPI__1kxun.pcap",
    "nDPI__sites.pcapng",
    "nDPI__stun.pcap",
    "suricata-verify__eve-flow-vlan-02_input.pcap",
];

const DEFAULT_PYTHON: &str = "/opt/flowkeep-venv/bin/python";

/// The interpreter with duckdb, or `None` (and why) when there is none. Under CI its absence
/// is a failure: scripts/deps.sh must have installed it.
fn duckdb_python() -> Option<PathBuf> {
    let python =
        PathBuf::from(std::env::var_os("FLOWKEEP_PYTHON").unwrap_or_else(|| DEFAULT_PYTHON.into()));
    let ok = Command::new(&python)
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    skip_or_fail(&format!(
        "no Python with duckdb at {} (set FLOWKEEP_PYTHON, or run scripts/deps.sh)",
        python.display()
    ));
    None
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Replays the fixtures `files` into `store`, one after another.
fn replay_all(store: &Path, files: &[&str]) {
    for f in files {
        ok(common::replay(&common::fixtures().join(f), store, &[]));
    }
}

fn export(store: &Path, out: &Path, extra: &[&str]) -> Output {
    let to = format!("parquet:{}", out.display());
    let mut args = vec!["export", "--store", store.to_str().unwrap(), "--to", &to];
    args.extend_from_slice(extra);
    run(&args)
}

/// The value after `label` in the export summary.
fn summary_value(stdout: &str, label: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(label).map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no '{label}' in {stdout}"))
}

fn parquet_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// What DuckDB answers about the files in one directory, as one JSON document.
const DUCKDB_SCRIPT: &str = r#"
import duckdb, json, sys
files = sys.argv[1] + "/*.parquet"
one = sys.argv[2]
since, until = sys.argv[3], sys.argv[4]
c = duckdb.connect()
t = f"read_parquet('{files}')"
def q(sql):
    return c.execute(sql).fetchall()
out = {}
out["totals"] = q(f"SELECT count(*), sum(packets)::BIGINT, sum(bytes)::BIGINT, "
                f"sum(rev_packets)::BIGINT, sum(rev_bytes)::BIGINT FROM {t}")[0]
# Both directions of an address pair together, the lower address first: the 16-byte columns
# compare as numbers within a family.
out["pairs"] = q(f"""
  SELECT CASE WHEN src_addr <= dst_addr THEN src ELSE dst END AS lo,
         CASE WHEN src_addr <= dst_addr THEN dst ELSE src END AS hi,
         sum(packets + rev_packets)::BIGINT, sum(bytes + rev_bytes)::BIGINT
  FROM {t} GROUP BY ALL""")
out["rows"] = q(f"""
  SELECT epoch_ns(first), epoch_ns(last), proto, src, sport, dst, dport, vlan, inner_vlan,
         src_mac, dst_mac, packets, bytes, rev_packets, rev_bytes, tcp_flags, rev_tcp_flags,
         "end", hex(src_addr), hex(dst_addr)
  FROM {t}""")
# Records overlapping [since, until), with the timestamp type's own comparison.
out["range"] = q(f"""
  SELECT count(*) FROM {t}
  WHERE last >= '{since}'::TIMESTAMPTZ AND first < '{until}'::TIMESTAMPTZ""")[0][0]
out["types"] = dict(q(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {t})"))
out["schema"] = {r[0]: r[1:] for r in q(
    f"SELECT name, type, converted_type, logical_type, type_length, repetition_type "
    f"FROM parquet_schema('{one}') WHERE name <> 'flow'")}
out["chunks"] = q(
    f"SELECT path_in_schema, compression, stats_min_value IS NOT NULL, stats_max_value IS NOT NULL "
    f"FROM parquet_metadata('{files}')")
print(json.dumps(out, default=str))
"#;

fn duckdb(python: &Path, dir: &Path, one: &Path, since: &str, until: &str) -> serde_json::Value {
    let out = Command::new(python)
        .args(["-c", DUCKDB_SCRIPT])
        .arg(dir)
        .arg(one)
        .args([since, until])
        .output()
        .unwrap();
    assert!(out.status.success(), "duckdb: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ns(rfc3339: &serde_json::Value) -> i64 {
    flowkeep::time::parse_time(rfc3339.as_str().unwrap()).unwrap()
}

fn addr_hex(text: &serde_json::Value) -> String {
    let ip: IpAddr = text.as_str().unwrap().parse().unwrap();
    let octets = match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    octets.iter().map(|b| format!("{b:02X}")).collect()
}

/// A JSON-lines record as the row DuckDB returns, in the script's column order.
fn expected_row(r: &serde_json::Value) -> serde_json::Value {
    let mut row = vec![ns(&r["first"]).into(), ns(&r["last"]).into()];
    for k in [
        "proto",
        "src",
        "sport",
        "dst",
        "dport",
        "vlan",
        "inner_vlan",
        "src_mac",
        "dst_mac",
        "packets",
        "bytes",
        "rev_packets",
        "rev_bytes",
        "tcp_flags",
        "rev_tcp_flags",
        "end",
    ] {
        row.push(r[k].clone());
    }
    row.push(addr_hex(&r["src"]).into());
    row.push(addr_hex(&r["dst"]).into());
    serde_json::Value::Array(row)
}

fn sorted(mut v: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    v.sort_by_key(|x| x.to_string());
    v
}

fn duckdb_pairs(v: &serde_json::Value) -> PairTotals {
    let mut totals = PairTotals::new();
    for p in v.as_array().unwrap() {
        let lo: IpAddr = p[0].as_str().unwrap().parse().unwrap();
        let hi: IpAddr = p[1].as_str().unwrap().parse().unwrap();
        assert!(lo <= hi, "{p}");
        let ver = if lo.is_ipv4() { 4 } else { 6 };
        let e = totals.entry((ver, lo, hi)).or_default();
        e.0 += p[2].as_u64().unwrap();
        e.1 += p[3].as_u64().unwrap();
    }
    totals
}

#[test]
fn duckdb_reads_exactly_what_query_prints() {
    let Some(python) = duckdb_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    replay_all(&store, &FIXTURES);
    let recs = records(&store);
    assert!(recs.len() > 250, "{} records", recs.len());
    assert!(recs
        .iter()
        .any(|r| r["src"].as_str().unwrap().contains(':')));
    assert!(recs.iter().any(|r| r["inner_vlan"].as_u64().unwrap() > 0));

    let out = dir.path().join("parquet");
    let stdout = ok(export(&store, &out, &[]));
    assert_eq!(summary_value(&stdout, "records"), recs.len() as u64);
    // One file per partition directory of the store, named after it.
    let mut partitions: Vec<String> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| flowkeep::store::parse_partition_dir_name(n).is_some())
        .map(|n| format!("flows-{n}.parquet"))
        .collect();
    partitions.sort();
    assert_eq!(parquet_files(&out), partitions);
    assert_eq!(summary_value(&stdout, "files"), partitions.len() as u64);

    // A time range: the hour with the most records, and the store's own answer for it.
    let mut per_hour: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &recs {
        *per_hour
            .entry(ns(&r["first"]).div_euclid(3_600_000_000_000))
            .or_default() += 1;
    }
    let (&hour, _) = per_hour.iter().max_by_key(|(_, n)| **n).unwrap();
    let rfc = |h: i64| flowkeep::time::format_rfc3339(h * 3_600_000_000_000);
    let (since, until) = (rfc(hour), rfc(hour + 1));
    let in_range = records_in(&store, &since, &until);
    assert!(in_range > 0 && in_range < recs.len());

    let one_file = out.join(&partitions[0]);
    let got = duckdb(&python, &out, &one_file, &since, &until);

    let sum = |k: &str| recs.iter().map(|r| r[k].as_u64().unwrap()).sum::<u64>();
    let totals = [
        recs.len() as u64,
        sum("packets"),
        sum("bytes"),
        sum("rev_packets"),
        sum("rev_bytes"),
    ];
    assert_eq!(got["totals"], serde_json::json!(totals));
    eprintln!(
        "duckdb totals over {} files: {}",
        partitions.len(),
        got["totals"]
    );

    // Per address pair: DuckDB's sums, flowkeep's, and tshark's (the independent oracle).
    let mut tshark = PairTotals::new();
    for f in FIXTURES {
        add_reference(&mut tshark, f);
    }
    let from_query = pair_totals(&recs);
    assert_eq!(from_query, tshark, "flowkeep query against tshark");
    assert_eq!(
        duckdb_pairs(&got["pairs"]),
        from_query,
        "DuckDB against query"
    );

    // Every value of every record, timestamps to the nanosecond.
    let rows = sorted(got["rows"].as_array().unwrap().clone());
    let want = sorted(recs.iter().map(expected_row).collect());
    assert_eq!(rows.len(), want.len());
    for (g, w) in rows.iter().zip(&want) {
        assert_eq!(g, w);
    }

    assert_eq!(
        got["range"].as_u64().unwrap(),
        in_range as u64,
        "{since}..{until}"
    );
    // And the same range exported: the same records.
    let ranged = dir.path().join("ranged");
    let stdout = ok(export(
        &store,
        &ranged,
        &["--since", &since, "--until", &until],
    ));
    assert_eq!(summary_value(&stdout, "records"), in_range as u64);

    check_types(&got);
}

/// `flowkeep query --since --until`'s record count.
fn records_in(store: &Path, since: &str, until: &str) -> usize {
    let out = ok(run(&[
        "query",
        "--format",
        "jsonl",
        "--store",
        store.to_str().unwrap(),
        "--since",
        since,
        "--until",
        until,
    ]));
    out.lines().count()
}

fn check_types(got: &serde_json::Value) {
    let engine = |col: &str| got["types"][col].as_str().unwrap().to_string();
    for (cols, ty) in [
        (&["first", "last"][..], "TIMESTAMPTZ_NS"),
        (&["proto", "tcp_flags", "rev_tcp_flags"], "UTINYINT"),
        (&["sport", "dport", "vlan", "inner_vlan"], "USMALLINT"),
        (&["packets", "bytes", "rev_packets", "rev_bytes"], "UBIGINT"),
        (
            &[
                "src",
                "dst",
                "src_mac",
                "dst_mac",
                "end",
                "community_id",
                "interface",
            ],
            "VARCHAR",
        ),
        (&["src_addr", "dst_addr"], "BLOB"),
    ] {
        for c in cols {
            assert_eq!(engine(c), ty, "{c} in DuckDB");
        }
    }
    // The file's own declarations: name -> [physical, converted, logical, length, repetition].
    let schema = &got["schema"];
    assert_eq!(schema.as_object().unwrap().len(), 22);
    let decl = |col: &str, i: usize| schema[col][i].as_str().unwrap_or("").to_string();
    for c in ["first", "last"] {
        assert_eq!(decl(c, 0), "INT64");
        let logical = decl(c, 2);
        assert!(
            logical.starts_with("TimestampType(isAdjustedToUTC=1")
                && logical.contains("NANOS=NanoSeconds()"),
            "{c}: {logical}"
        );
    }
    for (c, phys, conv) in [
        ("proto", "INT32", "UINT_8"),
        ("sport", "INT32", "UINT_16"),
        ("vlan", "INT32", "UINT_16"),
        ("packets", "INT64", "UINT_64"),
        ("rev_bytes", "INT64", "UINT_64"),
        ("src", "BYTE_ARRAY", "UTF8"),
        ("end", "BYTE_ARRAY", "UTF8"),
    ] {
        assert_eq!((decl(c, 0), decl(c, 1)), (phys.into(), conv.into()), "{c}");
    }
    for c in ["src_addr", "dst_addr"] {
        assert_eq!(decl(c, 0), "FIXED_LEN_BYTE_ARRAY");
        assert_eq!(schema[c][3].as_str().unwrap_or(""), "16", "{c}");
    }
    assert_eq!(decl("src_mac", 4), "OPTIONAL");
    assert_eq!(decl("src", 4), "REQUIRED");
    // zstd everywhere, min/max statistics on every column chunk.
    for chunk in got["chunks"].as_array().unwrap() {
        assert_eq!(chunk[1], "ZSTD", "{chunk}");
        // A MAC column of a capture without Ethernet headers is all null: nothing to bound.
        let mac = chunk[0] == "src_mac" || chunk[0] == "dst_mac";
        assert!(
            mac || (chunk[2] == true && chunk[3] == true),
            "no min/max: {chunk}"
        );
    }
}

#[test]
fn existing_files_need_overwrite_and_expressions_select_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    replay_all(&store, &["suricata-verify__eve-flow-vlan-02_input.pcap"]);
    let out = dir.path().join("parquet");
    ok(export(&store, &out, &[]));
    let before = parquet_files(&out);
    assert_eq!(before.len(), 1);
    let path = out.join(&before[0]);
    let written = std::fs::read(&path).unwrap();

    let again = export(&store, &out, &[]);
    assert_eq!(again.status.code(), Some(1));
    let err = text(&again.stderr);
    assert!(
        err.contains("already exists") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), written);
    assert_eq!(parquet_files(&out), before, "a temporary file was left");

    ok(export(&store, &out, &["--overwrite"]));
    assert_eq!(parquet_files(&out), before);

    // The two records differ only in their VLAN tags (6; 1 with inner 10): an expression picks
    // exactly the one `query` picks with it.
    for (expr, want) in [
        (&["vlan", "10"][..], 1),
        (&["vlan", "6"][..], 1),
        (&["not", "icmp"][..], 0),
    ] {
        let sub = dir.path().join(format!("x-{}", expr.join("-")));
        let mut args = vec!["--explain"];
        args.extend_from_slice(expr);
        let stdout = ok(export(&store, &sub, &args));
        assert_eq!(summary_value(&stdout, "records"), want, "{expr:?}");
        let mut q = vec![
            "query",
            "--store",
            store.to_str().unwrap(),
            "--format",
            "jsonl",
        ];
        q.extend_from_slice(expr);
        let lines = ok(run(&q)).lines().count() as u64;
        assert_eq!(lines, want, "{expr:?}");
    }
    let bad_expr = export(&store, &dir.path().join("y"), &["vlan", "ten"]);
    assert_eq!(bad_expr.status.code(), Some(1));
    assert!(
        text(&bad_expr.stderr).contains("ten"),
        "{}",
        text(&bad_expr.stderr)
    );
    let bad = run(&[
        "export",
        "--store",
        store.to_str().unwrap(),
        "--to",
        "/tmp/nowhere",
    ]);
    assert!(text(&bad.stderr).contains("unknown target"));
}
