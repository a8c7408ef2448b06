//! IPFIX (RFC 7011) messages from flow records, as biflows (RFC 5103) or as two one-way records.
//!
//! [`MessageBuilder`] is pure encoding: records in, complete messages out through a callback,
//! no I/O and no clock (the caller passes the export time), so the byte layout, the MTU split,
//! the sequence numbers and the template refresh can be tested exactly. [`Transport`] sends
//! the messages over UDP or TCP.
//!
//! Timestamps are flowStart/EndMilliseconds (152/153): nfcapd 1.7 reads those, and not the
//! nanosecond elements (156/157). Missing MAC addresses are sent as 00:00:00:00:00:00. For
//! ICMP, destinationTransportPort carries type * 256 + code, as flowkeep stores it and as
//! nfdump shows it.

use crate::record::FlowRecord;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

pub const VERSION: u16 = 10;
/// Private Enterprise Number of the RFC 5103 reverse information elements.
pub const REVERSE_PEN: u32 = 29305;
const ENTERPRISE_BIT: u16 = 0x8000;
pub const TEMPLATE_SET_ID: u16 = 2;
pub const MESSAGE_HEADER_LEN: usize = 16;
const SET_HEADER_LEN: usize = 4;
/// The largest IPFIX message (its length field is 16 bits).
pub const MAX_MESSAGE: usize = 65_535;

/// Template ids: one per address family and mode, so a collector never sees one id change shape.
pub const TEMPLATE_V4_BIFLOW: u16 = 256;
pub const TEMPLATE_V6_BIFLOW: u16 = 257;
pub const TEMPLATE_V4_ONEWAY: u16 = 258;
pub const TEMPLATE_V6_ONEWAY: u16 = 259;

/// IANA information element ids used here.
pub mod ie {
    pub const OCTET_DELTA_COUNT: u16 = 1;
    pub const PACKET_DELTA_COUNT: u16 = 2;
    pub const PROTOCOL_IDENTIFIER: u16 = 4;
    pub const TCP_CONTROL_BITS: u16 = 6;
    pub const SOURCE_TRANSPORT_PORT: u16 = 7;
    pub const SOURCE_IPV4_ADDRESS: u16 = 8;
    pub const DESTINATION_TRANSPORT_PORT: u16 = 11;
    pub const DESTINATION_IPV4_ADDRESS: u16 = 12;
    pub const SOURCE_IPV6_ADDRESS: u16 = 27;
    pub const DESTINATION_IPV6_ADDRESS: u16 = 28;
    pub const SOURCE_MAC_ADDRESS: u16 = 56;
    pub const VLAN_ID: u16 = 58;
    pub const DESTINATION_MAC_ADDRESS: u16 = 80;
    pub const FLOW_END_REASON: u16 = 136;
    pub const FLOW_START_MILLISECONDS: u16 = 152;
    pub const FLOW_END_MILLISECONDS: u16 = 153;
    pub const DOT1Q_CUSTOMER_VLAN_ID: u16 = 245;
}

/// One field specifier of a template: element id, length, and whether it is the RFC 5103
/// reverse of that element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub id: u16,
    pub len: u16,
    pub reverse: bool,
}

const fn f(id: u16, len: u16) -> Field {
    Field {
        id,
        len,
        reverse: false,
    }
}

const fn rev(id: u16, len: u16) -> Field {
    Field {
        id,
        len,
        reverse: true,
    }
}

