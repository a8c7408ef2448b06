//! Reading records back out: filter expressions ([`filter`]), output formats for people
//! (table) and programs (CSV, JSON lines, each with the record's [`community_id`]), and
//! top-N statistics ([`stats`]).

mod fields;
pub mod filter;
pub mod report;
pub mod series;
pub mod stats;

pub use fields::FIELDS;
use fields::{csv_text, field_values, plain_text, selected_table_row};
pub use filter::{Filter, FilterError};

pub mod attribution;

use crate::record::{community_id, proto_name, tcp_flags, write_mac, FlowRecord, InterfaceLabels};
use crate::store::{ScanStats, Store, StoreError};
use crate::time::{format_rfc3339, write_rfc3339, Nanos, NANOS_PER_SEC};
#[cfg(test)]
use serde::Serialize;
use std::io::{self, Write};
use std::ops::ControlFlow;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
}

/// What a query read and what it found: the store's scan counters, and how many of the
/// records the scan passed on matched the filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryStats {
    pub scan: ScanStats,
    /// Records that matched the filter (and the time range).
    pub matched: u64,
}

impl QueryStats {
    /// Blocks in the segments read, whatever happened to them.
    pub fn blocks_total(&self) -> u64 {
        let s = &self.scan;
        s.blocks_read + s.blocks_skipped + s.blocks_skipped_by_address
    }

    /// The `--explain` report: what was read and what was skipped, and why.
    pub fn explain(&self, filter: &Filter) -> String {
        let s = &self.scan;
        let pct = |n: u64, of: u64| {
            if of == 0 {
                0.0
            } else {
                n as f64 * 100.0 / of as f64
            }
        };
        let index = match filter.required_addresses() {
            Some(a) => format!(
                "block address index used for {}",
                a.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "block address index not usable for this filter".to_string(),
        };
        let total = self.blocks_total();
        format!(
            "explain: filter: {}\n\
             explain: {index}\n\
             explain: segments: {} read, {} skipped by time\n\
             explain: blocks: {} read ({:.2} %), {} skipped by time, {} skipped by address, of {total} in the segments read\n\
             explain: records: {} passed the time and address checks, {} matched the filter\n",
            if filter.is_all() { "(none: every record)" } else { filter.text() },
            s.segments_read,
            s.segments_skipped,
            s.blocks_read,
            pct(s.blocks_read, total),
            s.blocks_skipped,
            s.blocks_skipped_by_address,
            s.records,
            self.matched,
        )
    }
}

/// Scans the records overlapping `[since, until)` that match `filter`, skipping the blocks
/// whose address summary rules out every address the filter requires. Records come in the
/// store's scan order (partition by partition), not sorted.
pub fn scan_matching(
    store: &Store,
    since: Option<Nanos>,
    until: Option<Nanos>,
    filter: &Filter,
    mut f: impl FnMut(Nanos, &FlowRecord) -> ControlFlow<()>,
) -> Result<QueryStats, StoreError> {
    scan_matching_named(store, since, until, filter, |p, _, r| f(p, r))
}

/// [`scan_matching`], also passing the interface names of the record's segment (see
/// [`Store::scan_with_interfaces`]).
pub fn scan_matching_named(
    store: &Store,
    since: Option<Nanos>,
    until: Option<Nanos>,
    filter: &Filter,
    mut f: impl FnMut(Nanos, &[String], &FlowRecord) -> ControlFlow<()>,
) -> Result<QueryStats, StoreError> {
    let required = filter.required_addresses();
    let mut matched = 0u64;
    let scan = store.scan_where(since, until, required.as_deref(), filter, |p, names, r| {
        matched += 1;
        f(p, names, r)
    })?;
    Ok(QueryStats { scan, matched })
}

/// What a counting command (stats, series, report) adds each matching record to.
pub trait Tally {
    fn add(&mut self, r: &FlowRecord);
}

/// Adds every record overlapping `[since, until)` that matches `filter` to `tally`, and
/// returns it with what the scan read and skipped.
pub fn tally<T: Tally>(
    store: &Store,
    since: Option<Nanos>,
    until: Option<Nanos>,
    filter: &Filter,
    mut tally: T,
) -> Result<(T, QueryStats), StoreError> {
    let q = scan_matching(store, since, until, filter, |_, r| {
        tally.add(r);
        ControlFlow::Continue(())
    })?;
    Ok((tally, q))
}

/// Prints the records overlapping `[since, until)` that match `filter`, in time order (by
/// `first`). Partitions are keyed by `first` and scanned in order, so sorting one partition at
/// a time sorts the whole answer while holding only one partition's matching records in memory.
pub fn print_matching<W: Write>(
    store: &Store,
    since: Option<Nanos>,
    until: Option<Nanos>,
    filter: &Filter,
    printer: &mut Printer<W>,
) -> Result<QueryStats, QueryError> {
    let mut pending: Vec<FlowRecord> = Vec::new();
    let mut partition = None;
    let mut output_error = None;
    let flush = |pending: &mut Vec<FlowRecord>, printer: &mut Printer<W>| {
        pending.sort_by_key(|r| (r.first, r.last));
        let result = pending.iter().try_for_each(|r| printer.print(r));
        pending.clear();
        result
    };
    let stats = scan_matching_named(store, since, until, filter, |p, names, r| {
        if partition != Some(p) {
            partition = Some(p);
            if let Err(e) = flush(&mut pending, printer) {
                output_error = Some(e);
                return ControlFlow::Break(());
            }
            // `--limit`: the first records in time order are all printed; this one would be
            // past them.
            if printer.is_full() {
                printer.truncated = true;
                return ControlFlow::Break(());
            }
        }
        // Segments number their interfaces each their own way: renumber into the printer's.
        let mut r = r.clone();
        r.interface = printer.interface_index(names, r.interface);
        pending.push(r);
        ControlFlow::Continue(())
    })?;
    if let Some(e) = output_error {
        return Err(e.into());
    }
    flush(&mut pending, printer)?;
    Ok(stats)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Jsonl,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Table, Format::Csv, Format::Jsonl];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }

    /// One line for a command's help.
    pub fn help(self) -> &'static str {
        match self {
            Format::Table => "Aligned columns for reading on a terminal",
            Format::Csv => "Comma-separated, with a header row",
            Format::Jsonl => "One JSON object per line",
        }
    }
}

