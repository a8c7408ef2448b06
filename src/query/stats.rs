//! Top-N statistics over the matching records, like `nfdump -s`: flows, packets and bytes per
//! source, destination, host, port, protocol, address pair or MAC.
//!
//! Every count is of whole records: `packets` and `bytes` are both directions summed, as the
//! filter's `packets`/`bytes` are. What one record counts for:
//!
//! - `src` / `dst`: its initiator / responder address.
//! - `host`: both its addresses (once when they are equal), as `nfdump -s ip` does; so the
//!   hosts' shares add up to about 200 %.
//! - `port`: its responder (dst) port with its protocol (`tcp/443`): the service. nfdump's
//!   `-s port` counts both ports; the client's ephemeral port is noise for "what was used".
//!   Records of protocols without ports (ICMP, GRE, ...) are not counted.
//! - `proto`: its IP protocol.
//! - `pair`: its two addresses, unordered (`a <-> b`, smaller first): the conversation.
//! - `mac`: both its MAC addresses where known (once when equal), like `host`.

use super::{Format, Tally};
use crate::record::{format_mac, proto_name, FlowRecord, Mac};
use crate::time::{format_rfc3339, Nanos};
use std::collections::HashMap;

/// Keys are addresses and ports seen on the network, so the hasher is seeded per process (no
/// crafted-traffic collisions) but much cheaper per record than the standard SipHash.
type Groups = HashMap<Key, Counts, foldhash::fast::RandomState>;
use std::fmt;
use std::io::{self, Write};
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Src,
    Dst,
    Host,
    Port,
    Proto,
    Pair,
    Mac,
    /// Bins of time only (`super::series`): no key.
    Time,
}

impl By {
    pub const ALL: [By; 8] = [
        By::Src,
        By::Dst,
        By::Host,
        By::Port,
        By::Proto,
        By::Pair,
        By::Mac,
        By::Time,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            By::Src => "src",
            By::Dst => "dst",
            By::Host => "host",
            By::Port => "port",
            By::Proto => "proto",
            By::Pair => "pair",
            By::Mac => "mac",
            By::Time => "time",
        }
    }

    /// One line for a command's help.
    pub fn help(self) -> &'static str {
        match self {
            By::Src => "Initiator address",
            By::Dst => "Responder address",
            By::Host => "Either address: each record counts for both",
            By::Port => "Responder port, with the protocol (tcp/443)",
            By::Proto => "IP protocol",
            By::Pair => "The two addresses, unordered",
            By::Mac => "Either MAC address",
            By::Time => "Traffic over time: flows, packets, bytes, bps and pps per --interval bin",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Flows,
    Packets,
    Bytes,
    /// Bits per second over the group's span (first packet to last), 0 for a span of 0.
    Bps,
    /// Packets per second, likewise.
    Pps,
}

impl Order {
    pub const ALL: [Order; 5] = [
        Order::Flows,
        Order::Packets,
        Order::Bytes,
        Order::Bps,
        Order::Pps,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Order::Flows => "flows",
            Order::Packets => "packets",
            Order::Bytes => "bytes",
            Order::Bps => "bps",
            Order::Pps => "pps",
        }
    }
}

/// `--by` with the prefix lengths addresses are cut to, if any (`--by src/24`, nfdump's
/// `-A srcip4/24,srcip6/64`): only for the keys that are addresses (src, dst, host, pair).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grouping {
    pub by: By,
    /// IPv4 and IPv6 prefix lengths.
    pub prefix: Option<(u8, u8)>,
}

impl From<By> for Grouping {
    fn from(by: By) -> Grouping {
        Grouping { by, prefix: None }
    }
}

impl Grouping {
    /// `src/24,64`, as given to `--by`; `src` without a prefix.
    pub fn label(&self) -> String {
        match self.prefix {
            None => self.by.as_str().to_string(),
            Some((v4, v6)) => format!("{}/{v4},{v6}", self.by.as_str()),
        }
    }

    /// Whether `--by` may carry a prefix.
    pub fn takes_prefix(by: By) -> bool {
        matches!(by, By::Src | By::Dst | By::Host | By::Pair)
    }

