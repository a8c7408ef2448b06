//! `REPORT.html`: one self-contained page (inline CSS and SVG, nothing fetched) saying what
//! was asked, what was found and what the store could not have seen. Every value from the
//! store or the user is HTML-escaped.

use super::write::Request;
use crate::store::segment::CAPTURE_MACS_NOT_STORED;
use crate::store::SegmentInfo;
use crate::time::{format_rfc3339, Nanos, NANOS_PER_SEC};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

/// Bars in the traffic chart.
const BINS: usize = 48;
const HOUR: Nanos = 3600 * NANOS_PER_SEC;

/// Two addresses that talked, both directions summed.
#[derive(Debug, Clone)]
pub struct Pair {
    pub a: IpAddr,
    pub b: IpAddr,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

impl Default for Pair {
    fn default() -> Pair {
        let none = IpAddr::from([0, 0, 0, 0]);
        Pair {
            a: none,
            b: none,
            flows: 0,
            packets: 0,
            bytes: 0,
        }
    }
}

/// What the bundle holds, as the page tells it.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub since: Nanos,
    pub until: Nanos,
    pub records: u64,
    pub pair_count: usize,
    pub top_pairs: Vec<Pair>,
    pub addresses: BTreeSet<IpAddr>,
    /// Bytes per bin of the range (by each record's `first`).
    pub bins: Vec<u64>,
    pub leases: usize,
    pub segments: Vec<SegmentInfo>,
    pub audit_entries: usize,
    /// The hold entries overlapping the range, one line each.
    pub holds: Vec<String>,
    pub checkpoint: String,
    pub signed: bool,
    pub scan_problems: Vec<String>,
}

impl Findings {
    pub fn new(since: Nanos, until: Nanos) -> Findings {
        Findings {
            since,
            until,
            bins: vec![0; BINS],
            ..Findings::default()
        }
    }

    fn bin_width(&self) -> Nanos {
        ((self.until - self.since) / BINS as Nanos).max(1)
    }

    /// Adds a record's bytes to the bin of its start (a record begun before the range: the
    /// first bin).
    pub fn add_bytes(&mut self, first: Nanos, _last: Nanos, bytes: u64) {
        let i = (first.max(self.since) - self.since) / self.bin_width();
        let i = usize::try_from(i).unwrap_or(BINS - 1).min(BINS - 1);
        self.bins[i] = self.bins[i].saturating_add(bytes);
    }
}

