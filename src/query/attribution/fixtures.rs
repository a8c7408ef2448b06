//! Lease observations of one address by two clients, for the tests of every part.

use crate::record::{LeaseObservation, Mac};
use crate::time::{Nanos, NANOS_PER_SEC};
use std::net::{IpAddr, Ipv4Addr};

pub(super) const S: Nanos = NANOS_PER_SEC;
pub(super) const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));
pub(super) const M1: Mac = [2, 0, 0, 0, 0, 1];
pub(super) const M2: Mac = [2, 0, 0, 0, 0, 2];

pub(super) fn obs(time: Nanos, message: u8, mac: Mac, lease: Option<u32>) -> LeaseObservation {
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