    /// The address cut to its prefix, or itself.
    fn cut(&self, a: IpAddr) -> IpAddr {
        match (self.prefix, a) {
            (None, a) => a,
            (Some((v4, _)), IpAddr::V4(x)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(v4.min(32)))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(x) & mask).into())
            }
            (Some((_, v6)), IpAddr::V6(x)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(v6.min(128)))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(x) & mask).into())
            }
        }
    }

    fn key(&self, a: IpAddr) -> Key {
        match self.prefix {
            None => Key::Addr(a),
            Some((v4, v6)) => Key::Net(self.cut(a), if a.is_ipv4() { v4 } else { v6 }),
        }
    }
}

/// What the statistics are grouped by.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Addr(IpAddr),
    /// A network: `--by src/24`.
    Net(IpAddr, u8),
    Port {
        proto: u8,
        port: u16,
    },
    Proto(u8),
    Pair(IpAddr, IpAddr),
    Mac(Mac),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = |p: u8| proto_name(p).map_or_else(|| p.to_string(), str::to_string);
        match self {
            Key::Addr(a) => write!(f, "{a}"),
            Key::Net(a, len) => write!(f, "{a}/{len}"),
            Key::Port { proto: p, port } => write!(f, "{}/{port}", proto(*p)),
            Key::Proto(p) => f.write_str(&proto(*p)),
            Key::Pair(a, b) => write!(f, "{a} <-> {b}"),
            Key::Mac(m) => f.write_str(&format_mac(m)),
        }
    }
}

/// Counts for one key, or for all matching records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Earliest `first` and latest `last` of the records counted.
    pub first: Nanos,
    pub last: Nanos,
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            flows: 0,
            packets: 0,
            bytes: 0,
            first: Nanos::MAX,
            last: Nanos::MIN,
        }
    }
}

impl Counts {
    pub(super) fn add(&mut self, r: &FlowRecord) {
        self.flows += 1;
        self.packets = self
            .packets
            .saturating_add(r.packets.saturating_add(r.rev_packets));
        self.bytes = self
            .bytes
            .saturating_add(r.bytes.saturating_add(r.rev_bytes));
        self.first = self.first.min(r.first);
        self.last = self.last.max(r.last);
    }

    fn get(&self, order: Order) -> u64 {
        match order {
            Order::Flows => self.flows,
            Order::Packets => self.packets,
            Order::Bytes => self.bytes,
            Order::Bps => self.bps(),
            Order::Pps => self.pps(),
        }
    }

    /// `n` per second over the span from the first packet to the last, as nfdump computes a
    /// flow's rate; 0 when the span is 0 (one packet, or all in one instant).
    fn rate(&self, n: u64) -> u64 {
        let span = i128::from(self.last) - i128::from(self.first);
        if span <= 0 {
            return 0;
        }
        u64::try_from(i128::from(n) * i128::from(crate::time::NANOS_PER_SEC) / span)
            .unwrap_or(u64::MAX)
    }

    pub fn bps(&self) -> u64 {
        self.rate(self.bytes.saturating_mul(8))
    }

    pub fn pps(&self) -> u64 {
        self.rate(self.packets)
    }
}

/// Statistics being gathered.
#[derive(Debug, Clone)]
pub struct Stats {
    grouping: Grouping,
    groups: Groups,
    total: Counts,
}

impl Stats {
    pub fn new(grouping: impl Into<Grouping>) -> Stats {
        Stats {
            grouping: grouping.into(),
            groups: Groups::default(),
            total: Counts::default(),
        }
    }

    pub fn add(&mut self, r: &FlowRecord) {
        self.total.add(r);
        let g = self.grouping;
        let mut count = |k: Key| self.groups.entry(k).or_default().add(r);
        match g.by {
            By::Src => count(g.key(r.src)),
            By::Dst => count(g.key(r.dst)),
            By::Host => {
                let (s, d) = (g.key(r.src), g.key(r.dst));
                if d != s {
                    count(d);
                }
                count(s);
            }
            By::Port => {
                if matches!(r.proto, 6 | 17 | 33 | 132 | 136) {
                    count(Key::Port {
                        proto: r.proto,
                        port: r.dport,
                    })
                }
            }
            By::Proto => count(Key::Proto(r.proto)),
            By::Pair => {
                let (s, d) = (g.cut(r.src), g.cut(r.dst));
                count(if s <= d {
                    Key::Pair(s, d)
                } else {
                    Key::Pair(d, s)
                })
            }
            By::Time => {}
            By::Mac => {
                if let Some(m) = r.src_mac {
                    count(Key::Mac(m));
                }
                if let Some(m) = r.dst_mac.filter(|m| Some(*m) != r.src_mac) {
                    count(Key::Mac(m));
                }
            }
        }
    }

