//! The data contract between the stages: what a bidirectional flow record is. `flow` produces
//! these, `store` keeps them, `query` prints them; none of those needs to know the others.

pub mod community_id;
pub mod dhcp;
mod interfaces;

pub use dhcp::LeaseObservation;
pub use interfaces::InterfaceLabels;

use crate::time::Nanos;
use std::fmt;
use std::net::IpAddr;

pub type Mac = [u8; 6];

/// Why a record was closed. The numeric values are stored on disk: never renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EndReason {
    /// No packet for the idle timeout.
    Idle = 0,
    /// Open longer than the active timeout: a long flow becomes several records.
    Active = 1,
    /// Both sides sent FIN.
    Fin = 2,
    /// Either side sent RST.
    Rst = 3,
    /// The capture ended (end of file, or shutdown) while the flow was open.
    End = 4,
    /// The flow table was full (`--max-flows`): this flow, among those idle longest, was
    /// written out early to make room. A later packet of it starts a new record.
    Evicted = 5,
}

impl EndReason {
    pub const ALL: [EndReason; 6] = [
        EndReason::Idle,
        EndReason::Active,
        EndReason::Fin,
        EndReason::Rst,
        EndReason::End,
        EndReason::Evicted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::Active => "active",
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::End => "end",
            EndReason::Evicted => "evicted",
        }
    }

    pub fn from_u8(v: u8) -> Option<EndReason> {
        EndReason::ALL.get(v as usize).copied()
    }

    pub fn parse(s: &str) -> Option<EndReason> {
        EndReason::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// TCP flag bits as they appear in the TCP header's low byte (FIN = 0x01 … CWR = 0x80).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    /// nfdump-style letters, e.g. `.AP.SF` becomes "APSF"-like text: `CEUAPRSF` with dots.
    pub fn to_string(flags: u8) -> String {
        const LETTERS: [(u8, char); 8] = [
            (CWR, 'C'),
            (ECE, 'E'),
            (URG, 'U'),
            (ACK, 'A'),
            (PSH, 'P'),
            (RST, 'R'),
            (SYN, 'S'),
            (FIN, 'F'),
        ];
        LETTERS
            .iter()
            .map(|&(bit, c)| if flags & bit != 0 { c } else { '.' })
            .collect()
    }
}

/// One bidirectional flow record. "src" is the initiator: the sender of the first packet seen,
/// except that a SYN-ACK seen first makes its receiver the initiator. The `rev_*` counters are
/// the responder's direction. For ICMP/ICMPv6 the ports are 0 and `dport = type * 256 + code`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FlowRecord {
    pub first: Nanos,
    pub last: Nanos,
    pub proto: u8,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    /// Outer VLAN id (802.1ad S-tag or the only 802.1Q tag); 0 = untagged.
    pub vlan: u16,
    /// Inner VLAN id (QinQ C-tag); 0 = none.
    pub inner_vlan: u16,
    /// Which capture source saw the flow: the index of its `--interface` (or input file) in
    /// the order given, 0 when there is one. Segments map indexes to names.
    pub interface: u16,
    pub src_mac: Option<Mac>,
    pub dst_mac: Option<Mac>,
    pub packets: u64,
    /// IP-layer bytes (IPv4 total length, IPv6 payload length + 40), as NetFlow/IPFIX count.
    pub bytes: u64,
    pub rev_packets: u64,
    pub rev_bytes: u64,
    pub tcp_flags: u8,
    pub rev_tcp_flags: u8,
    pub end: EndReason,
}

