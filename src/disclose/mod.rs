//! Disclosure bundles: what a query answered, with the evidence that the store held it, as a
//! directory anyone can check without flowkeep and without the store (`docs/FORMAT.md`,
//! "Disclosure bundle"). [`write`] makes one, [`check`] checks one, [`report`] is its
//! human-readable page.

pub mod check;
pub mod report;
pub mod write;

pub use check::{check_bundle, BundleCheck};
pub use write::{write_bundle, Request, Summary};

use std::path::PathBuf;

/// The bundle's files other than the sums and the signature, in the order they are written.
pub const RECORDS_CSV: &str = "records.csv";
pub const RECORDS_JSONL: &str = "records.jsonl";
pub const LEASES: &str = "leases.jsonl";
pub const COVERAGE: &str = "coverage.tsv";
pub const RECORD_SEGMENTS: &str = "record-segments.tsv";
pub const POLICY: &str = "policy.txt";
pub const AUDIT: &str = "audit.jsonl";
pub const CHECKPOINT: &str = "checkpoint.txt";
pub const REPORT: &str = "REPORT.html";
pub const PUBLIC_KEY: &str = "signing-key.pub";
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";
pub const SUMS: &str = "SHA256SUMS";

/// The `format` field of `manifest.json`.
pub const FORMAT: &str = "flowkeep-disclosure/1";

/// The header row of `coverage.tsv`.
pub const COVERAGE_HEADER: &str = "path\tfirst\tlast\tinterfaces\tframes\tkernel_drops\t\
interface_drops\tmalformed\tevictions\trecords_not_stored\tmacs_kept";

/// The header row of `record-segments.tsv`: which segment each record was read from, by the
/// fields that name the record in `records.jsonl`.
pub const RECORD_SEGMENTS_HEADER: &str = "segment\tfirst\tlast\tproto\tsrc\tsport\tdst\tdport";

/// A record's key in `record-segments.tsv`: its `first`, `last`, `proto`, `src`, `sport`,
/// `dst` and `dport`, tab-separated, as `records.jsonl` prints them.
pub fn record_key(
    first: &str,
    last: &str,
    proto: u64,
    src: &str,
    sport: u64,
    dst: &str,
    dport: u64,
) -> String {
    format!("{first}\t{last}\t{proto}\t{src}\t{sport}\t{dst}\t{dport}")
}

#[derive(Debug, thiserror::Error)]
pub enum DiscloseError {
    #[error("{}: exists already; a bundle is never written over anything", .0.display())]
    Exists(PathBuf),
    #[error("--until must be later than --since")]
    EmptyRange,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Query(#[from] crate::query::QueryError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::store::audit::sha256_hex(bytes)
}
