//! `flowkeep who-had` and `query --leases`: the command-line side of `query::attribution`.

use super::args::WhoHadArgs;
use super::audit::Answered;
use super::query::default_format;
use anyhow::{bail, Result};
use flowkeep::query::attribution::{Annotation, Annotator, LeaseIndex, WhoHad};
use flowkeep::query::Format;
use flowkeep::store::access::HashingWriter;
use flowkeep::store::Store;
use flowkeep::time::Nanos;
use flowkeep::tor::ExitIndex;
use std::io::{self, Write};

pub(super) fn who_had(a: WhoHadArgs) -> Result<i32> {
    let store = Store::open(&a.store)?;
    let (answer, mut problems) = WhoHad::ask(&store, a.address, a.at, a.window)?;
    let (exits, tor_problems) = ExitIndex::load(store.dir())?;
    problems.extend(tor_problems);
    let tor_exit = exits.exit_during(a.address, a.at, a.at);
    for p in &problems {
        eprintln!("flowkeep: warning: {p}");
    }
    let stdout = io::stdout();
    let format = default_format(a.format, &stdout);
    if format == Format::Csv {
        bail!("who-had prints table or jsonl");
    }
    let mut out = io::BufWriter::new(HashingWriter::new(stdout.lock()));
    let written = match format {
        Format::Jsonl => {
            let mut json = answer.to_json();
            if let Some(obj) = json.as_object_mut() {
                obj.insert("tor_exit".into(), super::tor::exit_json(tor_exit));
            }
            serde_json::to_writer(&mut out, &json)
                .map_err(io::Error::from)
                .and_then(|()| writeln!(out))
        }
        _ => answer.write_table(&mut out).and_then(|()| match tor_exit {
            Some(e) => super::tor::write_exit_line(&mut out, e),
            None => Ok(()),
        }),
    }
    .and_then(|()| out.flush());
    let filter = format!("host {}", a.address);
    let record = |out: &HashingWriter<_>| {
        super::audit::record_access(
            &store,
            Answered {
                command: "who-had",
                since: Some(a.at.saturating_sub(a.window)),
                until: Some(a.at.saturating_add(a.window)),
                filter: &filter,
                records: answer.records(),
                sha256: out.sha256(),
                hashed: "stdout",
            },
        )
    };
    // An answer cut short (`| head`) was still seen, as far as it went.
    if let Err(e) = written {
        if e.kind() == io::ErrorKind::BrokenPipe {
            record(out.get_ref())?;
        }
        return Err(e.into());
    }
    record(out.get_ref())?;
    // Unreadable data may hold the lease that would answer: not a clean "unknown" then.
    Ok(if !problems.is_empty() {
        super::warn_incomplete(problems.len());
        super::INCOMPLETE
    } else if !answer.known() {
        // The device is unknown, but the address is accounted for: a Tor relay's exit.
        if tor_exit.is_some() {
            TOR_EXIT_ONLY
        } else {
            1
        }
    } else if !answer.confirmed() {
        UNCONFIRMED
    } else {
        0
    })
}

/// Exit status of a who-had answered from the MACs on flows alone, with no DHCP lease to
/// confirm it: a guess a script must be able to tell from a lease's answer.
const UNCONFIRMED: i32 = 4;

/// Exit status of a who-had that knows no device for the address, but knows it was a Tor
/// exit at the time: a different answer from "nothing known" for a script handling requests.
const TOR_EXIT_ONLY: i32 = 5;

/// The output of `query --leases` and `--tor`: JSON lines with `src_lease`/`dst_lease` and
/// `src_tor_exit`/`dst_tor_exit` added.
pub(super) fn annotator<'w>(
    store: &Store,
    format: Format,
    until: Option<Nanos>,
    (leases, tor): (bool, bool),
    out: impl Write + 'w,
) -> Result<(Box<dyn Write + 'w>, Vec<flowkeep::store::ScanProblem>)> {
    if format != Format::Jsonl {
        bail!("--leases and --tor add fields to JSON lines: use them with --format jsonl");
    }
    let mut annotations: Vec<Box<dyn Annotation>> = Vec::new();
    // Damaged lease blocks and unreadable exit lists make the answer incomplete as damaged
    // record blocks do: the caller reports them with the scan's.
    let mut problems = Vec::new();
    if leases {
        let (index, stats) = LeaseIndex::load(store, until)?;
        annotations.push(Box::new(index));
        problems.extend(stats.problems);
    }
    if tor {
        let (index, p) = ExitIndex::load(store.dir())?;
        annotations.push(Box::new(index));
        problems.extend(p);
    }
    Ok((Box::new(Annotator::new(annotations, out)), problems))
}
