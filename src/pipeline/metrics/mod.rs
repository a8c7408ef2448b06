//! Live counters for a metrics endpoint. Each worker publishes its own running totals into its
//! own slot after every batch (plain relaxed stores: no contention, no lock), and the reader
//! publishes its frame and drop counts once a second; a reader of the metrics sums the slots.

mod http;
mod render;

pub(crate) use http::MetricsServer;
pub use http::{bind, Endpoint};
pub use render::{render, StoreUsage};

use crate::export::ExportCounters;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters shared between the pipeline and whoever reports them.
#[derive(Debug, Default)]
pub struct Metrics {
    workers: Vec<WorkerGauges>,
    /// One per reader: the single reader, or each fanout lane's.
    readers: Vec<ReaderGauges>,
    /// The live IPFIX exporter's counters, when records are exported.
    export: Option<Arc<ExportCounters>>,
}

/// One worker's running totals (and its current flow-table size).
#[derive(Debug, Default)]
pub struct WorkerGauges {
    packets: AtomicU64,
    bytes: AtomicU64,
    non_ip: AtomicU64,
    malformed: AtomicU64,
    active_flows: AtomicU64,
    evictions: AtomicU64,
    records_written: AtomicU64,
    records_not_stored: AtomicU64,
    segments: AtomicU64,
    store_bytes: AtomicU64,
}

#[derive(Debug, Default)]
struct ReaderGauges {
    frames: AtomicU64,
    kernel_drops: AtomicU64,
    interface_drops: AtomicU64,
    future_packets: AtomicU64,
}

/// What the reader publishes once a second: its totals since the run began.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReaderTotals {
    pub frames: u64,
    pub kernel_drops: u64,
    pub interface_drops: u64,
    /// Frames stamped more than [`crate::pipeline::CLOCK_TOLERANCE`] after the wall clock.
    pub future_packets: u64,
}

/// What a worker publishes after each batch: its totals since the run began.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WorkerTotals {
    pub packets: u64,
    pub bytes: u64,
    pub non_ip: u64,
    pub malformed: u64,
    pub active_flows: u64,
    /// Records ended early because the flow table was full.
    pub evictions: u64,
    pub records_written: u64,
    pub records_not_stored: u64,
    pub segments: u64,
    pub store_bytes: u64,
}

/// A consistent-enough view for one scrape: each counter is exact, their sum over workers may
/// straddle a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub frames: u64,
    pub kernel_drops: u64,
    pub interface_drops: u64,
    /// Frames stamped more than [`crate::pipeline::CLOCK_TOLERANCE`] after the wall clock.
    pub future_packets: u64,
    pub workers: WorkerTotals,
    /// Records exported and records that could not be (`--export` only).
    pub export: Option<ExportTotals>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExportTotals {
    pub sent: u64,
    pub failed: u64,
}

impl Metrics {
    /// Slots for `workers` workers; a pipeline with more workers leaves the extra ones out.
    pub fn new(workers: usize) -> Metrics {
        Metrics {
            workers: (0..workers).map(|_| WorkerGauges::default()).collect(),
            readers: (0..workers.max(1))
                .map(|_| ReaderGauges::default())
                .collect(),
            ..Metrics::default()
        }
    }

    /// Also reports a live exporter's counters.
    pub fn with_export(mut self, counters: Arc<ExportCounters>) -> Metrics {
        self.export = Some(counters);
        self
    }

    pub(crate) fn worker(&self, id: usize) -> Option<&WorkerGauges> {
        self.workers.get(id)
    }

    /// Reader `id`'s totals (0 for the single reader; a fanout lane's index).
    pub(crate) fn publish_reader(&self, id: usize, t: &ReaderTotals) {
        let Some(r) = self.readers.get(id) else {
            return;
        };
        r.frames.store(t.frames, Ordering::Relaxed);
        r.kernel_drops.store(t.kernel_drops, Ordering::Relaxed);
        r.interface_drops
            .store(t.interface_drops, Ordering::Relaxed);
        r.future_packets.store(t.future_packets, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut w = WorkerTotals::default();
        for g in &self.workers {
            w.packets += load(&g.packets);
            w.bytes += load(&g.bytes);
            w.non_ip += load(&g.non_ip);
            w.malformed += load(&g.malformed);
            w.active_flows += load(&g.active_flows);
            w.evictions += load(&g.evictions);
            w.records_written += load(&g.records_written);
            w.records_not_stored += load(&g.records_not_stored);
            w.segments += load(&g.segments);
            w.store_bytes += load(&g.store_bytes);
        }
        let sum = |f: fn(&ReaderGauges) -> &AtomicU64| -> u64 {
            self.readers.iter().map(|r| load(f(r))).sum()
        };
        Snapshot {
            frames: sum(|r| &r.frames),
            kernel_drops: sum(|r| &r.kernel_drops),
            interface_drops: sum(|r| &r.interface_drops),
            future_packets: sum(|r| &r.future_packets),
            workers: w,
            export: self.export.as_ref().map(|c| ExportTotals {
                sent: c.sent(),
                failed: c.failed(),
            }),
        }
    }
}

impl WorkerGauges {
    pub(crate) fn publish(&self, t: &WorkerTotals) {
        let put = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        put(&self.packets, t.packets);
        put(&self.bytes, t.bytes);
        put(&self.non_ip, t.non_ip);
        put(&self.malformed, t.malformed);
        put(&self.active_flows, t.active_flows);
        put(&self.evictions, t.evictions);
        put(&self.records_written, t.records_written);
        put(&self.records_not_stored, t.records_not_stored);
        put(&self.segments, t.segments);
        put(&self.store_bytes, t.store_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_sums_the_workers_and_keeps_the_reader_counts() {
        let m = Metrics::new(2);
        let t = |n: u64| WorkerTotals {
            packets: n,
            bytes: 10 * n,
            non_ip: 1,
            malformed: 2,
            active_flows: 3,
            evictions: n,
            records_written: 4,
            records_not_stored: 0,
            segments: 1,
            store_bytes: 100,
        };
        m.worker(0).unwrap().publish(&t(5));
        m.worker(1).unwrap().publish(&t(7));
        m.worker(1).unwrap().publish(&t(8));
        assert!(m.worker(2).is_none());
        m.publish_reader(
            0,
            &ReaderTotals {
                frames: 20,
                kernel_drops: 3,
                interface_drops: 1,
                future_packets: 2,
            },
        );
        let s = m.snapshot();
        assert_eq!(s.frames, 20);
        assert_eq!((s.kernel_drops, s.interface_drops), (3, 1));
        assert_eq!(s.future_packets, 2);
        assert_eq!(s.workers.packets, 13);
        assert_eq!(s.workers.bytes, 130);
        assert_eq!(s.workers.active_flows, 6);
        assert_eq!(s.workers.evictions, 13);
        assert_eq!(s.workers.segments, 2);
        assert_eq!(s.workers.store_bytes, 200);
    }
}
