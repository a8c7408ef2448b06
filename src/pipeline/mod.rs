//! Runs the stages on threads: one reader (the calling thread, [`reader`]) hands packets in
//! batches to N workers ([`worker`]), each owning a flow table and a store writer; beside them,
//! the [`housekeeping`] threads of a long run (the IPFIX exporter, the metrics endpoint, the
//! retention ticker). This is the only module that spawns threads or creates channels; every
//! stage it drives is plain single-threaded code.
//!
//! Both directions of a flow reach the same worker because the reader picks the worker with a
//! symmetric hash of addresses and ports, so workers share nothing and take no locks.

mod batch;
pub mod housekeeping;
pub mod metrics;
mod reader;
mod worker;

pub use crate::time::Clock;
pub use housekeeping::{Housekeeping, HousekeepingConfig, Periodic, Status};

use crate::capture::{CaptureError, PacketSource, SourceStats};
use crate::flow::{FlowConfig, FlowStats, FlowTable};
use crate::store::{Recovery, StoreError, StoreWriter, WriterConfig, WriterStats};
use crate::time::{Nanos, NANOS_PER_SEC};
use reader::{Reader, Step};
use std::ops::AddAssign;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use worker::{WorkerLink, WorkerSetup};

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
    /// The wall clock: a packet stamped more than [`CLOCK_TOLERANCE`] after it is counted in
    /// [`Summary::future_packets`] and left out of [`Summary::trusted_last_ts`]. Read when the
    /// run starts and, live, once a second. `None`: every packet time is trusted.
    pub wall_clock: Option<Clock>,
}

/// How far a packet time may run ahead of the wall clock (the clocks of capture boxes drift)
/// and still be trusted as the time, e.g. as retention's "now" after a replay.
pub const CLOCK_TOLERANCE: Nanos = 300 * NANOS_PER_SEC;

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
            wall_clock: None,
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
    /// Frames stamped more than [`CLOCK_TOLERANCE`] after the wall clock
    /// ([`PipelineConfig::wall_clock`]): a bad timestamp, whose flows are stored as stamped.
    pub future_packets: u64,
    /// Frames stamped earlier than a frame read before them (files merged out of order, or
    /// clocks stepped back): each joins its flow as stamped, so a record may span the jump.
    pub reordered: u64,
    /// The newest packet time among the other frames: what a run that trusts packet time
    /// (replay's retention) may take as "now".
    pub trusted_last_ts: Option<Nanos>,
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
/// Frames read so far, sources finished, and bytes read of the source being read (0 when it
/// cannot say): what `replay` draws its progress bar from.
pub type Progress<'a> = &'a mut dyn FnMut(u64, usize, u64);

/// A worker counts into a `Summary` of its own (packets, bytes, non-IP and malformed frames,
/// DHCP messages not parsed, its flow table's and writer's statistics); the run adds them up.
impl Summary {
    /// Adds a fanout lane's summary: its reader's counts as well as its worker's.
    fn merge_lane(&mut self, mut lane: Summary) {
        self.frames += lane.frames;
        self.future_packets += lane.future_packets;
        self.reordered += lane.reordered;
        self.source_stats.received += lane.source_stats.received;
        self.source_stats.dropped_kernel += lane.source_stats.dropped_kernel;
        self.source_stats.dropped_interface += lane.source_stats.dropped_interface;
        self.first_ts = pick(self.first_ts, lane.first_ts, Nanos::min);
        self.last_ts = pick(self.last_ts, lane.last_ts, Nanos::max);
        self.trusted_last_ts = pick(self.trusted_last_ts, lane.trusted_last_ts, Nanos::max);
        self.source_errors.append(&mut lane.source_errors);
        *self += lane;
    }
}

/// `pick` of two optional times, or whichever is there.
fn pick(a: Option<Nanos>, b: Option<Nanos>, which: fn(Nanos, Nanos) -> Nanos) -> Option<Nanos> {
    match (a, b) {
        (Some(a), Some(b)) => Some(which(a, b)),
        (a, b) => a.or(b),
    }
}

impl AddAssign<Summary> for Summary {
    fn add_assign(&mut self, w: Summary) {
        self.packets += w.packets;
        self.bytes += w.bytes;
        self.non_ip += w.non_ip;
        self.malformed += w.malformed;
        self.flow += &w.flow;
        self.store += &w.store;
        self.dhcp_malformed += w.dhcp_malformed;
    }
}

/// Runs sources one after another (as one continuous capture) through the workers until every
/// source ends or `stop` is set, then writes every flow still open and seals the store.
/// `clock` is where the reader gets "now" while a live source is idle; `None` for files, whose
/// time is only ever their packets'.
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
    let (links, recovery) = start_workers(cfg, clock.is_some())?;
    let summary = Summary {
        recovery,
        ..Summary::default()
    };
    let mut reader = Reader::new(cfg, links, clock, summary);
    for source in sources {
        let mut source = match source {
            Ok(s) => s,
            Err(e) => {
                reader.summary.source_errors.push(e);
                reader.sources_done += 1;
                continue;
            }
        };
        if reader.read(&mut *source, stop, progress) == Step::Stop {
            break;
        }
        reader.note_drops(&*source);
        reader.sources_done += 1;
        progress(reader.summary.frames, reader.sources_done, 0);
    }
    finish(reader)
}

