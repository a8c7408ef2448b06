//! Runs the stages on threads: one reader (the calling thread) hands packets in batches to N
//! workers, each owning a flow table and a store writer. This is the only module that spawns
//! threads or creates channels; every stage it drives is plain single-threaded code.
//!
//! Both directions of a flow reach the same worker because the reader picks the worker with a
//! symmetric hash of addresses and ports, so workers share nothing and take no locks.

pub mod metrics;

use crate::capture::{CaptureError, Next, PacketSource, PacketUse, SourceStats};
use crate::decode::{self, dhcp, DecodeError, Dispatcher, PacketMeta};
use crate::flow::{FlowConfig, FlowStats, FlowTable};
use crate::record::{FlowRecord, LeaseObservation};
use crate::store::{CaptureStats, Recovery, StoreError, StoreWriter, WriterConfig, WriterStats};
use crate::time::{Nanos, NANOS_PER_SEC};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub workers: usize,
    pub flow: FlowConfig,
    /// Each worker writes with a copy of this, its `writer_id` set to the worker's index.
    pub store: WriterConfig,
    /// Packets per batch: large enough that a channel hand-over costs little per packet.
    pub batch_packets: usize,
    /// Batches in flight per worker before the reader waits (back-pressure, never loss).
    pub queue_batches: usize,
    /// Set (by SIGHUP) to have every worker seal its open segments and go on: rotation. The
    /// reader clears it and passes it on at its next per-second tick or idle wake-up.
    pub rotate: Option<Arc<AtomicBool>>,
    /// Running totals for a metrics endpoint, published by the workers after every batch and
    /// by the reader once a second.
    pub metrics: Option<Arc<metrics::Metrics>>,
    /// Every record written is also offered to this live exporter (never waiting for it).
    pub export: Option<crate::export::ExportTee>,
}

impl PipelineConfig {
    pub fn new(store: WriterConfig) -> PipelineConfig {
        PipelineConfig {
            workers: default_workers(),
            flow: FlowConfig::default(),
            store,
            batch_packets: 512,
            queue_batches: 32,
            rotate: None,
            metrics: None,
            export: None,
        }
    }
}

/// One worker per core. The reader decodes and dispatches, about a third of the work per
/// packet, so with one core left to it alone (on two cores: one worker) the worker is the
/// bottleneck; with a worker on every core the scheduler spreads the reader's share over all.
pub fn default_workers() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// What a run did, summed over its workers.
#[derive(Debug, Default)]
pub struct Summary {
    /// Frames read from the sources.
    pub frames: u64,
    /// Frames that became part of a flow, and their IP-layer bytes.
    pub packets: u64,
    pub bytes: u64,
    pub non_ip: u64,
    pub malformed: u64,
    pub flow: FlowStats,
    pub store: WriterStats,
    /// Sources that ended with an error; packets read before it were kept.
    pub source_errors: Vec<CaptureError>,
    /// The last counters of live sources.
    pub source_stats: SourceStats,
    pub first_ts: Option<Nanos>,
    pub last_ts: Option<Nanos>,
    /// Temporary segments of dead writers that opening the store sealed.
    pub recovery: Recovery,
    /// DHCP packets (by port) whose message could not be parsed (cut by the snap length,
    /// malformed); their flows still count.
    pub dhcp_malformed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("worker {0} stopped unexpectedly")]
    WorkerPanicked(usize),
}

/// Called by the reader now and then with (frames read so far, sources finished).
pub type Progress<'a> = &'a mut dyn FnMut(u64, usize);

/// Where the reader gets "now" while a live source is idle; `None` for files, whose time is
/// only ever their packets'.
pub type Clock = fn() -> Nanos;

