//! Tor exit lists in a store: `flowkeep tor import` keeps each list as the published document
//! itself, byte for byte (so anyone can compare it with the Tor Project's archive), under
//! `DIR/tor/`, with an `import` audit entry that carries its SHA-256; retention deletes a list
//! once its newest time is past the cutoff, as it does a segment (same holds, same `expire`
//! entries); `verify` checks each against its entry; readers build an [`ExitIndex`] to mark
//! the addresses that were exits at a record's time. Layout: `docs/FORMAT.md`, "Tor exit lists".

mod list;

pub use list::{parse, Exit, ExitList, ListError, MAX_LIST_BYTES};

use crate::fs;
use crate::query::attribution::{Annotation, Sides};
use crate::store::audit;
use crate::store::imports::{self, TOR_DIR, TOR_EXT, TOR_PREFIX};
use crate::store::{ScanProblem, SegmentInfo, StoreError};
use crate::time::Nanos;
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TorError {
    #[error("{path}: {source}")]
    List { path: String, source: ListError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Relative to the store.
    pub path: String,
    pub relays: u64,
    pub exits: u64,
    pub first: Nanos,
    pub last: Nanos,
    /// The same list (by SHA-256) was imported before: nothing was written.
    pub already: bool,
}

/// Imports one list (`source` names it in errors) at `now`, checked whole before anything
/// is written; named by its newest time and the start of its SHA-256, so the same list twice
/// is one file ([`Imported::already`]).
pub fn import(dir: &Path, source: &str, bytes: &[u8], now: Nanos) -> Result<Imported, TorError> {
    let list = parse(bytes).map_err(|e| TorError::List {
        path: source.to_string(),
        source: e,
    })?;
    let sha = audit::sha256_hex(bytes);
    let name = format!(
        "{TOR_PREFIX}{}-{}{TOR_EXT}",
        crate::store::partition_dir_name(list.last),
        &sha[..16]
    );
    let mut done = Imported {
        path: format!("{TOR_DIR}/{name}"),
        relays: list.relays,
        exits: list.exits.len() as u64,
        first: list.first,
        last: list.last,
        already: false,
    };
    let known = imports::tor_lists(dir)?;
    if let Some(p) = known.iter().find(|p| file_name(p).contains(&sha[..16])) {
        done.path = audit::relative(dir, p);
        done.already = true;
        return Ok(done);
    }
    let facts = imports::ImportFacts {
        first: list.first,
        last: list.last,
        records: done.exits,
        reason: format!("tor-exit-list relays={}", list.relays),
    };
    done.path = imports::import_tor_list(dir, &name, bytes, &facts, now)?;
    Ok(done)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The stored lists as retention sees segments: `first`/`last` the list's span, `records` its
/// exit addresses. A list that no longer parses gets `error` set, and retention keeps it (as
/// an unreadable segment); verify reports it.
pub fn stored_lists(dir: &Path) -> Result<Vec<SegmentInfo>, StoreError> {
    let mut out = Vec::new();
    for path in imports::tor_lists(dir)? {
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let mut info = SegmentInfo {
            path: path.clone(),
            bytes: bytes.len() as u64,
            ..SegmentInfo::default()
        };
        match parse(&bytes) {
            Ok(l) => {
                (info.first, info.last) = (l.first, l.last);
                (info.partition_start, info.partition_end) = (l.first, l.last);
                info.records = l.exits.len() as u64;
            }
            Err(e) => info.error = Some(format!("{}: {e}", path.display())),
        }
        out.push(info);
    }
    Ok(out)
}

/// Every stored list's exits, by address.
#[derive(Debug, Clone, Default)]
pub struct ExitIndex {
    by_address: HashMap<IpAddr, Vec<Exit>>,
}

impl ExitIndex {
    /// Reads every stored list; one that cannot be read or parsed is a problem (the answer
    /// built on the index is then incomplete) and the others are still used.
    pub fn load(dir: &Path) -> Result<(ExitIndex, Vec<ScanProblem>), StoreError> {
        let mut index = ExitIndex::default();
        let mut problems = Vec::new();
        for path in imports::tor_lists(dir)? {
            let parsed = match fs::read(&path) {
                Ok(bytes) => {
                    parse(&bytes).map_err(|e| StoreError::corrupt(&path, 0, e.to_string()))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => Err(StoreError::io(&path, e)),
            };
            match parsed {
                Ok(list) => {
                    for e in list.exits {
                        index.by_address.entry(e.address).or_default().push(e);
                    }
                }
                Err(error) => problems.push(ScanProblem::Segment {
                    path,
                    error: Arc::new(error),
                }),
            }
        }
        Ok((index, problems))
    }

    /// The exit (relay and listed span) of `addr` whose span overlaps `[first, last]`, the
    /// earliest-starting one if several do.
    pub fn exit_during(&self, addr: IpAddr, first: Nanos, last: Nanos) -> Option<&Exit> {
        self.by_address
            .get(&addr)?
            .iter()
            .filter(|e| e.from <= last && e.until >= first)
            .min_by_key(|e| (e.from, &e.fingerprint))
    }
}

/// `query --tor`: `src_tor_exit` and `dst_tor_exit`, the fingerprint of the relay the address
/// was a Tor exit of during the record (`null` when the lists say it was none).
impl Annotation for ExitIndex {
    fn write_fields(&self, sides: &Sides, out: &mut dyn Write) -> io::Result<()> {
        for (field, addr) in [("src_tor_exit", sides.src), ("dst_tor_exit", sides.dst)] {
            write!(out, ",\"{field}\":")?;
            let fp = self
                .exit_during(addr, sides.first, sides.last)
                .map(|e| e.fingerprint.as_str());
            serde_json::to_writer(&mut *out, &fp)?;
        }
        Ok(())
    }
}