/// The fields every template starts with, in record order; the address fields come between
/// the times and the ports.
const HEAD: [Field; 2] = [
    f(ie::FLOW_START_MILLISECONDS, 8),
    f(ie::FLOW_END_MILLISECONDS, 8),
];
const V4_ADDRS: [Field; 2] = [
    f(ie::SOURCE_IPV4_ADDRESS, 4),
    f(ie::DESTINATION_IPV4_ADDRESS, 4),
];
const V6_ADDRS: [Field; 2] = [
    f(ie::SOURCE_IPV6_ADDRESS, 16),
    f(ie::DESTINATION_IPV6_ADDRESS, 16),
];
const TAIL: [Field; 11] = [
    f(ie::SOURCE_TRANSPORT_PORT, 2),
    f(ie::DESTINATION_TRANSPORT_PORT, 2),
    f(ie::PROTOCOL_IDENTIFIER, 1),
    // unsigned16 since RFC 7125 (the high bits are the NS/reserved bits, always 0 here).
    // Biflow templates put the reverse flags just before this field: nfcapd 1.7 stores a
    // reverse tcpControlBits in the same place as the forward one, and the later field wins.
    f(ie::TCP_CONTROL_BITS, 2),
    f(ie::PACKET_DELTA_COUNT, 8),
    f(ie::OCTET_DELTA_COUNT, 8),
    f(ie::SOURCE_MAC_ADDRESS, 6),
    f(ie::DESTINATION_MAC_ADDRESS, 6),
    f(ie::VLAN_ID, 2),
    f(ie::DOT1Q_CUSTOMER_VLAN_ID, 2),
    f(ie::FLOW_END_REASON, 1),
];
/// The responder's flags and counters (RFC 5103 section 6.1): the flags go before the
/// forward tcpControlBits, the counters at the end.
const REVERSE_FLAGS: Field = rev(ie::TCP_CONTROL_BITS, 2);
const REVERSE_COUNTERS: [Field; 2] = [
    rev(ie::PACKET_DELTA_COUNT, 8),
    rev(ie::OCTET_DELTA_COUNT, 8),
];
/// Where in `TAIL` the forward tcpControlBits is.
const FLAGS_AT: usize = 3;

/// Record layouts: exactly what `write_record` writes, in that order.
pub fn template_fields(id: u16) -> Vec<Field> {
    let (addrs, biflow) = match id {
        TEMPLATE_V4_BIFLOW => (&V4_ADDRS, true),
        TEMPLATE_V6_BIFLOW => (&V6_ADDRS, true),
        TEMPLATE_V4_ONEWAY => (&V4_ADDRS, false),
        _ => (&V6_ADDRS, false),
    };
    let mut v = Vec::with_capacity(18);
    v.extend_from_slice(&HEAD);
    v.extend_from_slice(addrs);
    if biflow {
        v.extend_from_slice(&TAIL[..FLAGS_AT]);
        v.push(REVERSE_FLAGS);
        v.extend_from_slice(&TAIL[FLAGS_AT..]);
        v.extend_from_slice(&REVERSE_COUNTERS);
    } else {
        v.extend_from_slice(&TAIL);
    }
    v
}

const fn fields_len(fields: &[Field]) -> usize {
    let mut sum = 0;
    let mut i = 0;
    while i < fields.len() {
        sum += fields[i].len as usize;
        i += 1;
    }
    sum
}

/// Bytes of one data record per template; constants, as this is asked once per record.
fn record_len(id: u16) -> usize {
    const COMMON: usize = fields_len(&HEAD) + fields_len(&TAIL);
    const V4: usize = COMMON + fields_len(&V4_ADDRS);
    const V6: usize = COMMON + fields_len(&V6_ADDRS);
    const BACK: usize = fields_len(&REVERSE_COUNTERS) + REVERSE_FLAGS.len as usize;
    match id {
        TEMPLATE_V4_BIFLOW => V4 + BACK,
        TEMPLATE_V6_BIFLOW => V6 + BACK,
        TEMPLATE_V4_ONEWAY => V4,
        _ => V6,
    }
}

/// Which template a record is sent with.
fn template_for(ip: &IpAddr, biflow: bool) -> u16 {
    match (ip.is_ipv4(), biflow) {
        (true, true) => TEMPLATE_V4_BIFLOW,
        (false, true) => TEMPLATE_V6_BIFLOW,
        (true, false) => TEMPLATE_V4_ONEWAY,
        (false, false) => TEMPLATE_V6_ONEWAY,
    }
}

