//! `flowkeep export`: stored records out to another system, chosen by `--to`.

use super::{parse_time, print_recovery};
use crate::export::parquet::{export_parquet_with, ParquetOptions, ROW_GROUP_ROWS};
use crate::record::FlowRecord;
use crate::store::Store;
use crate::time::Nanos;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    /// Store directory.
    #[arg(long, short = 's', value_name = "DIR")]
    pub store: PathBuf,
    /// Records that end at or after this time (RFC 3339, e.g. 2026-11-26T10:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<Nanos>,
    /// Records that start before this time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<Nanos>,
    /// Filter expression: only the records it matches (not supported yet).
    #[arg(value_name = "EXPR")]
    pub expr: Vec<String>,
    /// Where to: `parquet:OUTDIR` writes one Parquet file per store partition into OUTDIR
    /// (created when missing), named flows-<partition start>.parquet.
    #[arg(long, value_name = "TARGET")]
    pub to: String,
    /// Replace existing files of the same names (otherwise they are an error).
    #[arg(long)]
    pub overwrite: bool,
    /// Rows per Parquet row group.
    #[arg(long, value_name = "N", default_value_t = ROW_GROUP_ROWS as u32, hide = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub row_group_rows: u32,
}

/// What `--to` names.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Parquet(PathBuf),
}

fn parse_target(to: &str) -> Result<Target> {
    match to.split_once(':') {
        Some(("parquet", dir)) if !dir.is_empty() => Ok(Target::Parquet(PathBuf::from(dir))),
        Some(("parquet", _)) => bail!("--to parquet: needs a directory, e.g. parquet:/srv/flows"),
        _ => bail!("--to '{to}': unknown target; expected parquet:OUTDIR"),
    }
}

pub(crate) fn export(a: ExportArgs) -> Result<i32> {
    if let (Some(s), Some(u)) = (a.since, a.until) {
        if u <= s {
            bail!("--until must be later than --since");
        }
    }
    if !a.expr.is_empty() {
        bail!(
            "filter expressions are not supported yet ('{}'): export a time range with --since/--until",
            a.expr.join(" ")
        );
    }
    let keep = |_: &FlowRecord| true;
    let target = parse_target(&a.to)?;
    let store = Store::open(&a.store)?;
    print_recovery(store.recovery());
    match target {
        Target::Parquet(outdir) => {
            let opts = ParquetOptions {
                overwrite: a.overwrite,
                row_group_rows: a.row_group_rows as usize,
                ..ParquetOptions::default()
            };
            let started = Instant::now();
            let s = export_parquet_with(&store, a.since, a.until, &keep, &outdir, &opts)
                .with_context(|| format!("export to {}", outdir.display()))?;
            let elapsed = started.elapsed().as_secs_f64();
            for p in &s.scan.problems {
                eprintln!("flowkeep: warning: {p}");
            }
            if !s.scan.unsealed.is_empty() {
                eprintln!(
                    "flowkeep: note: {} segment(s) still being written were read up to their last complete block",
                    s.scan.unsealed.len()
                );
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
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("parquet:/srv/flows").unwrap(),
            Target::Parquet("/srv/flows".into())
        );
        assert!(parse_target("parquet:")
            .unwrap_err()
            .to_string()
            .contains("needs a directory"));
        assert!(parse_target("/srv/flows")
            .unwrap_err()
            .to_string()
            .contains("unknown target"));
    }
}
