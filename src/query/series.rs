//! Traffic over time: the matching records in bins of a fixed interval, as nfdump's `-t`
//! slices or SiLK's `rwcount` give them, and the top-N of any `--by` key within each bin.
//!
//! A record counts whole in the bin of its first packet (bins start at multiples of the
//! interval since the Unix epoch, so 5-minute bins start at :00, :05, ...). A record longer
//! than a bin is not spread over the bins it spans (rwcount's `--load-scheme` does that): its
//! packets and bytes land when it started, so a bin's bps is an average over the bin of what
//! started in it. Bins with nothing in them are printed too, between the first and the last,
//! so that a chart's time axis has no gaps.

use super::stats::{By, Counts, Grouping, Order, Stats};
use super::{format_table_time, human, Format, Tally};
use crate::record::FlowRecord;
use crate::time::{format_rfc3339, Nanos, NANOS_PER_SEC};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// The most bins one answer prints: a larger interval, or a shorter range, is needed beyond.
pub const MAX_BINS: i64 = 1_000_000;

/// Statistics per bin.
#[derive(Debug, Clone)]
pub struct Series {
    by: Grouping,
    interval: Nanos,
    bins: BTreeMap<Nanos, Stats>,
}

impl Series {
    pub fn new(by: impl Into<Grouping>, interval: Nanos) -> Series {
        Series {
            by: by.into(),
            interval: interval.max(1),
            bins: BTreeMap::new(),
        }
    }

    fn bin_of(&self, t: Nanos) -> Nanos {
        t.div_euclid(self.interval) * self.interval
    }

    pub fn add(&mut self, r: &FlowRecord) {
        let bin = self.bin_of(r.first);
        let by = self.by;
        self.bins
            .entry(bin)
            .or_insert_with(|| Stats::new(by))
            .add(r);
    }

    /// Every bin from the first to the last that holds a record, empty ones too, with its
    /// statistics (`None`: empty).
    pub fn bins(&self) -> Vec<(Nanos, Option<&Stats>)> {
        let (Some(&lo), Some(&hi)) = (self.bins.keys().next(), self.bins.keys().next_back()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut t = lo;
        loop {
            out.push((t, self.bins.get(&t)));
            match t.checked_add(self.interval) {
                Some(n) if n <= hi => t = n,
                _ => break,
            }
        }
        out
    }

    /// How many bins [`Series::bins`] gives.
    pub fn bin_count(&self) -> i64 {
        match (self.bins.keys().next(), self.bins.keys().next_back()) {
            (Some(&lo), Some(&hi)) => (hi - lo) / self.interval + 1,
            _ => 0,
        }
    }
}

impl Tally for Series {
    fn add(&mut self, r: &FlowRecord) {
        Series::add(self, r);
    }
}

/// A bin's totals as rates over the whole bin (not the records' spans).
fn per_second(n: u64, interval: Nanos) -> f64 {
    n as f64 * NANOS_PER_SEC as f64 / interval as f64
}

#[derive(serde::Serialize)]
struct TimeRow<'a> {
    bin: &'a str,
    interval_s: f64,
    flows: u64,
    packets: u64,
    bytes: u64,
    bps: f64,
    pps: f64,
}

const TIME_CSV_HEADER: &str = "bin,interval_s,flows,packets,bytes,bps,pps";

/// Prints the series: one row per bin for `--by time`, else each bin's top `n` by `order`.
pub fn print(
    out: &mut impl Write,
    format: Format,
    series: &Series,
    order: Order,
    n: usize,
) -> io::Result<()> {
    if series.by.by == By::Time {
        print_bins(out, format, series)?;
    } else {
        for (i, (bin, stats)) in series.bins().into_iter().enumerate() {
            let Some(stats) = stats else { continue };
            let bin = format_rfc3339(bin);
            super::stats::print_in_bin(out, format, stats, order, n, &bin, i == 0)?;
        }
    }
    out.flush()
}

fn print_bins(out: &mut impl Write, format: Format, series: &Series) -> io::Result<()> {
    let secs = series.interval as f64 / NANOS_PER_SEC as f64;
    let empty = Counts::default();
    if format == Format::Csv {
        writeln!(out, "{TIME_CSV_HEADER}")?;
    }
    if format == Format::Table {
        writeln!(
            out,
            "{:<23} {:>9} {:>9} {:>9} {:>11} {:>9}",
            "bin", "flows", "packets", "bytes", "bps", "pps"
        )?;
    }
    for (bin, stats) in series.bins() {
        let c = stats.map_or(empty, Stats::total);
        let (flows, packets, bytes) = (c.flows, c.packets, c.bytes);
        let bps = per_second(bytes.saturating_mul(8), series.interval);
        let pps = per_second(packets, series.interval);
        match format {
            Format::Table => writeln!(
                out,
                "{:<23} {:>9} {:>9} {:>9} {:>11} {:>9}",
                format_table_time(bin),
                human(flows),
                human(packets),
                human(bytes),
                human(bps.round() as u64),
                human(pps.round() as u64),
            )?,
            Format::Csv => writeln!(
                out,
                "{},{secs},{flows},{packets},{bytes},{},{}",
                format_rfc3339(bin),
                round3(bps),
                round3(pps)
            )?,
            Format::Jsonl => {
                let bin = format_rfc3339(bin);
                serde_json::to_writer(
                    &mut *out,
                    &TimeRow {
                        bin: &bin,
                        interval_s: secs,
                        flows,
                        packets,
                        bytes,
                        bps: round3(bps),
                        pps: round3(pps),
                    },
                )?;
                writeln!(out)?;
            }
        }
    }
    Ok(())
}

