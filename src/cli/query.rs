//! The reading commands' shared end: `query` and `stats` print what a selection matches, and
//! every reading command reports a scan the same way (what was skipped, exit status 3).

use super::args::{FormatArg, QueryArgs, ReportArgs, StatsArgs};
use super::audit::Answered;
use super::config::Selection;
use super::{attribution, warn_incomplete, INCOMPLETE};
use anyhow::{bail, Context, Result};
use flowkeep::query::{self, Format, Printer, QueryStats};
use flowkeep::store::access::HashingWriter;
use std::io::{self, IsTerminal, Write};

/// Table on a terminal, JSON lines otherwise, unless `--format` says. A person piping into
/// `head` or `less` expects the table: when stderr is still a terminal, they are told which
/// format they got and how to get the other (a script's stderr is rarely a terminal, so it is
/// not told).
pub(super) fn default_format(format: Option<FormatArg>, stdout: &io::Stdout) -> Format {
    if let Some(f) = format {
        return f.into();
    }
    if stdout.is_terminal() {
        return Format::Table;
    }
    if io::stderr().is_terminal() {
        eprintln!(
            "flowkeep: note: standard output is not a terminal, so the answer is JSON lines; \
             --format table for the table"
        );
    }
    Format::Jsonl
}

/// Explains and reports the scan on stderr; returns the exit status it calls for: 0, or
/// [`INCOMPLETE`] when blocks or segments were skipped as unreadable.
pub(super) fn after_scan(sel: &Selection, stats: &query::QueryStats, explain: bool) -> i32 {
    if explain {
        eprint!("{}", stats.explain(&sel.filter));
    }
    for p in &stats.scan.problems {
        eprintln!("flowkeep: warning: {p}");
    }
    let incomplete = !stats.scan.problems.is_empty();
    if incomplete {
        warn_incomplete(stats.scan.problems.len());
    }
    if !stats.scan.unsealed.is_empty() {
        eprintln!(
            "flowkeep: note: {} segment(s) still being written were read up to their last complete block",
            stats.scan.unsealed.len()
        );
    }
    if incomplete {
        INCOMPLETE
    } else {
        0
    }
}

pub(super) fn query(a: QueryArgs) -> Result<i32> {
    let sel = a.select.resolve()?;
    let stdout = io::stdout();
    let format = default_format(a.format, &stdout);
    // The answer's bytes as stdout took them, for the access entry: inside the buffer, so
    // that an answer cut short (`| head`) is hashed as far as it reached the reader.
    let mut out = io::BufWriter::new(HashingWriter::new(stdout.lock()));
    let (answer, printed) = print_query(&a, &sel, format, &mut out);
    let explain = a.select.explain;
    match answer.and_then(|stats| Ok(out.flush().map(|()| stats)?)) {
        Ok(stats) => {
            let status = after_scan(&sel, &stats, explain);
            // What the answer holds: all that matched, or what --limit let through.
            record(&sel, "query", explain, printed, out.get_ref())?;
            Ok(status)
        }
        Err(e) => {
            if super::is_broken_pipe(&e) {
                record(&sel, "query", explain, printed, out.get_ref())?;
            }
            Err(e)
        }
    }
}

/// Prints the selection's records; returns the statistics and, also on an error, how many
/// records were printed.
fn print_query(
    a: &QueryArgs,
    sel: &Selection,
    format: Format,
    out: &mut impl Write,
) -> (Result<QueryStats>, u64) {
    let (out, lease_problems): (Box<dyn Write + '_>, _) = if a.leases || a.tor {
        match attribution::annotator(&sel.store, format, sel.until, (a.leases, a.tor), out) {
            Ok(w) => w,
            Err(e) => return (Err(e), 0),
        }
    } else {
        (Box::new(out), Vec::new())
    };
    let mut printer = match Printer::new(format, out)
        .with_limit(a.limit)
        .with_fields(a.fields.as_deref())
    {
        Ok(p) => p,
        Err(e) => return (Err(anyhow::anyhow!("--fields: {e}")), 0),
    };
    let stats = query::print_matching(&sel.store, sel.since, sel.until, &sel.filter, &mut printer);
    let printed = printer.printed();
    if printer.truncated() {
        eprintln!(
            "flowkeep: note: --limit {}: more records match (the first {printed} in time order are printed)",
            a.limit.unwrap_or(0)
        );
    }
    let result = stats
        .map_err(anyhow::Error::from)
        .and_then(|s| Ok(printer.finish().map(|_| s)?))
        .map(|mut s| {
            s.scan.problems.extend(lease_problems);
            s
        });
    (result, printed)
}