/// When templates go out again on a connectionless transport (RFC 7011 section 8.4: UDP
/// collectors that start late, or restart, learn them from the next refresh).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateRefresh {
    /// Once per transport session: TCP.
    Once,
    /// Again in the first message after `seconds` of export time or `messages` messages since
    /// they last went out, whichever comes first.
    Every { seconds: u32, messages: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpfixConfig {
    pub observation_domain: u32,
    /// Largest message, in bytes of IPFIX message (not counting UDP/IP headers).
    pub max_message: usize,
    /// RFC 5103 biflow records; false: one record per direction that saw packets.
    pub biflow: bool,
    pub refresh: TemplateRefresh,
}

impl IpfixConfig {
    pub const DEFAULT_MAX_MESSAGE: usize = 1400;

    pub fn udp() -> IpfixConfig {
        IpfixConfig {
            observation_domain: 0,
            max_message: Self::DEFAULT_MAX_MESSAGE,
            biflow: true,
            refresh: TemplateRefresh::Every {
                seconds: 60,
                messages: 100,
            },
        }
    }

    pub fn tcp() -> IpfixConfig {
        IpfixConfig {
            refresh: TemplateRefresh::Once,
            ..IpfixConfig::udp()
        }
    }

    /// The smallest message that holds the header, the templates and one record of each kind.
    pub fn min_message(biflow: bool) -> usize {
        let ids = template_ids(biflow);
        let largest = ids.iter().map(|&id| record_len(id)).max().unwrap_or(0);
        MESSAGE_HEADER_LEN + template_set_len(biflow) + SET_HEADER_LEN + largest
    }
}

fn template_ids(biflow: bool) -> [u16; 2] {
    if biflow {
        [TEMPLATE_V4_BIFLOW, TEMPLATE_V6_BIFLOW]
    } else {
        [TEMPLATE_V4_ONEWAY, TEMPLATE_V6_ONEWAY]
    }
}

fn template_set_len(biflow: bool) -> usize {
    SET_HEADER_LEN
        + template_ids(biflow)
            .iter()
            .map(|&id| {
                4 + template_fields(id)
                    .iter()
                    .map(|f| if f.reverse { 8 } else { 4 })
                    .sum::<usize>()
            })
            .sum::<usize>()
}

#[derive(Debug, thiserror::Error)]
#[error("IPFIX message size {size} is out of range: it must be from {min} (header, templates and one record) to {MAX_MESSAGE} bytes")]
pub struct BadMessageSize {
    pub size: usize,
    pub min: usize,
}

/// Builds messages record by record. A message is completed and handed out when the next record
/// does not fit, or on [`MessageBuilder::flush`]; the buffer is reused, so encoding allocates
/// nothing after the first message.
pub struct MessageBuilder {
    cfg: IpfixConfig,
    buf: Vec<u8>,
    /// Template id and byte offset of the data set being filled.
    set: Option<(u16, usize)>,
    records_in_message: u32,
    flows_in_message: u32,
    /// Data records sent before the message being built (RFC 7011 section 3.1), modulo 2^32.
    sequence: u32,
    templates_due: bool,
    templates_sent_at: u32,
    messages_since_templates: u32,
    export_time: u32,
    templates: Vec<u8>,
}

/// Receives each complete message and the number of flow records it completes (one-way mode: a
/// flow counts with the message holding its last data record).
pub type Emit<'a> = &'a mut dyn FnMut(&[u8], u32);

impl MessageBuilder {
    pub fn new(cfg: IpfixConfig) -> Result<MessageBuilder, BadMessageSize> {
        let min = IpfixConfig::min_message(cfg.biflow);
        if cfg.max_message < min || cfg.max_message > MAX_MESSAGE {
            return Err(BadMessageSize {
                size: cfg.max_message,
                min,
            });
        }
        let mut templates = Vec::with_capacity(template_set_len(cfg.biflow));
        write_template_set(&mut templates, cfg.biflow);
        Ok(MessageBuilder {
            cfg,
            buf: Vec::with_capacity(cfg.max_message),
            set: None,
            records_in_message: 0,
            flows_in_message: 0,
            sequence: 0,
            templates_due: true,
            templates_sent_at: 0,
            messages_since_templates: 0,
            export_time: 0,
            templates,
        })
    }

    pub fn config(&self) -> &IpfixConfig {
        &self.cfg
    }

    /// The sequence number the next message will carry.
    pub fn sequence(&self) -> u32 {
        self.sequence.wrapping_add(self.records_in_message)
    }

    /// A message holding only the template set, for the start of a new TCP connection when
    /// the next data message does not carry them. Its export time and sequence number are
    /// those of the data message that follows (it holds no data record).
    pub fn templates_only(&self, next: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(MESSAGE_HEADER_LEN + self.templates.len());
        m.extend_from_slice(&VERSION.to_be_bytes());
        m.extend_from_slice(&((MESSAGE_HEADER_LEN + self.templates.len()) as u16).to_be_bytes());
        m.extend_from_slice(next.get(4..12).unwrap_or(&[0; 8]));
        m.extend_from_slice(&self.cfg.observation_domain.to_be_bytes());
        m.extend_from_slice(&self.templates);
        m
    }

    /// Whether a complete message starts with the template set.
    pub fn carries_templates(msg: &[u8]) -> bool {
        msg.get(MESSAGE_HEADER_LEN..MESSAGE_HEADER_LEN + 2) == Some(&TEMPLATE_SET_ID.to_be_bytes())
    }

    /// Data records in the message being built.
    pub fn pending_records(&self) -> u32 {
        self.records_in_message
    }

    /// Adds a flow record: one data record (biflow), or one per direction that saw packets.
    /// `export_time` is seconds since the epoch, used if this starts a new message.
    pub fn add(&mut self, r: &FlowRecord, export_time: u32, emit: Emit<'_>) {
        if self.cfg.biflow {
            self.add_one(r, Direction::Biflow, export_time, emit);
        } else {
            self.add_one(r, Direction::Initiator, export_time, emit);
            if r.rev_packets > 0 {
                self.add_one(r, Direction::Responder, export_time, emit);
            }
        }
        self.flows_in_message += 1;
    }

    /// Completes the message being built, if it holds any record.
    pub fn flush(&mut self, emit: Emit<'_>) {
        if self.records_in_message == 0 {
            return;
        }
        self.close_set();
        let len = self.buf.len() as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
        self.buf[4..8].copy_from_slice(&self.export_time.to_be_bytes());
        self.buf[8..12].copy_from_slice(&self.sequence.to_be_bytes());
        let records = self.records_in_message;
        emit(&self.buf, self.flows_in_message);
        self.sequence = self.sequence.wrapping_add(records);
        self.records_in_message = 0;
        self.flows_in_message = 0;
        self.messages_since_templates = self.messages_since_templates.saturating_add(1);
        self.buf.clear();
    }

    fn add_one(&mut self, r: &FlowRecord, dir: Direction, export_time: u32, emit: Emit<'_>) {
        let template = template_for(&r.src, self.cfg.biflow);
        let len = record_len(template);
        let extra = match self.set {
            Some((id, _)) if id == template => len,
            _ => SET_HEADER_LEN + len,
        };
        if !self.buf.is_empty() && self.buf.len() + extra > self.cfg.max_message {
            self.flush(emit);
        }
        if self.buf.is_empty() {
            self.begin(export_time);
        }
        if !matches!(self.set, Some((id, _)) if id == template) {
            self.close_set();
            self.set = Some((template, self.buf.len()));
            self.buf.extend_from_slice(&template.to_be_bytes());
            self.buf.extend_from_slice(&[0, 0]);
        }
        write_record(&mut self.buf, r, dir);
        self.records_in_message += 1;
    }

    fn begin(&mut self, export_time: u32) {
        self.export_time = export_time;
        if let TemplateRefresh::Every { seconds, messages } = self.cfg.refresh {
            if export_time.saturating_sub(self.templates_sent_at) >= seconds
                || self.messages_since_templates >= messages
            {
                self.templates_due = true;
            }
        }
        self.buf.extend_from_slice(&VERSION.to_be_bytes());
        // Length, export time and sequence number are filled in when the message is complete.
        self.buf.extend_from_slice(&[0; 10]);
        self.buf
            .extend_from_slice(&self.cfg.observation_domain.to_be_bytes());
        if self.templates_due {
            self.buf.extend_from_slice(&self.templates);
            self.templates_due = false;
            self.templates_sent_at = export_time;
            self.messages_since_templates = 0;
        }
    }

    fn close_set(&mut self) {
        if let Some((_, start)) = self.set.take() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Biflow,
    Initiator,
    Responder,
}

fn write_template_set(out: &mut Vec<u8>, biflow: bool) {
    let start = out.len();
    out.extend_from_slice(&TEMPLATE_SET_ID.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    for id in template_ids(biflow) {
        let fields = template_fields(id);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&(fields.len() as u16).to_be_bytes());
        for f in fields {
            let id = if f.reverse {
                f.id | ENTERPRISE_BIT
            } else {
                f.id
            };
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&f.len.to_be_bytes());
            if f.reverse {
                out.extend_from_slice(&REVERSE_PEN.to_be_bytes());
            }
        }
    }
    let len = (out.len() - start) as u16;
    out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// dateTimeMilliseconds: unsigned milliseconds since the epoch; times before 1970 become 0.
fn millis(ns: i64) -> u64 {
    u64::try_from(ns.div_euclid(1_000_000)).unwrap_or(0)
}

fn write_addr(out: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

/// One data record in the field order of [`template_fields`].
fn write_record(out: &mut Vec<u8>, r: &FlowRecord, dir: Direction) {
    let responder = matches!(dir, Direction::Responder);
    let (src, dst, sport, dport) = if responder {
        (&r.dst, &r.src, r.dport, r.sport)
    } else {
        (&r.src, &r.dst, r.sport, r.dport)
    };
    let (packets, bytes, flags) = if responder {
        (r.rev_packets, r.rev_bytes, r.rev_tcp_flags)
    } else {
        (r.packets, r.bytes, r.tcp_flags)
    };
    let (src_mac, dst_mac) = if responder {
        (r.dst_mac, r.src_mac)
    } else {
        (r.src_mac, r.dst_mac)
    };
    out.extend_from_slice(&millis(r.first).to_be_bytes());
    out.extend_from_slice(&millis(r.last).to_be_bytes());
    write_addr(out, src);
    write_addr(out, dst);
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.push(r.proto);
    if let Direction::Biflow = dir {
        out.extend_from_slice(&u16::from(r.rev_tcp_flags).to_be_bytes());
    }
    out.extend_from_slice(&u16::from(flags).to_be_bytes());
    out.extend_from_slice(&packets.to_be_bytes());
    out.extend_from_slice(&bytes.to_be_bytes());
    out.extend_from_slice(&src_mac.unwrap_or_default());
    out.extend_from_slice(&dst_mac.unwrap_or_default());
    out.extend_from_slice(&r.vlan.to_be_bytes());
    out.extend_from_slice(&r.inner_vlan.to_be_bytes());
    out.push(end_reason(r.end));
    if let Direction::Biflow = dir {
        out.extend_from_slice(&r.rev_packets.to_be_bytes());
        out.extend_from_slice(&r.rev_bytes.to_be_bytes());
    }
}

/// flowEndReason (IANA "flowEndReason" registry): 1 idle timeout, 2 active timeout, 3 end of
/// flow detected (FIN/RST), 4 forced end (capture ended), 5 lack of resources (table full).
pub fn end_reason(e: crate::record::EndReason) -> u8 {
    use crate::record::EndReason::*;
    match e {
        Idle => 1,
        Active => 2,
        Fin | Rst => 3,
        End => 4,
        Evicted => 5,
    }
}

/// Where messages go: a connected UDP socket, or a TCP stream reconnected on failure.
pub enum Transport {
    Udp(UdpSocket),
    Tcp {
        addr: SocketAddr,
        stream: Option<TcpStream>,
    },
}

/// How long a TCP connect or a blocked write may take before the collector counts as gone.
pub const TCP_TIMEOUT: Duration = Duration::from_secs(5);

impl Transport {
    pub fn udp(target: &str) -> io::Result<Transport> {
        let addr = resolve(target)?;
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(addr)?;
        Ok(Transport::Udp(socket))
    }

    /// Resolves the address only; the connection is made by [`Transport::connect`] or the first
    /// send.
    pub fn tcp(target: &str) -> io::Result<Transport> {
        Ok(Transport::Tcp {
            addr: resolve(target)?,
            stream: None,
        })
    }

    /// Opens the TCP connection if there is none. True when a new connection was made (a new
    /// transport session: templates and sequence numbers start again).
    pub fn connect(&mut self) -> io::Result<bool> {
        match self {
            Transport::Udp(_) => Ok(false),
            Transport::Tcp {
                stream: Some(_), ..
            } => Ok(false),
            Transport::Tcp { addr, stream } => {
                let s = TcpStream::connect_timeout(addr, TCP_TIMEOUT)?;
                s.set_write_timeout(Some(TCP_TIMEOUT))?;
                s.set_nodelay(true)?;
                *stream = Some(s);
                Ok(true)
            }
        }
    }

    /// Sends one message. A TCP error closes the connection; the next send reconnects.
    pub fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        match self {
            Transport::Udp(s) => s.send(msg).map(|_| ()),
            Transport::Tcp { stream, .. } => {
                let Some(s) = stream else {
                    return Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        "not connected to the collector",
                    ));
                };
                let r = s.write_all(msg);
                if r.is_err() {
                    *stream = None;
                }
                r
            }
        }
    }

    pub fn is_tcp(&self) -> bool {
        matches!(self, Transport::Tcp { .. })
    }
}

