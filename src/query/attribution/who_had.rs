//! The answer of `flowkeep who-had`: the lease observations' answer, else the MACs seen on
//! flows with the address, with the capture's drops in the time the answer rests on.

use super::leases::{lease_end, message_name, observation_json, LeaseAnswer, LeaseIndex};
use crate::record::{format_mac, Mac};
use crate::store::{ScanStats, Store, StoreError};
use crate::time::{format_rfc3339, Nanos, NANOS_PER_SEC};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::ops::ControlFlow;

/// A MAC seen on flows with the address, in the fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowMac {
    pub mac: Mac,
    pub records: u64,
    pub first: Nanos,
    pub last: Nanos,
}

/// The MACs on the address's side of the flows with `addr` that overlap `[at − window,
/// at + window)`, most records first.
pub fn flow_macs(
    store: &Store,
    addr: IpAddr,
    at: Nanos,
    window: Nanos,
) -> Result<(Vec<FlowMac>, u64, ScanStats), StoreError> {
    let mut macs: BTreeMap<Mac, FlowMac> = BTreeMap::new();
    let mut flows = 0u64;
    let stats = store.scan_filtered(
        Some(at.saturating_sub(window)),
        Some(at.saturating_add(window)),
        Some(&[addr]),
        |_, r| {
            flows += 1;
            let sides = [(r.src, r.src_mac), (r.dst, r.dst_mac)];
            for (a, mac) in sides {
                if let (true, Some(mac)) = (a == addr, mac) {
                    let e = macs.entry(mac).or_insert(FlowMac {
                        mac,
                        records: 0,
                        first: r.first,
                        last: r.last,
                    });
                    e.records += 1;
                    e.first = e.first.min(r.first);
                    e.last = e.last.max(r.last);
                }
            }
            ControlFlow::Continue(())
        },
    )?;
    let mut v: Vec<FlowMac> = macs.into_values().collect();
    v.sort_by(|a, b| b.records.cmp(&a.records).then(a.mac.cmp(&b.mac)));
    Ok((v, flows, stats))
}

/// The answer of `flowkeep who-had`, as printed.
#[derive(Debug, Clone)]
pub struct WhoHad {
    pub address: IpAddr,
    pub at: Nanos,
    pub lease: LeaseAnswer,
    /// The flow fallback, when the leases did not answer: the window, the flows seen, the MACs.
    pub flows: Option<(Nanos, u64, Vec<FlowMac>)>,
    /// `--window`: how far around `at` flows were looked at.
    pub window: Nanos,
    /// MACs other than the answer's seen on flows with the address within the window: for a
    /// lease's answer, every flow MAC but the lease's client; for the fallback, all but the
    /// one on most flows.
    pub others: Vec<FlowMac>,
    /// Frames the capture reported dropped (kernel and interface, every handle) in the
    /// segments covering the time the answer rests on: from the lease's evidence (or `at −
    /// window`) to `at + window`. Not zero: a DHCP message that would change the answer (a
    /// release, a new assignment) may have been among them.
    pub drops: CaptureGap,
}

/// Drops reported by the segments overlapping `[from, until]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CaptureGap {
    pub from: Nanos,
    pub until: Nanos,
    pub frames_dropped: u64,
}

impl CaptureGap {
    fn of(store: &Store, from: Nanos, until: Nanos) -> Result<CaptureGap, StoreError> {
        let frames_dropped = store
            .segments()?
            .iter()
            .filter(|s| s.partition_start <= until && s.partition_end > from)
            .map(|s| {
                s.capture
                    .kernel_drops
                    .saturating_add(s.capture.interface_drops)
            })
            .fold(0u64, u64::saturating_add);
        Ok(CaptureGap {
            from,
            until,
            frames_dropped,
        })
    }
}

impl WhoHad {
    /// Answers from the lease observations, else from flows within `window` of `at`.
    pub fn ask(
        store: &Store,
        address: IpAddr,
        at: Nanos,
        window: Nanos,
    ) -> Result<(WhoHad, Vec<crate::store::ScanProblem>), StoreError> {
        let (index, stats) = LeaseIndex::load(store, at.checked_add(1))?;
        let mut problems = stats.problems;
        let lease = index.holder(address, at);
        // Flows are looked at either way: for the fallback's answer, and for other MACs that
        // claimed the address while a lease says who held it (a conflict, a spoof).
        let (macs, n, st) = flow_macs(store, address, at, window)?;
        problems.extend(st.problems);
        let (flows, others) = match &lease {
            LeaseAnswer::Held { assignment, .. } => {
                let client = assignment.client_mac;
                let others = macs.into_iter().filter(|m| Some(m.mac) != client);
                (None, others.collect())
            }
            _ => {
                let others = macs.get(1..).unwrap_or(&[]).to_vec();
                (Some((window, n, macs)), others)
            }
        };
        let evidence = match &lease {
            LeaseAnswer::Held { assignment, .. } | LeaseAnswer::Ended { assignment, .. } => {
                assignment.time
            }
            LeaseAnswer::Unknown => at,
        };
        let drops = CaptureGap::of(
            store,
            evidence.min(at.saturating_sub(window)),
            at.saturating_add(window),
        )?;
        Ok((
            WhoHad {
                address,
                at,
                lease,
                flows,
                window,
                others,
                drops,
            },
            problems,
        ))
    }

