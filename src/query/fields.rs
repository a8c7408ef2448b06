//! `query --fields`: the chosen columns of a record, in the chosen order, for every format.

use super::{csv_field, proto_name, tcp_flag_text};
use crate::record::{community_id, FlowRecord};
use crate::time::{format_rfc3339, NANOS_PER_SEC};
use std::io::{self, Write};

/// The columns `query --fields` chooses from: CSV's, in its order.
pub const FIELDS: [&str; 24] = [
    "first",
    "last",
    "proto",
    "src",
    "sport",
    "dst",
    "dport",
    "vlan",
    "inner_vlan",
    "src_mac",
    "dst_mac",
    "packets",
    "bytes",
    "rev_packets",
    "rev_bytes",
    "tcp_flags",
    "rev_tcp_flags",
    "end",
    "community_id",
    "interface",
    "duration",
    "proto_name",
    "flags",
    "rev_flags",
];

/// Every field of [`FIELDS`] of one record, as JSON values (`--fields`: slower than the
/// hand-written lines, and only taken when fields are chosen).
pub(super) fn field_values(r: &FlowRecord, iface: &str) -> [serde_json::Value; 24] {
    use serde_json::Value;
    let mac = |m: &Option<crate::record::Mac>| {
        m.as_ref()
            .map_or(Value::Null, |m| Value::from(crate::record::format_mac(m)))
    };
    let span = r.last.saturating_sub(r.first).max(0);
    [
        Value::from(format_rfc3339(r.first)),
        Value::from(format_rfc3339(r.last)),
        Value::from(r.proto),
        Value::from(r.src.to_string()),
        Value::from(r.sport),
        Value::from(r.dst.to_string()),
        Value::from(r.dport),
        Value::from(r.vlan),
        Value::from(r.inner_vlan),
        mac(&r.src_mac),
        mac(&r.dst_mac),
        Value::from(r.packets),
        Value::from(r.bytes),
        Value::from(r.rev_packets),
        Value::from(r.rev_bytes),
        Value::from(r.tcp_flags),
        Value::from(r.rev_tcp_flags),
        Value::from(r.end.as_str()),
        Value::from(community_id::of_record(r)),
        Value::from(iface),
        // A string: nine exact decimals, which a JSON number would round.
        Value::from(format!(
            "{}.{:09}",
            span / NANOS_PER_SEC,
            span % NANOS_PER_SEC
        )),
        Value::from(proto_name(r.proto).unwrap_or("")),
        Value::from(tcp_flag_text(r.proto, r.tcp_flags)),
        Value::from(tcp_flag_text(r.proto, r.rev_tcp_flags)),
    ]
}

/// A value as CSV prints it: strings bare (quoted when they must be), null empty.
pub(super) fn csv_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => csv_field(s).into_owned(),
        v => plain_text(v),
    }
}

pub(super) fn plain_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// A table row of chosen fields: times and addresses wide, numbers narrow, two spaces between.
pub(super) fn selected_table_row(
    out: &mut impl Write,
    idx: &[usize],
    cells: &[&str],
) -> io::Result<()> {
    let mut line = String::new();
    for (&i, cell) in idx.iter().zip(cells) {
        let w = match FIELDS[i] {
            "first" | "last" => 30,
            "src" | "dst" | "community_id" => 16,
            "src_mac" | "dst_mac" => 17,
            _ => 9,
        };
        line.push_str(&format!("{cell:<w$}  "));
    }
    writeln!(out, "{}", line.trim_end())
}
