//! Sending records to other systems: IPFIX collectors ([`ipfix`]) and Parquet files for
//! columnar engines ([`parquet`]). Stored records are sent by
//! `flowkeep export`; a capture sends each record as it is written through an [`ExportTee`],
//! which never blocks a worker: a full queue or a gone collector costs exported records
//! (counted), never stored ones.

pub mod ipfix;
pub mod parquet;

use crate::record::FlowRecord;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use ipfix::{IpfixConfig, MessageBuilder, Transport};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Seconds since the epoch for the message header's export time.
fn export_time() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// After a failed TCP connect, messages fail at once for this long rather than each waiting
/// for its own connect attempt.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

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
    retry_at: Option<Instant>,
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
                retry_at: None,
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

    pub fn export(&mut self, r: &FlowRecord) {
        let link = &mut self.link;
        self.builder
            .add(r, export_time(), &mut |msg: &[u8], flows: u32| {
                link.send(msg, flows)
            });
        self.link.publish();
    }

    /// Sends the message being built, if any.
    pub fn flush(&mut self) {
        let link = &mut self.link;
        self.builder
            .flush(&mut |msg: &[u8], flows: u32| link.send(msg, flows));
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
    fn send(&mut self, msg: &[u8], flows: u32) {
        let flows = u64::from(flows);
        match self.try_send(msg) {
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

    fn try_send(&mut self, msg: &[u8]) -> io::Result<()> {
        if self.transport.is_tcp() {
            if let Some(at) = self.retry_at {
                if Instant::now() < at {
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
                    self.retry_at = None;
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
                    self.retry_at = Some(Instant::now() + RECONNECT_AFTER);
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

/// The exporter thread of a live capture.
pub struct ExportThread {
    handle: thread::JoinHandle<ExportStats>,
    counters: Arc<ExportCounters>,
}

/// Records waiting for the exporter thread: a few seconds of a busy link.
pub const DEFAULT_QUEUE: usize = 65_536;

/// A message in progress is sent at the latest this long after it was started, so a quiet
/// link's records reach the collector promptly.
const MAX_HOLD: Duration = Duration::from_secs(1);

impl ExportThread {
    /// Starts the exporter thread. It ends once every clone of the returned tee is dropped.
    pub fn spawn(
        mut exporter: IpfixExporter,
        queue: usize,
    ) -> io::Result<(ExportTee, ExportThread)> {
        let (tx, rx) = bounded::<FlowRecord>(queue.max(1));
        let counters = Arc::new(ExportCounters::default());
        exporter.link.counters = Some(Arc::clone(&counters));
        let handle = thread::Builder::new()
            .name("flowkeep-export".into())
            .spawn(move || run_exporter(exporter, rx))?;
        Ok((
            ExportTee {
                tx,
                counters: Arc::clone(&counters),
            },
            ExportThread { handle, counters },
        ))
    }

    pub fn counters(&self) -> Arc<ExportCounters> {
        Arc::clone(&self.counters)
    }

    /// Waits for the queue to drain and the last message to go. Every tee must be dropped
    /// first, or this waits for ever.
    pub fn finish(self) -> ExportStats {
        let mut stats = self.handle.join().unwrap_or_else(|_| ExportStats {
            last_error: Some("the exporter thread stopped unexpectedly".into()),
            ..ExportStats::default()
        });
        stats.records_failed += self.counters.dropped.load(Ordering::Relaxed);
        stats
    }
}

fn run_exporter(mut exporter: IpfixExporter, rx: Receiver<FlowRecord>) -> ExportStats {
    let mut started: Option<Instant> = None;
    loop {
        let wait = started.map_or(MAX_HOLD, |s| MAX_HOLD.saturating_sub(s.elapsed()));
        match rx.recv_timeout(wait) {
            Ok(r) => {
                let before = exporter.link.stats.messages + exporter.link.stats.records_failed;
                exporter.export(&r);
                if exporter.link.stats.messages + exporter.link.stats.records_failed != before {
                    started = None;
                }
                if started.is_none() && exporter.pending_records() > 0 {
                    started = Some(Instant::now());
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                exporter.flush();
                started = None;
            }
            Err(RecvTimeoutError::Disconnected) => {
                exporter.flush();
                break;
            }
        }
    }
    exporter.link.stats
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
