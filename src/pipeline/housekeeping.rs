//! The threads of a long run besides the reader and the workers: the live IPFIX exporter, the
//! metrics endpoint and a periodic job (capture's retention). Started together before the run,
//! ended together after it ([`Housekeeping::finish`]: the one shutdown path).

use super::metrics::{Endpoint, Metrics, MetricsServer, Snapshot};
use super::PipelineConfig;
use crate::export::{ExportCounters, ExportStats, ExportTee, IpfixExporter};
use crate::retention::RetentionTicker;
use crate::time::{Clock, Nanos};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Work to do every `every` of the clock's time while the run lasts (not at its start: the
/// caller does what it needs first).
pub struct Periodic {
    pub name: &'static str,
    pub every: Nanos,
    pub job: Box<dyn FnMut(Nanos) + Send>,
}

/// What a status report is handed: the totals, and the clock's time.
pub type Report = Box<dyn FnMut(&Snapshot, Nanos) + Send>;

/// A report of the running totals, every `every` of the clock's time.
pub struct Status {
    pub every: Nanos,
    pub report: Report,
}

/// What to start beside the pipeline; each part is optional.
#[derive(Default)]
pub struct HousekeepingConfig {
    /// Send every record written to this exporter, from a thread of its own.
    pub export: Option<IpfixExporter>,
    /// Serve the running totals here.
    pub metrics: Option<Endpoint>,
    /// Hand the running totals to this every `every` (capture's status line).
    pub status: Option<Status>,
    /// Each on a thread of its own, so that a slow one (an expire over a large store) does
    /// not hold up another (a checkpoint).
    pub periodic: Vec<Periodic>,
}

/// The running housekeeping threads.
pub struct Housekeeping {
    export: Option<ExportThread>,
    metrics: Option<MetricsServer>,
    periodic: Vec<(mpsc::Sender<()>, JoinHandle<()>)>,
}

/// What the housekeeping threads did, once ended.
#[derive(Debug, Default)]
pub struct Finished {
    /// The exporter's totals, when records were exported.
    pub export: Option<ExportStats>,
}

impl Housekeeping {
    /// Starts what `h` asks for and connects it to the pipeline's configuration: the export
    /// tee and the metrics counters the workers publish into.
    pub fn start(h: HousekeepingConfig, cfg: &mut PipelineConfig, clock: Clock) -> Result<Self> {
        let export = match h.export {
            Some(exporter) => {
                let (tee, thread) =
                    ExportThread::spawn(exporter, crate::export::DEFAULT_QUEUE, clock)
                        .context("starting the exporter thread")?;
                cfg.export = Some(tee);
                Some(thread)
            }
            None => None,
        };
        // The counters, when the endpoint or the status report reads them.
        let counters = (h.metrics.is_some() || h.status.is_some()).then(|| {
            let mut m = Metrics::new(cfg.workers.max(1));
            if let Some(e) = &export {
                m = m.with_export(Arc::clone(&e.counters));
            }
            Arc::new(m)
        });
        cfg.metrics.clone_from(&counters);
        let metrics = match (h.metrics, &counters) {
            (Some(ep), Some(m)) => Some(MetricsServer::start(ep, Arc::clone(m), clock)?),
            _ => None,
        };
        let status = h.status.zip(counters).map(|(mut s, m)| Periodic {
            name: "flowkeep-status",
            every: s.every,
            job: Box::new(move |now| (s.report)(&m.snapshot(), now)),
        });
        let periodic = h
            .periodic
            .into_iter()
            .chain(status)
            .map(|p| start_periodic(p, clock))
            .collect::<Result<_>>()?;
        Ok(Housekeeping {
            export,
            metrics,
            periodic,
        })
    }

    /// Where the metrics endpoint listens, when it was asked for.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::addr)
    }

    /// After the pipeline has run: stops the periodic jobs and the metrics endpoint, drops the
    /// configuration's export tee and waits for the exporter's last messages.
    pub fn finish(self, cfg: &mut PipelineConfig) -> Finished {
        for (stop, thread) in self.periodic {
            drop(stop);
            let _ = thread.join();
        }
        if let Some(m) = self.metrics {
            m.stop();
        }
        cfg.metrics = None;
        cfg.export = None;
        Finished {
            export: self.export.map(ExportThread::finish),
        }
    }
}

/// The exporter thread of a live capture or replay: [`crate::export::run`] on a thread.
struct ExportThread {
    handle: JoinHandle<ExportStats>,
    counters: Arc<ExportCounters>,
}

impl ExportThread {
    /// It ends once every clone of the returned tee is dropped.
    fn spawn(
        exporter: IpfixExporter,
        queue: usize,
        clock: Clock,
    ) -> std::io::Result<(ExportTee, ExportThread)> {
        let (tee, receiver) = ExportTee::channel(queue);
        let counters = receiver.counters();
        let handle = std::thread::Builder::new()
            .name("flowkeep-export".into())
            .spawn(move || crate::export::run(exporter, receiver, clock))?;
        Ok((tee, ExportThread { handle, counters }))
    }

    /// Waits for the queue to drain and the last message to go. Every tee must be dropped
    /// first, or this waits for ever.
    fn finish(self) -> ExportStats {
        self.handle.join().unwrap_or_else(|_| ExportStats {
            records_failed: self.counters.dropped(),
            last_error: Some("the exporter thread stopped unexpectedly".into()),
            ..ExportStats::default()
        })
    }
}

/// The job runs on its own thread, looking at the clock once a second; dropping the sender
/// ends it.
fn start_periodic(mut p: Periodic, clock: Clock) -> Result<(mpsc::Sender<()>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(p.name.into())
        .spawn(move || {
            let mut ticker = RetentionTicker::new(p.every);
            ticker.due(clock());
            loop {
                match rx.recv_timeout(Duration::from_secs(1)) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let now = clock();
                if ticker.due(now) {
                    (p.job)(now);
                }
            }
        })
        .with_context(|| format!("starting the {} thread", p.name))?;
    Ok((tx, thread))
}
