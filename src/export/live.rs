//! Live export: workers hand records to a queue through an [`ExportTee`] without waiting, and
//! [`run`] sends them from its own thread.

use super::{ExportStats, IpfixExporter};
use crate::record::FlowRecord;
use crate::time::{Clock, Nanos};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Live totals of a running exporter, for metrics: updated by the exporter thread after each
/// record and by the tee on each drop.
#[derive(Debug, Default)]
pub struct ExportCounters {
    sent: AtomicU64,
    send_failed: AtomicU64,
    dropped: AtomicU64,
}

impl ExportCounters {
    // Inline: the exporter publishes after every record, from another module.
    #[inline]
    pub(super) fn publish(&self, stats: &ExportStats) {
        self.sent.store(stats.records_sent, Ordering::Relaxed);
        self.send_failed
            .store(stats.records_failed, Ordering::Relaxed);
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Records the tees dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records that will not reach the collector: failed sends and queue overflows.
    pub fn failed(&self) -> u64 {
        self.send_failed.load(Ordering::Relaxed) + self.dropped.load(Ordering::Relaxed)
    }
}

/// The workers' side of a live exporter: hands each record over without waiting.
#[derive(Clone)]
pub struct ExportTee {
    tx: Sender<FlowRecord>,
    counters: Arc<ExportCounters>,
}

impl fmt::Debug for ExportTee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExportTee")
    }
}

impl ExportTee {
    /// A tee and the receiver that [`run`] reads, joined by a queue of `queue` records (at
    /// least one).
    pub fn channel(queue: usize) -> (ExportTee, ExportReceiver) {
        let (tx, records) = bounded::<FlowRecord>(queue.max(1));
        let counters = Arc::new(ExportCounters::default());
        let tee = ExportTee {
            tx,
            counters: Arc::clone(&counters),
        };
        (tee, ExportReceiver { records, counters })
    }

    /// Queues a copy of the record for export; when the queue is full (the collector or the
    /// network is slower than the capture) the record is counted as failed instead.
    pub fn offer(&self, r: &FlowRecord) {
        match self.tx.try_send(r.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The exporter's side of an [`ExportTee`].
pub struct ExportReceiver {
    records: Receiver<FlowRecord>,
    counters: Arc<ExportCounters>,
}

impl ExportReceiver {
    pub fn counters(&self) -> Arc<ExportCounters> {
        Arc::clone(&self.counters)
    }
}

/// Records waiting for the exporter thread: a few seconds of a busy link.
pub const DEFAULT_QUEUE: usize = 65_536;

/// A message in progress is sent at the latest this long after it was started, so a quiet
/// link's records reach the collector promptly.
const MAX_HOLD: Duration = Duration::from_secs(1);

/// The body of a live exporter's thread: exports what the tees queue until every tee is
/// dropped, then sends the last message. The stats count the records the tees dropped too.
pub fn run(mut exporter: IpfixExporter, receiver: ExportReceiver, clock: Clock) -> ExportStats {
    exporter.publish_to(receiver.counters());
    // A message went or failed: the next record starts a new one.
    let messages_done = |e: &IpfixExporter| e.stats().messages + e.stats().records_failed;
    let mut started: Option<Nanos> = None;
    loop {
        let wait = started.map_or(MAX_HOLD, |s| hold_left(s, clock()));
        match receiver.records.recv_timeout(wait) {
            Ok(r) => {
                let before = messages_done(&exporter);
                let now = clock();
                exporter.export(&r, now);
                if messages_done(&exporter) != before {
                    started = None;
                }
                if started.is_none() && exporter.pending_records() > 0 {
                    started = Some(now);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                exporter.flush(clock());
                started = None;
            }
            Err(RecvTimeoutError::Disconnected) => {
                exporter.flush(clock());
                break;
            }
        }
    }
    let mut stats = exporter.into_stats();
    stats.records_failed += receiver.counters.dropped.load(Ordering::Relaxed);
    stats
}

/// How much longer a message started at `started` may wait at `now`.
fn hold_left(started: Nanos, now: Nanos) -> Duration {
    match u64::try_from(now.saturating_sub(started)) {
        Ok(held) => MAX_HOLD.saturating_sub(Duration::from_nanos(held)),
        // The clock went back, so how long the message waited is unknown: it goes now.
        Err(_) => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample;

    fn fixed_clock() -> Nanos {
        1_700_000_000_000_000_000
    }

    #[test]
    fn run_sends_what_was_queued_and_counts_what_the_tee_dropped() {
        let (exporter, collector) = IpfixExporter::to_local_collector();
        let (tee, receiver) = ExportTee::channel(2);
        let counters = receiver.counters();
        for i in 0..5 {
            tee.offer(&sample(i));
        }
        assert_eq!(counters.failed(), 3, "the queue holds two");
        drop(tee);
        let stats = run(exporter, receiver, fixed_clock);
        assert_eq!((stats.records_sent, stats.records_failed), (2, 3));
        assert_eq!(stats.messages, 1);
        assert_eq!((counters.sent(), counters.failed()), (2, 3));
        let mut buf = [0u8; 2048];
        collector.recv(&mut buf).unwrap();
        assert_eq!(buf[4..8], 1_700_000_000u32.to_be_bytes());
    }

    #[test]
    fn a_message_waits_at_most_max_hold() {
        let second = 1_000_000_000;
        assert_eq!(hold_left(5 * second, 5 * second), MAX_HOLD);
        assert_eq!(hold_left(0, second / 4), MAX_HOLD * 3 / 4);
        assert_eq!(hold_left(0, 2 * second), Duration::ZERO);
        assert_eq!(hold_left(second, 0), Duration::ZERO, "the clock went back");
    }
}
