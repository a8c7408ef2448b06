//! IPFIX (RFC 7011) messages from flow records, as biflows (RFC 5103) or as two one-way records.
//!
//! [`MessageBuilder`] is pure encoding: records in, complete messages out through a callback,
//! no I/O and no clock (the caller passes the export time), so the byte layout, the MTU split,
//! the sequence numbers and the template refresh can be tested exactly. [`Transport`] sends
//! the messages over UDP or TCP, and [`IpfixExporter`] joins the two and counts what went.
//!
//! Timestamps are flowStart/EndMilliseconds (152/153): nfcapd 1.7 reads those, and not the
//! nanosecond elements (156/157). Missing MAC addresses are sent as 00:00:00:00:00:00. For
//! ICMP, destinationTransportPort carries type * 256 + code, as flowkeep stores it and as
//! nfdump shows it.

mod exporter;
mod message;
mod transport;

pub use exporter::{IpfixExporter, IpfixTarget};
pub use message::{
    end_reason, ie, template_fields, BadMessageSize, Emit, Field, IpfixConfig, MessageBuilder,
    TemplateRefresh, MAX_MESSAGE, MESSAGE_HEADER_LEN, REVERSE_PEN, TEMPLATE_SET_ID,
    TEMPLATE_V4_BIFLOW, TEMPLATE_V4_ONEWAY, TEMPLATE_V6_BIFLOW, TEMPLATE_V6_ONEWAY, VERSION,
};
pub use transport::{Transport, TCP_TIMEOUT};
