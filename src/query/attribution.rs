//! "Who had this address at that time?" From the DHCP lease observations in the store, and,
//! when they say nothing, from the MACs seen on flows with that address around that time.
//!
//! Lease semantics, as [`LeaseIndex::holder`] applies them: the holder of address A at time T
//! is the client of the latest *assignment* of A at or before T (DHCPv4 ACK or BOOTP reply,
//! DHCPv6 Reply with a valid lifetime above 0) when
//! - its lease covers T: `T < time + lease` (a BOOTP reply, or lease 0xffffffff, never ends),
//! - and nothing ended it in `(time, T]`: a RELEASE or DECLINE of A (DHCPv4 or DHCPv6) from
//!   the same client (or when either side's MAC is unknown), a DHCPv6 Reply giving A a valid
//!   lifetime of 0, or a DHCPv4 NAK to the same MAC.
//!
//! The hostname is the assignment's own, else the latest one the same MAC sent (DISCOVER,
//! REQUEST, INFORM, Solicit, Request, Renew, Rebind) from an hour before the assignment up to T.

use crate::record::dhcp::{v4, v6};
use crate::record::{format_mac, LeaseObservation, Mac};
use crate::store::{ScanStats, Store, StoreError};
use crate::time::{format_rfc3339, Nanos, NANOS_PER_SEC};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::net::IpAddr;
use std::ops::ControlFlow;

/// How far before an assignment a client's own message may name it.
const HOSTNAME_LEAD: Nanos = 3600 * NANOS_PER_SEC;

/// Lease observations of a store, indexed for lookups by address and by MAC.
#[derive(Debug, Default)]
pub struct LeaseIndex {
    /// Assignments and ends, per address, by time.
    by_addr: HashMap<IpAddr, Vec<LeaseObservation>>,
    /// NAKs (which name no address) and hostname hints, per client MAC, by time.
    by_mac: HashMap<Mac, Vec<LeaseObservation>>,
}

/// What the observations say about an address at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAnswer {
    /// The assignment that covers the time, and the hostname with the observation it came
    /// from (the assignment itself, or the client's own message).
    Held {
        assignment: LeaseObservation,
        hostname: Option<(String, LeaseObservation)>,
    },
    /// The latest assignment at or before the time no longer holds: `reason` says why.
    Ended {
        assignment: LeaseObservation,
        reason: String,
        by: Option<LeaseObservation>,
    },
    /// No assignment of the address at or before the time.
    Unknown,
}

pub fn is_assignment(l: &LeaseObservation) -> bool {
    if l.v6 {
        l.message == v6::REPLY && l.lease_secs.is_some_and(|s| s > 0)
    } else {
        l.message == v4::ACK || l.message == 0
    }
}

fn is_hint(l: &LeaseObservation) -> bool {
    l.hostname.is_some()
        && if l.v6 {
            matches!(
                l.message,
                v6::SOLICIT | v6::REQUEST | v6::RENEW | v6::REBIND
            )
        } else {
            matches!(l.message, v4::DISCOVER | v4::REQUEST | v4::INFORM)
        }
}

/// The message type's name, for people.
pub fn message_name(l: &LeaseObservation) -> &'static str {
    match (l.v6, l.message) {
        (false, 0) => "BOOTREPLY",
        (false, v4::DISCOVER) => "DISCOVER",
        (false, v4::OFFER) => "OFFER",
        (false, v4::REQUEST) => "REQUEST",
        (false, v4::DECLINE) => "DECLINE",
        (false, v4::ACK) => "ACK",
        (false, v4::NAK) => "NAK",
        (false, v4::RELEASE) => "RELEASE",
        (false, v4::INFORM) => "INFORM",
        (true, v6::SOLICIT) => "Solicit",
        (true, v6::ADVERTISE) => "Advertise",
        (true, v6::REQUEST) => "Request",
        (true, v6::CONFIRM) => "Confirm",
        (true, v6::RENEW) => "Renew",
        (true, v6::REBIND) => "Rebind",
        (true, v6::REPLY) => "Reply",
        (true, v6::RELEASE) => "Release",
        (true, v6::DECLINE) => "Decline",
        _ => "other",
    }
}

