//! Capture files: classic pcap and pcapng, told apart by their first four bytes.
//!
//! The file is memory-mapped and packets borrow the mapping. The per-record headers are read
//! directly (a handful of fixed-offset integers): this is the replay hot path, and pcap-parser's
//! packet-block parsers collect options into a `Vec` and do not know the obsolete Packet Block.
//! pcap-parser parses the rare structural headers (pcap file header, SHB, IDB with options).

use super::{CaptureError, Next, Packet, PacketSource};
use std::path::{Path, PathBuf};

mod pcap;
mod pcapng;
#[cfg(test)]
mod test_captures;

/// Records claiming more captured bytes than this are damage, not packets (Wireshark's limit for
/// ordinary link types; BIG TCP test captures hold 80 KB frames).
pub const MAX_CAPLEN: u32 = 262_144;

/// A pcap or pcapng file, read through a memory map.
pub struct FileSource {
    path: PathBuf,
    bytes: Bytes,
    reader: Reader,
}

enum Bytes {
    Map(crate::fs::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    #[inline]
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// Opens a capture file as a boxed source, for callers that mix files and live interfaces.
pub fn open_file(path: &Path) -> Result<Box<dyn PacketSource + Send>, CaptureError> {
    Ok(Box::new(FileSource::open(path)?))
}

impl FileSource {
    /// Maps the file and checks its header. A file whose header is not a capture we can read is a
    /// `Format` error; damage later in the file shows up from `next_packet`.
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        let io = |source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        };
        if path == Path::new("-") {
            return Self::read_stream(path, std::io::stdin().lock());
        }
        let file = crate::fs::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if meta.is_dir() {
            return Err(CaptureError::Format {
                path: path.to_path_buf(),
                reason: "is a directory, not a capture file".into(),
            });
        }
        if !meta.is_file() {
            // A pipe, a FIFO, /dev/stdin: nothing to map, and it can be read only once.
            return Self::read_stream(path, file);
        }
        let len = meta.len();
        if len == 0 {
            // Mapping zero bytes fails on Linux; say what is actually wrong.
            return Err(CaptureError::Format {
                path: path.to_path_buf(),
                reason: "empty file".into(),
            });
        }
        let map = crate::fs::map_capture(&file).map_err(io)?;
        Self::with_bytes(path.to_path_buf(), Bytes::Map(map))
    }

    /// Reads a capture that arrives as a stream (a pipe, stdin) to its end, into memory.
    fn read_stream(path: &Path, mut r: impl std::io::Read) -> Result<FileSource, CaptureError> {
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes)
            .map_err(|source| CaptureError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if bytes.is_empty() {
            return Err(CaptureError::Format {
                path: path.to_path_buf(),
                reason: "nothing was read (an empty pipe)".into(),
            });
        }
        Self::from_bytes(path, bytes)
    }

    /// Reads a capture held in memory; `name` is what errors call it. Handy for tests and for
    /// captures that arrive over a pipe.
    pub fn from_bytes(
        name: impl Into<PathBuf>,
        bytes: Vec<u8>,
    ) -> Result<FileSource, CaptureError> {
        Self::with_bytes(name.into(), Bytes::Owned(bytes))
    }