    /// `dhcp`, `flows` or `none`.
    pub fn source(&self) -> &'static str {
        match (&self.lease, &self.flows) {
            (LeaseAnswer::Held { .. }, _) => "dhcp",
            (_, Some((_, _, macs))) if !macs.is_empty() => "flows",
            _ => "none",
        }
    }

    pub fn known(&self) -> bool {
        self.source() != "none"
    }

    /// Whether a DHCP lease confirms the answer; an answer from the MACs on flows alone is a
    /// guess (`unconfirmed`).
    pub fn confirmed(&self) -> bool {
        self.source() == "dhcp"
    }

    /// The records the answer rests on, for the access log: the lease (1), or the flow records
    /// looked at.
    pub fn records(&self) -> u64 {
        match (&self.lease, &self.flows) {
            (LeaseAnswer::Held { .. }, _) => 1,
            (_, Some((_, n, _))) => *n,
            _ => 0,
        }
    }

    /// The MAC given as the answer: the lease's client, else the MAC on most flows.
    pub fn mac(&self) -> Option<Mac> {
        match (&self.lease, &self.flows) {
            (LeaseAnswer::Held { assignment, .. }, _) => assignment.client_mac,
            (_, Some((_, _, macs))) => macs.first().map(|m| m.mac),
            _ => None,
        }
    }

    /// Other MACs seen on flows with the address within the window, besides the answer's: two
    /// devices claimed the address (a conflict, a spoof, a lease that changed hands unseen).
    pub fn other_macs(&self) -> &[FlowMac] {
        &self.others
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "address": self.address.to_string(),
            "at": format_rfc3339(self.at),
            "source": self.source(),
            "mac": Value::Null,
            "hostname": Value::Null,
        });
        match &self.lease {
            LeaseAnswer::Held {
                assignment,
                hostname,
            } => {
                v["mac"] = json!(assignment.client_mac.as_ref().map(format_mac));
                v["hostname"] = json!(hostname.as_ref().map(|(h, _)| h));
                v["expires"] = json!(lease_end(assignment).map(format_rfc3339));
                v["lease"] = observation_json(assignment);
                if let Some((_, from)) = hostname {
                    v["hostname_from"] = observation_json(from);
                }
            }
            LeaseAnswer::Ended {
                assignment,
                reason,
                by,
            } => {
                v["last_lease"] = observation_json(assignment);
                v["last_lease_ended"] = json!(reason);
                if let Some(by) = by {
                    v["ended_by"] = observation_json(by);
                }
            }
            LeaseAnswer::Unknown => {}
        }
        if let Some((window, n, macs)) = &self.flows {
            if let Some(m) = macs.first() {
                v["mac"] = json!(format_mac(&m.mac));
            }
            v["window_secs"] = json!(window / NANOS_PER_SEC);
            v["flow_records"] = json!(n);
            v["flow_macs"] = macs
                .iter()
                .map(|m| {
                    json!({
                        "mac": format_mac(&m.mac),
                        "records": m.records,
                        "first": format_rfc3339(m.first),
                        "last": format_rfc3339(m.last),
                    })
                })
                .collect();
        }
        v["capture_drops"] = json!(self.drops.frames_dropped);
        v["confirmed"] = json!(self.confirmed());
        v["mac_locally_administered"] = json!(self.mac().map(|m| locally_administered(&m)));
        v["other_macs"] = self
            .other_macs()
            .iter()
            .map(|m| json!(format_mac(&m.mac)))
            .collect();
        v
    }

    /// Plain text for people: the answer, then the evidence.
    pub fn write_table(&self, out: &mut impl Write) -> io::Result<()> {
        let dash = |s: Option<String>| s.unwrap_or_else(|| "-".into());
        writeln!(out, "address    {}", self.address)?;
        writeln!(out, "at         {}", format_rfc3339(self.at))?;
        match &self.lease {
            LeaseAnswer::Held {
                assignment: a,
                hostname,
            } => {
                writeln!(out, "source     dhcp lease")?;
                writeln!(
                    out,
                    "mac        {}",
                    dash(a.client_mac.as_ref().map(format_mac))
                )?;
                writeln!(
                    out,
                    "hostname   {}",
                    dash(hostname.as_ref().map(|(h, _)| h.clone()))
                )?;
                writeln!(
                    out,
                    "evidence   {} {} at {} (xid {:#010x}), lease {}, server {}, expires {}",
                    if a.v6 { "DHCPv6" } else { "DHCPv4" },
                    message_name(a),
                    format_rfc3339(a.time),
                    a.xid,
                    a.lease_secs
                        .map_or("none (BOOTP)".into(), |s| format!("{s} s")),
                    dash(a.server.map(|s| s.to_string())),
                    dash(lease_end(a).map(format_rfc3339)),
                )?;
                if let Some((h, from)) = hostname {
                    if from != a {
                        writeln!(
                            out,
                            "hostname   '{h}' from {} at {}",
                            message_name(from),
                            format_rfc3339(from.time)
                        )?;
                    }
                }
            }
            LeaseAnswer::Ended {
                assignment: a,
                reason,
                ..
            } => writeln!(
                out,
                "lease      last {} at {} to {} ended: {reason}",
                message_name(a),
                format_rfc3339(a.time),
                dash(a.client_mac.as_ref().map(format_mac))
            )?,
            LeaseAnswer::Unknown => {
                writeln!(out, "lease      no DHCP assignment of this address seen")?
            }
        }
        if let Some((window, n, macs)) = &self.flows {
            writeln!(
                out,
                "source     {} (MACs on {n} flow records within ±{} s; the MAC of a flow is the \
                 link-layer neighbour, a router's for addresses behind one)",
                if macs.is_empty() { "none" } else { "flows" },
                window / NANOS_PER_SEC
            )?;
            for m in macs {
                writeln!(
                    out,
                    "mac        {}  {} records  {} .. {}",
                    format_mac(&m.mac),
                    m.records,
                    format_rfc3339(m.first),
                    format_rfc3339(m.last)
                )?;
            }
        }
        self.write_cautions(out)?;
        if self.drops.frames_dropped > 0 {
            writeln!(
                out,
                "caution    the capture dropped {} frames in the segments covering {} .. {}: a \
                 DHCP message that would change this answer may be among them",
                self.drops.frames_dropped,
                format_rfc3339(self.drops.from),
                format_rfc3339(self.drops.until)
            )?;
        }
        Ok(())
    }
}