/// When the lease of an assignment ends (exclusive); `None`: never.
pub fn lease_end(l: &LeaseObservation) -> Option<Nanos> {
    match l.lease_secs {
        None | Some(u32::MAX) => None,
        Some(s) => Some(l.time.saturating_add(i64::from(s) * NANOS_PER_SEC)),
    }
}

fn same_client(a: &LeaseObservation, b: &LeaseObservation) -> bool {
    match (a.client_mac, b.client_mac) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

impl LeaseIndex {
    pub fn new(observations: impl IntoIterator<Item = LeaseObservation>) -> LeaseIndex {
        let mut idx = LeaseIndex::default();
        for l in observations {
            let by_mac = (l.message == v4::NAK && !l.v6) || is_hint(&l);
            if let (true, Some(mac)) = (by_mac, l.client_mac) {
                idx.by_mac.entry(mac).or_default().push(l.clone());
            }
            if !l.address.is_unspecified() && !is_hint(&l) {
                idx.by_addr.entry(l.address).or_default().push(l);
            }
        }
        for v in idx.by_addr.values_mut().chain(idx.by_mac.values_mut()) {
            v.sort_by_key(|l| l.time);
        }
        idx
    }

    /// Every lease observation of the store before `until` (all when `None`).
    pub fn load(
        store: &Store,
        until: Option<Nanos>,
    ) -> Result<(LeaseIndex, ScanStats), StoreError> {
        let mut all = Vec::new();
        let stats = store.scan_leases(None, until, |l| {
            all.push(l.clone());
            ControlFlow::Continue(())
        })?;
        Ok((LeaseIndex::new(all), stats))
    }

    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty() && self.by_mac.is_empty()
    }

    /// Who held `addr` at `at`, by the rules in the module documentation.
    pub fn holder(&self, addr: IpAddr, at: Nanos) -> LeaseAnswer {
        let Some(obs) = self.by_addr.get(&addr) else {
            return LeaseAnswer::Unknown;
        };
        let upto = obs.partition_point(|l| l.time <= at);
        let Some(a) = obs[..upto].iter().rev().find(|l| is_assignment(l)) else {
            return LeaseAnswer::Unknown;
        };
        let ended = |reason: String, by: Option<&LeaseObservation>| LeaseAnswer::Ended {
            assignment: a.clone(),
            reason,
            by: by.cloned(),
        };
        let after = obs[..upto].iter().filter(|l| l.time > a.time);
        for e in after {
            let ends = if e.v6 {
                matches!(e.message, v6::RELEASE | v6::DECLINE) && same_client(a, e)
                    || (e.message == v6::REPLY && e.lease_secs == Some(0))
            } else {
                matches!(e.message, v4::RELEASE | v4::DECLINE) && same_client(a, e)
            };
            if ends {
                return ended(
                    format!("{} at {}", message_name(e), format_rfc3339(e.time)),
                    Some(e),
                );
            }
        }
        if let Some(mac) = a.client_mac {
            let nak = self.by_mac.get(&mac).and_then(|v| {
                v.iter()
                    .find(|l| l.message == v4::NAK && !l.v6 && l.time > a.time && l.time <= at)
            });
            if let Some(n) = nak {
                return ended(format!("NAK at {}", format_rfc3339(n.time)), Some(n));
            }
        }
        if let Some(end) = lease_end(a) {
            if at >= end {
                return ended(format!("lease expired at {}", format_rfc3339(end)), None);
            }
        }
        let hostname = match &a.hostname {
            Some(h) => Some((h.clone(), a.clone())),
            None => a.client_mac.and_then(|mac| {
                let from = a.time.saturating_sub(HOSTNAME_LEAD);
                self.by_mac.get(&mac)?.iter().rev().find_map(|l| {
                    (is_hint(l) && l.time >= from && l.time <= at)
                        .then(|| Some((l.hostname.clone()?, l.clone())))
                        .flatten()
                })
            }),
        };
        LeaseAnswer::Held {
            assignment: a.clone(),
            hostname,
        }
    }
}

