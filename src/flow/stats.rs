//! What the table counts as it goes.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub packets: u64,
    pub bytes: u64,
    pub flows_created: u64,
    pub records: u64,
    /// Non-first fragments whose first fragment was not seen (counted in a port-0 flow).
    pub orphan_fragments: u64,
    /// Records ended early (reason `evicted`) because the table held `max_flows` flows.
    pub evictions: u64,
}
