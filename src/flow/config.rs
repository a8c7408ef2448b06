//! What the table is told: timeouts and its size limit.

use crate::time::{Nanos, NANOS_PER_SEC};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// A flow with no packet for this long ends (`idle`).
    pub idle_timeout: Nanos,
    /// A flow open this long is written out and starts a new record (`active`).
    pub active_timeout: Nanos,
    /// After both FINs or an RST, late packets (the last ACK, retransmissions) still count
    /// for this long before the record ends (`fin` / `rst`).
    pub tcp_end_timeout: Nanos,
    /// At most this many open flows (`None`: no limit; 0 acts as 1). A packet that would open
    /// one more first ends one flow with reason `evicted`: a flow filed under the earliest
    /// second of the expiry wheel whose earliest possible end (its last packet + the idle
    /// timeout, or sooner its FIN/RST linger or active timeout) still falls in that second,
    /// i.e. the flow idle longest, to one second's precision. A flow already past its idle
    /// timeout or FIN/RST linger ends with that reason instead, and is not counted.
    pub max_flows: Option<usize>,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            idle_timeout: 60 * NANOS_PER_SEC,
            active_timeout: 300 * NANOS_PER_SEC,
            tcp_end_timeout: 5 * NANOS_PER_SEC,
            max_flows: None,
        }
    }
}

impl FlowConfig {
    /// The longest a record can stay in the table after its first packet: what a store writer
    /// must wait before sealing a partition.
    pub fn max_lifetime(&self) -> Nanos {
        self.active_timeout
            .saturating_add(self.idle_timeout.max(self.tcp_end_timeout))
            .saturating_add(SWEEP_INTERVAL)
    }
}

/// How often, in packet time, the table is swept for ended flows. Records end at most this
/// late after their timeout.
pub(super) const SWEEP_INTERVAL: Nanos = NANOS_PER_SEC;
