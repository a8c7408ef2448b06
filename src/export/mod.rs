//! Sending records to other systems: IPFIX collectors ([`ipfix`]) and Parquet files for
//! columnar engines ([`parquet`]). Stored records are sent by
//! `flowkeep export`; a capture sends each record as it is written through an [`ExportTee`],
//! which never blocks a worker: a full queue or a gone collector costs exported records
//! (counted), never stored ones.

pub mod ipfix;
pub mod parquet;

use crate::record::FlowRecord;
use crate::time::{Clock, Nanos, NANOS_PER_SEC};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use ipfix::{IpfixConfig, MessageBuilder, Transport};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// `ipfix+udp://HOST:PORT` or `ipfix+tcp://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpfixTarget {
    pub tcp: bool,
    /// `HOST:PORT`, as given (a name is resolved when the exporter opens).
    pub addr: String,
}

impl IpfixTarget {
    /// `None` when `s` is not an IPFIX target at all; an error when it is one, badly written.
    pub fn parse(s: &str) -> Option<Result<IpfixTarget, String>> {
        let (tcp, rest) = if let Some(r) = s.strip_prefix("ipfix+udp://") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("ipfix+tcp://") {
            (true, r)
        } else {
            return None;
        };
        let rest = rest.trim_end_matches('/');
        let port_ok = rest.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        Some(if port_ok {
            Ok(IpfixTarget {
                tcp,
                addr: rest.to_string(),
            })
        } else {
            Err(format!(
                "'{s}': expected ipfix+udp://HOST:PORT or ipfix+tcp://HOST:PORT, e.g. ipfix+udp://192.0.2.10:4739 or ipfix+tcp://[2001:db8::1]:4739"
            ))
        })
    }
}

impl fmt::Display for IpfixTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = if self.tcp { "tcp" } else { "udp" };
        write!(f, "ipfix+{proto}://{}", self.addr)
    }
}

/// What an exporter did. Records are flow records (a biflow, or both one-way halves).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub records_sent: u64,
    /// Records in messages that could not be sent, and (live export) records dropped because
    /// the exporter's queue was full.
    pub records_failed: u64,
    pub messages: u64,
    /// Bytes of IPFIX messages sent.
    pub bytes: u64,
    /// The most recent send or connect error.
    pub last_error: Option<String>,
}

/// Seconds since the epoch for the message header's export time: 0 before 1970, the largest
/// `u32` after 2106.
fn export_time(now: Nanos) -> u32 {
    u32::try_from(now.div_euclid(NANOS_PER_SEC).max(0)).unwrap_or(u32::MAX)
}

/// After a failed TCP connect, messages fail at once for this long rather than each waiting
/// for its own connect attempt.
const RECONNECT_AFTER_NANOS: Nanos = NANOS_PER_SEC;

/// Encodes records and sends the messages, counting what went and what did not.
pub struct IpfixExporter {
    target: IpfixTarget,
    builder: MessageBuilder,
    link: Link,
}

/// The sending half, apart from the builder so a message can be sent while the builder that
/// produced it is still borrowed.
struct Link {
    transport: Transport,
    stats: ExportStats,
    /// When the last TCP connect failed, while it holds off the next one.
    connect_failed_at: Option<Nanos>,
    counters: Option<Arc<ExportCounters>>,
    /// A template-only message, for a new TCP connection.
    templates: Vec<u8>,
}

impl IpfixExporter {
    /// Resolves the target (and binds the UDP socket); a TCP connection is made by
    /// [`IpfixExporter::connect`] or the first message.
    pub fn open(target: &IpfixTarget, cfg: IpfixConfig) -> anyhow::Result<IpfixExporter> {
        let builder = MessageBuilder::new(cfg)?;
        let transport = if target.tcp {
            Transport::tcp(&target.addr)
        } else {
            Transport::udp(&target.addr)
        }
        .map_err(|e| anyhow::anyhow!("IPFIX collector {target}: {e}"))?;
        let templates = builder.templates_only(&[]);
        Ok(IpfixExporter {
            target: target.clone(),
            builder,
            link: Link {
                transport,
                stats: ExportStats::default(),
                connect_failed_at: None,
                counters: None,
                templates,
            },
        })
    }

    pub fn target(&self) -> &IpfixTarget {
        &self.target
    }

    /// Connects now (TCP), so an unreachable collector is an error before any record is read.
    pub fn connect(&mut self) -> io::Result<()> {
        self.link.transport.connect().map(|_| ())
    }

    /// Adds the record to the message being built, and sends what fills up; `now` is the
    /// export time of a new message and the time of any send.
    pub fn export(&mut self, r: &FlowRecord, now: Nanos) {
        let link = &mut self.link;
        self.builder
            .add(r, export_time(now), &mut |msg: &[u8], flows: u32| {
                link.send(msg, flows, now)
            });
        self.link.publish();
    }

