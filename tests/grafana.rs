//! contrib/grafana's dashboard and contrib/prometheus's alert rules name only metrics that
//! `/metrics` serves (rendered here as the endpoint renders them, every optional metric
//! present), and the alerts the operator needs are there. With Debian's prometheus package
//! installed, `promtool check rules` must accept the rules too (scripts/deps.sh installs it; under CI its
//! absence is a failure).

mod common;

use flowkeep::pipeline::metrics::{render, ExportTotals, Snapshot, StoreUsage};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Every metric name the endpoint serves, with the export and store metrics present.
fn served() -> BTreeSet<String> {
    let s = Snapshot {
        export: Some(ExportTotals { sent: 1, failed: 0 }),
        ..Snapshot::default()
    };
    let store = StoreUsage {
        bytes: 1,
        oldest_first: Some(0),
    };
    render(&s, "eth1", &store, 1)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

/// The `flowkeep_...` names in a text.
fn named(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("flowkeep_") {
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.insert(name);
    }
    out
}

fn contrib(path: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("contrib")
            .join(path),
    )
    .unwrap()
}

#[test]
fn the_dashboard_charts_only_served_metrics_and_most_of_them() {
    let served = served();
    let dash: serde_json::Value =
        serde_json::from_str(&contrib("grafana/flowkeep-dashboard.json")).unwrap();
    let mut exprs = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| named(e)).collect();
    let unknown: Vec<_> = used.difference(&served).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard names metrics not served: {unknown:?}"
    );
    let unused: Vec<_> = served.difference(&used).collect();
    assert!(unused.is_empty(), "served but not charted: {unused:?}");
}

#[test]
fn the_alert_rules_watch_drops_losses_retention_and_export() {
    let rules = contrib("prometheus/flowkeep-alerts.yml");
    let unknown: Vec<_> = named(&rules).difference(&served()).cloned().collect();
    assert!(
        unknown.is_empty(),
        "the rules name metrics not served: {unknown:?}"
    );
    for needed in [
        "flowkeep_kernel_drops_total",
        "flowkeep_interface_drops_total",
        "flowkeep_records_not_stored_total",
        "flowkeep_oldest_record_age_seconds",
        "flowkeep_export_records_failed_total",
    ] {
        assert!(
            rules
                .lines()
                .any(|l| l.trim_start().starts_with("expr:") && l.contains(needed)),
            "no alert on {needed}"
        );
    }
    let promtool = Command::new("promtool").arg("--version").output();
    if promtool.is_err() {
        common::skip_or_fail(
            "promtool check: promtool (Debian's prometheus package) is not installed",
        );
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/prometheus/flowkeep-alerts.yml");
    let o = Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
