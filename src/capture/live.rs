//! Live capture from a network interface through libpcap.

use super::{CaptureError, LinkType, Next, Packet, PacketSource, PacketUse, SourceStats};
use crate::time::{Nanos, NANOS_PER_SEC};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, OwnedFd};

/// How to open an interface. Defaults suit a flow collector: short snap length (headers only),
/// promiscuous, a large kernel buffer so bursts are not dropped, and a read timeout short enough
/// for the caller to notice a stop request or flush idle flows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveConfig {
    pub interface: String,
    /// Bytes kept per packet.
    pub snaplen: u32,
    pub promisc: bool,
    /// Kernel capture buffer size.
    pub buffer_bytes: u32,
    /// BPF filter expression (tcpdump syntax).
    pub filter: Option<String>,
    /// Read timeout: `next_packet` returns `Idle` after this long without packets.
    pub timeout_ms: i32,
    /// In a [`LiveSet`], open a second handle for DHCP when `snaplen` would cut its messages
    /// (below [`DHCP_WHOLE_FROM`]): see [`LiveConfig::dhcp_handle_config`].
    pub dhcp_handle: bool,
}

/// Snap length of the DHCP handle: a whole Ethernet frame at a 1500-byte MTU, with VLAN tags.
pub const DHCP_SNAPLEN: u32 = 2048;
/// From this snap length on, the main handle keeps DHCP messages whole (they are at most 576
/// bytes unless a client announces more, and rarely longer than a few hundred): no DHCP handle.
pub const DHCP_WHOLE_FROM: u32 = 1500;
/// Kernel ring of the DHCP handle: DHCP is a few packets per client per lease time, so a small
/// ring absorbs any burst of it.
pub const DHCP_BUFFER: u32 = 2 << 20;
/// What the DHCP handle captures: DHCPv4 and DHCPv6 ports, as `decode::dhcp` reads them.
/// Untagged or 802.1Q-tagged (mirror ports often carry tags): `vlan` shifts the offsets of what
/// follows it, so the tagged alternative comes last.
pub const DHCP_FILTER: &str = "(udp and (port 67 or port 68 or port 546 or port 547)) or \
(vlan and udp and (port 67 or port 68 or port 546 or port 547))";

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            interface: String::new(),
            snaplen: 128,
            promisc: true,
            buffer_bytes: 256 << 20,
            filter: None,
            timeout_ms: 200,
            dhcp_handle: true,
        }
    }
}

/// Bytes a netfilter log device gets on top of the snap length: its frames start with the
/// NFLOG TLVs (interfaces, hardware header, uid/gid, prefix, ...: about 130 bytes from an
/// iptables rule), which would otherwise leave no room for the IP and transport headers.
pub const NFLOG_TLV_ROOM: u32 = 512;

/// libpcap's Linux netfilter log devices: `nflog` (group 0) and `nflog:GROUP[,GROUP...]`.
pub fn is_nflog_device(interface: &str) -> bool {
    interface
        .strip_prefix("nflog")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
}

impl LiveConfig {
    /// The DHCP handle's configuration for this interface, or `None` when none is needed (the
    /// snap length keeps DHCP whole), wanted, or possible: a netfilter log group has one
    /// listener, so a second handle on `nflog:N` is refused ("Can't listen on group index").
    /// It sees only DHCP ports, of what the operator's filter lets through, in whole frames.
    pub fn dhcp_handle_config(&self) -> Option<LiveConfig> {
        if !self.dhcp_handle || self.snaplen >= DHCP_WHOLE_FROM || is_nflog_device(&self.interface)
        {
            return None;
        }
        let filter = match &self.filter {
            Some(f) if !f.trim().is_empty() => format!("({f}) and ({DHCP_FILTER})"),
            _ => DHCP_FILTER.to_string(),
        };
        Some(LiveConfig {
            interface: self.interface.clone(),
            snaplen: DHCP_SNAPLEN,
            promisc: self.promisc,
            buffer_bytes: DHCP_BUFFER,
            filter: Some(filter),
            timeout_ms: self.timeout_ms,
            dhcp_handle: false,
        })
    }
}

