//! The value words of primitives (addresses, prefixes, ports, MACs, protocol names, flag
//! letters, end reasons), each refused with a reason that names the accepted forms.

use super::error::FilterError;
use super::expr::Prefix;
use super::parser::Parser;
use super::services;
use super::tokens::Token;
use crate::record::{EndReason, Mac};
use std::net::IpAddr;

impl Parser<'_> {
    pub(super) fn address(&self, v: Token, s: &str) -> Result<IpAddr, FilterError> {
        s.parse::<IpAddr>().map_err(|_| {
            self.error_at(
                v,
                format!("'{s}' is not an IPv4 or IPv6 address (host names are not looked up)"),
            )
        })
    }

    pub(super) fn port(&self, v: Token, s: &str) -> Result<u16, FilterError> {
        s.parse::<u16>()
            .map_err(|_| self.error_at(v, format!("'{s}' is not a port number (0-65535)")))
    }

    /// A port number, or a service name of `/etc/services` (`https`) with the protocol the name
    /// restricts it to when no qualifier did (see [`services::port`]).
    pub(super) fn named_port(
        &mut self,
        v: Token,
        s: &str,
        qualifier: Option<u8>,
    ) -> Result<(u16, Option<u8>), FilterError> {
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return self.port(v, s).map(|p| (p, None));
        }
        match services::lookup(s, qualifier) {
            Ok(Some(found)) => {
                self.named_ports = true;
                Ok(found)
            }
            Ok(None) => Err(self.error_at(
                v,
                format!(
                    "'{s}' is not a port number (0-65535), nor a {}service name in {}",
                    qualifier.map_or(String::new(), |q| format!("{} ", proto_name(q))),
                    services::PATH
                ),
            )),
            Err(why) => Err(self.error_at(
                v,
                format!("'{s}' is not a port number, and service names cannot be looked up: {why}"),
            )),
        }
    }

    /// `net ADDR mask MASK` (IPv4 only, as tcpdump): the mask need not be contiguous.
    pub(super) fn masked(
        &self,
        v: Token,
        s: &str,
        m: Token,
        mask: &str,
    ) -> Result<Prefix, FilterError> {
        let net = abbreviated_v4(s)
            .map(|(a, _)| a)
            .or_else(|| s.parse::<std::net::Ipv4Addr>().ok().map(u32::from))
            .ok_or_else(|| {
                self.error_at(
                    v,
                    format!("'{s}' is not an IPv4 network address ('mask' is IPv4 only)"),
                )
            })?;
        let mask = mask
            .parse::<std::net::Ipv4Addr>()
            .map(u32::from)
            .map_err(|_| self.error_at(m, format!("'{mask}' is not an IPv4 netmask")))?;
        if net & !mask != 0 {
            return Err(self.error_at(v, format!("'{s}' has address bits set outside the mask")));
        }
        Ok(Prefix::V4 { net, mask })
    }
    pub(super) fn prefix(&self, v: Token, s: &str) -> Result<Prefix, FilterError> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        // tcpdump's abbreviations: `10/8`, `net 10.1` (= 10.1.0.0/16).
        let (a, implied) = match abbreviated_v4(addr) {
            Some((bits, parts)) => (IpAddr::V4(bits.into()), 8 * parts),
            None => {
                let a = addr.parse::<IpAddr>().map_err(|_| {
                    self.error_at(
                        v,
                        format!("'{addr}' is not an IPv4 or IPv6 network address"),
                    )
                })?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if a.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => implied,
            Some(l) => l.parse::<u32>().ok().filter(|&n| n <= max).ok_or_else(|| {
                self.error_at(v, format!("'/{l}' is not a prefix length (0-{max})"))
            })?,
        };
        let p = match a {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                let bits = u32::from(a);
                (bits & !mask == 0).then_some(Prefix::V4 { net: bits, mask })
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                let bits = u128::from(a);
                (bits & !mask == 0).then_some(Prefix::V6 { net: bits, mask })
            }
        };
        p.ok_or_else(|| {
            self.error_at(
                v,
                format!("'{s}' has address bits set beyond the /{len} prefix"),
            )
        })
    }
    pub(super) fn mac(&self, v: Token, s: &str) -> Result<Mac, FilterError> {
        let bad = || {
            self.error_at(
                v,
                format!("'{s}' is not a MAC address (six hex bytes, e.g. 00:1b:21:0a:0b:ff)"),
            )
        };
        let mut mac = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in &mut mac {
            let p = parts.next().ok_or_else(bad)?;
            if p.is_empty() || p.len() > 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(mac)
    }

    pub(super) fn port_range(&self, v: Token, s: &str) -> Result<(u16, u16), FilterError> {
        let Some((a, b)) = s.split_once('-') else {
            return Err(self.error_at(
                v,
                format!("'{s}' is not a port range; write it as LOW-HIGH, e.g. 1024-65535"),
            ));
        };
        let (lo, hi) = (self.port(v, a)?, self.port(v, b)?);
        if lo > hi {
            return Err(self.error_at(v, format!("port range '{s}' runs backwards ({lo} > {hi})")));
        }
        Ok((lo, hi))
    }

    /// A protocol number, or one of the names [`proto_number`] knows.
    pub(super) fn protocol(&self, v: Token, s: &str) -> Result<u8, FilterError> {
        match s.parse::<u8>() {
            Ok(n) => Ok(n),
            Err(_) => proto_number(s).ok_or_else(|| {
                self.error_at(
                    v,
                    format!(
                        "'{s}' is not a protocol: use tcp, udp, icmp, icmp6, sctp, gre, esp, ah, igmp or a number 0-255"
                    ),
                )
            }),
        }
    }

    pub(super) fn vlan(&self, v: Token, s: &str) -> Result<u16, FilterError> {
        s.parse::<u16>()
            .ok()
            .filter(|&n| n <= 4095)
            .ok_or_else(|| self.error_at(v, format!("'{s}' is not a VLAN id (0-4095)")))
    }

    /// The flag bits that the letters of `s` name, in the order of the TCP header's bits.
    pub(super) fn tcp_flags(&self, v: Token, s: &str) -> Result<u8, FilterError> {
        let mut bits = 0u8;
        for c in s.chars() {
            bits |= match c.to_ascii_uppercase() {
                'C' => 0x80,
                'E' => 0x40,
                'U' => 0x20,
                'A' => 0x10,
                'P' => 0x08,
                'R' => 0x04,
                'S' => 0x02,
                'F' => 0x01,
                '.' => 0,
                _ => {
                    return Err(self.error_at(
                        v,
                        format!("'{c}' in '{s}' is not a TCP flag letter (CEUAPRSF)"),
                    ))
                }
            };
        }
        if bits == 0 {
            return Err(self.error_at(v, format!("'{s}' names no TCP flag (CEUAPRSF)")));
        }
        Ok(bits)
    }

    pub(super) fn end_reason(&self, v: Token, s: &str) -> Result<EndReason, FilterError> {
        EndReason::parse(&s.to_ascii_lowercase()).ok_or_else(|| {
            self.error_at(
                v,
                format!("'{s}' is not an end reason: use idle, active, fin, rst, end or evicted"),
            )
        })
    }
}

/// One to three decimal bytes (`10`, `10.1`, `192.168.1`): the address they start, and how
/// many there are. A whole dotted quad is not abbreviated.
fn abbreviated_v4(s: &str) -> Option<(u32, u32)> {
    let parts: Vec<&str> = s.split('.').collect();
    if !(1..=3).contains(&parts.len()) {
        return None;
    }
    let mut bits = 0u32;
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        bits |= u32::from(p.parse::<u8>().ok()?) << (24 - 8 * i);
    }
    Some((bits, parts.len() as u32))
}

fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        132 => "sctp",
        _ => "",
    }
}

pub(super) fn proto_number(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmp6" | "icmpv6" => 58,
        "sctp" => 132,
        _ => return None,
    })
}
