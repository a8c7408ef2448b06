//! A worker thread: batches in, flows through its own flow table, records into its own store
//! writer. Workers share nothing and take no locks.

use super::batch::Batch;
use super::metrics::WorkerTotals;
use super::Summary;
use crate::export::ExportTee;
use crate::flow::FlowTable;
use crate::record::FlowRecord;
use crate::store::{CaptureStats, StoreError, StoreWriter};
use crate::time::{Nanos, NANOS_PER_SEC};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::sync::Arc;
use std::thread;

/// The reader's end of a worker: the batch being filled, and where it goes when full.
pub(super) struct WorkerLink {
    pub filling: Batch,
    to: Route,
}

enum Route {
    /// A worker thread of its own: batches go over a channel and come back for reuse.
    Thread {
        tx: Sender<Batch>,
        recycled: Receiver<Batch>,
        handle: thread::JoinHandle<Result<Summary, StoreError>>,
    },
    /// On the reader's own thread (a fanout lane reads its own ring): the batch is taken
    /// where it was filled, with no hand-over at all.
    Inline {
        worker: Box<Worker>,
        metrics: Option<Arc<super::metrics::Metrics>>,
        id: usize,
    },
}

/// How a worker runs, besides its table and writer.
pub(super) struct WorkerSetup {
    pub id: usize,
    pub table: FlowTable,
    pub writer: StoreWriter,
    /// Live capture: write open segments' pending records out this often (packet time).
    pub flush_every: Option<Nanos>,
    pub metrics: Option<Arc<super::metrics::Metrics>>,
    pub export: Option<ExportTee>,
    pub queue_batches: usize,
    pub batch_packets: usize,
}

impl WorkerLink {
    pub fn spawn(s: WorkerSetup) -> WorkerLink {
        let (tx, rx) = bounded::<Batch>(s.queue_batches.max(1));
        let (recycle_tx, recycled) = bounded::<Batch>(s.queue_batches.max(1) + 2);
        let batch_packets = s.batch_packets;
        let handle = thread::Builder::new()
            .name(format!("flowkeep-worker-{}", s.id))
            .spawn(move || {
                let (id, metrics) = (s.id, s.metrics.clone());
                let gauges = metrics.as_ref().and_then(|m| m.worker(id));
                let mut w = Worker::new(s);
                for batch in rx {
                    w.take(&batch);
                    if let Some(g) = gauges {
                        g.publish(&w.totals());
                    }
                    // The reader may have stopped taking batches back; then this one is simply
                    // dropped.
                    let _ = recycle_tx.try_send(batch);
                }
                w.finish()
            })
            .expect("spawning a worker thread");
        WorkerLink {
            filling: Batch::with_capacity(batch_packets),
            to: Route::Thread {
                tx,
                recycled,
                handle,
            },
        }
    }

    /// A worker run by the reader's thread itself, batch by batch.
    pub fn inline(s: WorkerSetup) -> WorkerLink {
        WorkerLink {
            filling: Batch::with_capacity(s.batch_packets),
            to: Route::Inline {
                id: s.id,
                metrics: s.metrics.clone(),
                worker: Box::new(Worker::new(s)),
            },
        }
    }

    /// Sends the batch being filled (even an empty one: it carries the time) and takes a
    /// recycled one in its place. False when the worker is gone (it failed; its error comes
    /// from `join`).
    pub fn send(&mut self, now: Nanos) -> bool {
        let (tx, recycled) = match &mut self.to {
            Route::Thread { tx, recycled, .. } => (tx, recycled),
            Route::Inline {
                worker,
                metrics,
                id,
            } => {
                self.filling.now = now;
                worker.take(&self.filling);
                if let Some(g) = metrics.as_ref().and_then(|m| m.worker(*id)) {
                    g.publish(&worker.totals());
                }
                self.filling.clear();
                return true;
            }
        };
        let fresh = match recycled.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(_) => Batch::with_capacity(self.filling.metas.capacity()),
        };
        let mut batch = std::mem::replace(&mut self.filling, fresh);
        batch.now = now;
        tx.send(batch).is_ok()
    }

    /// Closes the channel (the worker flushes and seals) and waits for the worker. `None` when
    /// it panicked.
    pub fn join(self) -> Option<Result<Summary, StoreError>> {
        match self.to {
            Route::Thread { tx, handle, .. } => {
                drop(tx);
                handle.join().ok()
            }
            Route::Inline { worker, .. } => Some(worker.finish()),
        }
    }
}

/// Store errors while running (a full disk) do not stop a worker: the writer counts what it
/// could not store and resumes when it can. They are logged when the message changes and at
/// most once a minute of packet time otherwise, never per record.
struct ErrorLog {
    last: String,
    at: Nanos,
}

impl ErrorLog {
    fn note(&mut self, e: &StoreError, now: Nanos, w: &StoreWriter) {
        let msg = e.to_string();
        if msg != self.last || now.saturating_sub(self.at) >= 60 * NANOS_PER_SEC {
            let st = w.stats();
            eprintln!(
                "flowkeep: store error: {msg} ({} records not stored so far by this worker)",
                st.records_refused + st.records_lost
            );
            self.last = msg;
            self.at = now;
        }
    }
}

