//! tcpdump's filter idioms held to tcpdump itself: for each expression, the records flowkeep's
//! filter selects from a replay of a whole capture equal the records of a replay of what
//! `tcpdump -r FILE -w SUBSET EXPR` selected from it. The captures have neither fragments nor
//! VLAN tags, where a per-packet filter and a per-flow one rightly differ (a later fragment
//! carries no ports; tcpdump needs `vlan` to look inside a tag).

mod common;

use common::{fixtures, replay};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const CAPTURES: [&str; 3] = [
    "nDPI__1kxun.pcap",
    "nDPI__android.pcap",
    "nDPI__iphone.pcap",
];

/// Expressions that select whole flows: every packet of a flow matches in tcpdump or none does.
const WHOLE_FLOWS: [&str; 16] = [
    "tcp port 443",
    "udp port 53",
    "port https",
    "port http",
    "port domain",
    "tcp port http",
    "port 80 or 443",
    "tcp port 80 or 443",
    "tcp portrange 80-443",
    "portrange 1024-65535 and udp",
    "net 192.168",
    "net 192.168/16",
    "net 192.168.0.0 mask 255.255.0.0",
    "host 106.187.35.246 or 161.117.13.29 or 216.239.38.120",
    "ip host 192.168.2.1",
    "not net 192.168.2 and tcp port 80",
];

/// (proto, src, sport, dst, dport, first) → (packets, bytes, rev_packets, rev_bytes).
type Records = BTreeMap<(u64, String, u64, String, u64, String), (u64, u64, u64, u64)>;

fn query(store: &Path, expr: &str) -> Records {
    let words: Vec<&str> = expr.split_whitespace().collect();
    let mut out = Records::new();
    for r in common::query_jsonl(store, &words) {
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        let s = |k: &str| r[k].as_str().unwrap().to_string();
        let key = (
            n("proto"),
            s("src"),
            n("sport"),
            s("dst"),
            n("dport"),
            s("first"),
        );
        let e = out.entry(key).or_default();
        e.0 += n("packets");
        e.1 += n("bytes");
        e.2 += n("rev_packets");
        e.3 += n("rev_bytes");
    }
    out
}

/// The whole capture's store, and the store of tcpdump's selection by `expr`.
fn stores(capture: &Path, expr: &str, dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let whole = dir.join("whole");
    if !whole.exists() {
        let o = replay(capture, &whole, &[]);
        assert!(o.status.success(), "{}", common::out(&o));
    }
    let name = expr.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let subset = dir.join(format!("{name}.pcap"));
    let o = Command::new("tcpdump")
        .args([
            "-r",
            capture.to_str().unwrap(),
            "-w",
            subset.to_str().unwrap(),
            expr,
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "tcpdump {expr}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let selected = dir.join(format!("{name}.store"));
    let o = replay(&subset, &selected, &[]);
    assert!(o.status.success(), "{}", common::out(&o));
    (whole, selected)
}

fn tcpdump_missing() -> Option<String> {
    let found = Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    (!found).then(|| "tcpdump is not installed (scripts/deps.sh installs it)".to_string())
}

#[test]
fn whole_flow_idioms_select_what_tcpdump_selects() {
    if !common::can_run(tcpdump_missing()) {
        return;
    }
    for c in CAPTURES {
        let capture = fixtures().join(c);
        let dir = tempfile::tempdir().unwrap();
        for expr in WHOLE_FLOWS {
            let (whole, selected) = stores(&capture, expr, dir.path());
            let ours = query(&whole, expr);
            let theirs = query(&selected, "");
            assert_eq!(
                ours, theirs,
                "{c}: '{expr}': flowkeep's selection against tcpdump's"
            );
        }
    }
    // The expressions select something: a test of empty sets would prove nothing.
    let dir = tempfile::tempdir().unwrap();
    let capture = fixtures().join(CAPTURES[0]);
    let (whole, _) = stores(&capture, "port http", dir.path());
    for expr in [
        "tcp port 80 or 443",
        "port http",
        "net 192.168",
        "host 106.187.35.246 or 161.117.13.29",
    ] {
        assert!(
            query(&whole, expr).len() > 1,
            "{expr} selects more than one record of {}",
            CAPTURES[0]
        );
    }
}

/// `udp dst port 53`: tcpdump takes the packets sent to port 53, flowkeep the records whose
/// responder is port 53. They agree on every flow whose first packet in the capture went to the
/// responder; a flow the capture joins in its middle with a packet from port 53 (or 80, 443) has
/// that side as its initiator in flowkeep, as in every flow meter, and is left out of the
/// comparison (the test counts them, and they must be few).
#[test]
fn directional_idioms_select_the_initiator_side_tcpdump_selects() {
    if !common::can_run(tcpdump_missing()) {
        return;
    }
    for c in CAPTURES {
        let capture = fixtures().join(c);
        let dir = tempfile::tempdir().unwrap();
        for expr in [
            "udp dst port 53",
            "udp dst port domain",
            "tcp dst port 80 or 443",
            "tcp dst portrange 1-1023",
        ] {
            let (whole, selected) = stores(&capture, expr, dir.path());
            // Flows whose initiator in flowkeep is the other end: (proto, src, sport, dst, dport)
            // of every whole-capture record, reversed.
            let reversed: std::collections::BTreeSet<_> = query(&whole, "")
                .into_keys()
                .map(|k| (k.0, k.3, k.4, k.1, k.2))
                .collect();
            let ours: BTreeMap<_, _> = query(&whole, expr)
                .into_iter()
                .map(|(k, v)| (k, (v.0, v.1)))
                .collect();
            let mut joined_midway = 0;
            let theirs: BTreeMap<_, _> = query(&selected, "")
                .into_iter()
                .filter(|(k, v)| {
                    assert_eq!((v.2, v.3), (0, 0), "{c}: '{expr}' kept one direction only");
                    let mid = reversed.contains(&(k.0, k.1.clone(), k.2, k.3.clone(), k.4));
                    joined_midway += usize::from(mid);
                    !mid
                })
                .map(|(k, v)| (k, (v.0, v.1)))
                .collect();
            assert!(!ours.is_empty(), "{c}: '{expr}' selects something");
            assert!(
                joined_midway * 10 <= theirs.len(),
                "{c}: '{expr}': {joined_midway} of {} flows joined midway",
                theirs.len()
            );
            assert_eq!(
                ours, theirs,
                "{c}: '{expr}': initiator sides against tcpdump's packets"
            );
        }
    }
}
