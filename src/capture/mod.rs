//! Where packets come from: capture files (pcap and pcapng, every variant) and live interfaces
//! (libpcap). Both are a [`PacketSource`]; everything downstream sees only [`Packet`]s, whose time
//! is the packet's own timestamp.

use crate::time::Nanos;
use std::path::PathBuf;

mod fanout;
pub mod file;
pub mod live;

pub use file::{open_file, FileSource, MAX_CAPLEN};
pub use live::{is_nflog_device, LiveConfig, LiveSet, LiveSource, DHCP_FILTER, DHCP_SNAPLEN};

/// A link-layer header type (LINKTYPE_* number), with any FCS/reserved upper bits masked off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u16);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const PPP: LinkType = LinkType(9);
    /// DLT_RAW as OpenBSD numbers it.
    pub const RAW_12: LinkType = LinkType(12);
    /// DLT_RAW as BSD/OS numbers it.
    pub const RAW_14: LinkType = LinkType(14);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    /// Linux netfilter log, with its TLV headers little-endian (see [`LinkType::NFLOG_BE`]).
    pub const NFLOG: LinkType = LinkType(239);
    pub const LINUX_SLL2: LinkType = LinkType(276);
    /// LINKTYPE_NFLOG written by a big-endian host. NFLOG's TLV lengths and types are in the
    /// writing host's byte order, which only the capture file's own byte order records, not
    /// the frame; the readers say it with this value, outside the LINKTYPE numbers (all below
    /// 0x1000), so that a frame decodes alone.
    pub const NFLOG_BE: LinkType = LinkType(0xf000 | 239);

    /// The link type of frames written in `big_endian` byte order: [`LinkType::NFLOG_BE`] for
    /// big-endian NFLOG, else `self`.
    pub fn in_byte_order(self, big_endian: bool) -> LinkType {
        if self == LinkType::NFLOG && big_endian {
            LinkType::NFLOG_BE
        } else {
            self
        }
    }

    /// Every link type the decoder reads (`decode::link`), for tests and fuzz targets that
    /// must cover them all.
    pub const SUPPORTED: [LinkType; 13] = [
        LinkType::NULL,
        LinkType::ETHERNET,
        LinkType::PPP,
        LinkType::RAW_12,
        LinkType::RAW_14,
        LinkType::RAW,
        LinkType::LOOP,
        LinkType::LINUX_SLL,
        LinkType::IPV4,
        LinkType::IPV6,
        LinkType::LINUX_SLL2,
        LinkType::NFLOG,
        LinkType::NFLOG_BE,
    ];
}

/// One captured frame. `data` is what was captured (at most the snap length); `wire_len` is the
/// frame's length on the wire.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    pub ts: Nanos,
    pub wire_len: u32,
    pub link: LinkType,
    pub data: &'a [u8],
}

/// What a source has next.
#[derive(Debug)]
pub enum Next<'a> {
    Packet(Packet<'a>),
    /// No packet arrived within the source's timeout (live capture only): the caller can do
    /// housekeeping and ask again.
    Idle,
    /// The file ended, or the capture was stopped.
    End,
}

/// What the reader does with a packet. Live capture keeps a short snap length that cuts DHCP
/// messages, so each interface has a second, DHCP-only handle with whole frames: its copies go
/// to the lease parser only, and the main handle's (cut) copies to the flows only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PacketUse {
    /// Flows, and leases if it is DHCP: files, and live handles whose snap length keeps DHCP.
    #[default]
    FlowsAndLeases,
    /// Flows only: the main handle of an interface that has a lease handle.
    Flows,
    /// Leases only: the lease handle's copy of a frame its main handle also delivers.
    Leases,
}

/// Counters a live source reports (libpcap's `pcap_stats`); files report zeros.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub received: u64,
    pub dropped_kernel: u64,
    pub dropped_interface: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a capture we can read at all (bad magic, unsupported version, ...).
    #[error("{path}: not a readable capture: {reason}")]
    Format { path: PathBuf, reason: String },
    /// The file is damaged from `offset` on; packets before it were delivered.
    #[error("{path}: damaged at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("interface {interface}: {reason}")]
    Live { interface: String, reason: String },
}

pub trait PacketSource {
    /// The next packet. After an `Err`, the source is finished and returns `End`.
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError>;

    /// `next_packet`, also saying what the packet is for. Sources that deliver every frame
    /// once, whole enough for DHCP, need not override it.
    fn next_packet_for(&mut self, usage: &mut PacketUse) -> Result<Next<'_>, CaptureError> {
        *usage = PacketUse::FlowsAndLeases;
        self.next_packet()
    }

    fn stats(&self) -> SourceStats {
        SourceStats::default()
    }

    /// Which of the source's interfaces the packet last returned came from (its index in the
    /// order given, `FlowRecord::interface`); 0 for a source with one.
    fn interface(&self) -> u16 {
        0
    }

    /// Bytes of the source read so far, for a progress bar; `None` when it cannot say.
    fn position(&self) -> Option<u64> {
        None
    }
}

/// A borrowed source reads as the source: the caller keeps it, to ask for its counters after.
impl<S: PacketSource + ?Sized> PacketSource for &mut S {
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        (**self).next_packet()
    }

    fn next_packet_for(&mut self, usage: &mut PacketUse) -> Result<Next<'_>, CaptureError> {
        (**self).next_packet_for(usage)
    }

    fn stats(&self) -> SourceStats {
        (**self).stats()
    }

    fn interface(&self) -> u16 {
        (**self).interface()
    }

    fn position(&self) -> Option<u64> {
        (**self).position()
    }
}