    /// All matching records together.
    pub fn total(&self) -> Counts {
        self.total
    }

    /// The `n` largest groups by `order` (ties: more flows, then more bytes, then the key),
    /// largest first; `n = 0` gives all.
    pub fn top(&self, order: Order, n: usize) -> Vec<(Key, Counts)> {
        let mut rows: Vec<(Key, Counts)> =
            self.groups.iter().map(|(k, c)| (k.clone(), *c)).collect();
        rows.sort_by(|(ka, a), (kb, b)| {
            (b.get(order), b.flows, b.bytes)
                .cmp(&(a.get(order), a.flows, a.bytes))
                .then_with(|| ka.cmp(kb))
        });
        if n > 0 {
            rows.truncate(n);
        }
        rows
    }
}

impl Tally for Stats {
    fn add(&mut self, r: &FlowRecord) {
        Stats::add(self, r);
    }
}

#[derive(serde::Serialize)]
struct JsonRow<'a> {
    /// The time bin's start, with `--interval` (`super::series`).
    #[serde(skip_serializing_if = "Option::is_none")]
    bin: Option<&'a str>,
    rank: usize,
    by: &'a str,
    key: &'a str,
    flows: u64,
    flows_pct: f64,
    packets: u64,
    packets_pct: f64,
    bytes: u64,
    bytes_pct: f64,
    first: &'a str,
    last: &'a str,
    bps: u64,
    pps: u64,
}

const CSV_HEADER: &str =
    "rank,by,key,flows,flows_pct,packets,packets_pct,bytes,bytes_pct,first,last,bps,pps";

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        // Two decimals are all a share needs; rounding here keeps CSV and JSON short.
        (n as f64 * 10_000.0 / of as f64).round() / 100.0
    }
}

/// Prints the top rows in `format`. The table starts with a line saying what was counted.
pub fn print(
    out: &mut impl Write,
    format: Format,
    stats: &Stats,
    order: Order,
    n: usize,
) -> io::Result<()> {
    print_rows(out, format, stats, order, n, None, true)?;
    out.flush()
}

/// [`print`] for one time bin of a series (`super::series`): each row starts with the bin,
/// shares are of the bin's total, and the CSV header comes only before the first bin.
pub(super) fn print_in_bin(
    out: &mut impl Write,
    format: Format,
    stats: &Stats,
    order: Order,
    n: usize,
    bin: &str,
    first_bin: bool,
) -> io::Result<()> {
    print_rows(out, format, stats, order, n, Some(bin), first_bin)
}

fn print_rows(
    out: &mut impl Write,
    format: Format,
    stats: &Stats,
    order: Order,
    n: usize,
    bin: Option<&str>,
    header: bool,
) -> io::Result<()> {
    let total = stats.total();
    let rows = stats.top(order, n);
    let by = stats.grouping.label();
    let by = by.as_str();
    match format {
        Format::Table => {
            if let Some(b) = bin {
                writeln!(out, "{}bin {b}", if header { "" } else { "\n" })?;
            }
            print_table(out, by, order, &total, &rows)
        }
        Format::Csv => print_csv(out, by, &total, &rows, bin, header),
        Format::Jsonl => print_jsonl(out, by, &total, &rows, bin),
    }
}

