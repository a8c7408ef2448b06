//! `--metrics ADDR`: the pipeline's running totals in Prometheus text format over plain HTTP,
//! from one small thread (std only: a scrape every few seconds needs no web framework).

use crate::pipeline::metrics::{Metrics, Snapshot};
use crate::store::Store;
use crate::time::{Nanos, NANOS_PER_SEC};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A request larger than this is not a scrape.
const MAX_REQUEST: usize = 8192;
/// A client that stalls cannot hold the (single) serving thread longer than this.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// The store's size and oldest record come from reading every segment's footer: done at most
/// this often, however often it is scraped.
const STORE_REFRESH: Duration = Duration::from_secs(5);

/// What the store listing says, as of `at`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreUsage {
    /// Bytes of the sealed segment files.
    pub bytes: u64,
    /// `first` of the oldest record in a readable segment; `None` for an empty store.
    pub oldest_first: Option<Nanos>,
}

impl StoreUsage {
    pub fn read(dir: &Path) -> StoreUsage {
        let Ok(segs) = Store::open(dir).and_then(|s| s.segments()) else {
            return StoreUsage::default();
        };
        StoreUsage {
            bytes: segs.iter().map(|s| s.bytes).sum(),
            oldest_first: segs
                .iter()
                .filter(|s| s.error.is_none() && s.records > 0)
                .map(|s| s.first)
                .min(),
        }
    }
}

/// The last reading and when it was taken.
struct StoreCache {
    dir: PathBuf,
    usage: StoreUsage,
    at: Option<Instant>,
}

impl StoreCache {
    fn get(&mut self) -> StoreUsage {
        if self.at.is_none_or(|t| t.elapsed() >= STORE_REFRESH) {
            self.usage = StoreUsage::read(&self.dir);
            self.at = Some(Instant::now());
        }
        self.usage
    }
}

/// Binds now (before privileges are dropped, so any port the operator chose works); serving
/// starts with `serve`.
pub fn bind(addr: &str) -> Result<TcpListener> {
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("--metrics {addr}: expected IP:PORT, e.g. 127.0.0.1:9187"))?;
    TcpListener::bind(addr).with_context(|| format!("--metrics: cannot listen on {addr}"))
}

/// Answers scrapes on its own thread for the rest of the process's life. `interface` labels
/// the capture counters (several interfaces: their names joined with commas).
pub fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    interface: String,
    store: PathBuf,
) -> Result<()> {
    let mut cache = StoreCache {
        dir: store,
        usage: StoreUsage::default(),
        at: None,
    };
    std::thread::Builder::new()
        .name("flowkeep-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                // One client's failure (a reset, a timeout) is its own business.
                let _ = answer(stream, &metrics, &interface, &mut cache);
            }
        })
        .context("starting the metrics thread")?;
    Ok(())
}

