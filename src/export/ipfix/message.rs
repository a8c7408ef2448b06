//! Encoding: records in, complete messages out through a callback, with no I/O and no clock
//! (the caller passes the export time), so that the byte layout, the MTU split, the sequence
//! numbers and the template refresh can be tested exactly.

use crate::record::FlowRecord;
use std::net::IpAddr;

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

#[cfg(test)]
mod tests;
