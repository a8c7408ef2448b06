//! Filter expressions over flow records, in the words operators already use with tcpdump and
//! nfdump: `host 198.51.100.23 and not port 53`, `src net 10.0.0.0/8 && bytes > 1000000`.
//!
//! Primitives (`src` is the record's initiator side, `dst` its responder side; without either,
//! a primitive matches either side):
//!
//! - `[ip|ip6] [src|dst] host ADDR` — IPv4 or IPv6 address; a bare `ADDR` (or `src ADDR`) means
//!   the same.
//! - `[ip|ip6] [src|dst] net ADDR/LEN` — IPv4 or IPv6 prefix; bits beyond the prefix must be
//!   zero; tcpdump's `net 10/8`, `net 10.1` (/16) and `net 10.0.0.0 mask 255.0.0.0` too.
//! - `[tcp|udp|sctp] [src|dst] port N|NAME`, `... portrange A-B` — only records of
//!   port-carrying protocols (TCP, UDP, UDP-Lite, SCTP, DCCP) match, as in tcpdump; ICMP's
//!   type/code never does. NAME is looked up in `/etc/services` with libpcap's rule.
//! - A value alone after `and`/`or` takes the qualifiers of the host, net, port or portrange
//!   before it, as in tcpdump: `port 80 or 443`, `src host a or b`.
//! - `proto NAME|N`, or the name alone: `tcp`, `udp`, `icmp`, `icmp6`, `sctp`, `gre`, `esp`,
//!   `ah`, `igmp`; `ip` and `ip6` select the address family.
//! - `vlan N` — the outer or the inner VLAN id is N; `vlan 0` means untagged (no outer tag).
//! - `[src|dst] mac AA:BB:CC:DD:EE:FF` (also `ether host|src|dst MAC`).
//! - `packets OP N`, `bytes OP N` with OP one of `>`, `<`, `>=`, `<=`, `=` (`==`): the count is
//!   both directions summed (`packets + rev_packets`).
//! - `flags LETTERS` — letters as in tcpdump/nfdump flag strings (`CEUAPRSF`, dots ignored): the
//!   record matches when ANY of the listed flags was seen in either direction. (nfdump asks for
//!   all of them; `flags S and flags A` does that here.)
//! - `end idle|active|fin|rst|end|evicted` — why the record was closed.
//!
//! Combinators: `not`/`!`, `and`/`&&`, `or`/`||`, parentheses. Precedence is tcpdump's: `not`
//! binds tightest; `and` and `or` have EQUAL precedence and group left to right, so
//! `host a or host b and port 80` is `(host a or host b) and port 80`. Use parentheses.
//! An empty expression matches every record.

mod error;
mod expr;
mod matches;
mod parser;
mod select;
mod services;
mod tokens;
mod values;

pub use error::FilterError;

use crate::record::FlowFields;
use expr::Expr;
use std::fmt;
use std::net::IpAddr;

/// The longest expression accepted.
pub const MAX_TEXT_BYTES: usize = 8192;

/// A parsed filter expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    text: String,
    expr: Option<Expr>,
    named_ports: bool,
}

impl Filter {
    /// The filter that matches every record (an empty expression).
    pub fn all() -> Filter {
        Filter {
            text: String::new(),
            expr: None,
            named_ports: false,
        }
    }

    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        // It is recorded in the audit log with every answer: bounded like every text there.
        if text.len() > MAX_TEXT_BYTES {
            let head: String = text.chars().take(40).collect();
            return Err(error::error(
                &head,
                0,
                head.len(),
                format!(
                    "the expression is {} bytes, at most {MAX_TEXT_BYTES} are accepted",
                    text.len()
                ),
            ));
        }
        let (expr, named_ports) = parser::parse(text)?;
        Ok(Filter {
            text: text.to_string(),
            expr,
            named_ports,
        })
    }

    pub fn matches<R: FlowFields>(&self, r: &R) -> bool {
        self.expr.as_ref().is_none_or(|e| e.matches(r))
    }

    /// Addresses one of which every matching record has as its `src` or `dst`, for skipping
    /// blocks by their address summary; `None` when the filter does not pin any down (e.g.
    /// `port 53`, `not host a`, `host a or port 53`).
    pub fn required_addresses(&self) -> Option<Vec<IpAddr>> {
        self.expr.as_ref()?.required_addresses()
    }

    /// Whether a port is given by its service name (`port https`), whose number comes from
    /// this machine's `/etc/services`: a filter kept as text (a hold's) must not depend on it.
    pub fn names_services(&self) -> bool {
        self.named_ports
    }

    /// Whether the filter matches everything (an empty expression).
    pub fn is_all(&self) -> bool {
        self.expr.is_none()
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests;
