//! `flowkeep export`: stored records to another system (back-filling a central collector), and
//! the `--export` option of capture and replay (records as they are written).

use super::{after_scan, parse_duration, SelectArgs, Selection};
use crate::export::ipfix::{IpfixConfig, TemplateRefresh};
use crate::export::parquet::{export_parquet_with, ParquetOptions, ROW_GROUP_ROWS};
use crate::export::{ExportStats, ExportThread, IpfixExporter, IpfixTarget};
use crate::query::{self, QueryStats};
use crate::record::FlowRecord;
use crate::time::{Nanos, NANOS_PER_SEC};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub(super) struct ExportArgs {
    /// The records to send: store, time range and filter expression, as for `query`.
    #[command(flatten)]
    select: SelectArgs,
    /// Where to: ipfix+udp://HOST:PORT or ipfix+tcp://HOST:PORT (an IPFIX collector such as
    /// nfcapd, goflow2 or Akvorado), or parquet:OUTDIR (one Parquet file per store partition,
    /// named flows-<partition start>.parquet, in OUTDIR, created when missing).
    #[arg(long, value_name = "TARGET")]
    pub to: String,
    /// Parquet: replace existing files of the same names (otherwise they are an error).
    #[arg(long)]
    pub overwrite: bool,
    /// Parquet: rows per row group.
    #[arg(long, value_name = "N", default_value_t = ROW_GROUP_ROWS as u32, hide = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub row_group_rows: u32,
    #[command(flatten)]
    pub ipfix: IpfixArgs,
}

/// How records are encoded for an IPFIX collector (export, and capture/replay `--export`).
#[derive(Args, Debug, Clone)]
pub struct IpfixArgs {
    /// Send two one-way records per flow (initiator, then responder if it sent anything)
    /// instead of one RFC 5103 biflow record, for collectors without biflow support.
    #[arg(long)]
    pub unidirectional: bool,
    /// IPFIX observation domain id in every message header.
    #[arg(long, value_name = "ID", default_value_t = 0)]
    pub observation_domain: u32,
    /// Largest IPFIX message in bytes (UDP: keep the datagram under the path MTU).
    #[arg(long, value_name = "BYTES", default_value_t = IpfixConfig::DEFAULT_MAX_MESSAGE)]
    pub ipfix_message_size: usize,
    /// UDP: send the templates again after this much time...
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub template_refresh: Nanos,
    /// ...or this many messages, whichever comes first (TCP: once per connection).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub template_refresh_messages: u32,
}

impl IpfixArgs {
    pub fn config(&self, tcp: bool) -> IpfixConfig {
        let refresh = if tcp {
            TemplateRefresh::Once
        } else {
            TemplateRefresh::Every {
                seconds: u32::try_from(self.template_refresh / NANOS_PER_SEC).unwrap_or(u32::MAX),
                messages: self.template_refresh_messages,
            }
        };
        IpfixConfig {
            observation_domain: self.observation_domain,
            max_message: self.ipfix_message_size,
            biflow: !self.unidirectional,
            refresh,
        }
    }
}

/// The option capture and replay take to export records as they are written.
#[derive(Args, Debug, Clone)]
pub struct LiveExportArgs {
    /// Also send every record, as it is written, to this IPFIX collector
    /// (ipfix+udp://HOST:PORT or ipfix+tcp://HOST:PORT). Never slows the capture: what cannot
    /// be sent is counted, and stays in the store.
    #[arg(long, value_name = "TARGET")]
    pub export: Option<String>,
    #[command(flatten)]
    pub ipfix: IpfixArgs,
}

/// Where `--to` points.
enum ExportTarget {
    Ipfix(IpfixTarget),
    Parquet(PathBuf),
}

fn parse_target(s: &str) -> Result<ExportTarget> {
    if let Some(t) = IpfixTarget::parse(s) {
        return t.map(ExportTarget::Ipfix).map_err(|e| anyhow!(e));
    }
    if let Some(dir) = s.strip_prefix("parquet:") {
        if dir.is_empty() {
            bail!("--to parquet: needs a directory, e.g. parquet:/srv/flows");
        }
        return Ok(ExportTarget::Parquet(PathBuf::from(dir)));
    }
    bail!("unknown target '{s}': expected ipfix+udp://HOST:PORT, ipfix+tcp://HOST:PORT or parquet:OUTDIR")
}

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

/// A live exporter started for capture or replay.
pub struct LiveExport {
    target: IpfixTarget,
    thread: ExportThread,
}

impl LiveExport {
    /// Starts the exporter thread and hands the pipeline its tee; `None` without `--export`.
    pub fn start(
        a: &LiveExportArgs,
        cfg: &mut crate::pipeline::PipelineConfig,
    ) -> Result<Option<LiveExport>> {
        let Some(to) = &a.export else {
            return Ok(None);
        };
        let target = match IpfixTarget::parse(to) {
            Some(t) => t.map_err(|e| anyhow!("--export {e}"))?,
            None => {
                bail!("--export '{to}': expected ipfix+udp://HOST:PORT or ipfix+tcp://HOST:PORT")
            }
        };
        let exporter = IpfixExporter::open(&target, a.ipfix.config(target.tcp))?;
        let (tee, thread) =
            ExportThread::spawn(exporter, crate::export::DEFAULT_QUEUE, super::wall_clock)
                .context("starting the exporter thread")?;
        cfg.export = Some(tee);
        eprintln!("flowkeep: exporting records to {target}");
        Ok(Some(LiveExport { target, thread }))
    }

    pub fn counters(&self) -> std::sync::Arc<crate::export::ExportCounters> {
        self.thread.counters()
    }

    /// Once the pipeline is done: drops the config's tee, waits for the last messages, prints
    /// what was exported. False when records could not be sent.
    pub fn finish(self, cfg: &mut crate::pipeline::PipelineConfig) -> io::Result<bool> {
        cfg.export = None;
        let st = self.thread.finish();
        print_live_summary(&st, &self.target)?;
        Ok(st.records_failed == 0)
    }
}

fn print_live_summary(st: &ExportStats, target: &IpfixTarget) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert!(matches!(
            parse_target("ipfix+udp://127.0.0.1:4739").unwrap(),
            ExportTarget::Ipfix(IpfixTarget { tcp: false, .. })
        ));
        let ExportTarget::Ipfix(t) = parse_target("ipfix+tcp://[::1]:4739").unwrap() else {
            panic!("not ipfix")
        };
        assert_eq!((t.tcp, t.addr.as_str()), (true, "[::1]:4739"));
        assert_eq!(t.to_string(), "ipfix+tcp://[::1]:4739");
        assert!(matches!(
            parse_target("parquet:/tmp/out").unwrap(),
            ExportTarget::Parquet(_)
        ));
        let e = parse_target("ipfix+udp://collector").err().unwrap();
        assert!(e.to_string().contains("HOST:PORT"), "{e}");
        assert!(parse_target("ipfix+udp://h:0").is_err());
        let e = parse_target("netflow://h:2055").err().unwrap();
        assert!(e.to_string().contains("unknown target"), "{e}");
    }
}
