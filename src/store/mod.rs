//! The flow store: time-partitioned, zstd-compressed segment files.
