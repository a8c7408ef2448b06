//! DHCP as the store and attribution see it: the lease observations a capture makes, and the
//! protocol numbers and limits they are read by. `decode::dhcp` parses messages into these;
//! `store` keeps them and `query::attribution` answers from them, neither needing the parser.

use super::Mac;
use crate::time::Nanos;
use std::net::IpAddr;

pub const DHCP4_SERVER_PORT: u16 = 67;
pub const DHCP4_CLIENT_PORT: u16 = 68;
pub const DHCP6_CLIENT_PORT: u16 = 546;
pub const DHCP6_SERVER_PORT: u16 = 547;

/// DHCPv4 message types (option 53) that observations are made of.
pub mod v4 {
    pub const DISCOVER: u8 = 1;
    pub const OFFER: u8 = 2;
    pub const REQUEST: u8 = 3;
    pub const DECLINE: u8 = 4;
    pub const ACK: u8 = 5;
    pub const NAK: u8 = 6;
    pub const RELEASE: u8 = 7;
    pub const INFORM: u8 = 8;
    /// The highest type RFC 2132 and its successors (RFC 4388, 6926, 7724) define.
    pub const MAX_KNOWN: u8 = 18;
}

/// DHCPv6 message types (RFC 8415 section 7.3).
pub mod v6 {
    pub const SOLICIT: u8 = 1;
    pub const ADVERTISE: u8 = 2;
    pub const REQUEST: u8 = 3;
    pub const CONFIRM: u8 = 4;
    pub const RENEW: u8 = 5;
    pub const REBIND: u8 = 6;
    pub const REPLY: u8 = 7;
    pub const RELEASE: u8 = 8;
    pub const DECLINE: u8 = 9;
    pub const RECONFIGURE: u8 = 10;
    pub const INFORMATION_REQUEST: u8 = 11;
    pub const RELAY_FORW: u8 = 12;
    pub const RELAY_REPL: u8 = 13;
}

/// The longest hostname kept (a DNS name's limit; the store's too).
pub const MAX_HOSTNAME_BYTES: usize = 255;

/// What a DHCP exchange said about an address at one moment: an assignment (DHCPv4 ACK, BOOTP
/// reply, DHCPv6 Reply with an IA address), the end of one (DHCPv4 RELEASE, DECLINE, NAK;
/// DHCPv6 Release, Decline, or a Reply with valid lifetime 0), or a client naming itself
/// (DHCPv4 DISCOVER, REQUEST, INFORM; DHCPv6 Solicit, Request, Renew, Rebind, only when they
/// carry a hostname). `decode::dhcp` makes these, `store` keeps them next to the flows of the
/// same time, `query::attribution` answers "who had this address" from them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaseObservation {
    /// The packet's capture time.
    pub time: Nanos,
    /// DHCPv6 (RFC 8415 numbering of `message`) rather than DHCPv4 (RFC 2132 option 53).
    pub v6: bool,
    /// The DHCP message type (DHCPv4 option 53; DHCPv6 msg-type); 0 for a BOOTP reply
    /// without options.
    pub message: u8,
    /// The address assigned (yiaddr / IAADDR), released or declined (ciaddr / requested
    /// address / IAADDR), or requested. `0.0.0.0` / `::` when the message names none (a NAK).
    pub address: IpAddr,
    /// DHCPv4 chaddr (Ethernet only); DHCPv6 the link-layer address in a type 1 or 3 client
    /// DUID, else the Ethernet address of the client side of the packet. `None` under
    /// `--no-mac`.
    pub client_mac: Option<Mac>,
    /// DHCPv4 option 51 (0xffffffff = infinite); DHCPv6 IAADDR valid lifetime.
    pub lease_secs: Option<u32>,
    /// DHCPv4 option 12, DHCPv6 option 39 (FQDN, dotted). `None` under `--no-mac`.
    pub hostname: Option<String>,
    /// DHCPv4 option 54 (server identifier), else the packet's source for server messages;
    /// DHCPv6: the packet's source address of a Reply (the server or its relay).
    pub server: Option<IpAddr>,
    /// Transaction id (DHCPv6: 24 bits).
    pub xid: u32,
}
