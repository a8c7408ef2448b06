//! Spreading one interface over several capture rings: a Linux `PACKET_FANOUT` group of the
//! libpcap handles' sockets, steered by a classic-BPF program of our own.
//!
//! The kernel's own symmetric hash (`PACKET_FANOUT_HASH`) takes ports into account for whole
//! datagrams but not for fragments, so a fragmented datagram and the rest of its flow would
//! land on different workers; its `DEFRAG` flag reassembles instead, which changes the packet
//! counts tshark and the other tools make. The program here hashes the outermost IP addresses
//! alone, as an unordered pair (XOR), which every packet of a flow shares in both directions,
//! fragments and ICMP errors included (the decoder does not open tunnels either). It reads
//! through VLAN tags left in the frame (the outer one is already metadata on receive) and
//! PPPoE sessions. Everything else (MPLS, whose payload only the decoder's heuristics can tell
//! apart from an Ethernet pseudowire, non-IP, frames too short) goes to the first ring: one
//! worker takes more, but no flow is split.
//!
//! Why libpcap's handles rather than rings of our own: libpcap already sets up TPACKET_V3, the
//! snap length, the operator's BPF filter, VLAN tag reinsertion and its counters, and a fanout
//! group is a plain socket option on the descriptor it hands out, taken after activation. The
//! cost is that each socket is bound, and receiving, before it joins: `LiveSet::open_lanes`
//! therefore notes the time once every socket has joined and each ring discards (and counts)
//! what it was given before it (see `LiveSource::start_at`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

// linux/if_packet.h, not exported by the libc crate for every target.
const PACKET_FANOUT: libc::c_int = 18;
const PACKET_FANOUT_DATA: libc::c_int = 22;
const PACKET_FANOUT_CBPF: u32 = 6;
const PACKET_FANOUT_FLAG_UNIQUEID: u32 = 0x2000;

// linux/filter.h (classic BPF).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const H: u16 = 0x08;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const ADD: u16 = 0x00;
const MUL: u16 = 0x20;
const RSH: u16 = 0x70;
const XOR: u16 = 0xa0;
const JEQ: u16 = 0x10;
const K: u16 = 0x00;
const X: u16 = 0x08;
const RET_A: u16 = 0x10;
const TAX: u16 = 0x00;
const TXA: u16 = 0x80;

/// Loads relative to the network header: where the kernel left it, whatever the link layer.
const NET: u32 = libc::SKF_NET_OFF as u32;
/// The frame's protocol as the kernel decoded it (`skb->protocol`, in host order).
const PROTOCOL: u32 = (libc::SKF_AD_OFF + libc::SKF_AD_PROTOCOL) as u32;

/// Scratch memory words.
const M_ACC: u32 = 0;
const M_TMP: u32 = 1;
const M_OFF: u32 = 2;

/// VLAN tags read through in the frame itself, besides the one the kernel strips.
const TAGS_IN_FRAME: usize = 2;

/// An instruction, with jump targets still symbolic.
#[derive(Clone, Copy)]
enum Op {
    Stmt(u16, u32),
    /// `if A == k goto yes else goto no`.
    JumpEq(u32, Label, Label),
    Mark(Label),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Label {
    Next,
    At(u32),
}

/// Builds a program with forward jumps to labels.
#[derive(Default)]
struct Asm {
    ops: Vec<Op>,
    labels: u32,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label::At(self.labels)
    }
    fn s(&mut self, code: u16, k: u32) -> &mut Self {
        self.ops.push(Op::Stmt(code, k));
        self
    }
    fn jeq(&mut self, k: u32, yes: Label, no: Label) -> &mut Self {
        self.ops.push(Op::JumpEq(k, yes, no));
        self
    }
    fn mark(&mut self, l: Label) -> &mut Self {
        self.ops.push(Op::Mark(l));
        self
    }
    /// `X += n`, keeping A.
    fn skip(&mut self, n: u32) -> &mut Self {
        self.s(ST, M_TMP)
            .s(MISC | TXA, 0)
            .s(ALU | ADD | K, n)
            .s(MISC | TAX, 0)
            .s(LD | MEM, M_TMP)
    }
    /// `A ^= A >> n` (X is free by then).
    fn xorshift(&mut self, n: u32) -> &mut Self {
        self.s(MISC | TAX, 0)
            .s(ALU | RSH | K, n)
            .s(ALU | XOR | X, 0)
    }