/// Three decimals: a rate needs no more, and CSV and JSON stay short.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::EndReason;

    fn rec(first: Nanos, src: &str, packets: u64, bytes: u64) -> FlowRecord {
        FlowRecord {
            first,
            last: first + 10 * NANOS_PER_SEC,
            proto: 6,
            src: src.parse().unwrap(),
            sport: 40000,
            dst: "192.0.2.1".parse().unwrap(),
            dport: 443,
            vlan: 0,
            inner_vlan: 0,
            interface: 0,
            src_mac: None,
            dst_mac: None,
            packets,
            bytes,
            rev_packets: 1,
            rev_bytes: 100,
            tcp_flags: 0,
            rev_tcp_flags: 0,
            end: EndReason::Idle,
        }
    }

    const MIN: Nanos = 60 * NANOS_PER_SEC;
    // 2026-01-01T00:00:00.000000000Z
    const T0: Nanos = 1_767_225_600 * NANOS_PER_SEC;

    fn lines(s: &Series, format: Format, order: Order, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        print(&mut out, format, s, order, n).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn bins_by_first_packet_with_empty_bins_between() {
        let mut s = Series::new(By::Time, 5 * MIN);
        s.add(&rec(T0 + 4 * MIN, "10.0.0.1", 9, 900)); // bin :00
        s.add(&rec(T0 + 5 * MIN, "10.0.0.1", 4, 400)); // bin :05
        s.add(&rec(T0 + 5 * MIN + 1, "10.0.0.2", 1, 50)); // bin :05
        s.add(&rec(T0 + 17 * MIN, "10.0.0.3", 2, 200)); // bin :15 (:10 empty)
        let csv = lines(&s, Format::Csv, Order::Flows, 0);
        assert_eq!(
            csv,
            [
                "bin,interval_s,flows,packets,bytes,bps,pps",
                // 10 packets, 1000 bytes in 300 s: 8000 bits / 300 s.
                "2026-01-01T00:00:00.000000000Z,300,1,10,1000,26.667,0.033",
                "2026-01-01T00:05:00.000000000Z,300,2,7,650,17.333,0.023",
                "2026-01-01T00:10:00.000000000Z,300,0,0,0,0,0",
                "2026-01-01T00:15:00.000000000Z,300,1,3,300,8,0.01",
            ]
        );
        let json = lines(&s, Format::Jsonl, Order::Flows, 0);
        let v: serde_json::Value = serde_json::from_str(&json[1]).unwrap();
        assert_eq!(v["bin"], "2026-01-01T00:05:00.000000000Z");
        assert_eq!(v["flows"], 2);
        assert_eq!(v["bytes"], 650);
        assert_eq!(s.bin_count(), 4);
    }

    #[test]
    fn times_before_1970_fall_in_the_bin_below() {
        let mut s = Series::new(By::Time, MIN);
        s.add(&rec(-1, "10.0.0.1", 1, 1));
        assert_eq!(s.bins()[0].0, -MIN);
    }

    #[test]
    fn top_n_per_bin() {
        let mut s = Series::new(By::Src, 5 * MIN);
        s.add(&rec(T0, "10.0.0.1", 1, 100));
        s.add(&rec(T0 + MIN, "10.0.0.2", 50, 5000));
        s.add(&rec(T0 + 2 * MIN, "10.0.0.2", 50, 5000));
        s.add(&rec(T0 + 10 * MIN, "10.0.0.3", 1, 100));
        let rows: Vec<serde_json::Value> = lines(&s, Format::Jsonl, Order::Bytes, 1)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2, "one row per non-empty bin: {rows:?}");
        assert_eq!(rows[0]["bin"], "2026-01-01T00:00:00.000000000Z");
        assert_eq!(rows[0]["key"], "10.0.0.2");
        assert_eq!(rows[0]["flows_pct"], 66.67);
        assert_eq!(rows[1]["bin"], "2026-01-01T00:10:00.000000000Z");
        assert_eq!(rows[1]["key"], "10.0.0.3");
        let csv = lines(&s, Format::Csv, Order::Bytes, 1);
        assert!(csv[0].starts_with("bin,rank,by,key,"), "{csv:?}");
        assert_eq!(csv.len(), 3, "one header: {csv:?}");
        assert!(
            csv[1].starts_with("2026-01-01T00:00:00.000000000Z,1,src,10.0.0.2,2,"),
            "{csv:?}"
        );
    }
}
