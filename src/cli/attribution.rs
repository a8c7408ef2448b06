//! `flowkeep who-had` and `query --leases`: the command-line side of `query::attribution`.

use super::args::WhoHadArgs;
use super::print_recovery;
use super::query::default_format;
use anyhow::{bail, Result};
use flowkeep::query::attribution::{LeaseAnnotator, LeaseIndex, WhoHad};
use flowkeep::query::Format;
use flowkeep::store::Store;
use flowkeep::time::Nanos;
use std::io::{self, Write};

pub(super) fn who_had(a: WhoHadArgs) -> Result<i32> {
    let store = Store::open(&a.store)?;
    print_recovery(store.recovery());
    let (answer, problems) = WhoHad::ask(&store, a.address, a.at, a.window)?;
    for p in &problems {
        eprintln!("flowkeep: warning: {p}");
    }
    let stdout = io::stdout();
    let format = default_format(a.format, &stdout);
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
