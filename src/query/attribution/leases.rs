//! Who held an address, by the lease observations alone.
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
use std::collections::HashMap;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::attribution::fixtures::{obs, A, M1, M2, S};
    use std::net::Ipv4Addr;

    fn held_by(idx: &LeaseIndex, at: Nanos) -> Option<Mac> {
        match idx.holder(A, at) {
            LeaseAnswer::Held { assignment, .. } => assignment.client_mac,
            _ => None,
        }
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
}
