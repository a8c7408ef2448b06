//! `flowkeep report`: one self-contained HTML page of the matching records, for someone who
//! will not run queries: traffic over time (an inline SVG chart of bytes per bin) and the top
//! sources, destinations, pairs and services. No script, no style sheet or font from elsewhere:
//! the page opens the same offline, and nothing in it is fetched.

use super::series::Series;
use super::stats::{By, Counts, Order, Stats};
use super::Tally;
use crate::record::FlowRecord;
use crate::time::{format_rfc3339, Nanos, NANOS_PER_SEC};
use std::fmt::Write as _;

/// What the page is made of, gathered in one scan.
pub struct Report {
    pub series: Series,
    pub tables: Vec<Stats>,
    pub interval: Nanos,
}

/// The groupings the page ranks.
const TABLES: [(By, &str); 4] = [
    (By::Src, "Top sources (initiators)"),
    (By::Dst, "Top destinations (responders)"),
    (By::Pair, "Top conversations"),
    (By::Port, "Top services"),
];

impl Report {
    /// An empty page with bins of `interval`, for [`super::tally`].
    pub fn new(interval: Nanos) -> Report {
        Report {
            series: Series::new(By::Time, interval),
            tables: TABLES.iter().map(|(by, _)| Stats::new(*by)).collect(),
            interval,
        }
    }
}

impl Tally for Report {
    fn add(&mut self, r: &FlowRecord) {
        self.series.add(r);
        for t in &mut self.tables {
            t.add(r);
        }
    }
}

/// `s` with `&`, `<`, `>`, `"` and `'` escaped: every text on the page is data.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:64em;\
color:#1d232b;padding:0 1em}h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;\
margin-top:1.6em;border-bottom:1px solid #ccd;padding-bottom:.2em}table{border-collapse:collapse;\
margin:.5em 0}td,th{border:1px solid #ccd;padding:.25em .6em;text-align:left;white-space:nowrap}\
th{background:#eef1f6}td.n{text-align:right;font-variant-numeric:tabular-nums}.sub{color:#556}\
svg{background:#fafbfc;border:1px solid #ccd}";

/// The page. `range` is what was asked (`since`, `until`; `None`: open), `filter` the
/// expression's text, `top` the rows per table.
pub fn html(
    report: &Report,
    range: (Option<Nanos>, Option<Nanos>),
    filter: &str,
    store: &str,
    top: usize,
) -> String {
    let mut o = String::new();
    let t = |v: Option<Nanos>| v.map_or_else(|| "open".to_string(), format_rfc3339);
    let total = report
        .tables
        .first()
        .map_or_else(Counts::default, Stats::total);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>flowkeep report</title><style>{STYLE}</style></head><body>\n\
         <h1>Flow report</h1>\n<p class=\"sub\">Store <code>{}</code>, records from {} until {}, \
         filter <code>{}</code>.</p>\n<p>{} flows, {} packets, {} bytes (both directions).</p>\n",
        escape(store),
        escape(&t(range.0)),
        escape(&t(range.1)),
        escape(if filter.is_empty() { "(none)" } else { filter }),
        total.flows,
        total.packets,
        total.bytes
    );
    chart(&mut o, report);
    for ((_, title), stats) in TABLES.iter().zip(&report.tables) {
        table(&mut o, title, stats, top);
    }
    o.push_str("<p class=\"sub\">Made by flowkeep report.</p>\n</body></html>\n");
    o
}

fn chart(o: &mut String, report: &Report) {
    let bins = report.series.bins();
    let bytes: Vec<u64> = bins
        .iter()
        .map(|(_, s)| s.map_or(0, |s| s.total().bytes))
        .collect();
    let _ = writeln!(o, "<h2>Traffic over time</h2>");
    if bins.is_empty() {
        o.push_str("<p>No record matched.</p>\n");
        return;
    }
    let (w, h, left, bottom) = (960.0f64, 240.0f64, 80.0f64, 30.0f64);
    let max = bytes.iter().copied().max().unwrap_or(0).max(1);
    let secs = report.interval as f64 / NANOS_PER_SEC as f64;
    let bar = (w - left - 10.0) / bins.len() as f64;
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"bits per second\">\n\
         <line x1=\"{left}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#667\"/>\n\
         <text x=\"{tx}\" y=\"16\" font-size=\"11\" text-anchor=\"end\">{}</text>\n\
         <text x=\"{tx}\" y=\"{y0}\" font-size=\"11\" text-anchor=\"end\">0</text>\n",
        escape(&rate(max as f64 * 8.0 / secs)),
        y0 = h - bottom,
        x1 = w - 10.0,
        tx = left - 6.0,
    );
    for (i, (&b, (start, _))) in bytes.iter().zip(&bins).enumerate() {
        if b == 0 {
            continue;
        }
        let bh = (b as f64 / max as f64) * (h - bottom - 12.0);
        let _ = writeln!(
            o,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2f6fb0\">\
             <title>{}: {}</title></rect>",
            left + i as f64 * bar + 0.5,
            h - bottom - bh,
            (bar - 1.0).max(0.5),
            bh.max(1.0),
            escape(&format_rfc3339(*start)),
            escape(&rate(b as f64 * 8.0 / secs)),
        );
    }
    let last = bins
        .last()
        .map_or(0, |(s, _)| s.saturating_add(report.interval));
    let _ = write!(
        o,
        "<text x=\"{left}\" y=\"{ty}\" font-size=\"11\">{}</text>\
         <text x=\"{x1}\" y=\"{ty}\" font-size=\"11\" text-anchor=\"end\">{}</text></svg>\n\
         <p class=\"sub\">Bits per second of the matching records (both directions), each \
         counted in the bin of its first packet, {} bins of {secs} s.</p>\n",
        escape(&format_rfc3339(bins[0].0)),
        escape(&format_rfc3339(last)),
        bins.len(),
        ty = h - 10.0,
        x1 = w - 10.0,
    );
}

fn table(o: &mut String, title: &str, stats: &Stats, top: usize) {
    let total = stats.total();
    let rows = stats.top(Order::Bytes, top);
    let _ = write!(
        o,
        "<h2>{}</h2>\n<table><tr><th>#</th><th>key</th><th>flows</th><th>packets</th>\
         <th>bytes</th><th>share of bytes</th><th>first</th><th>last</th></tr>\n",
        escape(title)
    );
    for (i, (k, c)) in rows.iter().enumerate() {
        let share = if total.bytes == 0 {
            0.0
        } else {
            c.bytes as f64 * 100.0 / total.bytes as f64
        };
        let _ = writeln!(
            o,
            "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{share:.1} %</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            escape(&k.to_string()),
            c.flows,
            c.packets,
            c.bytes,
            escape(&super::format_table_time(c.first)),
            escape(&super::format_table_time(c.last)),
        );
    }
    o.push_str("</table>\n");
}

/// Bits per second in SI units, as network people read them.
fn rate(bps: f64) -> String {
    for (scale, unit) in [(1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")] {
        if bps >= scale {
            return format!("{:.1} {unit}", bps / scale);
        }
    }
    format!("{bps:.0} bit/s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_is_escaped() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(rate(2_500_000.0), "2.5 Mbit/s");
        assert_eq!(rate(999.0), "999 bit/s");
    }
}
