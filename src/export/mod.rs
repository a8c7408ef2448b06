//! Records out of the store to where other tools can use them: Parquet files for columnar
//! engines (DuckDB, ClickHouse, Trino, Spark).

pub mod parquet;

use crate::store::StoreError;
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{} already exists (--overwrite replaces it)", path.display())]
    Exists { path: PathBuf },
    #[error("{}: writing Parquet: {source}", path.display())]
    Parquet {
        path: PathBuf,
        source: ::parquet::errors::ParquetError,
    },
    #[error("bad export option: {0}")]
    Option(String),
}