/// The JSON-lines record as serde would write it: the reference [`jsonl_line`] is tested
/// against. Field names and order are a promise to scripts: add, never rename.
#[cfg(test)]
#[derive(Serialize)]
struct JsonRecord<'a> {
    first: &'a str,
    last: &'a str,
    proto: u8,
    src: String,
    sport: u16,
    dst: String,
    dport: u16,
    vlan: u16,
    inner_vlan: u16,
    src_mac: Option<String>,
    dst_mac: Option<String>,
    packets: u64,
    bytes: u64,
    rev_packets: u64,
    rev_bytes: u64,
    tcp_flags: u8,
    rev_tcp_flags: u8,
    end: &'static str,
    community_id: &'a str,
    interface: &'a str,
}

/// The JSON fields, then columns for spreadsheets, appended so that no column moves: the
/// duration in seconds (`last - first`, nine decimals, exact), the protocol's name (empty when
/// it has none) and the TCP flags as letters (`CEUAPRSF`, `.` for a flag not seen; empty
/// for other protocols).
const CSV_HEADER: &str = "first,last,proto,src,sport,dst,dport,vlan,inner_vlan,src_mac,dst_mac,\
packets,bytes,rev_packets,rev_bytes,tcp_flags,rev_tcp_flags,end,community_id,interface,\
duration,proto_name,flags,rev_flags";

pub struct Printer<W: Write> {
    format: Format,
    out: W,
    started: bool,
    /// Interface names by the record's `interface` (see `interface_index`); an index without
    /// a name prints as the number.
    interfaces: InterfaceLabels,
    /// A CSV line is put together here and written whole: one write per record instead of
    /// one per field through the formatter's `io::Write` adapter.
    line: String,
    /// Records written to `out` so far.
    printed: u64,
    /// At most this many records are printed (`query --limit`).
    limit: Option<u64>,
    /// Whether a matching record was left out for the limit.
    truncated: bool,
    /// `query --fields`: these columns only, in this order (indices into [`FIELDS`]).
    fields: Option<Vec<usize>>,
}

#[cfg(test)]
fn mac_text(mac: &Option<crate::record::Mac>) -> Option<String> {
    mac.as_ref().map(crate::record::format_mac)
}