/// The query report's escaping: every text on a page is data.
pub use crate::query::report::escape;

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;\
color:#1d232b;padding:0 1em}h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;\
margin-top:1.6em;border-bottom:1px solid #ccd;padding-bottom:.2em}table{border-collapse:collapse;\
margin:.5em 0}td,th{border:1px solid #ccd;padding:.25em .6em;text-align:left;white-space:nowrap}th{background:#eef1f6}\
td.n{text-align:right;font-variant-numeric:tabular-nums}code,pre{font-family:ui-monospace,monospace;\
font-size:.9em}pre{background:#f4f5f8;padding:.6em;overflow-x:auto}.gap{color:#9a3412}\
.ok{color:#166534}table.seg{font-size:.8em}.sub{color:#556}svg{background:#fafbfc;border:1px solid #ccd}";

/// The page.
pub fn html(req: &Request, f: &Findings) -> String {
    let mut o = String::new();
    let case = escape(&req.case);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Disclosure: {case}</title><style>{STYLE}</style></head><body>\n\
         <h1>Disclosure: {case}</h1>\n<p class=\"sub\">Written by flowkeep {} at {} by {}.</p>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&format_rfc3339(req.asked_at)),
        escape(&req.asked_by)
    );
    asked(&mut o, req);
    found(&mut o, f);
    chart(&mut o, f);
    gaps(&mut o, f);
    evidence(&mut o, f);
    o.push_str("</body></html>\n");
    o
}

fn asked(o: &mut String, req: &Request) {
    let expr = if req.filter.is_all() {
        "(none: every record)".to_string()
    } else {
        req.filter.text().to_string()
    };
    let _ = write!(
        o,
        "<h2>What was asked</h2>\n<table><tr><th>Case</th><td>{}</td></tr>\
         <tr><th>From</th><td>{}</td></tr><tr><th>Until</th><td>{}</td></tr>\
         <tr><th>Expression</th><td><code>{}</code></td></tr>\
         <tr><th>Asked at</th><td>{}</td></tr><tr><th>Asked by</th><td>{}</td></tr></table>\n",
        escape(&req.case),
        escape(&format_rfc3339(req.since)),
        escape(&format_rfc3339(req.until)),
        escape(&expr),
        escape(&format_rfc3339(req.asked_at)),
        escape(&req.asked_by)
    );
}

fn found(o: &mut String, f: &Findings) {
    let _ = write!(
        o,
        "<h2>What was found</h2>\n<p>{} flow record(s) between {} address pair(s), {} distinct \
         address(es); {} DHCP lease observation(s) of those addresses.</p>\n",
        f.records,
        f.pair_count,
        f.addresses.len(),
        f.leases
    );
    if f.top_pairs.is_empty() {
        return;
    }
    o.push_str(
        "<table><tr><th>Address</th><th>Address</th><th>Flows</th><th>Packets</th>\
         <th>Bytes</th></tr>\n",
    );
    for p in &f.top_pairs {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            escape(&p.a.to_string()),
            escape(&p.b.to_string()),
            p.flows,
            p.packets,
            p.bytes
        );
    }
    let _ = writeln!(
        o,
        "</table><p class=\"sub\">The {} pair(s) with the most bytes, both directions summed.</p>",
        f.top_pairs.len()
    );
}

fn chart(o: &mut String, f: &Findings) {
    let (w, h, left, bottom) = (900.0f64, 220.0f64, 70.0f64, 30.0f64);
    let max = f.bins.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bar = (w - left - 10.0) / f.bins.len() as f64;
    let _ = write!(
        o,
        "<h2>Matching traffic over time</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
         aria-label=\"bytes per interval\">\n\
         <line x1=\"{left}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#667\"/>\n\
         <text x=\"{tx}\" y=\"16\" font-size=\"11\" text-anchor=\"end\">{max}</text>\n\
         <text x=\"{tx}\" y=\"{y0}\" font-size=\"11\" text-anchor=\"end\">0</text>\n",
        y0 = h - bottom,
        x1 = w - 10.0,
        tx = left - 6.0,
        max = escape(&human_bytes(max as u64))
    );
    for (i, &b) in f.bins.iter().enumerate() {
        let bh = (b as f64 / max) * (h - bottom - 12.0);
        if b == 0 {
            continue;
        }
        let _ = writeln!(
            o,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2f6fb0\">\
             <title>{} B</title></rect>",
            left + i as f64 * bar + 1.0,
            h - bottom - bh,
            (bar - 2.0).max(1.0),
            bh.max(1.0),
            b
        );
    }
    let _ = write!(
        o,
        "<text x=\"{left}\" y=\"{ty}\" font-size=\"11\">{}</text>\
         <text x=\"{x1}\" y=\"{ty}\" font-size=\"11\" text-anchor=\"end\">{}</text></svg>\n\
         <p class=\"sub\">Bytes (both directions) of the matching records, by the time each \
         began, in {} intervals of {} s.</p>\n",
        escape(&format_rfc3339(f.since)),
        escape(&format_rfc3339(f.until)),
        f.bins.len(),
        f.bin_width() / NANOS_PER_SEC,
        ty = h - 10.0,
        x1 = w - 10.0,
    );
}

/// The hours of the range (the last one may be shorter) that no segment's partition overlaps,
/// and how many hours the range has.
fn uncovered_hours(f: &Findings) -> (Vec<(Nanos, Nanos)>, u64) {
    let (mut total, mut empty) = (0u64, Vec::new());
    let mut t = f.since;
    while t < f.until {
        let end = t.saturating_add(HOUR).min(f.until);
        total += 1;
        if !f
            .segments
            .iter()
            .any(|s| s.partition_start < end && s.partition_end > t)
        {
            match empty.last_mut() {
                Some((_, e)) if *e == t => *e = end,
                _ => empty.push((t, end)),
            }
        }
        t = end;
    }
    (empty, total)
}

/// Bytes in B, KiB, MiB, GiB.
fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

fn gaps(o: &mut String, f: &Findings) {
    o.push_str("<h2>What the store could not have seen</h2>\n<ul>\n");
    let mut any = false;
    let mut say = |o: &mut String, text: String| {
        any = true;
        let _ = writeln!(o, "<li class=\"gap\">{}</li>", escape(&text));
    };
    let (empty, total) = uncovered_hours(f);
    let hours: Nanos = empty.iter().map(|(a, b)| b - a).sum();
    if !empty.is_empty() {
        let spans: Vec<String> = empty
            .iter()
            .take(12)
            .map(|(a, b)| format!("{} to {}", format_rfc3339(*a), format_rfc3339(*b)))
            .collect();
        let more = empty.len().saturating_sub(12);
        say(
            o,
            format!(
                "{} of the {total} hour(s) of the range have no stored segment at all, so nothing \
             was recorded then (no capture ran, or its data was expired): {}{}.",
                if hours % HOUR == 0 {
                    (hours / HOUR).to_string()
                } else {
                    format!("{:.1}", hours as f64 / HOUR as f64)
                },
                spans.join("; "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
        );
    }
    for s in &f.segments {
        let c = &s.capture;
        let name = file_name(&s.path);
        let counts = [
            (c.kernel_drops, "packets dropped by the kernel"),
            (c.interface_drops, "packets dropped by the interface"),
            (
                c.flow_evictions,
                "flows ended early because the flow table was full",
            ),
            (
                c.records_not_stored,
                "flow records that could not be stored",
            ),
            (c.malformed, "frames that could not be decoded"),
        ];
        for (n, what) in counts {
            if n > 0 {
                say(o, format!("{name}: {n} {what}."));
            }
        }
        if c.flags & CAPTURE_MACS_NOT_STORED != 0 {
            say(
                o,
                format!("{name}: MAC addresses and DHCP hostnames were not kept (--no-mac)."),
            );
        }
        if let Some(e) = &s.error {
            say(o, format!("{name}: unreadable: {e}"));
        }
    }
    for p in &f.scan_problems {
        say(o, format!("Part of the store could not be read: {p}"));
    }
    if !any {
        o.push_str("<li class=\"ok\">No drops, evictions or lost records were counted, and every hour of the range has a segment.</li>\n");
    }
    o.push_str("</ul>\n");
}

fn evidence(o: &mut String, f: &Findings) {
    let _ = write!(
        o,
        "<h2>Evidence</h2>\n<p>{} segment(s) cover the range (<code>coverage.tsv</code>); {} audit \
         log entries with their Merkle inclusion proofs are in <code>audit.jsonl</code>, against \
         this checkpoint of the store's audit log (<code>checkpoint.txt</code>):</p>\n<pre>{}</pre>\n",
        f.segments.len(),
        f.audit_entries,
        escape(&f.checkpoint)
    );
    segments_table(o, f);
    if f.holds.is_empty() {
        o.push_str("<p>No legal hold overlaps the range.</p>\n");
    } else {
        o.push_str("<p>Legal holds over the range (from the audit log):</p>\n<ul>\n");
        for h in &f.holds {
            let _ = writeln!(o, "<li>{}</li>", escape(h));
        }
        o.push_str("</ul>\n");
    }
    if f.signed {
        o.push_str("<p class=\"ok\">The checkpoint and <code>manifest.json</code> are signed with the key in <code>signing-key.pub</code> (Ed25519).</p>\n");
    } else {
        o.push_str("<p class=\"gap\">This bundle is unsigned: the checkpoint is its bare body and <code>manifest.json</code> has no signature, so only the SHA-256 sums tie the files together; nothing ties them to the operator's key.</p>\n");
    }
    o.push_str("<p class=\"sub\">Check it without flowkeep: <code>sha256sum -c SHA256SUMS</code> in this directory, then the signature and the proofs as the README of flowkeep describes (\"Checking a bundle\").</p>\n");
}

/// The covering segments: where the records came from and what their capture counted.
fn segments_table(o: &mut String, f: &Findings) {
    if f.segments.is_empty() {
        return;
    }
    o.push_str(
        "<table class=\"seg\"><tr><th>Segment</th><th>First record</th><th>Last record</th><th>Records</th>\
         <th>Frames</th><th>Dropped</th><th>MACs kept</th></tr>\n",
    );
    for s in &f.segments {
        let c = &s.capture;
        let name = file_name(&s.path);
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            escape(&name),
            escape(&format_rfc3339(s.first)),
            escape(&format_rfc3339(s.last)),
            s.records,
            c.frames,
            c.kernel_drops.saturating_add(c.interface_drops),
            if c.flags & CAPTURE_MACS_NOT_STORED != 0 {
                "no"
            } else {
                "yes"
            }
        );
    }
    o.push_str("</table>\n");
}

/// The last component of a segment's path, as the report names it.
fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">O'Neil & co</a>"),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Neil &amp; co&lt;/a&gt;"
        );
    }

    #[test]
    fn bytes_land_in_their_bin_and_uncovered_hours_join() {
        let mut f = Findings::new(0, 4 * HOUR);
        f.add_bytes(-5, 0, 7);
        f.add_bytes(4 * HOUR - 1, 0, 3);
        assert_eq!((f.bins[0], f.bins[BINS - 1]), (7, 3));
        let (empty, total) = uncovered_hours(&f);
        assert_eq!((empty, total), (vec![(0, 4 * HOUR)], 4));
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