/// A libpcap capture on one interface.
pub struct LiveSource {
    interface: String,
    // `stats` takes `&self` but `pcap_stats` needs `&mut`: the cell is borrowed only inside
    // `stats`, and `next_packet` reaches the capture through `get_mut` without a runtime borrow.
    cap: RefCell<pcap::Capture<pcap::Active>>,
    link: LinkType,
    done: bool,
    stats: Cell<StatsAcc>,
    /// A duplicate of the capture's descriptor, to wait on without borrowing the capture.
    wake: OwnedFd,
    timeout: Timespec,
    /// The current packet, copied out of libpcap's ring (at most a snap length).
    frame: Vec<u8>,
    /// Frames stamped before this are discarded: what a fanout member received before its
    /// whole group had formed ([`LiveSet::open_lanes`]).
    start_at: Nanos,
    /// How many were, so the kernel's `received` can leave them out.
    discarded: u64,
}

/// libpcap's counters are 32-bit and wrap; we sum the differences into 64-bit totals.
#[derive(Clone, Copy, Default)]
struct StatsAcc {
    last: [u32; 3],
    total: SourceStats,
}

impl LiveSource {
    pub fn open(cfg: &LiveConfig) -> Result<LiveSource, CaptureError> {
        let iface = cfg.interface.as_str();
        let fail = |reason: String| CaptureError::Live {
            interface: iface.to_string(),
            reason,
        };
        if iface.is_empty() {
            return Err(fail("no interface name given".into()));
        }
        let snaplen = if is_nflog_device(iface) {
            cfg.snaplen.saturating_add(NFLOG_TLV_ROOM)
        } else {
            cfg.snaplen
        };
        let snaplen = i32::try_from(snaplen).unwrap_or(i32::MAX);
        let buffer = i32::try_from(cfg.buffer_bytes).unwrap_or(i32::MAX);
        // libpcap reports "promiscuous mode not supported" for the "any" pseudo-device as a
        // warning, which the pcap crate turns into a failed open.
        let promisc = cfg.promisc && iface != "any";
        let inactive = pcap::Capture::from_device(iface)
            .map_err(|e| fail(describe_open_error(&e)))?
            .promisc(promisc)
            .snaplen(snaplen)
            .buffer_size(buffer)
            // The kernel hands over a ring block when it fills or when its timer finds it
            // still open on two consecutive ticks, so a packet can wait up to twice this; at a
            // third of our read timeout, a packet already seen on the wire is always handed
            // over before `next_packet` reports `Idle`, and a drain that stops at the first
            // `Idle` leaves nothing behind in the ring.
            .timeout((cfg.timeout_ms / 3).max(1))
            .immediate_mode(false);
        // Non-blocking, and we wait on the descriptor ourselves: with TPACKET_V3 libpcap polls
        // without a timeout, so a quiet link would block forever and never see a stop request.
        let mut cap = inactive
            .open()
            .and_then(|c| c.setnonblock())
            .map_err(|e| fail(describe_open_error(&e)))?;
        let wake = cap
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| fail(format!("cannot watch the capture descriptor: {e}")))?;
        if let Some(expr) = &cfg.filter {
            cap.filter(expr, true)
                .map_err(|e| fail(format!("bad capture filter '{expr}': {}", pcap_text(&e))))?;
        }
        // libpcap hands NFLOG over in this host's byte order.
        let link = LinkType((cap.get_datalink().0 as u32 & 0xffff) as u16)
            .in_byte_order(cfg!(target_endian = "big"));
        Ok(LiveSource {
            interface: cfg.interface.clone(),
            cap: RefCell::new(cap),
            link,
            done: false,
            stats: Cell::new(StatsAcc::default()),
            wake,
            timeout: Timespec {
                tv_sec: i64::from(cfg.timeout_ms.max(1) / 1000),
                tv_nsec: i64::from(cfg.timeout_ms.max(1) % 1000) * 1_000_000,
            },
            frame: Vec::with_capacity(cfg.snaplen.min(super::MAX_CAPLEN) as usize),
            start_at: Nanos::MIN,
            discarded: 0,
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn link_type(&self) -> LinkType {
        self.link
    }
}

/// What libpcap had for us without waiting.
enum Fill {
    /// A packet, copied into the source's frame buffer.
    Got {
        ts: Nanos,
        wire_len: u32,
    },
    /// Nothing buffered: wait on the descriptor.
    Empty,
    End,
}

impl LiveSource {
    /// Copies the next buffered packet into `frame`, without waiting. Returns the header's
    /// fields rather than a borrowed packet, so a caller can look at several sources in turn.
    fn fill(&mut self) -> Result<Fill, CaptureError> {
        if self.done {
            return Ok(Fill::End);
        }
        loop {
            return match self.cap.get_mut().next_packet() {
                Ok(p) => {
                    let h = *p.header;
                    // time_t and suseconds_t are 32-bit on some platforms.
                    #[allow(clippy::unnecessary_cast)]
                    let ts = timeval_ns(h.ts.tv_sec as i64, h.ts.tv_usec as i64);
                    if ts < self.start_at {
                        self.discarded += 1;
                        continue;
                    }
                    self.frame.clear();
                    self.frame.extend_from_slice(p.data);
                    Ok(Fill::Got {
                        ts,
                        wire_len: h.len.max(h.caplen),
                    })
                }
                Err(e) => self.fill_error(e),
            };
        }
    }

    fn fill_error(&mut self, e: pcap::Error) -> Result<Fill, CaptureError> {
        match e {
            pcap::Error::TimeoutExpired => Ok(Fill::Empty),
            pcap::Error::NoMorePackets => {
                self.done = true;
                Ok(Fill::End)
            }
            e => {
                self.done = true;
                Err(CaptureError::Live {
                    interface: self.interface.clone(),
                    reason: format!("read failed: {}", pcap_text(&e)),
                })
            }
        }
    }

    fn packet(&self, ts: Nanos, wire_len: u32) -> Packet<'_> {
        Packet {
            ts,
            wire_len,
            link: self.link,
            data: &self.frame,
        }
    }
}

/// Waits until one of `fds` is readable or the timeout passes: `Ok(false)` on timeout. A
/// signal counts as readable: `Idle` then could end a drain while a ring still holds packets,
/// and the caller sees its stop request at the next timeout anyway.
fn wait(fds: &mut [PollFd<'_>], timeout: &Timespec, interface: &str) -> Result<bool, CaptureError> {
    match poll(fds, Some(timeout)) {
        Ok(0) => Ok(false),
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(true),
        Err(e) => Err(CaptureError::Live {
            interface: interface.to_string(),
            reason: format!("waiting for packets failed: {e}"),
        }),
    }
}

impl PacketSource for LiveSource {
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        loop {
            match self.fill()? {
                Fill::Got { ts, wire_len } => return Ok(Next::Packet(self.packet(ts, wire_len))),
                Fill::End => return Ok(Next::End),
                Fill::Empty => {}
            }
            // Nothing buffered: wait for the kernel to hand over a block, or for the timeout,
            // or for a signal (a stop request), whichever comes first.
            let mut fds = [PollFd::new(&self.wake, PollFlags::IN)];
            match wait(&mut fds, &self.timeout, &self.interface) {
                Ok(true) => {}
                Ok(false) => return Ok(Next::Idle),
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
    }

    /// Totals since open. If libpcap cannot report, the last known totals.
    fn stats(&self) -> SourceStats {
        let mut acc = self.stats.get();
        let Ok(mut cap) = self.cap.try_borrow_mut() else {
            return acc.total;
        };
        if let Ok(s) = cap.stats() {
            let now = [s.received, s.dropped, s.if_dropped];
            let d = |i: usize| u64::from(now[i].wrapping_sub(acc.last[i]));
            acc.total.received += d(0);
            acc.total.dropped_kernel += d(1);
            acc.total.dropped_interface += d(2);
            acc.last = now;
            self.stats.set(acc);
        }
        // Discarded frames were received before the capture began (fanout only).
        let mut total = acc.total;
        total.received = total.received.saturating_sub(self.discarded);
        total
    }
}

/// The most packets one interface hands over in a row while another has some waiting: a
/// saturated port cannot starve a quiet one, whose ring would then overflow.
const FAIR_RUN: u32 = 256;

/// Several interfaces read as one source by one thread: each frame is tagged with its
/// interface's index (`interface()`), so flows seen on two ports stay apart. One reader polls
/// every descriptor rather than one reader per interface, because the pipeline's reader owns
/// the batches bound for each worker: a second reader would need its own set of channels, or
/// locks, and one reader already moves several million packets per second, more than a
/// 2-core machine's workers can take.
pub struct LiveSet {
    /// The main handles, one per interface in index order, then the DHCP handles.
    sources: Vec<LiveSource>,
    /// How many of `sources` are main handles.
    mains: usize,
    /// For each source, the index of its interface.
    owner: Vec<u16>,
    /// Which interfaces have a DHCP handle, by index.
    has_dhcp: Vec<bool>,
    /// Whose turn it is, and how many packets it has handed over in a row.
    turn: usize,
    run: u32,
    /// The source the last packet came from.
    last: usize,
    timeout: Timespec,
    failed: bool,
}

impl LiveSet {
    /// Opens every interface (in order: the index is the interface's number in the store), and
    /// the DHCP handles their configurations ask for. Every handle is open when this returns,
    /// so privileges can be dropped after it.
    pub fn open(cfgs: &[LiveConfig]) -> Result<LiveSet, CaptureError> {
        check_interfaces(cfgs)?;
        let sources = cfgs
            .iter()
            .map(LiveSource::open)
            .collect::<Result<Vec<_>, _>>()?;
        LiveSet::with_dhcp_handles(sources, cfgs, true)
    }

    /// Opens every interface `lanes` times, each interface's handles one fanout group (see
    /// `capture::fanout`), and returns `lanes` sets: set k holds the k-th handle of every
    /// interface, and the first also the DHCP handles. `--buffer` is the total: each ring gets
    /// its share. `clock` (the wall clock) dates the moment every group is complete: what a
    /// handle received before it is discarded and not counted, since until then each handle
    /// had its own copy of every frame.
    pub fn open_lanes(
        cfgs: &[LiveConfig],
        lanes: usize,
        clock: crate::time::Clock,
    ) -> Result<Vec<LiveSet>, CaptureError> {
        if lanes <= 1 {
            return Ok(vec![LiveSet::open(cfgs)?]);
        }
        check_interfaces(cfgs)?;
        let mut groups: Vec<Vec<LiveSource>> = Vec::with_capacity(cfgs.len());
        for c in cfgs {
            let fail = |reason: String| CaptureError::Live {
                interface: c.interface.clone(),
                reason,
            };
            if is_nflog_device(&c.interface) {
                return Err(fail(
                    "a netfilter log group has a single listener and cannot be spread over workers: use --fanout off"
                        .into(),
                ));
            }
            let ring = LiveConfig {
                buffer_bytes: (c.buffer_bytes / lanes as u32).max(MIN_RING),
                ..c.clone()
            };
            let members = (0..lanes)
                .map(|_| LiveSource::open(&ring))
                .collect::<Result<Vec<_>, _>>()?;
            let fds: Vec<_> = members.iter().map(|m| m.wake.as_fd()).collect();
            super::fanout::join(&fds).map_err(|e| {
                fail(format!(
                    "cannot spread it over {lanes} rings (PACKET_FANOUT): {e}; --fanout off reads it with one"
                ))
            })?;
            groups.push(members);
        }
        // Rounded up to libpcap's microseconds: a frame stamped in the same microsecond as the
        // last join may have come before it.
        let start = clock().saturating_add(999) / 1000 * 1000;
        let mut per_lane: Vec<Vec<LiveSource>> = (0..lanes).map(|_| Vec::new()).collect();
        for members in groups {
            for (m, lane) in members.into_iter().zip(per_lane.iter_mut()) {
                let mut m = m;
                m.start_at = start;
                lane.push(m);
            }
        }
        per_lane
            .into_iter()
            .enumerate()
            .map(|(lane, sources)| LiveSet::with_dhcp_handles(sources, cfgs, lane == 0))
            .collect()
    }

    /// Frames discarded because they came before a fanout group was complete.
    pub fn discarded(&self) -> u64 {
        self.main_sources().iter().map(|s| s.discarded).sum()
    }

    /// A set of the main handles `sources` (one per interface, in index order) and, if
    /// `open`, the DHCP handles `cfgs` ask for. Without `open` (fanout lanes but the first),
    /// the main handles still leave DHCP to those handles, which the first lane reads.
    fn with_dhcp_handles(
        mut sources: Vec<LiveSource>,
        cfgs: &[LiveConfig],
        open: bool,
    ) -> Result<LiveSet, CaptureError> {
        let mains = sources.len();
        // At most u16::MAX interfaces, checked by `check_interfaces`.
        let mut owner: Vec<u16> = (0..mains).map(|i| i as u16).collect();
        let mut has_dhcp = vec![false; mains];
        for (i, c) in cfgs.iter().enumerate() {
            if let Some(dc) = c.dhcp_handle_config() {
                if let Some(h) = has_dhcp.get_mut(i) {
                    *h = true;
                }
                if !open {
                    continue;
                }
                let src = LiveSource::open(&dc).map_err(|e| match e {
                    CaptureError::Live { interface, reason } => CaptureError::Live {
                        interface,
                        reason: format!(
                            "DHCP handle (whole DHCP frames; --no-dhcp-handle goes without): {reason}"
                        ),
                    },
                    other => other,
                })?;
                sources.push(src);
                owner.push(i as u16);
            }
        }
        let timeout = sources.first().map_or(
            Timespec {
                tv_sec: 0,
                tv_nsec: 200_000_000,
            },
            |s| s.timeout,
        );
        Ok(LiveSet {
            sources,
            mains,
            owner,
            has_dhcp,
            turn: 0,
            run: 0,
            last: 0,
            timeout,
            failed: false,
        })
    }

    /// The interface names, in index order.
    pub fn interfaces(&self) -> impl Iterator<Item = &str> {
        self.main_sources().iter().map(LiveSource::interface)
    }

    /// Each interface's libpcap counters since open (its main handle), in index order.
    pub fn interface_stats(&self) -> Vec<SourceStats> {
        self.main_sources()
            .iter()
            .map(PacketSource::stats)
            .collect()
    }

    /// The DHCP handles' libpcap counters since open, summed; `None` when none is open.
    pub fn dhcp_stats(&self) -> Option<SourceStats> {
        let dhcp = self.sources.get(self.mains..).unwrap_or_default();
        (!dhcp.is_empty()).then(|| sum_stats(dhcp))
    }

    fn main_sources(&self) -> &[LiveSource] {
        self.sources.get(..self.mains).unwrap_or_default()
    }
}

/// Refuses an empty list, more interfaces than an index can tell apart, and an interface given
/// twice.
fn check_interfaces(cfgs: &[LiveConfig]) -> Result<(), CaptureError> {
    let Some(first) = cfgs.first() else {
        return Err(CaptureError::Live {
            interface: String::new(),
            reason: "no interface given".into(),
        });
    };
    if cfgs.len() > usize::from(u16::MAX) {
        return Err(CaptureError::Live {
            interface: first.interface.clone(),
            reason: format!(
                "{} interfaces, at most {} can be told apart",
                cfgs.len(),
                u16::MAX
            ),
        });
    }
    for (i, c) in cfgs.iter().enumerate() {
        if cfgs[..i].iter().any(|o| o.interface == c.interface) {
            return Err(CaptureError::Live {
                interface: c.interface.clone(),
                reason: "given twice: every frame would be counted twice".into(),
            });
        }
    }
    Ok(())
}

/// The smallest ring a fanout member gets, whatever `--buffer` says (libpcap's own default).
const MIN_RING: u32 = 2 << 20;

fn sum_stats(sources: &[LiveSource]) -> SourceStats {
    let mut total = SourceStats::default();
    for s in sources {
        let st = s.stats();
        total.received += st.received;
        total.dropped_kernel += st.dropped_kernel;
        total.dropped_interface += st.dropped_interface;
    }
    total
}

impl PacketSource for LiveSet {
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        let mut usage = PacketUse::FlowsAndLeases;
        self.next_packet_for(&mut usage)
    }

    fn next_packet_for(&mut self, usage: &mut PacketUse) -> Result<Next<'_>, CaptureError> {
        let n = self.sources.len();
        loop {
            if self.failed {
                return Ok(Next::End);
            }
            let mut got = None;
            let mut ended = 0;
            for k in 0..n {
                let i = (self.turn + k) % n;
                let Some(src) = self.sources.get_mut(i) else {
                    continue;
                };
                match src.fill() {
                    Ok(Fill::Got { ts, wire_len }) => {
                        got = Some((i, ts, wire_len));
                        break;
                    }
                    Ok(Fill::Empty) => {}
                    Ok(Fill::End) => ended += 1,
                    Err(e) => {
                        // One port failing ends the capture loudly rather than leaving a
                        // silent gap in that port's records.
                        self.failed = true;
                        return Err(e);
                    }
                }
            }
            if let Some((i, ts, wire_len)) = got {
                if i == self.turn {
                    self.run += 1;
                    if self.run >= FAIR_RUN {
                        self.turn = (i + 1) % n;
                        self.run = 0;
                    }
                } else {
                    self.turn = i;
                    self.run = 1;
                }
                self.last = i;
                *usage = if i >= self.mains {
                    PacketUse::Leases
                } else if self.has_dhcp.get(i).copied().unwrap_or(false) {
                    PacketUse::Flows
                } else {
                    PacketUse::FlowsAndLeases
                };
                return match self.sources.get(i) {
                    Some(src) => Ok(Next::Packet(src.packet(ts, wire_len))),
                    None => Ok(Next::End),
                };
            }
            if ended == n {
                return Ok(Next::End);
            }
            // Every ring is empty. One small vector per wait, not per packet: a wait happens
            // at most once per ring block handed over, and a block holds many packets.
            let mut fds: Vec<PollFd<'_>> = self
                .sources
                .iter()
                .filter(|s| !s.done)
                .map(|s| PollFd::new(&s.wake, PollFlags::IN))
                .collect();
            match wait(&mut fds, &self.timeout, "(all)") {
                Ok(true) => {}
                Ok(false) => return Ok(Next::Idle),
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
    }

    /// Totals over the interfaces' main handles: the DHCP handles' frames are copies of
    /// frames these count (see `dhcp_stats`).
    /// The main handles' counters, plus what the DHCP handles dropped: their frames are
    /// copies of frames the main handles also see, so they add nothing to `received`, but a
    /// DHCP frame lost there is a lease observation lost, and the store must say so (see
    /// `who-had`'s caution). The exit summary still shows the DHCP handles on their own.
    fn stats(&self) -> SourceStats {
        let mut total = sum_stats(self.main_sources());
        if let Some(dhcp) = self.dhcp_stats() {
            total.dropped_kernel += dhcp.dropped_kernel;
            total.dropped_interface += dhcp.dropped_interface;
        }
        total
    }

    fn interface(&self) -> u16 {
        self.owner.get(self.last).copied().unwrap_or(0)
    }
}

/// A `timeval` to nanoseconds, saturating: the kernel's clock does not reach the limits, so
/// saturation only guards against nonsense.
fn timeval_ns(sec: i64, usec: i64) -> Nanos {
    sec.saturating_mul(NANOS_PER_SEC)
        .saturating_add(usec.saturating_mul(1000))
}

fn pcap_text(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(s) if !s.trim().is_empty() => s.trim().to_string(),
        other => other.to_string(),
    }
}

/// libpcap's activation messages, with the two common causes said plainly.
fn describe_open_error(e: &pcap::Error) -> String {
    let text = pcap_text(e);
    let lower = text.to_ascii_lowercase();
    if lower.contains("no such device") || lower.contains("doesn't exist") {
        format!("no such device ({text})")
    } else if lower.contains("permission") || lower.contains("not permitted") {
        format!("permission denied: live capture needs root or CAP_NET_RAW ({text})")
    } else if text.is_empty() {
        "cannot open for capture".to_string()
    } else {
        format!("cannot open for capture: {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn live_source_is_send() {
        assert_send::<LiveSource>();
        assert_send::<LiveSet>();
    }

    #[test]
    fn a_set_refuses_no_interface_and_the_same_one_twice() {
        let none = LiveSet::open(&[]).err().expect("must fail");
        assert!(none.to_string().contains("no interface given"), "{none}");
        let cfg = LiveConfig {
            interface: "flowkeep-nx0".into(),
            ..LiveConfig::default()
        };
        let twice = LiveSet::open(&[cfg.clone(), cfg]).err().expect("must fail");
        let text = twice.to_string();
        assert!(
            text.contains("flowkeep-nx0") && text.contains("given twice"),
            "{text}"
        );
    }

    #[test]
    fn defaults() {
        let c = LiveConfig::default();
        assert_eq!(c.snaplen, 128);
        assert!(c.promisc);
        assert_eq!(c.buffer_bytes, 256 * 1024 * 1024);
        assert_eq!(c.timeout_ms, 200);
        assert_eq!(c.filter, None);
        assert!(c.dhcp_handle);
    }

    #[test]
    fn netfilter_log_devices_get_no_dhcp_handle() {
        for name in ["nflog", "nflog:5", "nflog:1,2"] {
            assert!(is_nflog_device(name), "{name}");
            let c = LiveConfig {
                interface: name.into(),
                ..LiveConfig::default()
            };
            assert_eq!(c.dhcp_handle_config(), None, "{name}");
        }
        for name in ["nflogx", "eth0", "nfqueue:1", ""] {
            assert!(!is_nflog_device(name), "{name}");
        }
    }

    #[test]
    fn a_dhcp_handle_only_below_a_whole_frame_snap_length_and_within_the_filter() {
        let main = LiveConfig {
            interface: "eth1".into(),
            ..LiveConfig::default()
        };
        let d = main
            .dhcp_handle_config()
            .expect("default snap length cuts DHCP");
        assert_eq!(d.interface, "eth1");
        assert_eq!(d.snaplen, DHCP_SNAPLEN);
        assert_eq!(d.buffer_bytes, DHCP_BUFFER);
        assert_eq!(d.filter.as_deref(), Some(DHCP_FILTER));
        assert!(
            !d.dhcp_handle,
            "a DHCP handle has no DHCP handle of its own"
        );
        assert_eq!(d.dhcp_handle_config(), None);
        let filtered = LiveConfig {
            filter: Some("net 10.0.0.0/8 or vlan".into()),
            ..main.clone()
        };
        assert_eq!(
            filtered.dhcp_handle_config().and_then(|d| d.filter),
            Some(format!("(net 10.0.0.0/8 or vlan) and ({DHCP_FILTER})"))
        );
        let whole = LiveConfig {
            snaplen: DHCP_WHOLE_FROM,
            ..main.clone()
        };
        assert_eq!(whole.dhcp_handle_config(), None);
        let just_below = LiveConfig {
            snaplen: DHCP_WHOLE_FROM - 1,
            ..main.clone()
        };
        assert!(just_below.dhcp_handle_config().is_some());
        let off = LiveConfig {
            dhcp_handle: false,
            ..main
        };
        assert_eq!(off.dhcp_handle_config(), None);
    }

    #[test]
    fn nonexistent_interface_is_named_in_the_error() {
        let cfg = LiveConfig {
            interface: "flowkeep-nx0".into(),
            ..LiveConfig::default()
        };
        let err = LiveSource::open(&cfg)
            .err()
            .expect("opening a missing interface must fail");
        let text = err.to_string();
        assert!(
            matches!(&err, CaptureError::Live { interface, .. } if interface == "flowkeep-nx0"),
            "{text}"
        );
        assert!(text.contains("flowkeep-nx0"), "{text}");
        // Without privileges libpcap may fail on the socket before looking the device up.
        assert!(
            text.contains("no such device") || text.contains("CAP_NET_RAW"),
            "{text}"
        );
    }

    #[test]
    fn empty_interface_name_is_refused() {
        let err = LiveSource::open(&LiveConfig::default())
            .err()
            .expect("must fail");
        assert!(err.to_string().contains("no interface name"), "{err}");
    }

    #[test]
    fn bad_filter_is_reported() {
        let cfg = LiveConfig {
            interface: "lo".into(),
            filter: Some("tcp port and and".into()),
            ..LiveConfig::default()
        };
        match LiveSource::open(&cfg) {
            Ok(_) => panic!("a malformed filter must be refused"),
            // Unprivileged or without a loopback device we cannot get as far as the filter.
            Err(e) if e.to_string().contains("CAP_NET_RAW") => {}
            Err(e) if e.to_string().contains("no such device") => {}
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains("bad capture filter 'tcp port and and'"),
                    "{text}"
                );
                assert!(text.contains("interface lo"), "{text}");
            }
        }
    }

    #[test]
    fn timeval_conversion_saturates() {
        assert_eq!(timeval_ns(1, 500_000), 1_500_000_000);
        assert_eq!(timeval_ns(i64::MAX, 0), i64::MAX);
        assert_eq!(timeval_ns(-1, 0), -NANOS_PER_SEC);
    }
}
