//! `--metrics ADDR`: the running totals over plain HTTP, from one small thread (std only: a
//! scrape every few seconds needs no web framework).

use super::render::{render, StoreUsage};
use super::Metrics;
use crate::time::{Clock, Nanos, NANOS_PER_SEC};
use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A request larger than this is not a scrape.
const MAX_REQUEST: usize = 8192;
/// A client that stalls cannot hold the (single) serving thread longer than this.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// The store's size and oldest record come from reading every segment's footer: done at most
/// this often, however often it is scraped.
const STORE_REFRESH: Nanos = 5 * NANOS_PER_SEC;

/// The last reading and when it was taken.
struct StoreCache {
    dir: PathBuf,
    usage: StoreUsage,
    at: Option<Nanos>,
}

impl StoreCache {
    fn get(&mut self, now: Nanos) -> StoreUsage {
        if self
            .at
            .is_none_or(|t| now.saturating_sub(t) >= STORE_REFRESH || now < t)
        {
            self.usage = StoreUsage::read(&self.dir);
            self.at = Some(now);
        }
        self.usage
    }
}

/// Binds now (before privileges are dropped, so any port the operator chose works); serving
/// starts with [`MetricsServer::start`].
pub fn bind(addr: &str) -> Result<TcpListener> {
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("--metrics {addr}: expected IP:PORT, e.g. 127.0.0.1:9187"))?;
    TcpListener::bind(addr).with_context(|| format!("--metrics: cannot listen on {addr}"))
}

/// What the endpoint serves, besides the counters.
pub struct Endpoint {
    pub listener: TcpListener,
    /// Labels the capture counters (several interfaces: their names joined with commas).
    pub interface: String,
    /// The store whose size and oldest record are served.
    pub store: PathBuf,
}

/// The serving thread; [`MetricsServer::stop`] ends it.
pub(crate) struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    pub(crate) fn start(ep: Endpoint, metrics: Arc<Metrics>, clock: Clock) -> Result<Self> {
        let addr = ep
            .listener
            .local_addr()
            .context("--metrics: the bound address")?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let mut cache = StoreCache {
            dir: ep.store,
            usage: StoreUsage::default(),
            at: None,
        };
        let thread = std::thread::Builder::new()
            .name("flowkeep-metrics".into())
            .spawn(move || {
                for stream in ep.listener.incoming().flatten() {
                    if stopping.load(Ordering::Relaxed) {
                        return;
                    }
                    // One client's failure (a reset, a timeout) is its own business.
                    let _ = answer(stream, &metrics, &ep.interface, &mut cache, clock);
                }
            })
            .context("starting the metrics thread")?;
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Ends the thread: it blocks in `accept`, so it is woken by a connection of our own. If
    /// that cannot be made (the address is no longer reachable), the thread is left to end
    /// with the process rather than waited for.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        if TcpStream::connect_timeout(&wake, CLIENT_TIMEOUT).is_ok() {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn answer(
    mut stream: TcpStream,
    metrics: &Metrics,
    interface: &str,
    cache: &mut StoreCache,
    clock: Clock,
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
        ("GET", "/metrics" | "/") => {
            let now = clock();
            let usage = cache.get(now);
            (
                "200 OK",
                render(&metrics.snapshot(), interface, &usage, now),
            )
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_address_is_refused_with_an_example() {
        let err = bind("localhost").unwrap_err().to_string();
        assert!(err.contains("127.0.0.1:9187"), "{err}");
    }

    fn fixed_clock() -> Nanos {
        1_000 * NANOS_PER_SEC
    }

    #[test]
    fn serves_metrics_over_http_and_404_elsewhere_then_stops() {
        let listener = bind("127.0.0.1:0").unwrap();
        let m = Arc::new(Metrics::new(1));
        m.publish_reader(42, 0, 0);
        let store = tempfile::tempdir().unwrap();
        let ep = Endpoint {
            listener,
            interface: "lo".into(),
            store: store.path().to_path_buf(),
        };
        let server = MetricsServer::start(ep, Arc::clone(&m), fixed_clock).unwrap();
        let addr = server.addr();
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
        server.stop();
        // Stopped: nothing answers any more.
        let refused = TcpStream::connect(addr).map(|mut s| {
            let _ = write!(s, "GET /metrics HTTP/1.1\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        });
        assert!(refused.map_or(true, |out| out.is_empty()));
    }
}
