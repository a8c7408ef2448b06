//! Filtered legal holds: a preservation request names specified records, and only those are
//! kept past the retention promised for everyone else. A filtered hold's records are copied
//! out of the live segments into its own sealed segments under `DIR/holds/NAME/` (same format,
//! checksums, audit `seal` entries naming the hold), after which the live segments expire as
//! usual.
//!
//! - [`copy`]: one source segment's matching records, and the leases of their addresses, into
//!   one hold copy named like its source.
//! - [`add`]: `hold add --filter`: the copy of every covered segment, with the hold protecting
//!   its whole range until the copy is complete, so that an expire running meanwhile deletes
//!   nothing uncopied and waits for no copy.
//! - [`forward`]: the writers' seal hook: each segment sealed from now on is copied for every
//!   standing filtered hold it overlaps, so that a hold also catches what is written after it
//!   was added (a forward-looking hold), including records of segments open when it was added.
//! - [`sweep`]: expire's part: deleting the copies of released and lapsed holds, and rolling
//!   back copies a dead `hold add` left, each deletion audited.

pub mod add;
pub mod copy;
pub mod forward;
pub mod sweep;

pub use add::{add_filtered_hold, AddReport};
pub use copy::{copy_for_holds, copy_segment, Copied};
pub use forward::Catcher;
pub use sweep::{catch_up, sweep, Swept};

use crate::query::FilterError;
use crate::store::holds::HoldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PreserveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hold(#[from] HoldError),
    #[error("hold filter: {0}")]
    Filter(#[from] FilterError),
}

impl From<PreserveError> for StoreError {
    fn from(e: PreserveError) -> StoreError {
        match e {
            PreserveError::Store(e) => e,
            e => StoreError::Config(e.to_string()),
        }
    }
}
