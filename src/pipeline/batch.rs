//! What the reader hands a worker: decoded packets, with the time and counters that travel
//! with them.

use crate::capture::SourceStats;
use crate::decode::PacketMeta;
use crate::record::LeaseObservation;
use crate::time::Nanos;

/// Decoded packets for one worker. The reader decodes every frame (it needs the headers to
/// pick the worker anyway), so frame bytes never cross threads: nothing is copied out of a
/// file's memory map or libpcap's buffer, and each frame is parsed once. Batches go back to
/// the reader for reuse, so a batch allocates once for its whole life.
pub(super) struct Batch {
    pub metas: Vec<PacketMeta>,
    /// DHCP lease observations parsed from this batch's packets (rare: most batches have
    /// none). The reader parses them, since only it still holds the frames' bytes.
    pub leases: Vec<LeaseObservation>,
    pub dhcp_malformed: u64,
    /// Frames of this batch that gave no packet (counted where they were dispatched).
    pub non_ip: u64,
    pub malformed: u64,
    /// The newest time the reader knew when it sent the batch (packet time, or the clock while
    /// a live source is idle): workers expire flows up to it.
    pub now: Nanos,
    /// Kernel and interface drops since the previous report (sent to worker 0 only), so they
    /// land in the metadata of the segments open while they happened.
    pub drops: SourceStats,
    /// Seal every open segment once this batch is done (rotation).
    pub seal: bool,
}

impl Batch {
    pub fn with_capacity(packets: usize) -> Batch {
        Batch {
            metas: Vec::with_capacity(packets),
            leases: Vec::new(),
            dhcp_malformed: 0,
            non_ip: 0,
            malformed: 0,
            now: Nanos::MIN,
            drops: SourceStats::default(),
            seal: false,
        }
    }

    pub fn frames(&self) -> u64 {
        self.metas.len() as u64 + self.non_ip + self.malformed
    }

    pub fn clear(&mut self) {
        self.metas.clear();
        self.leases.clear();
        self.dhcp_malformed = 0;
        self.non_ip = 0;
        self.malformed = 0;
        self.now = Nanos::MIN;
        self.drops = SourceStats::default();
        self.seal = false;
    }
}