pub(super) fn stats(a: StatsArgs) -> Result<i32> {
    let sel = a.select.resolve()?;
    let by = a.by;
    let interval = match (by.by, a.interval) {
        (query::stats::By::Time, None) => Some(DEFAULT_INTERVAL),
        (_, i) => i,
    };
    let stdout = io::stdout();
    let format = default_format(a.format, &stdout);
    let mut out = io::BufWriter::new(HashingWriter::new(stdout.lock()));
    let (printed, q) = if let Some(interval) = interval {
        let (series, q) = sel.tally(query::series::Series::new(by, interval))?;
        if series.bin_count() > query::series::MAX_BINS {
            bail!(
                "{} bins of {} would be printed, at most {} are: give a longer --interval or a \
                 shorter --since/--until",
                series.bin_count(),
                format_duration_arg(interval),
                query::series::MAX_BINS
            );
        }
        let p = query::series::print(&mut out, format, &series, a.order.into(), a.top);
        (p, q)
    } else {
        let (stats, q) = sel.tally(query::stats::Stats::new(by))?;
        (
            query::stats::print(&mut out, format, &stats, a.order.into(), a.top),
            q,
        )
    };
    let printed = printed.and_then(|()| out.flush());
    let explain = a.select.explain;
    if let Err(e) = printed {
        if e.kind() == io::ErrorKind::BrokenPipe {
            record(&sel, "stats", explain, q.matched, out.get_ref())?;
        }
        return Err(e.into());
    }
    let status = after_scan(&sel, &q, explain);
    record(&sel, "stats", explain, q.matched, out.get_ref())?;
    Ok(status)
}

/// The HTML report: one scan, the page written whole to `--out` (through a temporary file, so
/// that a failed run leaves no half page), its hash in the access entry.
pub(super) fn report(a: ReportArgs) -> Result<i32> {
    let sel = a.select.resolve()?;
    let interval = match a.interval {
        Some(i) => i,
        None => report_interval(&sel)?,
    };
    let (report, q) = sel.tally(query::report::Report::new(interval))?;
    if report.series.bin_count() > query::series::MAX_BINS {
        bail!(
            "{} bins of {} for the chart: give a longer --interval or a shorter --since/--until",
            report.series.bin_count(),
            format_duration_arg(interval)
        );
    }
    let page = query::report::html(
        &report,
        (sel.since, sel.until),
        sel.filter.text(),
        &sel.store.dir().display().to_string(),
        a.top,
    );
    let mut hashed = HashingWriter::new(Vec::new());
    hashed.write_all(page.as_bytes())?;
    let name = a
        .out
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("--out {}: not a file name", a.out.display()))?;
    let dir = match a.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    flowkeep::fs::write_atomically(dir, &format!(".{name}.tmp"), name, page.as_bytes())
        .with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "flowkeep: report of {} records written to {}",
        q.matched,
        a.out.display()
    );
    let status = after_scan(&sel, &q, a.select.explain);
    super::audit::record_access(
        &sel.store,
        Answered {
            command: "report",
            since: sel.since,
            until: sel.until,
            filter: &sel.expr,
            records: q.matched,
            sha256: hashed.sha256(),
            hashed: "file",
        },
    )?;
    Ok(status)
}

/// About 100 bins over the selection's span (or the store's), a whole number of minutes.
fn report_interval(sel: &Selection) -> Result<flowkeep::time::Nanos> {
    use flowkeep::time::NANOS_PER_SEC;
    let o = sel.store.overview()?;
    let lo = sel.since.or(o.first).unwrap_or(0);
    let hi = sel.until.or(o.last).unwrap_or(lo);
    let minute = 60 * NANOS_PER_SEC;
    Ok(((hi.saturating_sub(lo) / 100) / minute).max(1) * minute)
}

/// `stats --by time` without `--interval`: five minutes, nfdump's file rotation.
const DEFAULT_INTERVAL: flowkeep::time::Nanos = 300 * flowkeep::time::NANOS_PER_SEC;

/// A duration as the operator would write it back (`300s`).
fn format_duration_arg(ns: flowkeep::time::Nanos) -> String {
    format!("{}s", ns as f64 / flowkeep::time::NANOS_PER_SEC as f64)
}

/// The access entry of a selection's answer written to stdout; none for `--explain`.
fn record<W: Write>(
    sel: &Selection,
    command: &'static str,
    explain: bool,
    records: u64,
    out: &HashingWriter<W>,
) -> Result<()> {
    if explain {
        return Ok(());
    }
    super::audit::record_access(
        &sel.store,
        Answered {
            command,
            since: sel.since,
            until: sel.until,
            filter: &sel.expr,
            records,
            sha256: out.sha256(),
            hashed: "stdout",
        },
    )
}
