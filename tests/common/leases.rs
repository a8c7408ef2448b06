//! tshark's DHCP reference (fixtures/pcaps/reference/FILE.leases.tsv) turned into the lease
//! observations flowkeep should store, following the semantics documented in
//! `record::LeaseObservation`: shared by the tests that store leases from replay and from live
//! capture.
#![allow(dead_code)]

use super::common::fixtures;
use flowkeep::record::LeaseObservation;
use flowkeep::store::Store;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::Path;

pub const NS: i64 = 1_000_000_000;

/// One message as tshark read it.
pub type Row = BTreeMap<String, String>;

pub fn rows(file: &str) -> Vec<Row> {
    let path = fixtures()
        .join("reference")
        .join(format!("{file}.leases.tsv"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t').chain(std::iter::repeat("")))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// `None` for a packet without a timestamp (a pcapng Simple Packet Block).
pub fn time_ns(epoch: &str) -> Option<i64> {
    if epoch.is_empty() {
        return None;
    }
    let (s, f) = epoch.split_once('.').unwrap_or((epoch, "0"));
    let frac = format!("{f:0<9}");
    Some(s.parse::<i64>().unwrap() * NS + frac[..9].parse::<i64>().unwrap())
}

fn first<'a>(r: &'a Row, k: &str) -> Option<&'a str> {
    r[k].split(',').next().filter(|v| !v.is_empty())
}

/// tshark prints a MAC as aa:bb:..; ours too.
pub fn mac(text: Option<&str>) -> Option<String> {
    text.map(str::to_string)
}

/// What an observation is compared by: (time, v6, message, address, mac, lease, hostname,
/// server).
pub type Key = (
    i64,
    bool,
    u8,
    IpAddr,
    Option<String>,
    Option<u32>,
    Option<String>,
    Option<IpAddr>,
);

pub fn key(l: &LeaseObservation) -> Key {
    (
        l.time,
        l.v6,
        l.message,
        l.address,
        l.client_mac.as_ref().map(flowkeep::record::format_mac),
        l.lease_secs,
        l.hostname.clone(),
        l.server,
    )
}

/// The observations the documented semantics make of tshark's rows.
pub fn expected(rows: &[Row]) -> Vec<Key> {
    let mut out = Vec::new();
    let unspec4: IpAddr = "0.0.0.0".parse().unwrap();
    for r in rows
        .iter()
        .filter(|r| r["malformed"].is_empty() && r["cap_len"] == r["len"])
    {
        let time = time_ns(&r["time_epoch"]);
        // Only messages that make an observation need a time; none of the fixtures' untimed
        // packets is one.
        let t = || time.unwrap_or_else(|| panic!("untimed observation: {r:?}"));
        let ip = |k: &str| first(r, k).map(|v| v.parse::<IpAddr>().unwrap());
        if let Some(ty) = first(r, "dhcp_type") {
            let ty: u8 = ty.parse().unwrap();
            let named = |a: Option<IpAddr>| a.filter(|a| !a.is_unspecified());
            let server = ip("server_id").or(if matches!(ty, 2 | 5 | 6) {
                ip("ip_src")
            } else {
                None
            });
            let hostname = first(r, "hostname").map(str::to_string);
            let address = match ty {
                5 => named(ip("yiaddr")),
                6 => Some(named(ip("ciaddr")).unwrap_or(unspec4)),
                7 => named(ip("ciaddr")),
                4 => named(ip("requested")),
                1 | 3 | 8 if hostname.is_some() => Some(
                    named(ip("requested"))
                        .or(named(ip("ciaddr")))
                        .unwrap_or(unspec4),
                ),
                _ => None,
            };
            if let Some(a) = address {
                out.push((
                    t(),
                    false,
                    ty,
                    a,
                    mac(first(r, "chaddr")),
                    first(r, "lease").map(|v| v.parse().unwrap()),
                    hostname,
                    server,
                ));
            }
        } else if let Some(ty) = r["v6_type"]
            .split(',')
            .next_back()
            .filter(|v| !v.is_empty())
        {
            let ty: u8 = ty.parse().unwrap();
            let from_server = matches!(ty, 2 | 7 | 10);
            let client = mac(first(r, if from_server { "eth_dst" } else { "eth_src" }));
            let hostname = first(r, "client_domain").map(str::to_string);
            let addrs: Vec<IpAddr> = r["iaaddr"]
                .split(',')
                .filter(|v| !v.is_empty())
                .map(|v| v.parse().unwrap())
                .collect();
            let valid: Vec<u32> = r["valid_lifetime"]
                .split(',')
                .filter(|v| !v.is_empty())
                .map(|v| v.parse().unwrap())
                .collect();
            let server = from_server.then(|| ip("ipv6_src")).flatten();
            let obs = |a: IpAddr, lease: Option<u32>| {
                (
                    t(),
                    true,
                    ty,
                    a,
                    client.clone(),
                    lease,
                    hostname.clone(),
                    server,
                )
            };
            match ty {
                7 => out.extend(addrs.iter().zip(&valid).map(|(&a, &v)| obs(a, Some(v)))),
                8 | 9 => out.extend(addrs.iter().map(|&a| obs(a, None))),
                1 | 3 | 5 | 6 if hostname.is_some() => out.push(obs(
                    addrs.first().copied().unwrap_or("::".parse().unwrap()),
                    None,
                )),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Every lease observation in the store.
pub fn stored(store: &Path) -> Vec<LeaseObservation> {
    let mut v = Vec::new();
    let st = Store::open(store)
        .unwrap()
        .scan_leases(None, None, |l| {
            v.push(l.clone());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert!(st.problems.is_empty(), "{:?}", st.problems);
    v
}

/// Messages between DHCP ports (67/68, 546/547: what flowkeep reads as DHCP; tshark reads
/// either port) that tshark calls malformed or that the file cut: flowkeep parses none of them.
pub fn malformed(rows: &[Row]) -> usize {
    let dhcp_ports = |r: &Row| {
        let p = |k: &str| first(r, k).and_then(|v| v.parse::<u16>().ok());
        let (s, d) = (p("sport"), p("dport"));
        let v4 = |x: Option<u16>| matches!(x, Some(67 | 68));
        let v6 = |x: Option<u16>| matches!(x, Some(546 | 547));
        (v4(s) && v4(d)) || (v6(s) && v6(d))
    };
    rows.iter()
        .filter(|r| dhcp_ports(r) && (!r["malformed"].is_empty() || r["cap_len"] != r["len"]))
        .count()
}
