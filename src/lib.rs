//! flowkeep: packets in, bidirectional flow records out, kept in a retention-exact store.
//!
//! The pipeline, in the order data moves through it:
//! [`capture`] → [`decode`] → [`flow`] → [`store`] → [`query`] / [`export`]; [`pipeline`] runs the
//! first four on threads. The `flowkeep` binary (`src/cli`) turns arguments into their
//! configurations.

pub mod anonymize;
pub mod capture;
pub mod decode;
pub mod disclose;
pub mod export;
pub mod flow;
pub mod fs;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz_api;
mod hint;
pub mod pipeline;
pub mod preserve;
pub mod privs;
pub mod proof;
pub mod query;
pub mod record;
pub mod retention;
pub mod store;
#[cfg(test)]
mod testing;
pub mod time;
pub mod tor;
