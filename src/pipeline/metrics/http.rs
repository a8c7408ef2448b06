//! `--metrics ADDR`: the running totals over plain HTTP. One thread serves every client at once
//! from a `poll(2)` loop over non-blocking sockets (std and rustix only: a scrape every few
//! seconds needs no web framework, and no thread per client): a client that sends slowly, or
//! not at all, holds nothing but its own socket, and each gets a short *total* deadline.

use super::render::{render, StoreUsage};
use super::Metrics;
use crate::time::{Clock, Nanos, NANOS_PER_SEC};
use anyhow::{Context, Result};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A request larger than this is not a scrape.
const MAX_REQUEST: usize = 8192;
/// From accept to the last byte of the answer: a scrape takes milliseconds, so a client still
/// there after this is stalled or hostile (one byte every second would otherwise hold a
/// connection for ever) and is closed.
const CLIENT_DEADLINE: Nanos = 2 * NANOS_PER_SEC;
/// Connections served at once. At the limit the oldest is closed for the newcomer: refusing
/// newcomers would let a few hundred idle connections, renewed every deadline, lock every
/// scrape out, while closing the oldest costs a real scrape (milliseconds old) nothing.
const MAX_CLIENTS: usize = 256;
/// How long one `poll` waits: how soon deadlines and a stop are noticed.
const TICK: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 100_000_000,
};
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
        ep.listener
            .set_nonblocking(true)
            .context("--metrics: a non-blocking listener")?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let mut server = Serving {
            listener: ep.listener,
            clients: Vec::new(),
            metrics,
            interface: ep.interface,
            cache: StoreCache {
                dir: ep.store,
                usage: StoreUsage::default(),
                at: None,
            },
            clock,
            elapsed: Elapsed::new(clock()),
        };
        let thread = std::thread::Builder::new()
            .name("flowkeep-metrics".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    server.turn();
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

    /// Ends the thread: it looks at the flag at least every [`TICK`], then closes the listener
    /// and every connection it still holds.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Time that has passed by the clock handed in, which is the wall clock: a step back adds
/// nothing (a deadline is never pushed out by it), a step forward only closes clients early.
struct Elapsed {
    last: Nanos,
    total: Nanos,
}

impl Elapsed {
    fn new(now: Nanos) -> Elapsed {
        Elapsed {
            last: now,
            total: 0,
        }
    }

    fn advance(&mut self, now: Nanos) -> Nanos {
        self.total = self
            .total
            .saturating_add(now.saturating_sub(self.last).max(0));
        self.last = now;
        self.total
    }
}

/// One connection: reading its request, then writing its answer.
struct Client {
    stream: TcpStream,
    /// [`Elapsed`] time at accept.
    since: Nanos,
    request: Vec<u8>,
    /// The answer and how much of it is written.
    answer: Option<(Vec<u8>, usize)>,
}

/// What a client's turn left.
#[derive(PartialEq)]
enum Next {
    Wait,
    Close,
}

/// The serving loop's state, owned by its thread.
struct Serving {
    listener: TcpListener,
    /// Oldest first.
    clients: Vec<Client>,
    metrics: Arc<Metrics>,
    interface: String,
    cache: StoreCache,
    clock: Clock,
    elapsed: Elapsed,
}

impl Serving {
    /// Waits up to a tick for any socket, serves what is ready, closes what is done or past its
    /// deadline, and accepts newcomers.
    fn turn(&mut self) {
        let ready = self.wait();
        let now = self.elapsed.advance((self.clock)());
        let mut i = 0;
        self.clients.retain_mut(|c| {
            let flags = ready.get(1 + i).copied().unwrap_or(PollFlags::empty());
            i += 1;
            let next = if flags.is_empty() {
                Next::Wait
            } else {
                serve(
                    c,
                    &self.metrics,
                    &self.interface,
                    &mut self.cache,
                    self.clock,
                )
            };
            next == Next::Wait && now.saturating_sub(c.since) < CLIENT_DEADLINE
        });
        if ready.first().is_some_and(|f| !f.is_empty()) {
            self.accept(now);
        }
    }

    /// The readiness of the listener, then of each client in order.
    fn wait(&self) -> Vec<PollFlags> {
        let mut fds = Vec::with_capacity(1 + self.clients.len());
        fds.push(PollFd::new(&self.listener, PollFlags::IN));
        for c in &self.clients {
            let want = if c.answer.is_some() {
                PollFlags::OUT
            } else {
                PollFlags::IN
            };
            fds.push(PollFd::new(&c.stream, want));
        }
        // An interrupted or failed wait is a tick with nothing ready.
        match poll(&mut fds, Some(&TICK)) {
            Ok(_) => fds.iter().map(PollFd::revents).collect(),
            Err(_) => Vec::new(),
        }
    }

    fn accept(&mut self, now: Nanos) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if self.clients.len() >= MAX_CLIENTS {
                        self.clients.remove(0);
                    }
                    self.clients.push(Client {
                        stream,
                        since: now,
                        request: Vec::new(),
                        answer: None,
                    });
                }
                // Would block: none left. Anything else (a reset before accept, out of
                // descriptors) is the next tick's business.
                Err(_) => return,
            }
        }
    }
}

