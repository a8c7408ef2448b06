//! `flowkeep export`: stored records to another system (back-filling a central collector), and
//! what the `--export` option of capture and replay sent.

use super::args::ExportArgs;
use super::audit::Answered;
use super::config::{parse_target, ExportTarget, Selection};
use super::query::after_scan;
use anyhow::{Context, Result};
use flowkeep::export::parquet::{export_parquet_with, ParquetOptions};
use flowkeep::export::{ExportStats, IpfixExporter, IpfixTarget};
use flowkeep::query::{self, QueryStats};
use flowkeep::record::FlowRecord;
use flowkeep::store::access::hash_files;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::time::Instant;

pub(super) fn export(a: ExportArgs) -> Result<i32> {
    let target = parse_target(&a.to)?;
    let sel = a.select.resolve()?;
    match target {
        ExportTarget::Ipfix(target) => export_ipfix(&a, &sel, &target),
        ExportTarget::Parquet(dir) => export_parquet_files(&a, &sel, &dir),
    }
}

fn export_parquet_files(a: &ExportArgs, sel: &Selection, outdir: &std::path::Path) -> Result<i32> {
    let keep = |r: &FlowRecord| sel.filter.matches(r);
    let opts = ParquetOptions {
        overwrite: a.overwrite,
        row_group_rows: a.row_group_rows as usize,
        ..ParquetOptions::default()
    };
    let started = Instant::now();
    let s = export_parquet_with(&sel.store, sel.since, sel.until, &keep, outdir, &opts)
        .with_context(|| format!("export to {}", outdir.display()))?;
    let elapsed = started.elapsed().as_secs_f64();
    let q = QueryStats {
        scan: s.scan.clone(),
        matched: s.records,
    };
    let status = after_scan(sel, &q, a.select.explain);
    if !a.select.explain {
        let paths: Vec<_> = s.files.iter().map(|f| f.path.clone()).collect();
        let (sha256, _) = hash_files(&paths)?;
        record(sel, s.records, sha256, "files")?;
    }
    let mut out = io::stdout().lock();
    for f in &s.files {
        writeln!(
            out,
            "file           {} ({} records, {} bytes)",
            f.path.display(),
            f.records,
            f.bytes
        )?;
    }
    let rate = if elapsed > 0.0 {
        s.records as f64 / elapsed
    } else {
        0.0
    };
    writeln!(out, "files          {}", s.files.len())?;
    writeln!(out, "records        {}", s.records)?;
    writeln!(out, "bytes          {}", s.bytes)?;
    writeln!(out, "elapsed        {elapsed:.3} s")?;
    writeln!(out, "records/s      {rate:.0}")?;
    out.flush()?;
    Ok(status)
}

fn export_ipfix(a: &ExportArgs, sel: &Selection, target: &IpfixTarget) -> Result<i32> {
    let mut exporter = IpfixExporter::open(target, a.ipfix.config(target.tcp))?;
    exporter.hash_sent();
    exporter.connect().with_context(|| {
        format!("cannot connect to the IPFIX collector {target}; nothing was sent")
    })?;
    let started = Instant::now();
    let mut records = 0u64;
    let q = query::scan_matching(&sel.store, sel.since, sel.until, &sel.filter, |_, r| {
        records += 1;
        exporter.export(r, super::wall_clock());
        ControlFlow::Continue(())
    })?;
    exporter.flush(super::wall_clock());
    let elapsed = started.elapsed().as_secs_f64();
    let status = after_scan(sel, &q, a.select.explain);
    let st = exporter.stats().clone();
    if !a.select.explain {
        let sha256 = exporter.sent_sha256().unwrap_or_default();
        record(sel, st.records_sent, sha256, "messages")?;
    }
    let mut out = io::stdout().lock();
    writeln!(out, "records        {records}")?;
    writeln!(out, "sent           {}", st.records_sent)?;
    writeln!(out, "not sent       {}", st.records_failed)?;
    writeln!(out, "messages       {}", st.messages)?;
    writeln!(out, "bytes          {}", st.bytes)?;
    writeln!(out, "target         {target}")?;
    writeln!(out, "elapsed        {elapsed:.3} s")?;
    let rate = if elapsed > 0.0 {
        st.records_sent as f64 / elapsed
    } else {
        0.0
    };
    writeln!(out, "records/s      {rate:.0}")?;
    out.flush()?;
    if st.records_failed > 0 {
        eprintln!(
            "flowkeep: error: {} of {records} records could not be sent to {target}: {}",
            st.records_failed,
            st.last_error.as_deref().unwrap_or("unknown error")
        );
        return Ok(1);
    }
    Ok(status)
}

/// The access entry of an export: what it sent or wrote, hashed.
fn record(sel: &Selection, records: u64, sha256: String, hashed: &'static str) -> Result<()> {
    super::audit::record_access(
        &sel.store,
        Answered {
            command: "export",
            since: sel.since,
            until: sel.until,
            filter: &sel.expr,
            records,
            sha256,
            hashed,
        },
    )
}

/// What a capture or replay exported as it went (`--export`).
pub(super) fn print_live_summary(st: &ExportStats, target: &IpfixTarget) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "exported       {} records to {target} ({} messages, {} bytes)",
        st.records_sent, st.messages, st.bytes
    )?;
    if st.records_failed > 0 {
        writeln!(out, "not exported   {}", st.records_failed)?;
        out.flush()?;
        eprintln!(
            "flowkeep: error: {} records could not be exported to {target} ({}); they are in the store: send them with `flowkeep export --to {target}`",
            st.records_failed,
            st.last_error
                .as_deref()
                .unwrap_or("the export queue was full")
        );
    }
    out.flush()
}