    fn finish(&self) -> Result<Vec<libc::sock_filter>, &'static str> {
        let mut at = std::collections::HashMap::new();
        let mut n = 0u32;
        for op in &self.ops {
            match op {
                Op::Mark(l) => {
                    at.insert(*l, n);
                }
                _ => n += 1,
            }
        }
        let mut out = Vec::with_capacity(n as usize);
        for op in &self.ops {
            let here = out.len() as u32;
            let rel = |l: &Label| -> Result<u8, &'static str> {
                let target = match l {
                    Label::Next => here + 1,
                    Label::At(_) => *at.get(l).ok_or("jump to an unplaced label")?,
                };
                target
                    .checked_sub(here + 1)
                    .and_then(|d| u8::try_from(d).ok())
                    .ok_or("jump out of a classic BPF jump's reach")
            };
            match op {
                Op::Stmt(code, k) => out.push(insn(*code, 0, 0, *k)),
                Op::JumpEq(k, yes, no) => out.push(insn(JMP | JEQ | K, rel(yes)?, rel(no)?, *k)),
                Op::Mark(_) => {}
            }
        }
        Ok(out)
    }
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The fanout program: returns a hash of the unordered pair of outermost IP addresses (the
/// kernel takes it modulo the group's size), or 0 for frames it does not read.
pub fn program() -> Vec<libc::sock_filter> {
    let mut a = Asm::default();
    let (v4, v6, other) = (a.label(), a.label(), a.label());
    a.s(LD | W | ABS, PROTOCOL).s(LDX | IMM, 0);
    for _ in 0..TAGS_IN_FRAME {
        let (tag, untagged) = (a.label(), a.label());
        a.jeq(0x8100, tag, Label::Next)
            .jeq(0x88a8, tag, Label::Next)
            .jeq(0x9100, tag, untagged)
            .mark(tag)
            .s(LD | H | IND, NET.wrapping_add(2))
            .skip(4)
            .mark(untagged);
    }
    let (pppoe, not_pppoe) = (a.label(), a.label());
    a.jeq(0x8864, pppoe, not_pppoe)
        .mark(pppoe)
        .s(LD | H | IND, NET.wrapping_add(6))
        .skip(8)
        .jeq(0x0021, v4, Label::Next)
        .jeq(0x0057, v6, other)
        .mark(not_pppoe)
        .jeq(0x0800, v4, Label::Next)
        .jeq(0x86dd, v6, other);
    // IPv4: source at 12, destination at 16.
    let mix = a.label();
    a.mark(v4)
        .s(LD | W | IND, NET.wrapping_add(12))
        .s(ST, M_ACC)
        .s(LD | W | IND, NET.wrapping_add(16))
        .s(LDX | MEM, M_ACC)
        .s(ALU | XOR | X, 0)
        .jeq(0, mix, mix);
    // IPv6: eight words from 8, source then destination.
    a.mark(v6)
        .s(STX, M_OFF)
        .s(LD | W | IND, NET.wrapping_add(8))
        .s(ST, M_ACC);
    for word in 1..8 {
        a.s(LDX | MEM, M_OFF)
            .s(LD | W | IND, NET.wrapping_add(8 + 4 * word))
            .s(LDX | MEM, M_ACC)
            .s(ALU | XOR | X, 0)
            .s(ST, M_ACC);
    }
    // A 32-bit finaliser (from "hash prospector"): the XOR of two addresses is symmetric but
    // keeps their low bits' patterns, which the kernel's modulo would see directly.
    a.mark(mix)
        .xorshift(16)
        .s(ALU | MUL | K, 0x7feb_352d)
        .xorshift(15)
        .s(ALU | MUL | K, 0x846c_a68b)
        .xorshift(16)
        .s(RET | RET_A, 0)
        .mark(other)
        .s(RET | K, 0);
    // The program is fixed: a failure here is a mistake in this function, caught by its tests.
    a.finish().unwrap_or_default()
}

fn setsockopt<T>(fd: BorrowedFd<'_>, name: libc::c_int, value: &T) -> io::Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<T>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `value` points to a live `T` of `len` bytes for the duration of the call, and
    // the kernel only reads it; `fd` is an open descriptor borrowed for the call.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            name,
            (value as *const T).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn fanout_id(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut value: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live locals the kernel writes at most `len` bytes into;
    // `fd` is an open descriptor borrowed for the call.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            PACKET_FANOUT,
            (&mut value as *mut u32).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value & 0xffff)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes the packet sockets `fds` (all bound to one interface) one fanout group steered by
/// [`program`]. The kernel picks an unused group id, so two captures on one interface (two
/// flowkeeps, or a tcpdump) never join each other's group. No rollover: a full ring drops
/// (and counts) rather than send a flow's packets to another worker.
pub fn join(fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let Some((first, rest)) = fds.split_first() else {
        return Ok(());
    };
    setsockopt(
        *first,
        PACKET_FANOUT,
        &((PACKET_FANOUT_CBPF | PACKET_FANOUT_FLAG_UNIQUEID) << 16),
    )?;
    let id = fanout_id(*first)?;
    let mut prog = program();
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        filter: prog.as_mut_ptr(),
    };
    setsockopt(*first, PACKET_FANOUT_DATA, &fprog)?;
    for fd in rest {
        setsockopt(*fd, PACKET_FANOUT, &(id | (PACKET_FANOUT_CBPF << 16)))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "fanout_tests.rs"]
mod tests;
