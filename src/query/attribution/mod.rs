//! "Who had this address at that time?" From the DHCP lease observations in the store, and,
//! when they say nothing, from the MACs seen on flows with that address around that time.

mod annotator;
mod leases;
mod who_had;

pub use annotator::{Annotation, Annotator, Sides};
pub use leases::{
    is_assignment, lease_at, lease_end, message_name, observation_json, LeaseAnswer, LeaseIndex,
};
pub use who_had::{flow_macs, CaptureGap, FlowMac, WhoHad};

#[cfg(test)]
mod fixtures;
