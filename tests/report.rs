//! `flowkeep report`: the HTML page holds the totals `query` gives, the top source `stats`
//! gives, escapes the operator's text, fetches nothing, and renders in a real headless
//! Chromium to a page that is not blank.

mod common;

use common::{records, replay, run, text};
use std::path::Path;

#[test]
fn the_report_holds_what_query_and_stats_say_and_renders_in_chromium() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    for f in ["nDPI__1kxun.pcap", "nDPI__android.pcap"] {
        let o = replay(&common::fixtures().join(f), &store, &[]);
        assert!(o.status.success(), "{}", common::out(&o));
    }
    let s = store.to_str().unwrap();
    let page = d.path().join("report.html");
    let o = run(&[
        "report",
        "--store",
        s,
        "--out",
        page.to_str().unwrap(),
        "--interval",
        "1h",
        "not",
        "port",
        "9",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", common::out(&o));
    let html = std::fs::read_to_string(&page).unwrap();
    let recs = records(&store);
    let sum = |k: &str| recs.iter().map(|r| r[k].as_u64().unwrap()).sum::<u64>();
    let want = format!(
        "<p>{} flows, {} packets, {} bytes (both directions).</p>",
        recs.len(),
        sum("packets") + sum("rev_packets"),
        sum("bytes") + sum("rev_bytes")
    );
    assert!(html.contains(&want), "{want} not in the page");
    // The top source by bytes, as stats ranks it.
    let o = run(&[
        "stats", "--store", s, "--by", "src", "--order", "bytes", "--top", "1", "--format", "jsonl",
    ]);
    let top: serde_json::Value =
        serde_json::from_str(text(&o.stdout).lines().next().unwrap()).unwrap();
    let row = format!(
        "<td class=\"n\">1</td><td>{}</td>",
        top["key"].as_str().unwrap()
    );
    assert!(html.contains(&row), "{row} not in the page");
    assert!(
        html.contains("<svg") && html.matches("<rect").count() > 1,
        "a chart with bars"
    );
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("src="));
    assert!(html.contains("filter <code>not port 9</code>"));
    // The operator's text is data: a filter with markup characters is escaped.
    let o = run(&[
        "report",
        "--store",
        s,
        "--out",
        page.to_str().unwrap(),
        "packets",
        ">",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", common::out(&o));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("filter <code>packets &gt; 0</code>"),
        "escaped"
    );
    // An access entry for the page, as for every reading command.
    let o = run(&["audit", "--store", s, "--format", "jsonl"]);
    assert!(
        text(&o.stdout)
            .lines()
            .any(|l| l.contains("command=report")),
        "{}",
        text(&o.stdout)
    );

    let Some(browser) = common::chromium() else {
        common::can_run(Some("no chromium (scripts/deps.sh installs it)".into()));
        return;
    };
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("flow-report.png");
    let png = common::screenshot(browser, &page, &shot, 1200, 1600);
    // A blank page of one colour compresses to a few kilobytes; text, tables and a chart do not.
    assert!(
        png.len() > 30_000,
        "{} bytes: the page looks blank",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}