/// Fanout: one lane per source (`sources[k]` is the k-th ring of every interface), each a
/// reader that is its own worker, on a thread of its own: no hand-over between threads at all.
/// The kernel's fanout program has already put every packet of a flow in one lane's ring.
/// `cfg.workers` is ignored: there are as many workers as lanes. A rotation request is passed
/// to every lane; `stop` ends them all, each after draining its ring.
pub fn run_lanes<S: PacketSource + Send>(
    cfg: &PipelineConfig,
    sources: &mut [S],
    stop: &AtomicBool,
    clock: Clock,
) -> Result<Summary, PipelineError> {
    let lanes = sources.len().max(1);
    let (writers, recovery) = open_writers(cfg, lanes)?;
    let lane_cfgs: Vec<PipelineConfig> = (0..lanes)
        .map(|_| PipelineConfig {
            rotate: Some(Arc::new(AtomicBool::new(false))),
            ..cfg.clone()
        })
        .collect();
    let setups = worker_setups(cfg, writers, true);
    let results = thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter_mut()
            .zip(setups)
            .zip(&lane_cfgs)
            .map(|((source, setup), lane_cfg)| {
                let id = setup.id;
                thread::Builder::new()
                    .name(format!("flowkeep-lane-{id}"))
                    .spawn_scoped(scope, move || {
                        let link = WorkerLink::inline(setup);
                        let mut reader =
                            Reader::new(lane_cfg, vec![link], Some(clock), Summary::default());
                        reader.lane = id;
                        reader.read(source, stop, &mut |_, _, _| {});
                        reader.note_drops(source);
                        finish(reader)
                    })
            })
            .collect();
        // The signal handler sets one flag; every lane must hear of it.
        while handles
            .iter()
            .any(|h| h.as_ref().is_ok_and(|h| !h.is_finished()))
        {
            if cfg
                .rotate
                .as_ref()
                .is_some_and(|r| r.swap(false, Ordering::Relaxed))
            {
                for c in &lane_cfgs {
                    if let Some(r) = &c.rotate {
                        r.store(true, Ordering::Relaxed);
                    }
                }
            }
            thread::sleep(std::time::Duration::from_millis(50));
        }
        handles
            .into_iter()
            .enumerate()
            .map(|(id, h)| match h {
                Ok(h) => h.join().unwrap_or(Err(PipelineError::WorkerPanicked(id))),
                Err(_) => Err(PipelineError::WorkerPanicked(id)),
            })
            .collect::<Vec<_>>()
    });
    let mut summary = Summary {
        recovery,
        ..Summary::default()
    };
    for r in results {
        summary.merge_lane(r?);
    }
    Ok(summary)
}

/// The end of a reader's run: the last times, the partial batches handed over, the workers
/// flushed and sealed, their counts added up.
fn finish(mut reader: Reader<'_>) -> Result<Summary, PipelineError> {
    let now = reader.now;
    reader.summary.last_ts = (now != Nanos::MIN).then_some(now);
    let trusted = reader.trusted_now;
    reader.summary.trusted_last_ts = (trusted != Nanos::MIN).then_some(trusted);
    // Hand over the partial batches, then close the channels: workers flush and seal.
    if !reader.send_failed {
        reader.send_all();
    }
    let mut summary = reader.summary;
    let mut first_error = None;
    for (id, link) in reader.links.into_iter().enumerate() {
        match link.join() {
            Some(Ok(w)) => summary += w,
            Some(Err(e)) => {
                first_error.get_or_insert(PipelineError::Store(e));
            }
            None => {
                first_error.get_or_insert(PipelineError::WorkerPanicked(id));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// Opens every writer before reading anything, so an unwritable store fails before work, then
/// starts a worker for each.
fn start_workers(
    cfg: &PipelineConfig,
    live: bool,
) -> Result<(Vec<WorkerLink>, Recovery), PipelineError> {
    let (writers, recovery) = open_writers(cfg, cfg.workers.max(1))?;
    let links = worker_setups(cfg, writers, live)
        .into_iter()
        .map(WorkerLink::spawn)
        .collect();
    Ok((links, recovery))
}

/// A writer for each of `workers` workers, and what opening them recovered.
fn open_writers(
    cfg: &PipelineConfig,
    workers: usize,
) -> Result<(Vec<StoreWriter>, Recovery), PipelineError> {
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
    Ok((writers, recovery))
}

/// How each worker runs: its writer, its share of the flow table, and the rest.
fn worker_setups(cfg: &PipelineConfig, writers: Vec<StoreWriter>, live: bool) -> Vec<WorkerSetup> {
    let workers = writers.len().max(1);
    // Live capture writes its open segments' pending records out at least once a second, so
    // queries see them and a crash loses at most about a second; files are written in full
    // blocks only, for compression.
    let flush_every = live.then_some(NANOS_PER_SEC);
    let mut flow = cfg.flow;
    // The limit is the process's: each worker holds its share of the flows.
    flow.max_flows = cfg.flow.max_flows.map(|n| (n / workers).max(1));
    writers
        .into_iter()
        .enumerate()
        .map(|(id, writer)| WorkerSetup {
            id,
            table: FlowTable::new(flow),
            writer,
            flush_every,
            metrics: cfg.metrics.clone(),
            export: cfg.export.clone(),
            queue_batches: cfg.queue_batches,
            batch_packets: cfg.batch_packets.max(1),
        })
        .collect()
}

/// Paths to sources, opened lazily so a long list does not hold every file open.
pub fn file_sources<'a>(
    paths: &'a [PathBuf],
) -> impl Iterator<Item = Result<Box<dyn PacketSource + 'a>, CaptureError>> + 'a {
    paths.iter().map(|p| {
        crate::capture::FileSource::open(p).map(|s| Box::new(s) as Box<dyn PacketSource + 'a>)
    })
}