    /// Sends the message being built, if any.
    pub fn flush(&mut self, now: Nanos) {
        let link = &mut self.link;
        self.builder
            .flush(&mut |msg: &[u8], flows: u32| link.send(msg, flows, now));
        self.link.publish();
    }

    pub fn stats(&self) -> &ExportStats {
        &self.link.stats
    }

    pub fn pending_records(&self) -> u32 {
        self.builder.pending_records()
    }
}

impl Link {
    fn send(&mut self, msg: &[u8], flows: u32, now: Nanos) {
        let flows = u64::from(flows);
        match self.try_send(msg, now) {
            Ok(()) => {
                self.stats.records_sent += flows;
                self.stats.messages += 1;
                self.stats.bytes += msg.len() as u64;
            }
            Err(e) => {
                self.stats.records_failed += flows;
                self.stats.last_error = Some(e.to_string());
            }
        }
    }

    fn try_send(&mut self, msg: &[u8], now: Nanos) -> io::Result<()> {
        if self.transport.is_tcp() {
            if let Some(failed) = self.connect_failed_at {
                // A clock that went back does not stretch the wait.
                if (0..RECONNECT_AFTER_NANOS).contains(&now.saturating_sub(failed)) {
                    return Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        self.stats
                            .last_error
                            .clone()
                            .unwrap_or_else(|| "not connected".into()),
                    ));
                }
            }
            match self.transport.connect() {
                Ok(true) => {
                    self.connect_failed_at = None;
                    // A new connection is a new session: the collector needs the templates
                    // before this message's data.
                    if !MessageBuilder::carries_templates(msg) {
                        if let (Some(to), Some(from)) =
                            (self.templates.get_mut(4..12), msg.get(4..12))
                        {
                            to.copy_from_slice(from);
                        }
                        self.transport.send(&self.templates)?;
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    self.connect_failed_at = Some(now);
                    return Err(io::Error::new(e.kind(), format!("connect: {e}")));
                }
            }
        }
        self.transport.send(msg)
    }

    fn publish(&self) {
        if let Some(c) = &self.counters {
            c.sent.store(self.stats.records_sent, Ordering::Relaxed);
            c.send_failed
                .store(self.stats.records_failed, Ordering::Relaxed);
        }
    }
}

/// Live totals of a running exporter, for metrics: updated by the exporter thread after each
/// record and by the tee on each drop.
#[derive(Debug, Default)]
pub struct ExportCounters {
    sent: AtomicU64,
    send_failed: AtomicU64,
    dropped: AtomicU64,
}

impl ExportCounters {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
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
    exporter.link.counters = Some(receiver.counters());
    let mut started: Option<Nanos> = None;
    loop {
        let wait = started.map_or(MAX_HOLD, |s| hold_left(s, clock()));
        match receiver.records.recv_timeout(wait) {
            Ok(r) => {
                let before = exporter.link.stats.messages + exporter.link.stats.records_failed;
                let now = clock();
                exporter.export(&r, now);
                if exporter.link.stats.messages + exporter.link.stats.records_failed != before {
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
    let mut stats = exporter.link.stats;
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

/// The exporter thread of a live capture.
pub struct ExportThread {
    handle: thread::JoinHandle<ExportStats>,
    counters: Arc<ExportCounters>,
}

impl ExportThread {
    /// Starts a thread that [`run`]s the exporter. It ends once every clone of the returned
    /// tee is dropped.
    pub fn spawn(
        exporter: IpfixExporter,
        queue: usize,
        clock: Clock,
    ) -> io::Result<(ExportTee, ExportThread)> {
        let (tee, receiver) = ExportTee::channel(queue);
        let counters = receiver.counters();
        let handle = thread::Builder::new()
            .name("flowkeep-export".into())
            .spawn(move || run(exporter, receiver, clock))?;
        Ok((tee, ExportThread { handle, counters }))
    }

    pub fn counters(&self) -> Arc<ExportCounters> {
        Arc::clone(&self.counters)
    }

    /// Waits for the queue to drain and the last message to go. Every tee must be dropped
    /// first, or this waits for ever.
    pub fn finish(self) -> ExportStats {
        self.handle.join().unwrap_or_else(|_| ExportStats {
            records_failed: self.counters.dropped.load(Ordering::Relaxed),
            last_error: Some("the exporter thread stopped unexpectedly".into()),
            ..ExportStats::default()
        })
    }
}

/// Why a file export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: io::Error,
    },
    #[error("{} already exists (--overwrite replaces it)", path.display())]
    Exists { path: std::path::PathBuf },
    #[error("{}: writing Parquet: {source}", path.display())]
    Parquet {
        path: std::path::PathBuf,
        source: ::parquet::errors::ParquetError,
    },
    #[error("bad export option: {0}")]
    Option(String),
}