fn answer(
    mut stream: TcpStream,
    metrics: &Metrics,
    interface: &str,
    cache: &mut StoreCache,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut req = [0u8; MAX_REQUEST];
    let mut len = 0;
    while len < req.len() && !req[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut req[len..])? {
            0 => break,
            n => len += n,
        }
    }
    let head = String::from_utf8_lossy(&req[..len]);
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, body) = match (method, path) {
        ("GET", "/metrics" | "/") => (
            "200 OK",
            render(
                &metrics.snapshot(),
                interface,
                &cache.get(),
                super::wall_clock(),
            ),
        ),
        ("GET", _) => ("404 Not Found", "not found; try /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "GET only\n".to_string()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// Prometheus text exposition format 0.0.4. `now` is the wall clock the oldest record's age is
/// measured against.
pub fn render(s: &Snapshot, interface: &str, store: &StoreUsage, now: Nanos) -> String {
    let iface = interface.replace('\\', "\\\\").replace('"', "\\\"");
    let w = &s.workers;
    let rows: [(&str, &str, &str, u64, bool); 15] = [
        (
            "flowkeep_frames_total",
            "counter",
            "Frames read from the interface.",
            s.frames,
            true,
        ),
        (
            "flowkeep_kernel_drops_total",
            "counter",
            "Frames the kernel dropped (ring full), per libpcap.",
            s.kernel_drops,
            true,
        ),
        (
            "flowkeep_interface_drops_total",
            "counter",
            "Frames the interface dropped, per libpcap.",
            s.interface_drops,
            true,
        ),
        (
            "flowkeep_packets_total",
            "counter",
            "IP packets counted into flows.",
            w.packets,
            false,
        ),
        (
            "flowkeep_bytes_total",
            "counter",
            "IP-layer bytes counted into flows.",
            w.bytes,
            false,
        ),
        (
            "flowkeep_non_ip_frames_total",
            "counter",
            "Frames that carried no IP packet.",
            w.non_ip,
            false,
        ),
        (
            "flowkeep_malformed_frames_total",
            "counter",
            "Frames whose headers could not be decoded.",
            w.malformed,
            false,
        ),
        (
            "flowkeep_active_flows",
            "gauge",
            "Flows in memory, not yet written.",
            w.active_flows,
            false,
        ),
        (
            "flowkeep_flow_evictions_total",
            "counter",
            "Flow records written early because the flow table was full (--max-flows).",
            w.evictions,
            false,
        ),
        (
            "flowkeep_records_written_total",
            "counter",
            "Flow records written to the store.",
            w.records_written,
            false,
        ),
        (
            "flowkeep_records_not_stored_total",
            "counter",
            "Flow records the store could not take (see the log).",
            w.records_not_stored,
            false,
        ),
        (
            "flowkeep_segments_total",
            "counter",
            "Segment files sealed.",
            w.segments,
            false,
        ),
        (
            "flowkeep_store_bytes_written_total",
            "counter",
            "Bytes written to segment files.",
            w.store_bytes,
            false,
        ),
        ("flowkeep_up", "gauge", "1 while capturing.", 1, false),
        (
            "flowkeep_store_bytes",
            "gauge",
            "Bytes of the store's sealed segment files (from its listing, at most 5 s old).",
            store.bytes,
            false,
        ),
    ];
    let mut out = String::with_capacity(2048);
    for (name, kind, help, value, per_interface) in rows {
        let labels = if per_interface {
            format!("{{interface=\"{iface}\"}}")
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{labels} {value}\n"
        );
    }
    if let Some(e) = &s.export {
        for (name, help, value) in [
            (
                "flowkeep_export_records_sent_total",
                "Flow records sent to the IPFIX collector (--export).",
                e.sent,
            ),
            (
                "flowkeep_export_records_failed_total",
                "Flow records not exported: send errors, or the export queue was full. They are in the store.",
                e.failed,
            ),
        ] {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            );
        }
    }
    // No sample for an empty store: there is no oldest record, and 0 would say there is one
    // just written.
    let name = "flowkeep_oldest_record_age_seconds";
    let _ = write!(
        out,
        "# HELP {name} Age of the oldest stored record (its first packet), from the store listing.\n# TYPE {name} gauge\n"
    );
    if let Some(first) = store.oldest_first {
        let age = now.saturating_sub(first).max(0) / NANOS_PER_SEC;
        let _ = writeln!(out, "{name} {age}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::metrics::WorkerTotals;

    #[test]
    fn renders_every_metric_once_with_help_and_type() {
        let s = Snapshot {
            frames: 10,
            kernel_drops: 2,
            interface_drops: 0,
            workers: WorkerTotals {
                packets: 7,
                bytes: 700,
                active_flows: 3,
                evictions: 4,
                ..WorkerTotals::default()
            },
            export: None,
        };
        let store = StoreUsage {
            bytes: 123_456,
            oldest_first: Some(1_000 * NANOS_PER_SEC),
        };
        let text = render(
            &s,
            "eth\"1",
            &store,
            3_600 * NANOS_PER_SEC + 1_000 * NANOS_PER_SEC,
        );
        assert!(
            text.contains("flowkeep_frames_total{interface=\"eth\\\"1\"} 10\n"),
            "{text}"
        );
        assert!(text.contains("flowkeep_kernel_drops_total{interface=\"eth\\\"1\"} 2\n"));
        assert!(text.contains("\nflowkeep_packets_total 7\n"));
        assert!(text.contains("\nflowkeep_bytes_total 700\n"));
        assert!(text.contains("# TYPE flowkeep_active_flows gauge\nflowkeep_active_flows 3\n"));
        assert!(text.contains(
            "# TYPE flowkeep_flow_evictions_total counter\nflowkeep_flow_evictions_total 4\n"
        ));
        assert!(text.contains("# TYPE flowkeep_store_bytes gauge\nflowkeep_store_bytes 123456\n"));
        assert!(text.contains(
            "# TYPE flowkeep_oldest_record_age_seconds gauge\nflowkeep_oldest_record_age_seconds 3600\n"
        ));
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples, 16);
        assert!(!text.contains("export"));
        assert_eq!(text.lines().filter(|l| l.starts_with("# HELP")).count(), 16);
        // An empty store has no oldest record: no sample rather than a misleading 0.
        let empty = render(&s, "lo", &StoreUsage::default(), 0);
        assert!(!empty.contains("\nflowkeep_oldest_record_age_seconds "));
        assert!(empty.contains("\nflowkeep_store_bytes 0\n"));
    }

    #[test]
    fn store_usage_comes_from_the_segments() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(StoreUsage::read(d.path()), StoreUsage::default());
        let mut w =
            crate::store::StoreWriter::create(crate::store::WriterConfig::new(d.path())).unwrap();
        let recs = [crate::testing::sample(5), crate::testing::sample(2)];
        for r in &recs {
            w.append(r).unwrap();
        }
        w.finish().unwrap();
        let u = StoreUsage::read(d.path());
        let segs = Store::open(d.path()).unwrap().segments().unwrap();
        assert!(u.bytes > 0);
        assert_eq!(u.bytes, segs.iter().map(|s| s.bytes).sum::<u64>());
        assert_eq!(u.oldest_first, Some(recs[1].first));
    }

    #[test]
    fn export_counters_appear_when_exporting() {
        let s = Snapshot {
            export: Some(crate::pipeline::metrics::ExportTotals { sent: 5, failed: 2 }),
            ..Snapshot::default()
        };
        let text = render(&s, "lo", &StoreUsage::default(), 0);
        assert!(
            text.contains("\nflowkeep_export_records_sent_total 5\n"),
            "{text}"
        );
        assert!(text.contains(
            "# TYPE flowkeep_export_records_failed_total counter\nflowkeep_export_records_failed_total 2\n"
        ));
    }

    #[test]
    fn a_bad_address_is_refused_with_an_example() {
        let err = bind("localhost").unwrap_err().to_string();
        assert!(err.contains("127.0.0.1:9187"), "{err}");
    }

    #[test]
    fn serves_metrics_over_http_and_404_elsewhere() {
        let listener = bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let m = Arc::new(Metrics::new(1));
        m.publish_reader(42, 0, 0);
        let store = tempfile::tempdir().unwrap();
        serve(
            listener,
            Arc::clone(&m),
            "lo".into(),
            store.path().to_path_buf(),
        )
        .unwrap();
        let get = |path: &str| {
            let mut s = TcpStream::connect(addr).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let ok = get("/metrics");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("flowkeep_frames_total{interface=\"lo\"} 42\n"),
            "{ok}"
        );
        // Not a store (no marker): size 0 and no oldest record, not an error page.
        assert!(ok.contains("\nflowkeep_store_bytes 0\n"), "{ok}");
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
    }
}