impl WhoHad {
    /// What makes the answer less than it looks: no lease behind it, a MAC that is not the
    /// device's burnt-in one, other MACs with the same address.
    fn write_cautions(&self, out: &mut impl Write) -> io::Result<()> {
        if self.source() == "flows" {
            writeln!(
                out,
                "unconfirmed  no DHCP lease confirms this: the MAC is a guess from flows"
            )?;
        }
        if let Some(mac) = self.mac().filter(locally_administered) {
            writeln!(
                out,
                "caution    {} is locally administered (bit 0x02 of the first octet): \
                 randomised by the device or set by hand",
                format_mac(&mac)
            )?;
        }
        let others = self.other_macs();
        if !others.is_empty() {
            writeln!(
                out,
                "caution    other MACs claimed {} within ±{} s: {}",
                self.address,
                self.window / NANOS_PER_SEC,
                others
                    .iter()
                    .map(|m| format_mac(&m.mac))
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
        Ok(())
    }
}

/// Bit 0x02 of the first octet: a locally administered address, not one the maker assigned
/// (randomised for privacy by the device, or set by hand).
pub fn locally_administered(mac: &Mac) -> bool {
    mac[0] & 0x02 != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::attribution::fixtures::{obs, A, M1, M2, S};
    use crate::record::dhcp::v4;

    /// A flows-only answer is unconfirmed, names a locally administered MAC and the other MACs
    /// with the address; a lease's answer is confirmed and names flow MACs that are not its
    /// client's.
    #[test]
    fn who_had_says_what_makes_an_answer_a_guess() {
        use crate::store::{StoreWriter, WriterConfig};
        let t0: Nanos = 1_767_225_600 * S;
        let d = tempfile::tempdir().unwrap();
        let mut w = StoreWriter::create(WriterConfig::new(d.path())).unwrap();
        let burnt_in: Mac = [0, 0x1b, 0x21, 9, 9, 9];
        let flow = |i: u64, mac: Mac| {
            let mut r = crate::testing::sample(i);
            r.src = A;
            r.src_mac = Some(mac);
            r.first = t0 + 100 * S + i as Nanos * S;
            r.last = r.first + S;
            r
        };
        for (i, mac) in [(0, M1), (1, M1), (2, M2)] {
            w.append(&flow(i, mac)).unwrap();
        }
        w.append_lease(&obs(t0 + 1000 * S, v4::ACK, burnt_in, Some(86_400)))
            .unwrap();
        w.append(&flow(1000, burnt_in)).unwrap();
        w.append(&flow(1001, M2)).unwrap();
        w.finish().unwrap();
        let store = Store::open(d.path()).unwrap();
        let ask = |at: Nanos| WhoHad::ask(&store, A, at, 60 * S).unwrap().0;
        let table = |a: &WhoHad| {
            let mut text = Vec::new();
            a.write_table(&mut text).unwrap();
            String::from_utf8(text).unwrap()
        };
        // Before the lease: M1 on most flows, a guess, locally administered, M2 beside it.
        let a = ask(t0 + 101 * S);
        assert_eq!((a.source(), a.confirmed()), ("flows", false));
        assert_eq!(a.records(), 3);
        let v = a.to_json();
        assert_eq!(v["confirmed"], false);
        assert_eq!(v["mac"], format_mac(&M1));
        assert_eq!(v["mac_locally_administered"], true);
        assert_eq!(v["other_macs"], json!([format_mac(&M2)]));
        let t = table(&a);
        assert!(t.contains("unconfirmed"), "{t}");
        assert!(t.contains("is locally administered"), "{t}");
        assert!(
            t.contains(&format!(
                "other MACs claimed {A} within ±60 s: {}",
                format_mac(&M2)
            )),
            "{t}"
        );
        // After it: the lease answers, its MAC burnt in; M2 on a flow then is named.
        let a = ask(t0 + 1101 * S);
        assert_eq!((a.source(), a.confirmed(), a.records()), ("dhcp", true, 1));
        let v = a.to_json();
        assert_eq!(v["mac_locally_administered"], false);
        assert_eq!(v["other_macs"], json!([format_mac(&M2)]));
        let t = table(&a);
        assert!(
            !t.contains("unconfirmed") && !t.contains("locally administered"),
            "{t}"
        );
        assert!(t.contains("other MACs claimed"), "{t}");
        assert!(locally_administered(&[0x02, 0, 0, 0, 0, 0]));
        assert!(!locally_administered(&[0xfd, 0, 0, 0, 0, 0]));
    }

    /// Drops in the time an answer rests on are said with it; drops elsewhere are not.
    #[test]
    fn who_had_reports_the_captures_drops_behind_its_answer() {
        use crate::store::{CaptureStats, StoreWriter, WriterConfig};
        const HOUR: Nanos = 3600 * S;
        let t0: Nanos = 1_767_225_600 * S; // 2026-01-01T00:00:00Z, an hour boundary
        let d = tempfile::tempdir().unwrap();
        let mut w = StoreWriter::create(WriterConfig::new(d.path())).unwrap();
        // Hour 0: the assignment, and 7 frames lost. Hour 5: 1000 frames lost.
        w.append_lease(&obs(t0 + 10 * S, v4::ACK, M1, Some(86_400)))
            .unwrap();
        w.add_capture_stats(&CaptureStats {
            kernel_drops: 5,
            interface_drops: 2,
            ..CaptureStats::default()
        });
        w.seal_before(t0 + HOUR).unwrap();
        w.append_lease(&obs(t0 + 5 * HOUR + S, v4::ACK, M2, Some(60)))
            .unwrap();
        w.add_capture_stats(&CaptureStats {
            kernel_drops: 1000,
            ..CaptureStats::default()
        });
        w.finish().unwrap();
        let store = Store::open(d.path()).unwrap();
        let ask = |at: Nanos| WhoHad::ask(&store, A, at, 60 * S).unwrap().0;
        // At 02:00 the hour-0 lease answers: its evidence and the 7 frames lost with it.
        let a = ask(t0 + 2 * HOUR);
        assert_eq!(a.source(), "dhcp");
        assert_eq!(a.drops.frames_dropped, 7);
        assert_eq!(a.to_json()["capture_drops"], 7);
        let mut text = Vec::new();
        a.write_table(&mut text).unwrap();
        assert!(String::from_utf8(text)
            .unwrap()
            .contains("dropped 7 frames"));
        // At 05:00:30 the hour-5 assignment answers: only that hour's drops.
        assert_eq!(ask(t0 + 5 * HOUR + 30 * S).drops.frames_dropped, 1000);
        // At 03:00 with nothing dropped around it, no caution is printed.
        let quiet = WhoHad::ask(&store, "10.9.9.9".parse().unwrap(), t0 + 3 * HOUR, 60 * S)
            .unwrap()
            .0;
        assert_eq!(quiet.drops.frames_dropped, 0);
        let mut text = Vec::new();
        quiet.write_table(&mut text).unwrap();
        assert!(!String::from_utf8(text).unwrap().contains("caution"));
    }
}
