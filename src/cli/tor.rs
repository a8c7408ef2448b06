//! `flowkeep tor import` and the Tor marks of `query --tor` and `who-had`.

use super::args::parse_time;
use super::wall_clock;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use flowkeep::store::Store;
use flowkeep::time::{format_rfc3339, Nanos};
use flowkeep::tor::Exit;
use std::io::Read;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct TorArgs {
    #[command(subcommand)]
    pub command: TorCommand,
}

#[derive(Subcommand, Debug)]
pub enum TorCommand {
    /// Keep a Tor exit list (the Tor Project's exit-addresses format: ExitNode, Published,
    /// LastStatus and ExitAddress lines) in the store, byte for byte, under the store's
    /// retention; `query --tor` and `who-had` then mark the addresses that were exits.
    #[command(
        after_help = "Example:\n  curl -sO https://check.torproject.org/exit-addresses\n  flowkeep tor import exit-addresses --store /var/lib/flowkeep"
    )]
    Import {
        /// The list (`-`: standard input).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[arg(long, short = 's', value_name = "DIR")]
        store: PathBuf,
        /// Time recorded in the audit log (default: the wall clock).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        now: Option<Nanos>,
    },
}

pub(super) fn tor(a: TorArgs) -> Result<i32> {
    let TorCommand::Import { file, store, now } = a.command;
    let store = Store::open(&store)?;
    let source = file.display().to_string();
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .take(flowkeep::tor::MAX_LIST_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .context("reading the exit list from standard input")?;
    } else {
        let f = flowkeep::fs::open(&file).with_context(|| source.clone())?;
        f.take(flowkeep::tor::MAX_LIST_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .with_context(|| source.clone())?;
    }
    let now = now.unwrap_or_else(wall_clock);
    let done = flowkeep::tor::import(store.dir(), &source, &bytes, now)?;
    let what = if done.already {
        "already imported"
    } else {
        "imported"
    };
    println!(
        "{what}  {}  relays {}  exit addresses {}  {} .. {}",
        done.path,
        done.relays,
        done.exits,
        format_rfc3339(done.first),
        format_rfc3339(done.last)
    );
    Ok(0)
}

/// `who-had`'s Tor mark in JSON: the relay the address was an exit of, with the span the
/// lists give (`null` when none).
pub(super) fn exit_json(exit: Option<&Exit>) -> serde_json::Value {
    exit.map_or(serde_json::Value::Null, |e| {
        serde_json::json!({
            "fingerprint": e.fingerprint,
            "from": format_rfc3339(e.from),
            "until": format_rfc3339(e.until),
        })
    })
}

/// `who-had`'s Tor line in the table.
pub(super) fn write_exit_line(out: &mut impl std::io::Write, e: &Exit) -> std::io::Result<()> {
    writeln!(
        out,
        "tor exit     relay {} (listed {} .. {})",
        e.fingerprint,
        format_rfc3339(e.from),
        format_rfc3339(e.until)
    )
}