/// An observation as JSON evidence.
pub fn observation_json(l: &LeaseObservation) -> Value {
    json!({
        "time": format_rfc3339(l.time),
        "protocol": if l.v6 { "dhcpv6" } else { "dhcpv4" },
        "message": l.message,
        "message_name": message_name(l),
        "address": l.address.to_string(),
        "mac": l.client_mac.as_ref().map(format_mac),
        "hostname": l.hostname,
        "lease_secs": l.lease_secs,
        "server": l.server.map(|s| s.to_string()),
        "xid": format!("{:#010x}", l.xid),
    })
}

/// The `src_lease`/`dst_lease` object of `query --leases`: who held `addr` at `at` by the
/// lease observations, or `null`.
pub fn lease_at(index: &LeaseIndex, addr: IpAddr, at: Nanos) -> Value {
    match index.holder(addr, at) {
        LeaseAnswer::Held {
            assignment: a,
            hostname,
        } => json!({
            "mac": a.client_mac.as_ref().map(format_mac),
            "hostname": hostname.map(|(h, _)| h),
            "assigned": format_rfc3339(a.time),
            "message_name": message_name(&a),
            "lease_secs": a.lease_secs,
            "expires": lease_end(&a).map(format_rfc3339),
            "server": a.server.map(|s| s.to_string()),
        }),
        _ => Value::Null,
    }
}

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
        let flows = if matches!(lease, LeaseAnswer::Held { .. }) {
            None
        } else {
            let (macs, n, st) = flow_macs(store, address, at, window)?;
            problems.extend(st.problems);
            Some((window, n, macs))
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

/// Wraps the JSON-lines output of `query`: adds `src_lease` and `dst_lease` (who held `src`
/// and `dst` at the record's `first`, see [`lease_at`]) to every line.
pub struct LeaseAnnotator<W: Write> {
    index: LeaseIndex,
    out: W,
    line: Vec<u8>,
}

impl<W: Write> LeaseAnnotator<W> {
    pub fn new(index: LeaseIndex, out: W) -> LeaseAnnotator<W> {
        LeaseAnnotator {
            index,
            out,
            line: Vec::new(),
        }
    }

    /// Appends the two fields before the line's closing brace, so the record's own fields
    /// keep their order.
    fn annotate(&mut self) -> io::Result<()> {
        #[derive(serde::Deserialize)]
        struct Sides {
            first: String,
            src: IpAddr,
            dst: IpAddr,
        }
        let sides: Sides = serde_json::from_slice(&self.line).map_err(io::Error::other)?;
        let body = self
            .line
            .strip_suffix(b"}")
            .ok_or_else(|| io::Error::other("a JSON line that is not an object"))?;
        let first = crate::time::parse_time(&sides.first).map_err(io::Error::other)?;
        self.out.write_all(body)?;
        for (field, addr) in [("src_lease", sides.src), ("dst_lease", sides.dst)] {
            write!(self.out, ",\"{field}\":")?;
            serde_json::to_writer(&mut self.out, &lease_at(&self.index, addr, first))?;
        }
        self.out.write_all(b"}\n")
    }
}

impl<W: Write> Write for LeaseAnnotator<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for &b in buf {
            if b == b'\n' {
                self.annotate()?;
                self.line.clear();
            } else {
                self.line.push(b);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const S: Nanos = NANOS_PER_SEC;
    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));
    const M1: Mac = [2, 0, 0, 0, 0, 1];
    const M2: Mac = [2, 0, 0, 0, 0, 2];

    fn obs(time: Nanos, message: u8, mac: Mac, lease: Option<u32>) -> LeaseObservation {
        LeaseObservation {
            time,
            v6: false,
            message,
            address: A,
            client_mac: Some(mac),
            lease_secs: lease,
            hostname: None,
            server: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            xid: 1,
        }
    }

    fn held_by(idx: &LeaseIndex, at: Nanos) -> Option<Mac> {
        match idx.holder(A, at) {
            LeaseAnswer::Held { assignment, .. } => assignment.client_mac,
            _ => None,
        }
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

    #[test]
    fn latest_assignment_within_its_lease_unless_ended() {
        let idx = LeaseIndex::new([
            obs(100 * S, v4::ACK, M1, Some(60)),
            obs(200 * S, v4::ACK, M2, Some(600)),
            obs(300 * S, v4::RELEASE, M2, None),
            obs(400 * S, v4::ACK, M1, Some(600)),
            obs(500 * S, v4::NAK, M1, None),
        ]);
        assert_eq!(idx.holder(A, 99 * S), LeaseAnswer::Unknown);
        assert_eq!(held_by(&idx, 100 * S), Some(M1));
        assert_eq!(held_by(&idx, 159 * S), Some(M1));
        // Lease end is exclusive.
        assert!(matches!(
            idx.holder(A, 160 * S),
            LeaseAnswer::Ended { by: None, .. }
        ));
        assert_eq!(held_by(&idx, 299 * S), Some(M2));
        let LeaseAnswer::Ended { reason, .. } = idx.holder(A, 300 * S) else {
            panic!()
        };
        assert!(reason.starts_with("RELEASE"), "{reason}");
        assert_eq!(held_by(&idx, 450 * S), Some(M1));
        // The NAK carried no address (stored as 0.0.0.0): it ends M1's lease by MAC.
        let mut nak = obs(500 * S, v4::NAK, M1, None);
        nak.address = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let mut all: Vec<_> = [obs(400 * S, v4::ACK, M1, Some(600)), nak].into();
        let idx = LeaseIndex::new(all.drain(..));
        assert_eq!(held_by(&idx, 499 * S), Some(M1));
        assert!(matches!(idx.holder(A, 500 * S), LeaseAnswer::Ended { .. }));
    }

    #[test]
    fn release_by_another_client_does_not_end_and_bootp_never_expires() {
        let idx = LeaseIndex::new([
            obs(100 * S, 0, M1, None),
            obs(200 * S, v4::RELEASE, M2, None),
        ]);
        assert_eq!(held_by(&idx, 10_000_000 * S), Some(M1));
    }

    #[test]
    fn hostname_from_the_clients_own_request() {
        let mut req = obs(99 * S, v4::REQUEST, M1, None);
        req.hostname = Some("laptop".into());
        req.address = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let idx = LeaseIndex::new([req.clone(), obs(100 * S, v4::ACK, M1, Some(60))]);
        let LeaseAnswer::Held { hostname, .. } = idx.holder(A, 120 * S) else {
            panic!()
        };
        assert_eq!(hostname, Some(("laptop".into(), req)));
        // The lookup object of `query --leases`.
        let v = lease_at(&idx, A, 120 * S);
        assert_eq!(v["mac"], "02:00:00:00:00:01");
        assert_eq!(v["hostname"], "laptop");
        assert_eq!(lease_at(&idx, A, 200 * S), Value::Null);
    }

    #[test]
    fn annotator_adds_both_sides() {
        let idx = LeaseIndex::new([obs(100 * S, v4::ACK, M1, Some(60))]);
        let mut a = LeaseAnnotator::new(idx, Vec::new());
        let line = format!(
            "{{\"first\":\"{}\",\"src\":\"10.0.0.5\",\"dst\":\"192.0.2.1\"}}\n",
            format_rfc3339(110 * S)
        );
        a.write_all(line.as_bytes()).unwrap();
        let out: Value = serde_json::from_slice(&a.out).unwrap();
        assert_eq!(out["src_lease"]["mac"], "02:00:00:00:00:01");
        assert_eq!(out["dst_lease"], Value::Null);
    }
}