/// Where ended records go: the store, then the exporter.
struct Stored<'w> {
    writer: &'w mut StoreWriter,
    export: Option<&'w ExportTee>,
    log: &'w mut ErrorLog,
    /// The time store errors are logged at.
    now: Nanos,
}

impl Extend<FlowRecord> for Stored<'_> {
    fn extend<I: IntoIterator<Item = FlowRecord>>(&mut self, records: I) {
        for r in records {
            if let Err(e) = self.writer.append(&r) {
                self.log.note(&e, self.now, self.writer);
            }
            if let Some(t) = self.export {
                t.offer(&r);
            }
        }
    }
}

struct Worker {
    table: FlowTable,
    writer: StoreWriter,
    flush_every: Option<Nanos>,
    export: Option<ExportTee>,
    summary: Summary,
    /// Records ended by the current batch, reused from batch to batch.
    records: Vec<FlowRecord>,
    log: ErrorLog,
    next_flush: Nanos,
}

impl Worker {
    fn new(s: WorkerSetup) -> Worker {
        Worker {
            table: s.table,
            writer: s.writer,
            flush_every: s.flush_every,
            export: s.export,
            summary: Summary::default(),
            records: Vec::with_capacity(1024),
            log: ErrorLog {
                last: String::new(),
                at: Nanos::MIN,
            },
            next_flush: Nanos::MIN,
        }
    }

    fn take(&mut self, batch: &Batch) {
        let evictions_before = self.table.stats().evictions;
        let ip_packets = batch.metas.len() as u64;
        let ip_bytes: u64 = batch.metas.iter().map(|m| m.ip_bytes).sum();
        let s = &mut self.summary;
        s.packets += ip_packets;
        s.bytes += ip_bytes;
        s.non_ip += batch.non_ip;
        s.malformed += batch.malformed;
        s.dhcp_malformed += batch.dhcp_malformed;
        // The whole batch at once: the table reads ahead the flows of the next few packets.
        self.table.update_batch(&batch.metas, &mut self.records);
        if batch.now != Nanos::MIN {
            self.table.expire(batch.now, &mut self.records);
        }
        self.store_records(batch.now);
        for l in &batch.leases {
            if let Err(e) = self.writer.append_lease(l) {
                self.log.note(&e, batch.now, &self.writer);
            }
        }
        // Before any seal, so the counts land in the segments open while they happened. (The
        // writer counts the records it could not store there itself, as it loses them.)
        self.writer.add_capture_stats(&CaptureStats {
            frames: batch.frames(),
            ip_packets,
            ip_bytes,
            non_ip: batch.non_ip,
            malformed: batch.malformed,
            kernel_drops: batch.drops.dropped_kernel,
            interface_drops: batch.drops.dropped_interface,
            flow_evictions: self.table.stats().evictions - evictions_before,
            ..CaptureStats::default()
        });
        if batch.now != Nanos::MIN {
            self.seal_and_flush(batch.now);
        }
        if batch.seal {
            // Flows still open go on into new segments of the same partitions.
            match self.writer.seal_before(Nanos::MAX) {
                Ok(()) => eprintln!("flowkeep: rotation: open segments sealed"),
                Err(e) => self.log.note(&e, batch.now, &self.writer),
            }
        }
    }

    /// Appends the ended records (and offers them to the exporter).
    fn store_records(&mut self, now: Nanos) {
        Stored {
            writer: &mut self.writer,
            export: self.export.as_ref(),
            log: &mut self.log,
            now,
        }
        .extend(self.records.drain(..));
    }

    /// Seals the partitions no record can still arrive for, and (live) flushes open segments
    /// once per `flush_every`.
    fn seal_and_flush(&mut self, now: Nanos) {
        let seal_delay = self.table.config().max_lifetime();
        if let Err(e) = self.writer.seal_before(now.saturating_sub(seal_delay)) {
            self.log.note(&e, now, &self.writer);
        }
        if let Some(every) = self.flush_every {
            if now >= self.next_flush {
                self.next_flush = now.saturating_add(every);
                if let Err(e) = self.writer.flush_open() {
                    self.log.note(&e, now, &self.writer);
                }
            }
        }
    }

    /// The channel closed: every flow still open is written, every segment sealed.
    fn finish(mut self) -> Result<Summary, StoreError> {
        // Straight into the store: at the end every open flow ends at once, and collecting
        // them first would hold all of their records in memory together.
        let mut stored = Stored {
            writer: &mut self.writer,
            export: self.export.as_ref(),
            log: &mut self.log,
            now: Nanos::MAX,
        };
        self.table.flush(&mut stored);
        self.summary.flow = self.table.stats();
        self.summary.store = self.writer.finish()?;
        Ok(self.summary)
    }

    fn totals(&self) -> WorkerTotals {
        let st = self.writer.stats();
        let s = &self.summary;
        WorkerTotals {
            packets: s.packets,
            bytes: s.bytes,
            non_ip: s.non_ip,
            malformed: s.malformed,
            active_flows: self.table.active_flows() as u64,
            evictions: self.table.stats().evictions,
            records_written: st.records.saturating_sub(st.records_lost),
            records_not_stored: st.records_lost + st.records_refused,
            segments: st.segments,
            store_bytes: st.bytes,
        }
    }
}