/// Decoded packets for one worker. The reader decodes every frame (it needs the headers to
/// pick the worker anyway), so frame bytes never cross threads: nothing is copied out of a
/// file's memory map or libpcap's buffer, and each frame is parsed once. Batches go back to
/// the reader for reuse, so a batch allocates once for its whole life.
struct Batch {
    metas: Vec<PacketMeta>,
    /// DHCP lease observations parsed from this batch's packets (rare: most batches have
    /// none). The reader parses them, since only it still holds the frames' bytes.
    leases: Vec<LeaseObservation>,
    dhcp_malformed: u64,
    /// Frames of this batch that gave no packet (counted where they were dispatched).
    non_ip: u64,
    malformed: u64,
    /// The newest time the reader knew when it sent the batch (packet time, or the clock while
    /// a live source is idle): workers expire flows up to it.
    now: Nanos,
    /// Kernel and interface drops since the previous report (sent to worker 0 only), so they
    /// land in the metadata of the segments open while they happened.
    drops: SourceStats,
    /// Seal every open segment once this batch is done (rotation).
    seal: bool,
}

impl Batch {
    fn with_capacity(packets: usize) -> Batch {
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

    fn frames(&self) -> u64 {
        self.metas.len() as u64 + self.non_ip + self.malformed
    }

    fn clear(&mut self) {
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

struct WorkerLink {
    tx: Sender<Batch>,
    recycled: Receiver<Batch>,
    filling: Batch,
    handle: thread::JoinHandle<Result<WorkerSummary, StoreError>>,
}

#[derive(Default)]
struct WorkerSummary {
    packets: u64,
    bytes: u64,
    non_ip: u64,
    malformed: u64,
    flow: FlowStats,
    store: WriterStats,
    dhcp_malformed: u64,
}

/// Runs sources one after another (as one continuous capture) through the workers until every
/// source ends or `stop` is set, then writes every flow still open and seals the store.
pub fn run<'s, I>(
    cfg: &PipelineConfig,
    sources: I,
    stop: &AtomicBool,
    clock: Option<Clock>,
    progress: Progress<'_>,
) -> Result<Summary, PipelineError>
where
    I: IntoIterator<Item = Result<Box<dyn PacketSource + 's>, CaptureError>>,
{
    let workers = cfg.workers.max(1);
    let batch_packets = cfg.batch_packets.max(1);
    // Open every writer before reading anything, so an unwritable store fails before work.
    let mut writers = Vec::with_capacity(workers);
    let mut recovery = Recovery::default();
    for id in 0..workers {
        let mut wcfg = cfg.store.clone();
        wcfg.writer_id = id as u32;
        let mut w = StoreWriter::create(wcfg)?;
        let r = w.take_recovery();
        recovery.segments.extend(r.segments);
        recovery.problems.extend(r.problems);
        writers.push(w);
    }
    // Live capture writes its open segments' pending records out at least once a second, so
    // queries see them and a crash loses at most about a second; files are written in full
    // blocks only, for compression.
    let flush_every = clock.map(|_| NANOS_PER_SEC);
    let mut links: Vec<WorkerLink> = writers
        .into_iter()
        .enumerate()
        .map(|(id, writer)| {
            let (tx, rx) = bounded::<Batch>(cfg.queue_batches.max(1));
            let (recycle_tx, recycled) = bounded::<Batch>(cfg.queue_batches.max(1) + 2);
            let mut flow_cfg = cfg.flow;
            // The limit is the process's: each worker holds its share of the flows.
            flow_cfg.max_flows = cfg.flow.max_flows.map(|n| (n / workers).max(1));
            let metrics = cfg.metrics.clone();
            let export = cfg.export.clone();
            let handle = thread::Builder::new()
                .name(format!("flowkeep-worker-{id}"))
                .spawn(move || {
                    work(
                        rx,
                        recycle_tx,
                        FlowTable::new(flow_cfg),
                        writer,
                        flush_every,
                        metrics.as_ref().and_then(|m| m.worker(id)),
                        export,
                    )
                })
                .expect("spawning a worker thread");
            WorkerLink {
                tx,
                recycled,
                filling: Batch::with_capacity(batch_packets),
                handle,
            }
        })
        .collect();

    let mut summary = Summary {
        recovery,
        ..Summary::default()
    };
    let mut next_tick = Nanos::MIN;
    let mut dispatcher = Dispatcher::new();
    let mut now = Nanos::MIN;
    let mut sources_done = 0;
    let mut send_failed = false;
    let mut drain_until: Option<Nanos> = None;

    'sources: for source in sources {
        let mut source = match source {
            Ok(s) => s,
            Err(e) => {
                summary.source_errors.push(e);
                sources_done += 1;
                continue;
            }
        };
        loop {
            if drain_until.is_none() && stop.load(Ordering::Relaxed) {
                // Stopping: what the kernel already holds was seen on the wire, so read it
                // until the link goes quiet (or for a second at most, on a busy link).
                let Some(clock) = clock else {
                    note_drops(&*source, &mut summary.source_stats, &mut links[0].filling);
                    break 'sources;
                };
                drain_until = Some(clock().saturating_add(NANOS_PER_SEC));
            }
            if let (Some(deadline), Some(clock)) = (drain_until, clock) {
                if summary.frames % 4096 == 0 && clock() >= deadline {
                    note_drops(&*source, &mut summary.source_stats, &mut links[0].filling);
                    break 'sources;
                }
            }
            let mut usage = PacketUse::FlowsAndLeases;
            match source.next_packet_for(&mut usage) {
                Ok(Next::Packet(pkt)) if usage == PacketUse::Leases => {
                    // A whole copy of a DHCP frame the main handle delivers (cut) for the
                    // flows: not a frame of its own, and leases need no particular worker.
                    now = now.max(pkt.ts);
                    if let Ok(meta) = decode::decode(&pkt) {
                        if dhcp::is_dhcp(&meta) {
                            let b = &mut links[0].filling;
                            let parsed = decode::udp_payload(&pkt)
                                .map(|payload| dhcp::parse(&meta, payload, &mut b.leases));
                            if !matches!(parsed, Some(Ok(()))) {
                                b.dhcp_malformed += 1;
                            }
                        }
                    }
                }
                Ok(Next::Packet(pkt)) => {
                    summary.frames += 1;
                    now = now.max(pkt.ts);
                    summary.first_ts = Some(summary.first_ts.map_or(pkt.ts, |t| t.min(pkt.ts)));
                    let decoded = decode::decode(&pkt);
                    // One worker takes everything: no need for a hash. Frames without a
                    // packet are only counted, by worker 0.
                    let w = match &decoded {
                        Ok(meta) if workers > 1 => {
                            (dispatcher.hash_meta(meta) % workers as u64) as usize
                        }
                        _ => 0,
                    };
                    let link = &mut links[w];
                    let b = &mut link.filling;
                    match decoded {
                        Ok(mut meta) => {
                            if usage == PacketUse::FlowsAndLeases && dhcp::is_dhcp(&meta) {
                                let parsed = decode::udp_payload(&pkt)
                                    .map(|payload| dhcp::parse(&meta, payload, &mut b.leases));
                                if !matches!(parsed, Some(Ok(()))) {
                                    b.dhcp_malformed += 1;
                                }
                            }
                            // After the last use of the frame, which borrows the source.
                            meta.interface = source.interface();
                            b.metas.push(meta)
                        }
                        Err(DecodeError::NotIp) => b.non_ip += 1,
                        Err(DecodeError::Malformed(_)) => b.malformed += 1,
                    }
                    if b.frames() >= batch_packets as u64 && !send(link, now) {
                        send_failed = true;
                        break 'sources;
                    }
                    // Live: every worker hears of each new second even on a slow link that never
                    // fills a batch, so it can expire flows and flush its open segments.
                    if flush_every.is_some() && now >= next_tick {
                        next_tick = now.saturating_add(NANOS_PER_SEC);
                        note_drops(&*source, &mut summary.source_stats, &mut links[0].filling);
                        on_tick(cfg, &summary, &mut links);
                        for link in &mut links {
                            if !send(link, now) {
                                send_failed = true;
                                break 'sources;
                            }
                        }
                    }
                    if summary.frames % 65_536 == 0 {
                        progress(summary.frames, sources_done);
                    }
                }
                Ok(Next::Idle) if drain_until.is_some() => {
                    note_drops(&*source, &mut summary.source_stats, &mut links[0].filling);
                    break 'sources;
                }
                Ok(Next::Idle) => {
                    // A quiet live link: hand over what is waiting and let time move on.
                    if let Some(clock) = clock {
                        now = now.max(clock());
                    }
                    note_drops(&*source, &mut summary.source_stats, &mut links[0].filling);
                    on_tick(cfg, &summary, &mut links);
                    for link in &mut links {
                        if !send(link, now) {
                            send_failed = true;
                            break 'sources;
                        }
                    }
                }
                Ok(Next::End) => break,
                Err(e) => {
                    summary.source_errors.push(e);
                    break;
                }
            }
        }
        note_drops(&*source, &mut summary.source_stats, &mut links[0].filling);
        sources_done += 1;
        progress(summary.frames, sources_done);
    }
    summary.last_ts = (now != Nanos::MIN).then_some(now);

    // Hand over the partial batches, then close the channels: workers flush and seal.
    for link in &mut links {
        if !send_failed && !send(link, now) {
            send_failed = true;
        }
    }
    let mut first_error = None;
    for (id, link) in links.into_iter().enumerate() {
        drop(link.tx);
        match link.handle.join() {
            Ok(Ok(w)) => {
                summary.packets += w.packets;
                summary.bytes += w.bytes;
                summary.non_ip += w.non_ip;
                summary.malformed += w.malformed;
                add_flow_stats(&mut summary.flow, &w.flow);
                summary.store.records += w.store.records;
                summary.store.records_refused += w.store.records_refused;
                summary.store.records_lost += w.store.records_lost;
                summary.store.blocks += w.store.blocks;
                summary.store.segments += w.store.segments;
                summary.store.bytes += w.store.bytes;
                summary.store.leases += w.store.leases;
                summary.dhcp_malformed += w.dhcp_malformed;
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(PipelineError::Store(e));
            }
            Err(_) => {
                first_error.get_or_insert(PipelineError::WorkerPanicked(id));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

fn add_flow_stats(total: &mut FlowStats, w: &FlowStats) {
    total.packets += w.packets;
    total.bytes += w.bytes;
    total.flows_created += w.flows_created;
    total.records += w.records;
    total.orphan_fragments += w.orphan_fragments;
    total.evictions += w.evictions;
}

/// Once a second or when idle, before the batches go out: publish the reader's counters, and
/// pass a rotation request to every worker with its batch.
fn on_tick(cfg: &PipelineConfig, summary: &Summary, links: &mut [WorkerLink]) {
    if let Some(m) = &cfg.metrics {
        let st = &summary.source_stats;
        m.publish_reader(summary.frames, st.dropped_kernel, st.dropped_interface);
    }
    if cfg
        .rotate
        .as_ref()
        .is_some_and(|r| r.swap(false, Ordering::Relaxed))
    {
        for link in links {
            link.filling.seal = true;
        }
    }
}

/// Adds the source's new drops since `last` to `batch` and moves `last` on. Counters only grow;
/// a source whose counters restart (a new source) starts from zero.
fn note_drops(source: &dyn PacketSource, last: &mut SourceStats, batch: &mut Batch) {
    let now = source.stats();
    let delta = |n: u64, l: u64| if n >= l { n - l } else { n };
    batch.drops.received += delta(now.received, last.received);
    batch.drops.dropped_kernel += delta(now.dropped_kernel, last.dropped_kernel);
    batch.drops.dropped_interface += delta(now.dropped_interface, last.dropped_interface);
    *last = now;
}

/// Sends the batch being filled (even an empty one: it carries the time) and takes a recycled
/// one in its place. False when the worker is gone (it failed; its error comes from `join`).
fn send(link: &mut WorkerLink, now: Nanos) -> bool {
    let fresh = match link.recycled.try_recv() {
        Ok(mut b) => {
            b.clear();
            b
        }
        Err(_) => Batch::with_capacity(link.filling.metas.capacity()),
    };
    let mut batch = std::mem::replace(&mut link.filling, fresh);
    batch.now = now;
    link.tx.send(batch).is_ok()
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

fn work(
    rx: Receiver<Batch>,
    recycle: Sender<Batch>,
    mut table: FlowTable,
    mut writer: StoreWriter,
    flush_every: Option<Nanos>,
    gauges: Option<&metrics::WorkerGauges>,
    export: Option<crate::export::ExportTee>,
) -> Result<WorkerSummary, StoreError> {
    let mut summary = WorkerSummary::default();
    let mut records: Vec<FlowRecord> = Vec::with_capacity(1024);
    let seal_delay = table.config().max_lifetime();
    let mut log = ErrorLog {
        last: String::new(),
        at: Nanos::MIN,
    };
    let mut next_flush = Nanos::MIN;
    for batch in rx {
        let lost_before = writer.stats().records_lost + writer.stats().records_refused;
        let evictions_before = table.stats().evictions;
        let ip_packets = batch.metas.len() as u64;
        let ip_bytes: u64 = batch.metas.iter().map(|m| m.ip_bytes).sum();
        summary.packets += ip_packets;
        summary.bytes += ip_bytes;
        summary.non_ip += batch.non_ip;
        summary.malformed += batch.malformed;
        summary.dhcp_malformed += batch.dhcp_malformed;
        // The whole batch at once: the table reads ahead the flows of the next few packets.
        table.update_batch(&batch.metas, &mut records);
        if batch.now != Nanos::MIN {
            table.expire(batch.now, &mut records);
        }
        for r in records.drain(..) {
            if let Err(e) = writer.append(&r) {
                log.note(&e, batch.now, &writer);
            }
            if let Some(t) = &export {
                t.offer(&r);
            }
        }
        for l in &batch.leases {
            if let Err(e) = writer.append_lease(l) {
                log.note(&e, batch.now, &writer);
            }
        }
        // Before any seal, so the counts land in the segments open while they happened.
        writer.add_capture_stats(&CaptureStats {
            frames: batch.frames(),
            ip_packets,
            ip_bytes,
            non_ip: batch.non_ip,
            malformed: batch.malformed,
            kernel_drops: batch.drops.dropped_kernel,
            interface_drops: batch.drops.dropped_interface,
            records_not_stored: (writer.stats().records_lost + writer.stats().records_refused)
                .saturating_sub(lost_before),
            flow_evictions: table.stats().evictions - evictions_before,
            ..CaptureStats::default()
        });
        if batch.now != Nanos::MIN {
            if let Err(e) = writer.seal_before(batch.now.saturating_sub(seal_delay)) {
                log.note(&e, batch.now, &writer);
            }
            if let Some(every) = flush_every {
                if batch.now >= next_flush {
                    next_flush = batch.now.saturating_add(every);
                    if let Err(e) = writer.flush_open() {
                        log.note(&e, batch.now, &writer);
                    }
                }
            }
        }
        if batch.seal {
            // Flows still open go on into new segments of the same partitions.
            match writer.seal_before(Nanos::MAX) {
                Ok(()) => eprintln!("flowkeep: rotation: open segments sealed"),
                Err(e) => log.note(&e, batch.now, &writer),
            }
        }
        if let Some(g) = gauges {
            g.publish(&worker_totals(&summary, &table, &writer));
        }
        // The reader may have stopped taking batches back; then this one is simply dropped.
        let _ = recycle.try_send(batch);
    }
    table.flush(&mut records);
    for r in records.drain(..) {
        if let Err(e) = writer.append(&r) {
            log.note(&e, Nanos::MAX, &writer);
        }
        if let Some(t) = &export {
            t.offer(&r);
        }
    }
    summary.flow = table.stats();
    summary.store = writer.finish()?;
    Ok(summary)
}

fn worker_totals(
    s: &WorkerSummary,
    table: &FlowTable,
    writer: &StoreWriter,
) -> metrics::WorkerTotals {
    let st = writer.stats();
    metrics::WorkerTotals {
        packets: s.packets,
        bytes: s.bytes,
        non_ip: s.non_ip,
        malformed: s.malformed,
        active_flows: table.active_flows() as u64,
        evictions: table.stats().evictions,
        records_written: st.records.saturating_sub(st.records_lost),
        records_not_stored: st.records_lost + st.records_refused,
        segments: st.segments,
        store_bytes: st.bytes,
    }
}

/// Paths to sources, opened lazily so a long list does not hold every file open.
pub fn file_sources<'a>(
    paths: &'a [PathBuf],
) -> impl Iterator<Item = Result<Box<dyn PacketSource + 'a>, CaptureError>> + 'a {
    paths.iter().map(|p| {
        crate::capture::FileSource::open(p).map(|s| Box::new(s) as Box<dyn PacketSource + 'a>)
    })
}