impl<W: Write> Printer<W> {
    pub fn new(format: Format, out: W) -> Printer<W> {
        Printer {
            format,
            out,
            started: false,
            interfaces: InterfaceLabels::default(),
            line: String::new(),
            printed: 0,
            limit: None,
            truncated: false,
            fields: None,
        }
    }

    /// Prints only these columns (names of [`FIELDS`]), in this order; an unknown name is
    /// refused with the list.
    pub fn with_fields(mut self, names: Option<&[String]>) -> Result<Printer<W>, String> {
        if let Some(names) = names {
            let idx = names
                .iter()
                .map(|n| {
                    FIELDS.iter().position(|f| f == n).ok_or_else(|| {
                        format!("'{n}' is not a field; the fields are {}", FIELDS.join(","))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if idx.is_empty() {
                return Err("--fields names no field".into());
            }
            self.fields = Some(idx);
        }
        Ok(self)
    }

    /// Prints at most `n` records; the rest are counted as left out ([`Printer::truncated`]).
    pub fn with_limit(mut self, n: Option<u64>) -> Printer<W> {
        self.limit = n;
        self
    }

    fn is_full(&self) -> bool {
        self.limit.is_some_and(|n| self.printed >= n)
    }

    /// Whether the limit left out a matching record.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Records written to the output so far (by a buffered output: handed to it), also when
    /// printing stopped at an error.
    pub fn printed(&self) -> u64 {
        self.printed
    }

    /// The index to print a record with: see [`InterfaceLabels::index`].
    pub fn interface_index(&mut self, names: &[String], interface: u16) -> u16 {
        self.interfaces.index(names, interface)
    }

    /// The header, before the first record.
    fn start(&mut self) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        if let Some(idx) = &self.fields {
            let names: Vec<&str> = idx.iter().map(|&i| FIELDS[i]).collect();
            return match self.format {
                Format::Csv => writeln!(self.out, "{}", names.join(",")),
                Format::Table => selected_table_row(&mut self.out, idx, &names),
                Format::Jsonl => Ok(()),
            };
        }
        match self.format {
            Format::Csv => writeln!(self.out, "{CSV_HEADER}"),
            Format::Table => table_row(
                &mut self.out,
                [
                    "first", "duration", "proto", "src:port", "dst:port", "vlan", "ivln", "pkts",
                    "bytes", "rpkts", "rbytes", "flags", "rflags", "end", "iface",
                ],
            ),
            Format::Jsonl => Ok(()),
        }
    }

    pub fn print(&mut self, r: &FlowRecord) -> io::Result<()> {
        if self.is_full() {
            self.truncated = true;
            return Ok(());
        }
        self.print_one(r)?;
        self.printed += 1;
        Ok(())
    }

    fn print_one(&mut self, r: &FlowRecord) -> io::Result<()> {
        self.start()?;
        if let Some(idx) = &self.fields {
            let iface = self.interfaces.label(r.interface);
            let values = field_values(r, &iface);
            return match self.format {
                Format::Jsonl => {
                    let mut line = String::from("{");
                    for (n, &i) in idx.iter().enumerate() {
                        if n > 0 {
                            line.push(',');
                        }
                        line.push_str(&serde_json::to_string(FIELDS[i])?);
                        line.push(':');
                        line.push_str(&serde_json::to_string(&values[i])?);
                    }
                    line.push_str("}\n");
                    self.out.write_all(line.as_bytes())
                }
                Format::Csv => {
                    let cells: Vec<String> = idx.iter().map(|&i| csv_text(&values[i])).collect();
                    writeln!(self.out, "{}", cells.join(","))
                }
                Format::Table => {
                    let cells: Vec<String> = idx.iter().map(|&i| plain_text(&values[i])).collect();
                    let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
                    selected_table_row(&mut self.out, idx, &cells)
                }
            };
        }
        if self.format != Format::Table {
            let iface = self.interfaces.label(r.interface);
            self.line.clear();
            // Writing to a String cannot fail.
            let _ = if self.format == Format::Csv {
                csv_line(&mut self.line, r, &iface)
            } else {
                jsonl_line(&mut self.line, r, &iface)
            };
            return self.out.write_all(self.line.as_bytes());
        }
        let iface = self.interfaces.label(r.interface);
        table_row(
            &mut self.out,
            [
                &format_table_time(r.first),
                &format_duration(r.last - r.first),
                &proto_name(r.proto)
                    .map(str::to_string)
                    .unwrap_or_else(|| r.proto.to_string()),
                &endpoint(r.src, r.sport),
                &endpoint(r.dst, r.dport),
                &r.vlan.to_string(),
                &r.inner_vlan.to_string(),
                &human(r.packets),
                &human(r.bytes),
                &human(r.rev_packets),
                &human(r.rev_bytes),
                &tcp_flag_text(r.proto, r.tcp_flags),
                &tcp_flag_text(r.proto, r.rev_tcp_flags),
                r.end.as_str(),
                &iface,
            ],
        )
    }

    pub fn finish(mut self) -> io::Result<W> {
        // An empty answer in CSV is still a table: its header, no rows.
        if self.format == Format::Csv {
            self.start()?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Column widths of the table; a wider value (an IPv6 endpoint) pushes its line out rather
/// than being cut. Negative: left-aligned.
const TABLE_WIDTHS: [i8; 15] = [-23, 9, -5, 22, 22, 4, 4, 8, 8, 8, 8, -8, -8, -7, -6];

/// Appends `sep` then `v` in decimal.
fn push_int(line: &mut String, sep: &str, v: impl itoa::Integer) {
    line.push_str(sep);
    line.push_str(itoa::Buffer::new().format(v));
}

/// One CSV row, in `CSV_HEADER`'s order, with its newline.
fn csv_line(line: &mut String, r: &FlowRecord, iface: &str) -> std::fmt::Result {
    use std::fmt::Write as _;
    write_rfc3339(line, r.first)?;
    line.push(',');
    write_rfc3339(line, r.last)?;
    push_int(line, ",", r.proto);
    write!(line, ",{}", r.src)?;
    push_int(line, ",", r.sport);
    write!(line, ",{}", r.dst)?;
    for v in [r.dport, r.vlan, r.inner_vlan] {
        push_int(line, ",", v);
    }
    for mac in [&r.src_mac, &r.dst_mac] {
        line.push(',');
        if let Some(m) = mac {
            write_mac(line, m)?;
        }
    }
    for v in [r.packets, r.bytes, r.rev_packets, r.rev_bytes] {
        push_int(line, ",", v);
    }
    for v in [r.tcp_flags, r.rev_tcp_flags] {
        push_int(line, ",", v);
    }
    let span = r.last.saturating_sub(r.first).max(0);
    writeln!(
        line,
        ",{},{},{},{}.{:09},{},{},{}",
        r.end,
        community_id::of_record(r),
        csv_field(iface),
        span / NANOS_PER_SEC,
        span % NANOS_PER_SEC,
        proto_name(r.proto).unwrap_or(""),
        tcp_flag_text(r.proto, r.tcp_flags),
        tcp_flag_text(r.proto, r.rev_tcp_flags),
    )
}

/// One JSON line, the fields in `CSV_HEADER`'s order: written directly rather than through
/// serde, which needed a String per address, MAC and time. Only the interface name (the
/// operator's text) can need escaping; everything else is ASCII without quotes or backslashes.
fn jsonl_line(line: &mut String, r: &FlowRecord, iface: &str) -> std::fmt::Result {
    use std::fmt::Write as _;
    line.push_str("{\"first\":\"");
    write_rfc3339(line, r.first)?;
    line.push_str("\",\"last\":\"");
    write_rfc3339(line, r.last)?;
    push_int(line, "\",\"proto\":", r.proto);
    write!(line, ",\"src\":\"{}\"", r.src)?;
    push_int(line, ",\"sport\":", r.sport);
    write!(line, ",\"dst\":\"{}\"", r.dst)?;
    push_int(line, ",\"dport\":", r.dport);
    push_int(line, ",\"vlan\":", r.vlan);
    push_int(line, ",\"inner_vlan\":", r.inner_vlan);
    for (name, mac) in [("src_mac", &r.src_mac), ("dst_mac", &r.dst_mac)] {
        write!(line, ",\"{name}\":")?;
        match mac {
            Some(m) => {
                line.push('"');
                write_mac(line, m)?;
                line.push('"');
            }
            None => line.push_str("null"),
        }
    }
    push_int(line, ",\"packets\":", r.packets);
    push_int(line, ",\"bytes\":", r.bytes);
    push_int(line, ",\"rev_packets\":", r.rev_packets);
    push_int(line, ",\"rev_bytes\":", r.rev_bytes);
    push_int(line, ",\"tcp_flags\":", r.tcp_flags);
    push_int(line, ",\"rev_tcp_flags\":", r.rev_tcp_flags);
    write!(
        line,
        ",\"end\":\"{}\",\"community_id\":\"{}\",\"interface\":",
        r.end,
        community_id::of_record(r),
    )?;
    let quoted = serde_json::to_string(iface).map_err(|_| std::fmt::Error)?;
    line.push_str(&quoted);
    line.push_str("}\n");
    Ok(())
}

/// An interface name is the operator's text: quoted when it holds a comma or a quote.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        std::borrow::Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn table_row(out: &mut impl Write, cols: [&str; 15]) -> io::Result<()> {
    for (i, (col, w)) in cols.iter().zip(TABLE_WIDTHS).enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let w = usize::from(w.unsigned_abs());
        if i == cols.len() - 1 {
            write!(out, "{sep}{col}")?;
        } else if TABLE_WIDTHS[i] < 0 {
            write!(out, "{sep}{col:<w$}")?;
        } else {
            write!(out, "{sep}{col:>w$}")?;
        }
    }
    writeln!(out)
}

/// Milliseconds are enough to read a table; CSV and JSON keep the nanoseconds.
fn format_table_time(ns: Nanos) -> String {
    let text = format_rfc3339(ns);
    // "2026-01-01T00:00:00.123456789Z" → "2026-01-01 00:00:00.123"
    match (text.get(..10), text.get(11..23)) {
        (Some(date), Some(time)) => format!("{date} {time}"),
        _ => text,
    }
}

fn endpoint(addr: std::net::IpAddr, port: u16) -> String {
    match addr {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn tcp_flag_text(proto: u8, flags: u8) -> String {
    if proto == 6 {
        tcp_flags::to_string(flags)
    } else {
        String::new()
    }
}

fn format_duration(ns: Nanos) -> String {
    format!("{:.3}", ns as f64 / NANOS_PER_SEC as f64)
}

/// 1234567 → "1.2 M": the table is for reading, exact numbers are in CSV and JSON.
fn human(n: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1_000_000_000_000, "T"),
        (1_000_000_000, "G"),
        (1_000_000, "M"),
        (1_000, "k"),
    ];
    for (scale, unit) in UNITS {
        if n >= scale {
            return format!("{:.1} {unit}", n as f64 / scale as f64);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::EndReason;
    use std::net::{IpAddr, Ipv6Addr};

    fn sample() -> FlowRecord {
        FlowRecord {
            first: 1_767_225_600_000_000_001,
            last: 1_767_225_601_500_000_000,
            proto: 6,
            src: "10.0.0.1".parse().unwrap(),
            sport: 40000,
            dst: IpAddr::V6(Ipv6Addr::LOCALHOST),
            dport: 443,
            vlan: 100,
            inner_vlan: 0,
            interface: 0,
            src_mac: Some([2, 0, 0, 0xaa, 0, 1]),
            dst_mac: None,
            packets: 3,
            bytes: 180,
            rev_packets: 2,
            rev_bytes: 1_500_000,
            tcp_flags: 0x1b,
            rev_tcp_flags: 0x12,
            end: EndReason::Fin,
        }
    }

    fn render(format: Format) -> String {
        let mut p = Printer::new(format, Vec::new());
        p.print(&sample()).unwrap();
        String::from_utf8(p.finish().unwrap()).unwrap()
    }

    #[test]
    fn jsonl_has_exactly_the_promised_fields_in_order() {
        let line = render(Format::Jsonl);
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        // CSV's header less its four spreadsheet columns.
        let all = CSV_HEADER.split(',').collect::<Vec<_>>();
        let expected = &all[..all.len() - 4];
        assert_eq!(
            all[all.len() - 4..],
            ["duration", "proto_name", "flags", "rev_flags"]
        );
        assert_eq!(v.as_object().unwrap().len(), expected.len());
        let positions: Vec<usize> = expected
            .iter()
            .map(|k| line.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{line}");
        assert_eq!(v["first"], "2026-01-01T00:00:00.000000001Z");
        assert_eq!(v["dst"], "::1");
        assert_eq!(v["src_mac"], "02:00:00:aa:00:01");
        assert!(v["dst_mac"].is_null());
        assert_eq!(v["rev_bytes"], 1_500_000);
        assert_eq!(v["end"], "fin");
        // Mixed address families: no such flow on a wire, so no ID.
        assert_eq!(v["community_id"], "");
    }

    #[test]
    fn community_id_in_csv_and_jsonl() {
        let mut p = Printer::new(Format::Jsonl, Vec::new());
        let r = FlowRecord {
            src: "128.232.110.120".parse().unwrap(),
            dst: "66.35.250.204".parse().unwrap(),
            sport: 34855,
            dport: 80,
            ..sample()
        };
        p.print(&r).unwrap();
        let line = String::from_utf8(p.finish().unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        // corelight/community-id-spec baseline_deflt.json.
        assert_eq!(v["community_id"], "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        let mut p = Printer::new(Format::Csv, Vec::new());
        p.print(&r).unwrap();
        let text = String::from_utf8(p.finish().unwrap()).unwrap();
        assert!(text
            .lines()
            .nth(1)
            .unwrap()
            .contains(",fin,1:LQU9qZlK+B5F3KDmev6m5PMibrg=,0,"));
    }

    #[test]
    fn csv_without_records_is_its_header() {
        let p = Printer::new(Format::Csv, Vec::new());
        let out = String::from_utf8(p.finish().unwrap()).unwrap();
        assert_eq!(out, format!("{CSV_HEADER}\n"));
        let p = Printer::new(Format::Jsonl, Vec::new());
        assert!(p.finish().unwrap().is_empty());
    }

    #[test]
    fn csv_has_a_header_and_one_row_per_record() {
        let text = render(Format::Csv);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].split(',').count(), CSV_HEADER.split(',').count());
        assert!(lines[1].contains(",10.0.0.1,40000,::1,443,100,0,02:00:00:aa:00:01,,3,180,"));
    }

    #[test]
    fn table_is_aligned_and_human() {
        let text = render(Format::Table);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].contains("1.5 M"));
        assert!(lines[1].contains("[::1]:443"));
        assert!(lines[1].contains("1.500"));
        assert!(lines[1].starts_with("2026-01-01 00:00:00.000 "));
        // Columns line up: every field of the header starts where the row's does.
        assert_eq!(lines[0].find("proto"), lines[1].find("tcp"));
    }

    #[test]
    fn interface_names_are_printed_and_renumbered_across_segments() {
        let mut p = Printer::new(Format::Csv, Vec::new());
        let a = ["eth1".to_string(), "eth2".to_string()];
        let b = ["eth2".to_string(), "x,y".to_string()];
        // Segment b's index 0 is segment a's index 1: one name, one index.
        assert_eq!(p.interface_index(&a, 0), 0);
        assert_eq!(p.interface_index(&a, 1), 1);
        assert_eq!(p.interface_index(&b, 0), 1);
        assert_eq!(p.interface_index(&b, 1), 2);
        // A segment without names (format 2, recovered): the number.
        assert_eq!(p.interface_index(&[], 1), 3);
        // The interface column comes before the four spreadsheet columns: 1.499999999 s,
        // ACK PSH SYN FIN (0x1b) and SYN ACK (0x12).
        let tail = ",1.499999999,tcp,...AP.SF,...A..S.";
        for (interface, text) in [
            (0, ",eth1"),
            (1, ",eth2"),
            (2, ",\"x,y\""),
            (3, ",1"),
            (9, ",9"),
        ] {
            p.print(&FlowRecord {
                interface,
                ..sample()
            })
            .unwrap();
            let out = String::from_utf8(p.out.clone()).unwrap();
            assert!(out.trim_end().ends_with(&format!("{text}{tail}")), "{out}");
        }
        let line = render(Format::Jsonl);
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v["interface"], "0");
    }

    proptest::proptest! {
        /// The hand-written JSON line is exactly what serde writes for the promised record,
        /// for any record and any interface name (quotes, backslashes, control characters,
        /// non-ASCII), and the CSV row is the same values through `Display`, joined.
        #[test]
        fn jsonl_and_csv_lines_equal_their_references(
            r in crate::testing::arb_record(),
            iface in "\\PC{0,12}|[\"\\\\\u{0}-\u{1f}a-z]{0,6}",
        ) {
            let first = format_rfc3339(r.first);
            let last = format_rfc3339(r.last);
            let cid = community_id::of_record(&r);
            let reference = JsonRecord {
                first: &first,
                last: &last,
                proto: r.proto,
                src: r.src.to_string(),
                sport: r.sport,
                dst: r.dst.to_string(),
                dport: r.dport,
                vlan: r.vlan,
                inner_vlan: r.inner_vlan,
                src_mac: mac_text(&r.src_mac),
                dst_mac: mac_text(&r.dst_mac),
                packets: r.packets,
                bytes: r.bytes,
                rev_packets: r.rev_packets,
                rev_bytes: r.rev_bytes,
                tcp_flags: r.tcp_flags,
                rev_tcp_flags: r.rev_tcp_flags,
                end: r.end.as_str(),
                community_id: &cid,
                interface: &iface,
            };
            let mut line = String::new();
            jsonl_line(&mut line, &r, &iface).unwrap();
            proptest::prop_assert_eq!(line, serde_json::to_string(&reference).unwrap() + "\n");
            // The CSV row: the same values through std's Display, joined.
            let j = &reference;
            let csv = [
                j.first.to_string(), j.last.to_string(), j.proto.to_string(), j.src.clone(),
                j.sport.to_string(), j.dst.clone(), j.dport.to_string(), j.vlan.to_string(),
                j.inner_vlan.to_string(), j.src_mac.clone().unwrap_or_default(),
                j.dst_mac.clone().unwrap_or_default(), j.packets.to_string(),
                j.bytes.to_string(), j.rev_packets.to_string(), j.rev_bytes.to_string(),
                j.tcp_flags.to_string(), j.rev_tcp_flags.to_string(), j.end.to_string(),
                j.community_id.to_string(), csv_field(&iface).into_owned(),
                {
                    // Spans are clamped to 0..=i64::MAX ns (arbitrary times can run backwards).
                    let d = (i128::from(r.last) - i128::from(r.first)).clamp(0, i128::from(i64::MAX));
                    format!("{}.{:09}", d / 1_000_000_000, d % 1_000_000_000)
                },
                crate::record::proto_name(r.proto).unwrap_or("").to_string(),
                tcp_flag_text(r.proto, r.tcp_flags), tcp_flag_text(r.proto, r.rev_tcp_flags),
            ]
            .join(",");
            let mut line = String::new();
            csv_line(&mut line, &r, &iface).unwrap();
            proptest::prop_assert_eq!(line, csv + "\n");
        }
    }

    #[test]
    fn fields_are_the_csv_columns_and_print_what_the_full_lines_do() {
        assert_eq!(FIELDS.join(","), CSV_HEADER);
        let all: Vec<String> = FIELDS.iter().map(|f| f.to_string()).collect();
        let json_fields = &all[..20];
        let mut p = Printer::new(Format::Jsonl, Vec::new())
            .with_fields(Some(json_fields))
            .unwrap();
        p.print(&sample()).unwrap();
        assert_eq!(
            String::from_utf8(p.finish().unwrap()).unwrap(),
            render(Format::Jsonl)
        );
        let mut p = Printer::new(Format::Csv, Vec::new())
            .with_fields(Some(&all))
            .unwrap();
        p.print(&sample()).unwrap();
        assert_eq!(
            String::from_utf8(p.finish().unwrap()).unwrap(),
            render(Format::Csv)
        );
        let pick = [
            "dport".to_string(),
            "src".to_string(),
            "duration".to_string(),
        ];
        let mut p = Printer::new(Format::Jsonl, Vec::new())
            .with_fields(Some(&pick))
            .unwrap();
        p.print(&sample()).unwrap();
        assert_eq!(
            String::from_utf8(p.finish().unwrap()).unwrap(),
            "{\"dport\":443,\"src\":\"10.0.0.1\",\"duration\":\"1.499999999\"}\n"
        );
        let mut p = Printer::new(Format::Csv, Vec::new())
            .with_fields(Some(&pick))
            .unwrap();
        p.print(&sample()).unwrap();
        assert_eq!(
            String::from_utf8(p.finish().unwrap()).unwrap(),
            "dport,src,duration\n443,10.0.0.1,1.499999999\n"
        );
        let bad = ["src".to_string(), "nope".to_string()];
        let e = Printer::new(Format::Csv, Vec::new())
            .with_fields(Some(&bad))
            .err()
            .unwrap();
        assert!(
            e.contains("'nope' is not a field; the fields are first,last"),
            "{e}"
        );
    }

    #[test]
    fn human_units() {
        assert_eq!(human(999), "999");
        assert_eq!(human(1_000), "1.0 k");
        assert_eq!(human(2_500_000_000), "2.5 G");
    }
}
