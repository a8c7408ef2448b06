//! `flowkeep who-had` and `query --leases`: the command-line side of `query::attribution`.

use super::{parse_positive_duration, parse_time, print_recovery};
use crate::query::attribution::{LeaseAnnotator, LeaseIndex, WhoHad};
use crate::query::Format;
use crate::store::Store;
use crate::time::Nanos;
use anyhow::{bail, Result};
use clap::Args;
use std::io::{self, IsTerminal, Write};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub(super) struct WhoHadArgs {
    /// Store directory.
    #[arg(long, short = 's', value_name = "DIR")]
    store: PathBuf,
    /// The IPv4 or IPv6 address.
    #[arg(value_name = "ADDRESS")]
    address: IpAddr,
    /// The moment asked about: RFC 3339 (2026-11-14T14:02:07Z), a date, @SECONDS, now, or
    /// relative to now (-2h, -30d).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = parse_time)]
    at: Nanos,
    /// When no lease answers: look for flows with the address this long before and after.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_positive_duration)]
    window: Nanos,
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    format: Option<Format>,
}

pub(super) fn who_had(a: WhoHadArgs) -> Result<i32> {
    let store = Store::open(&a.store)?;
    print_recovery(store.recovery());
    let (answer, problems) = WhoHad::ask(&store, a.address, a.at, a.window)?;
    for p in &problems {
        eprintln!("flowkeep: warning: {p}");
    }
    let stdout = io::stdout();
    let format = a.format.unwrap_or(if stdout.is_terminal() {
        Format::Table
    } else {
        Format::Jsonl
    });
    let mut out = io::BufWriter::new(stdout.lock());
    match format {
        Format::Jsonl => {
            serde_json::to_writer(&mut out, &answer.to_json())?;
            writeln!(out)?;
        }
        Format::Table => answer.write_table(&mut out)?,
        Format::Csv => bail!("who-had prints table or jsonl"),
    }
    out.flush()?;
    // Unreadable data may hold the lease that would answer: not a clean "unknown" then.
    Ok(if !problems.is_empty() {
        super::warn_incomplete(problems.len());
        super::INCOMPLETE
    } else if answer.known() {
        0
    } else {
        1
    })
}

/// The output of `query --leases`: JSON lines with `src_lease`/`dst_lease` added.
pub(super) fn lease_annotator<'w>(
    store: &Store,
    format: Format,
    until: Option<Nanos>,
    out: impl Write + 'w,
) -> Result<Box<dyn Write + 'w>> {
    if format != Format::Jsonl {
        bail!("--leases adds fields to JSON lines: use it with --format jsonl");
    }
    let (index, stats) = LeaseIndex::load(store, until)?;
    for p in &stats.problems {
        eprintln!("flowkeep: warning: {p}");
    }
    Ok(Box::new(LeaseAnnotator::new(index, out)))
}