fn resolve(target: &str) -> io::Result<SocketAddr> {
    target.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{target}: no address found"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::EndReason;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4_record() -> FlowRecord {
        FlowRecord {
            first: 1_700_000_000_123_456_789,
            last: 1_700_000_001_987_654_321,
            proto: 6,
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            sport: 40000,
            dst: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            dport: 443,
            vlan: 100,
            inner_vlan: 7,
            interface: 0,
            src_mac: Some([0x02, 0, 0, 0, 0, 0x01]),
            dst_mac: None,
            packets: 10,
            bytes: 1500,
            rev_packets: 8,
            rev_bytes: 9000,
            tcp_flags: 0x1b,
            rev_tcp_flags: 0x12,
            end: EndReason::Fin,
        }
    }

    fn v6_record() -> FlowRecord {
        FlowRecord {
            src: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            dst: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
            proto: 17,
            rev_packets: 0,
            rev_bytes: 0,
            ..v4_record()
        }
    }

    /// Collects emitted messages.
    fn collect(b: &mut MessageBuilder, recs: &[FlowRecord], t: u32) -> Vec<(Vec<u8>, u32)> {
        let mut out = Vec::new();
        for r in recs {
            b.add(r, t, &mut |m, n| out.push((m.to_vec(), n)));
        }
        b.flush(&mut |m, n| out.push((m.to_vec(), n)));
        out
    }

    fn be16(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }
    fn be32(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// Walks a message's sets (RFC 7011 section 3.3): (set id, body) pairs.
    fn sets(msg: &[u8]) -> Vec<(u16, &[u8])> {
        let mut out = Vec::new();
        let mut at = MESSAGE_HEADER_LEN;
        while at < msg.len() {
            let id = be16(msg, at);
            let len = be16(msg, at + 2) as usize;
            assert!(len >= 4, "set length {len}");
            out.push((id, &msg[at + 4..at + len]));
            at += len;
        }
        assert_eq!(at, msg.len(), "sets end exactly at the message end");
        out
    }

    #[test]
    fn message_header_template_set_and_data_record_match_the_rfc_layout() {
        let mut cfg = IpfixConfig::tcp();
        cfg.observation_domain = 0x0102_0304;
        let mut b = MessageBuilder::new(cfg).unwrap();
        let msgs = collect(&mut b, &[v4_record()], 0x6553_f100);
        assert_eq!(msgs.len(), 1);
        let (msg, n) = &msgs[0];
        assert_eq!(*n, 1);
        assert!(MessageBuilder::carries_templates(msg));

        // RFC 7011 3.1: version 10, length, export time, sequence number, observation domain.
        #[rustfmt::skip]
        let header = [
            0x00, 0x0a,
            (msg.len() >> 8) as u8, msg.len() as u8,
            0x65, 0x53, 0xf1, 0x00,
            0x00, 0x00, 0x00, 0x00,
            0x01, 0x02, 0x03, 0x04,
        ];
        assert_eq!(&msg[..16], &header);

        // RFC 7011 3.3.2 / 3.4.1 / 3.2: set id 2, then per template: id, field count, then
        // per field: id (enterprise bit for reverse), length, [PEN 29305 per RFC 5103 6.1].
        #[rustfmt::skip]
        let v4_template: Vec<u8> = vec![
            0x01, 0x00, 0x00, 18,
            0x00, 152, 0x00, 8,
            0x00, 153, 0x00, 8,
            0x00, 8, 0x00, 4,
            0x00, 12, 0x00, 4,
            0x00, 7, 0x00, 2,
            0x00, 11, 0x00, 2,
            0x00, 4, 0x00, 1,
            0x80, 6, 0x00, 2, 0x00, 0x00, 0x72, 0x79,
            0x00, 6, 0x00, 2,
            0x00, 2, 0x00, 8,
            0x00, 1, 0x00, 8,
            0x00, 56, 0x00, 6,
            0x00, 80, 0x00, 6,
            0x00, 58, 0x00, 2,
            0x00, 245, 0x00, 2,
            0x00, 136, 0x00, 1,
            0x80, 2, 0x00, 8, 0x00, 0x00, 0x72, 0x79,
            0x80, 1, 0x00, 8, 0x00, 0x00, 0x72, 0x79,
        ];
        let s = sets(msg);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].0, 2);
        let v6_template_len = 4 + 15 * 4 + 3 * 8;
        assert_eq!(s[0].1.len(), v4_template.len() + v6_template_len);
        assert_eq!(&s[0].1[..v4_template.len()], &v4_template[..]);
        let v6 = &s[0].1[v4_template.len()..];
        assert_eq!(&v6[..4], &[0x01, 0x01, 0x00, 18]);
        assert_eq!(&v6[12..20], &[0x00, 27, 0x00, 16, 0x00, 28, 0x00, 16]);

        // The data set: id 256, then the record's fields in template order, network order.
        assert_eq!(s[1].0, 256);
        #[rustfmt::skip]
        let record: Vec<u8> = vec![
            // 1_700_000_000_123 ms, 1_700_000_001_987 ms
            0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b,
            0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x6f, 0xc3,
            192, 0, 2, 1,
            198, 51, 100, 7,
            0x9c, 0x40,
            0x01, 0xbb,
            6,
            0x00, 0x12,
            0x00, 0x1b,
            0, 0, 0, 0, 0, 0, 0, 10,
            0, 0, 0, 0, 0, 0, 0x05, 0xdc,
            0x02, 0, 0, 0, 0, 0x01,
            0, 0, 0, 0, 0, 0,
            0x00, 100,
            0x00, 7,
            3,
            0, 0, 0, 0, 0, 0, 0, 8,
            0, 0, 0, 0, 0, 0, 0x23, 0x28,
        ];
        assert_eq!(s[1].1, &record[..]);
        assert_eq!(1_700_000_000_123u64.to_be_bytes()[..], record[..8]);
        assert_eq!(1_700_000_001_987u64.to_be_bytes()[..], record[8..16]);
    }

    #[test]
    fn one_way_mode_sends_the_responder_as_its_own_record_and_skips_silent_ones() {
        let mut cfg = IpfixConfig::tcp();
        cfg.biflow = false;
        let mut b = MessageBuilder::new(cfg).unwrap();
        let msgs = collect(&mut b, &[v4_record(), v6_record()], 1);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].1, 2, "flows");
        let s = sets(&msgs[0].0);
        assert_eq!(
            b.sequence(),
            3,
            "two for the v4 flow, one for the silent-back v6 flow"
        );
        assert_eq!(s[1].0, TEMPLATE_V4_ONEWAY);
        assert_eq!(s[1].1.len(), 2 * record_len(TEMPLATE_V4_ONEWAY));
        let back = &s[1].1[record_len(TEMPLATE_V4_ONEWAY)..];
        assert_eq!(&back[16..24], &[198, 51, 100, 7, 192, 0, 2, 1]);
        assert_eq!(&back[24..28], &[0x01, 0xbb, 0x9c, 0x40]);
        assert_eq!(&back[29..31], &[0x00, 0x12]);
        assert_eq!(be32(back, 35), 8, "low half of packetDeltaCount");
        assert_eq!(&back[47..53], &[0; 6], "src mac: the responder's, unknown");
        assert_eq!(&back[53..59], &[0x02, 0, 0, 0, 0, 0x01]);
        assert_eq!(s[2].0, TEMPLATE_V6_ONEWAY);
    }

    #[test]
    fn messages_never_exceed_the_limit_and_sequence_numbers_count_data_records() {
        let mut cfg = IpfixConfig::udp();
        cfg.max_message = 512;
        cfg.refresh = TemplateRefresh::Every {
            seconds: 1_000,
            messages: 1_000,
        };
        let mut b = MessageBuilder::new(cfg).unwrap();
        let recs: Vec<FlowRecord> = (0..100)
            .map(|i| if i % 3 == 0 { v6_record() } else { v4_record() })
            .collect();
        let msgs = collect(&mut b, &recs, 5);
        assert!(msgs.len() > 10);
        let mut expected_seq = 0u32;
        let mut total = 0;
        for (i, (m, n)) in msgs.iter().enumerate() {
            assert!(m.len() <= 512, "message {i} is {} bytes", m.len());
            assert_eq!(be16(m, 2) as usize, m.len());
            assert_eq!(be32(m, 8), expected_seq, "message {i}");
            let data: usize = sets(m)
                .iter()
                .filter(|(id, _)| *id >= 256)
                .map(|(id, body)| body.len() / record_len(*id))
                .sum();
            assert_eq!(data as u32, *n);
            // Full: the next message's first record would not have fitted.
            if i + 1 < msgs.len() {
                assert!(m.len() + record_len(TEMPLATE_V4_BIFLOW) > 512 - 4);
            }
            expected_seq += n;
            total += n;
        }
        assert_eq!(total, 100);
        assert_eq!(b.sequence(), 100);
        // Only the first message carries templates (the refresh is far off).
        assert_eq!(sets(&msgs[0].0)[0].0, 2);
        assert!(msgs[1..].iter().all(|(m, _)| sets(m)[0].0 != 2));
    }

    #[test]
    fn sequence_numbers_wrap_modulo_2_32() {
        let mut b = MessageBuilder::new(IpfixConfig::tcp()).unwrap();
        b.sequence = u32::MAX - 1;
        let msgs = collect(&mut b, &[v4_record(), v4_record(), v4_record()], 1);
        assert_eq!(be32(&msgs[0].0, 8), u32::MAX - 1);
        assert_eq!(b.sequence(), 1);
    }

    #[test]
    fn udp_templates_are_resent_by_time_and_by_message_count() {
        let mut cfg = IpfixConfig::udp();
        cfg.refresh = TemplateRefresh::Every {
            seconds: 60,
            messages: 3,
        };
        let mut b = MessageBuilder::new(cfg).unwrap();
        let has_templates = |m: &[u8]| sets(m)[0].0 == TEMPLATE_SET_ID;
        let mut seen = Vec::new();
        // One message per flush; time 1000, 1010, 1020, 1030 (fourth: by count), ...
        for t in [1000, 1010, 1020, 1030, 1040, 1100, 1101] {
            b.add(&v4_record(), t, &mut |_, _| unreachable!());
            b.flush(&mut |m, _| seen.push(has_templates(m)));
        }
        assert_eq!(seen, [true, false, false, true, false, true, false]);
    }

    #[test]
    fn tcp_sends_templates_once_and_a_template_message_for_a_new_connection() {
        let mut b = MessageBuilder::new(IpfixConfig::tcp()).unwrap();
        let mut seen = Vec::new();
        let mut last = Vec::new();
        for t in [0, 10_000, 20_000] {
            b.add(&v4_record(), t, &mut |_, _| unreachable!());
            b.flush(&mut |m, _| {
                seen.push((sets(m)[0].0, be32(m, 8)));
                last = m.to_vec();
            });
        }
        assert_eq!(seen, [(2, 0), (256, 1), (256, 2)]);
        assert!(!MessageBuilder::carries_templates(&last));
        let t = b.templates_only(&last);
        assert_eq!(be16(&t, 2) as usize, t.len());
        assert_eq!(
            &t[4..12],
            &last[4..12],
            "export time and sequence of the next message"
        );
        let s = sets(&t);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, TEMPLATE_SET_ID);
        assert!(MessageBuilder::carries_templates(&t));
    }

    #[test]
    fn message_size_limits_are_checked() {
        let mut cfg = IpfixConfig::udp();
        cfg.max_message = 200;
        let e = MessageBuilder::new(cfg).err().unwrap();
        assert!(e.to_string().contains("200"), "{e}");
        cfg.max_message = IpfixConfig::min_message(true);
        let mut b = MessageBuilder::new(cfg).unwrap();
        let msgs = collect(&mut b, &[v6_record(), v6_record()], 0);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].0.len(), cfg.max_message);
        cfg.max_message = 70_000;
        assert!(MessageBuilder::new(cfg).is_err());
    }

    #[test]
    fn times_before_1970_are_sent_as_zero() {
        assert_eq!(millis(-1), 0);
        assert_eq!(millis(1_999_999), 1);
    }
}
