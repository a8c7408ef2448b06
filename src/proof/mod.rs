//! Evidence a sceptic can check without trusting the operator's box: signed checkpoints
//! ([`note`], [`keys`]) and, from another branch, the Merkle tree.
//!
//! A checkpoint is a C2SP `tlog-checkpoint` body (origin, tree size, root hash) inside a C2SP
//! `signed-note`, signed with Ed25519, so that any implementation of those specifications
//! (Go's golang.org/x/mod/sumdb/note among them) can check it, not only this one.

pub mod keys;
pub mod note;
