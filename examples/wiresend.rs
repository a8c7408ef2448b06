//! A capture file sent onto an interface as fast as the kernel takes it, or at a set rate: the
//! sender of `scripts/bench-veth.sh`. tcpreplay makes one `send` per frame and reaches about
//! 0.4 M frames/s on the benchmark machine; this hands the kernel a batch of frames per system
//! call (`sendmmsg`) from a copy of the file held in memory.
//!
//! It sends through a libpcap handle's packet socket, which libpcap has already bound to the
//! interface, so no address is needed per frame (and no unsafe code here). Frames go out as
//! they were captured, cut to their captured length.
//!
//! ```text
//! cargo build --release --example wiresend
//! target/release/examples/wiresend --interface veth1 --pps 1000000 /tmp/bench/bench-10m-s128.pcap
//! ```
//!
//! It prints one line on stdout: `sent N frames in S s (R frames/s); E refused`. A frame the
//! kernel refuses (ENOBUFS on a full device queue) is counted and not retried: the rate a
//! collector keeps up with is the question, not the sender's own losses, which the counters of
//! the interface tell (see the script).

use std::io::IoSlice;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use flowkeep::capture::{FileSource, Next, PacketSource};
use rustix::io::Errno;
use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags};

#[derive(Parser)]
#[command(about = "Sends a capture file's frames onto an interface, in batches")]
struct Args {
    /// The interface to send on.
    #[arg(long, short)]
    interface: String,
    /// Frames per second; 0 sends as fast as the kernel takes them.
    #[arg(long, default_value_t = 0)]
    pps: u64,
    /// Sends only the first N frames of the file.
    #[arg(long)]
    limit: Option<usize>,
    /// Sends the file this many times over.
    #[arg(long, default_value_t = 1)]
    loops: u32,
    /// Frames per system call at most.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    file: PathBuf,
}

/// Every frame of the file, back to back, and where each ends.
struct Frames {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Frames {
    fn load(args: &Args) -> Result<Frames> {
        let mut src = FileSource::open(&args.file)
            .with_context(|| format!("open {}", args.file.display()))?;
        let mut frames = Frames {
            bytes: Vec::new(),
            ends: Vec::new(),
        };
        while args.limit.is_none_or(|l| frames.ends.len() < l) {
            match src.next_packet()? {
                Next::Packet(p) => {
                    frames.bytes.extend_from_slice(p.data);
                    frames.ends.push(frames.bytes.len());
                }
                Next::Idle => {}
                Next::End => break,
            }
        }
        if frames.ends.is_empty() {
            bail!("{}: no frame to send", args.file.display());
        }
        Ok(frames)
    }

    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

/// Frames handed to the kernel and frames it refused.
#[derive(Default)]
struct Sent {
    taken: u64,
    refused: u64,
}

/// Sends `frames[from..to]` in one or more `sendmmsg` calls.
fn send_batch(
    fd: impl AsFd,
    frames: &Frames,
    from: usize,
    to: usize,
    sent: &mut Sent,
) -> Result<()> {
    let slices: Vec<[IoSlice<'_>; 1]> = (from..to).map(|i| [IoSlice::new(frames.get(i))]).collect();
    let mut next = 0;
    while next < slices.len() {
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = (next..slices.len())
            .map(|_| SendAncillaryBuffer::default())
            .collect();
        let mut msgs: Vec<MMsgHdr<'_>> = slices[next..]
            .iter()
            .zip(&mut controls)
            .map(|(s, c)| MMsgHdr::new(s, c))
            .collect();
        match sendmmsg(&fd, &mut msgs, SendFlags::empty()) {
            Ok(n) => {
                sent.taken += n as u64;
                next += n;
            }
            // The device queue is full: this frame is lost, as a busy wire would lose it.
            Err(Errno::NOBUFS) | Err(Errno::AGAIN) => {
                sent.refused += 1;
                next += 1;
            }
            Err(Errno::INTR) => {}
            Err(e) => bail!("sendmmsg: {e}"),
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.batch == 0 {
        bail!("--batch: at least 1");
    }
    let frames = Frames::load(&args)?;
    // A small, immediate, filterless handle: it is only a bound socket to send on.
    let cap = pcap::Capture::from_device(args.interface.as_str())?
        .snaplen(64)
        .buffer_size(1 << 20)
        .immediate_mode(true)
        .open()
        .with_context(|| format!("open {}", args.interface))?;
    let fd = cap.as_fd();
    // With a rate, a batch spans about 100 µs, so the rate holds at short time scales too.
    let batch = if args.pps == 0 {
        args.batch
    } else {
        (args.pps / 10_000).clamp(1, args.batch as u64) as usize
    };
    let n = frames.ends.len();
    let total = n as u64 * u64::from(args.loops);
    let mut sent = Sent::default();
    let start = Instant::now();
    let mut done: u64 = 0;
    for _ in 0..args.loops {
        let mut i = 0;
        while i < n {
            let to = (i + batch).min(n);
            if args.pps > 0 {
                let due = start + Duration::from_secs_f64(done as f64 / args.pps as f64);
                let now = Instant::now();
                if due > now {
                    let wait = due - now;
                    // Sleeping overshoots by tens of µs: spin the last stretch.
                    if wait > Duration::from_micros(200) {
                        std::thread::sleep(wait - Duration::from_micros(100));
                    }
                    while Instant::now() < due {
                        std::hint::spin_loop();
                    }
                }
            }
            send_batch(fd, &frames, i, to, &mut sent)?;
            done += (to - i) as u64;
            i = to;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    debug_assert_eq!(done, total);
    println!(
        "sent {} frames in {secs:.3} s ({:.0} frames/s); {} refused",
        sent.taken,
        sent.taken as f64 / secs,
        sent.refused
    );
    Ok(())
}
