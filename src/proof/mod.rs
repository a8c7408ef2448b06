//! Evidence a sceptic can check: the Merkle tree over the audit log ([`merkle`]) and, later,
//! signed checkpoints.
//!
//! The audit log's hash chain shows an edit to whoever holds the whole log; a Merkle tree lets
//! someone who kept only an old checkpoint (tree size and root) be shown, with a logarithmic
//! proof, that the log still contains it, or that one entry is in it.

pub mod merkle;