/// Reads what the client has sent; once the request is whole, writes what the socket takes
/// of the answer.
fn serve(
    c: &mut Client,
    metrics: &Metrics,
    interface: &str,
    cache: &mut StoreCache,
    clock: Clock,
) -> Next {
    if c.answer.is_none() {
        match read_request(c) {
            Ok(true) => {
                let text = answer(&c.request, metrics, interface, cache, clock);
                c.answer = Some((text.into_bytes(), 0));
            }
            Ok(false) => return Next::Wait,
            Err(_) => return Next::Close,
        }
    }
    let Some((text, written)) = &mut c.answer else {
        return Next::Close;
    };
    while *written < text.len() {
        match c.stream.write(&text[*written..]) {
            Ok(0) => return Next::Close,
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Next::Close,
        }
    }
    Next::Close
}

/// True once the request is complete: its head has ended, it is as long as a request may be,
/// or the client has stopped sending.
fn read_request(c: &mut Client) -> io::Result<bool> {
    let mut buf = [0u8; 1024];
    loop {
        if c.request.len() >= MAX_REQUEST || c.request.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(true);
        }
        let room = (MAX_REQUEST - c.request.len()).min(buf.len());
        match c.stream.read(&mut buf[..room]) {
            Ok(0) => return Ok(true),
            Ok(n) => c.request.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The whole HTTP answer to a request.
fn answer(
    request: &[u8],
    metrics: &Metrics,
    interface: &str,
    cache: &mut StoreCache,
    clock: Clock,
) -> String {
    let head = String::from_utf8_lossy(request);
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
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        m.publish_reader(
            0,
            &super::super::ReaderTotals {
                frames: 42,
                ..Default::default()
            },
        );
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

    /// A started server over an empty directory, with 42 frames counted.
    fn serve_with(clock: Clock) -> (MetricsServer, tempfile::TempDir) {
        let m = Arc::new(Metrics::new(1));
        m.publish_reader(
            0,
            &super::super::ReaderTotals {
                frames: 42,
                ..Default::default()
            },
        );
        let store = tempfile::tempdir().unwrap();
        let ep = Endpoint {
            listener: bind("127.0.0.1:0").unwrap(),
            interface: "lo".into(),
            store: store.path().to_path_buf(),
        };
        (MetricsServer::start(ep, m, clock).unwrap(), store)
    }

    /// A scrape, answered within a second or failed.
    fn scrape(addr: SocketAddr) -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        s.set_write_timeout(Some(Duration::from_secs(1)))?;
        write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    /// True when the server has closed `s` without answering (bounded wait).
    fn closed_unanswered(s: &mut TcpStream) -> bool {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(n) => n == 0,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }

    #[test]
    fn scrapes_are_answered_beside_200_idle_clients_and_a_slow_loris_then_it_stops() {
        let (server, _store) = serve_with(fixed_clock);
        let addr = server.addr();
        let mut idle: Vec<TcpStream> = (0..200)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        // The slow client sends a request a byte every 1.5 s and says when it has sent two.
        let done = Arc::new(AtomicBool::new(false));
        let (sent, dribbled) = std::sync::mpsc::channel();
        let loris = {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                for (n, b) in b"GET /metrics HTTP/1.1\r\n".iter().enumerate() {
                    if done.load(Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
                        return s;
                    }
                    if n == 1 {
                        let _ = sent.send(());
                    }
                    std::thread::sleep(Duration::from_millis(1500));
                }
                s
            })
        };
        dribbled.recv().unwrap();
        let asked = std::time::Instant::now();
        let out = scrape(addr).expect("a scrape answered within a second");
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{:?}",
            asked.elapsed()
        );
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(
            out.contains("flowkeep_frames_total{interface=\"lo\"} 42\n"),
            "{out}"
        );
        // Still serving everyone: a second scrape is as quick.
        assert!(scrape(addr).unwrap().starts_with("HTTP/1.1 200 OK\r\n"));
        server.stop();
        done.store(true, Ordering::Relaxed);
        // Stopped: the clients it held are closed, unanswered, and nothing listens.
        assert!(closed_unanswered(&mut idle[0]));
        assert!(closed_unanswered(&mut idle[199]));
        let mut slow = loris.join().unwrap();
        assert!(closed_unanswered(&mut slow));
        assert!(TcpStream::connect(addr).is_err());
    }

    static STEPPED: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

    fn stepped_clock() -> Nanos {
        STEPPED.load(Ordering::Relaxed)
    }

    #[test]
    fn a_client_past_its_deadline_is_closed_and_a_clock_step_back_extends_no_deadline() {
        STEPPED.store(1_000 * NANOS_PER_SEC, Ordering::Relaxed);
        let (server, _store) = serve_with(stepped_clock);
        let addr = server.addr();
        let mut stalled = TcpStream::connect(addr).unwrap();
        stalled.write_all(b"GET /met").unwrap();
        // Answered, so the stalled client (connected first) has been accepted too.
        assert!(scrape(addr).unwrap().starts_with("HTTP/1.1 200 OK"));
        let mut late = TcpStream::connect(addr).unwrap();
        late.write_all(b"GET /met").unwrap();
        assert!(scrape(addr).unwrap().starts_with("HTTP/1.1 200 OK"));
        // Back an hour, then forward one deadline: both are past it by the time that passed.
        STEPPED.store(
            1_000 * NANOS_PER_SEC - 3_600 * NANOS_PER_SEC,
            Ordering::Relaxed,
        );
        assert!(scrape(addr).unwrap().starts_with("HTTP/1.1 200 OK"));
        STEPPED.fetch_add(CLIENT_DEADLINE, Ordering::Relaxed);
        assert!(closed_unanswered(&mut stalled));
        assert!(closed_unanswered(&mut late));
        // A newcomer after the step is served.
        assert!(scrape(addr).unwrap().starts_with("HTTP/1.1 200 OK"));
        server.stop();
    }

    #[test]
    fn at_the_connection_limit_the_oldest_client_makes_room() {
        let (server, _store) = serve_with(fixed_clock);
        let addr = server.addr();
        let mut idle: Vec<TcpStream> = (0..MAX_CLIENTS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let out = scrape(addr).expect("a scrape at the limit is served");
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        // The scrape took the oldest's place; the newest idle one is still held.
        assert!(closed_unanswered(&mut idle[0]));
        idle[MAX_CLIENTS - 1]
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 8];
        let held = idle[MAX_CLIENTS - 1].read(&mut buf);
        assert!(
            matches!(&held, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "{held:?}"
        );
        server.stop();
    }
}
