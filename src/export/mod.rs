//! Sending records to other systems: IPFIX collectors ([`ipfix`]) and Parquet files for
//! columnar engines ([`parquet`]). Stored records are sent by
//! `flowkeep export`; a capture sends each record as it is written through an [`ExportTee`],
//! which never blocks a worker: a full queue or a gone collector costs exported records
//! (counted), never stored ones.

pub mod ipfix;
mod live;
pub mod parquet;

pub use ipfix::{IpfixExporter, IpfixTarget};
pub use live::{run, ExportCounters, ExportReceiver, ExportTee, DEFAULT_QUEUE};

use std::io;

/// What an exporter did. Records are flow records (a biflow, or both one-way halves).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub records_sent: u64,
    /// Records in messages that could not be sent, and (live export) records dropped because
    /// the exporter's queue was full.
    pub records_failed: u64,
    pub messages: u64,
    /// Bytes of IPFIX messages sent.
    pub bytes: u64,
    /// The most recent send or connect error.
    pub last_error: Option<String>,
}

/// Why a file export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: io::Error,
    },
    #[error("{} already exists (--overwrite replaces it)", path.display())]
    Exists { path: std::path::PathBuf },
    #[error("{}: writing Parquet: {source}", path.display())]
    Parquet {
        path: std::path::PathBuf,
        source: ::parquet::errors::ParquetError,
    },
    #[error("bad export option: {0}")]
    Option(String),
}