fn print_table(
    out: &mut impl Write,
    by: &str,
    order: Order,
    total: &Counts,
    rows: &[(Key, Counts)],
) -> io::Result<()> {
    writeln!(
        out,
        "top {} {} by {}, of {} flows, {} packets, {} bytes matched",
        rows.len(),
        by,
        order.as_str(),
        total.flows,
        total.packets,
        total.bytes
    )?;
    let keyw = rows
        .iter()
        .map(|(k, _)| k.to_string().len())
        .max()
        .unwrap_or(0)
        .max(by.len());
    writeln!(
        out,
        "{:<keyw$} {:>9} {:>7} {:>9} {:>7} {:>9} {:>7} {:>9} {:>9}  {:<23} {:<23}",
        by, "flows", "%", "packets", "%", "bytes", "%", "bps", "pps", "first", "last"
    )?;
    for (k, c) in rows {
        writeln!(
            out,
            "{:<keyw$} {:>9} {:>6.1}% {:>9} {:>6.1}% {:>9} {:>6.1}% {:>9} {:>9}  {:<23} {:<23}",
            k.to_string(),
            super::human(c.flows),
            pct(c.flows, total.flows),
            super::human(c.packets),
            pct(c.packets, total.packets),
            super::human(c.bytes),
            pct(c.bytes, total.bytes),
            super::human(c.bps()),
            super::human(c.pps()),
            super::format_table_time(c.first),
            super::format_table_time(c.last),
        )?;
    }
    Ok(())
}

fn print_csv(
    out: &mut impl Write,
    by: &str,
    total: &Counts,
    rows: &[(Key, Counts)],
    bin: Option<&str>,
    header: bool,
) -> io::Result<()> {
    if header {
        let bin_column = if bin.is_some() { "bin," } else { "" };
        writeln!(out, "{bin_column}{CSV_HEADER}")?;
    }
    for (i, (k, c)) in rows.iter().enumerate() {
        if let Some(b) = bin {
            write!(out, "{b},")?;
        }
        writeln!(
            out,
            "{},{},{k},{},{},{},{},{},{},{},{},{},{}",
            i + 1,
            by,
            c.flows,
            pct(c.flows, total.flows),
            c.packets,
            pct(c.packets, total.packets),
            c.bytes,
            pct(c.bytes, total.bytes),
            format_rfc3339(c.first),
            format_rfc3339(c.last),
            c.bps(),
            c.pps(),
        )?;
    }
    Ok(())
}