/// Read access to a record's fields, so that a query filter can be tested on a [`FlowRecord`]
/// or on a row of a block still in columns (`store::Row`): a scan tests the filter
/// before it builds records, and builds only the ones that match.
pub trait FlowFields {
    fn first(&self) -> Nanos;
    fn last(&self) -> Nanos;
    fn proto(&self) -> u8;
    fn src(&self) -> IpAddr;
    fn dst(&self) -> IpAddr;
    fn sport(&self) -> u16;
    fn dport(&self) -> u16;
    fn vlan(&self) -> u16;
    fn inner_vlan(&self) -> u16;
    fn src_mac(&self) -> Option<Mac>;
    fn dst_mac(&self) -> Option<Mac>;
    fn packets(&self) -> u64;
    fn bytes(&self) -> u64;
    fn rev_packets(&self) -> u64;
    fn rev_bytes(&self) -> u64;
    fn tcp_flags(&self) -> u8;
    fn rev_tcp_flags(&self) -> u8;
    fn end(&self) -> EndReason;
}

impl FlowFields for FlowRecord {
    fn first(&self) -> Nanos {
        self.first
    }
    fn last(&self) -> Nanos {
        self.last
    }
    fn proto(&self) -> u8 {
        self.proto
    }
    fn src(&self) -> IpAddr {
        self.src
    }
    fn dst(&self) -> IpAddr {
        self.dst
    }
    fn sport(&self) -> u16 {
        self.sport
    }
    fn dport(&self) -> u16 {
        self.dport
    }
    fn vlan(&self) -> u16 {
        self.vlan
    }
    fn inner_vlan(&self) -> u16 {
        self.inner_vlan
    }
    fn src_mac(&self) -> Option<Mac> {
        self.src_mac
    }
    fn dst_mac(&self) -> Option<Mac> {
        self.dst_mac
    }
    fn packets(&self) -> u64 {
        self.packets
    }
    fn bytes(&self) -> u64 {
        self.bytes
    }
    fn rev_packets(&self) -> u64 {
        self.rev_packets
    }
    fn rev_bytes(&self) -> u64 {
        self.rev_bytes
    }
    fn tcp_flags(&self) -> u8 {
        self.tcp_flags
    }
    fn rev_tcp_flags(&self) -> u8 {
        self.rev_tcp_flags
    }
    fn end(&self) -> EndReason {
        self.end
    }
}

pub fn format_mac(mac: &Mac) -> String {
    let mut s = String::with_capacity(17);
    // Writing to a String cannot fail.
    let _ = write_mac(&mut s, mac);
    s
}

/// [`format_mac`] into `out`: `aa:bb:cc:dd:ee:ff`.
pub fn write_mac(out: &mut impl fmt::Write, mac: &Mac) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, &b) in mac.iter().enumerate() {
        if i > 0 {
            out.write_char(':')?;
        }
        out.write_char(char::from(HEX[usize::from(b >> 4)]))?;
        out.write_char(char::from(HEX[usize::from(b & 15)]))?;
    }
    Ok(())
}

/// IANA protocol names for the common numbers; others print as the number.
pub fn proto_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        1 => "icmp",
        2 => "igmp",
        6 => "tcp",
        17 => "udp",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "icmp6",
        132 => "sctp",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_reason_codes_are_stable() {
        for e in EndReason::ALL {
            assert_eq!(EndReason::from_u8(e as u8), Some(e));
            assert_eq!(EndReason::parse(e.as_str()), Some(e));
        }
        assert_eq!(EndReason::from_u8(6), None);
        assert_eq!(EndReason::Rst as u8, 3);
        assert_eq!(EndReason::End as u8, 4);
        assert_eq!(EndReason::Evicted as u8, 5);
        assert_eq!(EndReason::parse("evicted"), Some(EndReason::Evicted));
    }

    #[test]
    fn flag_letters() {
        assert_eq!(tcp_flags::to_string(0x12), "...A..S.");
        assert_eq!(tcp_flags::to_string(0), "........");
    }

    #[test]
    fn mac_text() {
        assert_eq!(
            format_mac(&[0, 0x1b, 0x21, 0xa, 0xb, 0xff]),
            "00:1b:21:0a:0b:ff"
        );
    }
}