    fn with_bytes(path: PathBuf, bytes: Bytes) -> Result<FileSource, CaptureError> {
        match Reader::new(bytes.as_slice()) {
            Ok(reader) => Ok(FileSource {
                path,
                bytes,
                reader,
            }),
            Err(reason) => Err(CaptureError::Format { path, reason }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl PacketSource for FileSource {
    #[inline]
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        let data = self.bytes.as_slice();
        match self.reader.next(data) {
            Ok(Some(p)) => Ok(Next::Packet(p)),
            Ok(None) => Ok(Next::End),
            Err(Damage { offset, reason }) => Err(CaptureError::Corrupt {
                path: self.path.clone(),
                offset,
                reason,
            }),
        }
    }

    fn position(&self) -> Option<u64> {
        Some(self.reader.pos as u64)
    }
}

/// Where the file is damaged and how; becomes `CaptureError::Corrupt`.
#[derive(Debug)]
struct Damage {
    offset: u64,
    reason: String,
}

fn damage(offset: usize, reason: String) -> Damage {
    Damage {
        offset: offset as u64,
        reason,
    }
}

struct Reader {
    pos: usize,
    /// Set after End or an error: a finished source only says End.
    done: bool,
    kind: Kind,
}

enum Kind {
    Pcap(pcap::Format),
    PcapNg(pcapng::NgState),
}

#[inline(always)]
fn u32_from(b: [u8; 4], big_endian: bool) -> u32 {
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

#[inline(always)]
fn u32_at(data: &[u8], off: usize, big_endian: bool) -> Option<u32> {
    let b = data.get(off..)?.first_chunk::<4>()?;
    Some(u32_from(*b, big_endian))
}

/// How far ahead of the packet being read the reader asks for the file's bytes.
const FILE_READ_AHEAD: usize = 8192;

impl Reader {
    fn new(data: &[u8]) -> Result<Reader, String> {
        let Some(magic) = u32_at(data, 0, false) else {
            return Err(if data.is_empty() {
                "empty file".to_string()
            } else {
                format!(
                    "file too short for any capture header ({} bytes)",
                    data.len()
                )
            });
        };
        if magic == pcapng::PCAPNG_SHB {
            let mut ng = pcapng::NgState {
                big_endian: false,
                interfaces: Vec::new(),
                last_ts: 0,
            };
            let len = ng.section_header(data, 0).map_err(|d| d.reason)?;
            return Ok(Reader {
                pos: len,
                done: false,
                kind: Kind::PcapNg(ng),
            });
        }
        let format = pcap::header(data, magic)?;
        Ok(Reader {
            pos: 24,
            done: false,
            kind: Kind::Pcap(format),
        })
    }

    #[inline]
    fn next<'a>(&mut self, data: &'a [u8]) -> Result<Option<Packet<'a>>, Damage> {
        if self.done {
            return Ok(None);
        }
        // A few dozen packets ahead: the next pages of the file reach the cache while this
        // packet is decoded. wrapping_add: past the end it is a hint to nowhere, which is fine.
        crate::hint::prefetch(data.as_ptr().wrapping_add(self.pos + FILE_READ_AHEAD));
        let r = match &mut self.kind {
            Kind::Pcap(f) => pcap::record(f, data, &mut self.pos),
            Kind::PcapNg(ng) => ng.next_packet(data, &mut self.pos),
        };
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::test_captures::*;
    use super::*;

    #[test]
    fn bad_headers_are_format_errors() {
        assert_eq!(format_reason(open(Vec::new())), "empty file");
        assert!(format_reason(open(vec![1, 2])).contains("too short"));
        assert_eq!(
            format_reason(open(b"GIF89a-not-a-capture-file".to_vec())),
            "unknown magic 0x38464947 (not pcap or pcapng)"
        );
        let mut v = pcap_header(0xa1b2_c3d4, false, 1);
        v[4] = 1;
        assert_eq!(
            format_reason(open(v.clone())),
            "pcap version 1.4 unsupported"
        );
        v.truncate(20);
        assert!(format_reason(open(v)).contains("truncated"));
        // A pcapng file whose first block is damaged is not a capture we can read.
        let mut ng = Vec::new();
        shb(&mut ng, false);
        ng[12] = 0; // major version 0
        assert!(format_reason(open(ng)).contains("pcapng version 0.0 unsupported"));
    }

    #[test]
    fn header_only_files_end_cleanly() {
        let (pkts, err) = read_bytes(pcap_header(0xa1b2_c3d4, false, 1));
        assert!(pkts.is_empty() && err.is_none());
        let mut ng = Vec::new();
        shb(&mut ng, false);
        block(&mut ng, false, 0xbad, b"custom data");
        block(&mut ng, false, 0x4000_0bad, b"more custom data");
        let (pkts, err) = read_bytes(ng);
        assert!(pkts.is_empty() && err.is_none());
    }

    /// Every single-byte corruption and every truncation of small captures: the reader may
    /// deliver fewer packets or report damage, but never panics and always finishes.
    #[test]
    fn mutations_never_panic() {
        let mut samples = Vec::new();
        let mut v = pcap_header(0xa1b2_c3d4, true, 1);
        pcap_record(&mut v, true, 1, 2, 3, &[1, 2, 3]);
        pcap_record(&mut v, true, 1, 2, 3, &[1, 2, 3]);
        samples.push(v);
        let mut v = Vec::new();
        shb(&mut v, false);
        idb(&mut v, false, 1, 4, Some(0x88), 3);
        epb(&mut v, false, 0, 77, 9, &[1; 5]);
        spb(&mut v, false, 9, &[1; 4]);
        shb(&mut v, true);
        idb(&mut v, true, 113, 0, Some(9), -3);
        epb(&mut v, true, 0, 77, 9, &[1; 5]);
        block(&mut v, true, 0xbad, b"xyz");
        samples.push(v);
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcaps");
        for f in [
            "gopacket__be_test202.pcapng",
            "gopacket__le_test100.pcapng",
            "tcpdump__tcp-handshake-nano.pcap",
        ] {
            samples.push(std::fs::read(root.join(f)).expect("fixture"));
        }
        for s in &samples {
            for cut in 0..s.len() {
                if let Ok(mut src) = open(s[..cut].to_vec()) {
                    read_all(&mut src);
                }
            }
            for i in 0..s.len() {
                for x in [0x00u8, 0xff, 0x80, 0x01] {
                    let mut m = s.clone();
                    m[i] ^= x;
                    if let Ok(mut src) = open(m) {
                        read_all(&mut src);
                    }
                }
            }
        }
    }

    #[test]
    fn open_reports_missing_file_and_empty_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pcap");
        match FileSource::open(&missing) {
            Err(CaptureError::Io { path, .. }) => assert_eq!(path, missing),
            Err(e) => panic!("expected Io, got {e}"),
            Ok(_) => panic!("opened a missing file"),
        }
        let empty = dir.path().join("empty.pcap");
        std::fs::write(&empty, b"").expect("write");
        let err = FileSource::open(&empty)
            .err()
            .expect("empty file must fail");
        assert_eq!(
            err.to_string(),
            format!("{}: not a readable capture: empty file", empty.display())
        );
        let good = dir.path().join("good.pcap");
        let mut v = pcap_header(0xa1b2_c3d4, false, 1);
        pcap_record(&mut v, false, 1, 0, 3, &[1, 2, 3]);
        std::fs::write(&good, &v).expect("write");
        let mut src = open_file(&good).expect("open");
        assert!(matches!(src.next_packet(), Ok(Next::Packet(p)) if p.data == [1, 2, 3]));
        assert!(matches!(src.next_packet(), Ok(Next::End)));
    }
}