fn print_jsonl(
    out: &mut impl Write,
    by: &str,
    total: &Counts,
    rows: &[(Key, Counts)],
    bin: Option<&str>,
) -> io::Result<()> {
    for (i, (k, c)) in rows.iter().enumerate() {
        let (key, first, last) = (
            k.to_string(),
            format_rfc3339(c.first),
            format_rfc3339(c.last),
        );
        serde_json::to_writer(
            &mut *out,
            &JsonRow {
                bin,
                rank: i + 1,
                by,
                key: &key,
                flows: c.flows,
                flows_pct: pct(c.flows, total.flows),
                packets: c.packets,
                packets_pct: pct(c.packets, total.packets),
                bytes: c.bytes,
                bytes_pct: pct(c.bytes, total.bytes),
                first: &first,
                last: &last,
                bps: c.bps(),
                pps: c.pps(),
            },
        )?;
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::EndReason;

    fn r(src: &str, dst: &str, proto: u8, dport: u16, pk: u64, by: u64) -> FlowRecord {
        FlowRecord {
            first: 10,
            last: 20,
            proto,
            src: src.parse().unwrap(),
            sport: 50000,
            dst: dst.parse().unwrap(),
            dport,
            vlan: 0,
            inner_vlan: 0,
            interface: 0,
            src_mac: Some([2, 0, 0, 0, 0, 1]),
            dst_mac: Some([2, 0, 0, 0, 0, 2]),
            packets: pk,
            bytes: by,
            rev_packets: 1,
            rev_bytes: 100,
            tcp_flags: 0,
            rev_tcp_flags: 0,
            end: EndReason::Idle,
        }
    }

    fn sample() -> Vec<FlowRecord> {
        vec![
            r("10.0.0.1", "10.0.0.9", 6, 443, 9, 900),
            r("10.0.0.2", "10.0.0.9", 6, 443, 1, 100),
            r("10.0.0.9", "10.0.0.1", 17, 53, 4, 400),
            r("10.0.0.1", "10.0.0.3", 1, 8 << 8, 1, 84),
        ]
    }

    fn top(by: By, order: Order) -> Vec<(String, u64, u64, u64)> {
        let mut s = Stats::new(by);
        sample().iter().for_each(|r| s.add(r));
        s.top(order, 0)
            .into_iter()
            .map(|(k, c)| (k.to_string(), c.flows, c.packets, c.bytes))
            .collect()
    }

    #[test]
    fn groups_by_each_key() {
        type Row = (&'static str, u64, u64, u64);
        let cases: [(By, Order, &[Row], &str); 7] = [
            (
                By::Src,
                Order::Bytes,
                &[
                    ("10.0.0.1", 2, 12, 1184),
                    ("10.0.0.9", 1, 5, 500),
                    ("10.0.0.2", 1, 2, 200),
                ],
                "",
            ),
            (
                By::Dst,
                Order::Flows,
                &[
                    ("10.0.0.9", 2, 12, 1200),
                    ("10.0.0.1", 1, 5, 500),
                    ("10.0.0.3", 1, 2, 184),
                ],
                "",
            ),
            (
                By::Host,
                Order::Packets,
                &[
                    ("10.0.0.9", 3, 17, 1700),
                    ("10.0.0.1", 3, 17, 1684),
                    ("10.0.0.2", 1, 2, 200),
                    ("10.0.0.3", 1, 2, 184),
                ],
                "",
            ),
            (
                By::Port,
                Order::Flows,
                &[("tcp/443", 2, 12, 1200), ("udp/53", 1, 5, 500)],
                "ICMP has no port",
            ),
            (
                By::Proto,
                Order::Bytes,
                &[
                    ("tcp", 2, 12, 1200),
                    ("udp", 1, 5, 500),
                    ("icmp", 1, 2, 184),
                ],
                "",
            ),
            (
                By::Pair,
                Order::Bytes,
                &[
                    ("10.0.0.1 <-> 10.0.0.9", 2, 15, 1500),
                    ("10.0.0.2 <-> 10.0.0.9", 1, 2, 200),
                    ("10.0.0.1 <-> 10.0.0.3", 1, 2, 184),
                ],
                "",
            ),
            (
                By::Mac,
                Order::Flows,
                &[
                    ("02:00:00:00:00:01", 4, 19, 1884),
                    ("02:00:00:00:00:02", 4, 19, 1884),
                ],
                "",
            ),
        ];
        for (by, order, want, why) in cases {
            let want: Vec<(String, u64, u64, u64)> = want
                .iter()
                .map(|&(k, f, p, b)| (k.to_string(), f, p, b))
                .collect();
            assert_eq!(top(by, order), want, "{by:?} by {order:?} {why}");
        }
    }

    #[test]
    fn top_n_and_ties_are_deterministic() {
        let mut s = Stats::new(By::Src);
        for i in 0..20u8 {
            s.add(&r(&format!("10.0.1.{i}"), "10.0.0.9", 6, 80, 1, 100));
        }
        let t = s.top(Order::Bytes, 3);
        let keys: Vec<String> = t.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys, ["10.0.1.0", "10.0.1.1", "10.0.1.2"]);
        assert_eq!(s.total().flows, 20);
        assert_eq!(s.total().packets, 40);
    }

    #[test]
    fn outputs() {
        let mut s = Stats::new(By::Dst);
        sample().iter().for_each(|r| s.add(r));
        let render = |f| {
            let mut v = Vec::new();
            print(&mut v, f, &s, Order::Bytes, 2).unwrap();
            String::from_utf8(v).unwrap()
        };
        let csv = render(Format::Csv);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines.len(), 3);
        // 1200 of 1884 bytes = 63.69 %.
        assert!(
            lines[1].starts_with("1,dst,10.0.0.9,2,50,12,63.16,1200,63.69,"),
            "{}",
            lines[1]
        );
        let json = render(Format::Jsonl);
        let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
        assert_eq!(v["key"], "10.0.0.9");
        assert_eq!(v["bytes"], 1200);
        assert_eq!(v["bytes_pct"], 63.69);
        assert_eq!(v["first"], "1970-01-01T00:00:00.000000010Z");
        let table = render(Format::Table);
        assert!(
            table.starts_with("top 2 dst by bytes, of 4 flows, 19 packets, 1884 bytes matched\n")
        );
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[1].starts_with("dst      "), "{table}");
        assert!(
            lines[2].starts_with("10.0.0.9 ") && lines[2].contains(" 63.7%"),
            "{table}"
        );
        // Columns line up: the header's "bytes" ends where the rows' byte counts do.
        let end = |l: &str, w: &str| l.find(w).map(|i| i + w.len());
        assert_eq!(end(lines[1], " bytes"), end(lines[2], " 1.2 k"), "{table}");
    }
}
