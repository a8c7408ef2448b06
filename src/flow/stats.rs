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

/// Workers' statistics add up to the run's.
impl std::ops::AddAssign<&FlowStats> for FlowStats {
    fn add_assign(&mut self, w: &FlowStats) {
        self.packets += w.packets;
        self.bytes += w.bytes;
        self.flows_created += w.flows_created;
        self.records += w.records;
        self.orphan_fragments += w.orphan_fragments;
        self.evictions += w.evictions;
    }
}
