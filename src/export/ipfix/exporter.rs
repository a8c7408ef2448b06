//! An IPFIX exporter: a message builder and a transport, and the count of what was sent.

use super::message::{IpfixConfig, MessageBuilder};
use super::transport::Transport;
use crate::export::{ExportCounters, ExportStats};
use crate::record::FlowRecord;
use crate::time::{Nanos, NANOS_PER_SEC};
use std::fmt;
use std::io;
use std::sync::Arc;

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
    /// SHA-256 over the messages sent, when asked for ([`IpfixExporter::hash_sent`]).
    sent_hash: Option<sha2::Sha256>,
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
                sent_hash: None,
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

    /// From now on, keeps the SHA-256 over the bytes of every message sent (a message that
    /// failed is not counted; nor is the template message repeated on a TCP reconnect), for
    /// `flowkeep export`'s access entry.
    pub fn hash_sent(&mut self) {
        use sha2::Digest;
        self.link.sent_hash.get_or_insert_with(sha2::Sha256::new);
    }

    /// The SHA-256 (lowercase hex) of the messages sent since [`IpfixExporter::hash_sent`].
    pub fn sent_sha256(&self) -> Option<String> {
        use sha2::Digest;
        let h = self.link.sent_hash.clone()?.finalize();
        Some(h.iter().map(|b| format!("{b:02x}")).collect())
    }

    // Inline: export::run asks after every record, from another module.
    #[inline]
    pub fn stats(&self) -> &ExportStats {
        &self.link.stats
    }

    #[inline]
    pub fn pending_records(&self) -> u32 {
        self.builder.pending_records()
    }

    /// From now on, the live totals that metrics read follow this exporter's stats.
    pub(in crate::export) fn publish_to(&mut self, counters: Arc<ExportCounters>) {
        self.link.counters = Some(counters);
    }

    pub(in crate::export) fn into_stats(self) -> ExportStats {
        self.link.stats
    }

    /// An exporter to a UDP socket of the test's own, and that socket.
    #[cfg(test)]
    pub(in crate::export) fn to_local_collector() -> (IpfixExporter, std::net::UdpSocket) {
        let collector = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = IpfixTarget {
            tcp: false,
            addr: collector.local_addr().unwrap().to_string(),
        };
        let exporter = IpfixExporter::open(&target, IpfixConfig::udp()).unwrap();
        (exporter, collector)
    }
}

impl Link {
    fn send(&mut self, msg: &[u8], flows: u32, now: Nanos) {
        let flows = u64::from(flows);
        match self.try_send(msg, now) {
            Ok(()) => {
                if let Some(h) = &mut self.sent_hash {
                    sha2::Digest::update(h, msg);
                }
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
            c.publish(&self.stats);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample;
    use std::net::TcpListener;

    const T: Nanos = 1_700_000_000 * NANOS_PER_SEC;

    #[test]
    fn the_export_time_is_the_callers() {
        let (mut e, collector) = IpfixExporter::to_local_collector();
        e.export(&sample(0), T + NANOS_PER_SEC / 2);
        e.flush(T + 5 * NANOS_PER_SEC);
        let mut buf = [0u8; 2048];
        let n = collector.recv(&mut buf).unwrap();
        assert!(n > 16);
        assert_eq!(
            buf[4..8],
            1_700_000_000u32.to_be_bytes(),
            "when it was started"
        );
        assert_eq!(e.stats().records_sent, 1);
    }

    #[test]
    fn the_hash_of_what_was_sent_is_of_the_messages_received() {
        use sha2::Digest;
        let (mut e, collector) = IpfixExporter::to_local_collector();
        assert_eq!(e.sent_sha256(), None);
        e.hash_sent();
        e.export(&sample(0), T);
        e.flush(T);
        let mut buf = [0u8; 2048];
        let n = collector.recv(&mut buf).unwrap();
        let want: String = sha2::Sha256::digest(&buf[..n])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(e.sent_sha256(), Some(want));
    }

    #[test]
    fn export_time_is_whole_seconds_within_u32() {
        assert_eq!(export_time(T + NANOS_PER_SEC - 1), 1_700_000_000);
        assert_eq!(export_time(-1), 0);
        assert_eq!(export_time(Nanos::MAX), u32::MAX);
    }

    /// After a failed connect, messages fail without a connect attempt for a second of the
    /// caller's time, and a clock that goes back ends the wait.
    #[test]
    fn a_failed_tcp_connect_holds_off_the_next_for_a_second() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let target = IpfixTarget {
            tcp: true,
            addr: format!("127.0.0.1:{port}"),
        };
        let mut e = IpfixExporter::open(&target, IpfixConfig::tcp()).unwrap();
        let send = |e: &mut IpfixExporter, i: u64, now: Nanos| {
            e.export(&sample(i), now);
            e.flush(now);
            (e.stats().records_sent, e.stats().records_failed)
        };
        assert_eq!(send(&mut e, 0, T), (0, 1), "nobody listens");
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        assert_eq!(send(&mut e, 1, T + NANOS_PER_SEC - 1), (0, 2), "held off");
        assert!(
            listener.accept().is_err(),
            "no connect attempt while held off"
        );
        assert_eq!(send(&mut e, 2, T + NANOS_PER_SEC), (1, 2), "tried again");
        assert!(listener.accept().is_ok());

        drop(listener);
        let mut e = IpfixExporter::open(&target, IpfixConfig::tcp()).unwrap();
        assert_eq!(send(&mut e, 0, T), (0, 1));
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        assert_eq!(send(&mut e, 1, T - 1), (1, 1), "the clock went back");
        drop(listener);
    }
}
