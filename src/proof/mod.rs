//! Evidence a sceptic can check without trusting the operator's box: the Merkle tree over the
//! audit log ([`merkle`]) and signed checkpoints of it ([`note`], [`keys`]).
//!
//! The audit log's hash chain shows an edit only to whoever holds the whole log; a Merkle tree
//! lets someone who kept only an old checkpoint (tree size and root) be shown, with a
//! logarithmic proof, that the log still contains it, or that one entry is in it. A checkpoint
//! is a C2SP `tlog-checkpoint` body (origin, tree size, root hash) inside a C2SP `signed-note`,
//! signed with Ed25519, so that any implementation of those specifications (Go's
//! golang.org/x/mod/sumdb/note among them) can check it, not only this one.

pub mod keys;
pub mod merkle;
pub mod note;

/// Fills `buf` from the operating system's random source (keys, the store's identity).
pub fn random(buf: &mut [u8]) -> Result<(), String> {
    getrandom::fill(buf).map_err(|e| e.to_string())
}
