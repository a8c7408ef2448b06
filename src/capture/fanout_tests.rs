//! The fanout program run by a small classic-BPF interpreter (the instructions it uses, with
//! the kernel's rules: a load outside the packet ends the program with 0). Whether the kernel
//! takes it, and spreads a real capture the same way, is tests/capture_veth.rs's part.

use super::*;

/// What the program sees of a frame: the kernel's protocol and the bytes from the network
/// header on.
struct Skb<'a> {
    protocol: u16,
    net: &'a [u8],
}

fn load(skb: &Skb<'_>, off: u32, size: usize) -> Option<u32> {
    if off == PROTOCOL {
        return Some(u32::from(skb.protocol));
    }
    let rel = off.checked_sub(NET)? as usize;
    let b = skb.net.get(rel..rel + size)?;
    Some(b.iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x)))
}

fn run(prog: &[libc::sock_filter], skb: &Skb<'_>) -> u32 {
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        let size = |code: u16| match code & 0x18 {
            0x00 => 4,
            0x08 => 2,
            _ => 1,
        };
        match i.code {
            c if c & 0x07 == LD && c & 0xe0 == ABS => match load(skb, i.k, size(c)) {
                Some(v) => a = v,
                None => return 0,
            },
            c if c & 0x07 == LD && c & 0xe0 == IND => {
                match load(skb, x.wrapping_add(i.k), size(c)) {
                    Some(v) => a = v,
                    None => return 0,
                }
            }
            c if c == LD | MEM => a = mem[i.k as usize],
            c if c == LDX | IMM => x = i.k,
            c if c == LDX | MEM => x = mem[i.k as usize],
            ST => mem[i.k as usize] = a,
            STX => mem[i.k as usize] = x,
            c if c == ALU | ADD | K => a = a.wrapping_add(i.k),
            c if c == ALU | MUL | K => a = a.wrapping_mul(i.k),
            c if c == ALU | RSH | K => a >>= i.k,
            c if c == ALU | XOR | X => a ^= x,
            c if c == MISC | TAX => x = a,
            c if c == MISC | TXA => a = x,
            c if c == JMP | JEQ | K => {
                pc += usize::from(if a == i.k { i.jt } else { i.jf });
            }
            c if c == RET | RET_A => return a,
            c if c == RET | K => return i.k,
            c => panic!("instruction {c:#x} not interpreted"),
        }
    }
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, tail: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 40, 0, 1, 0x20, 0, 64, proto, 0, 0];
    p.extend(src);
    p.extend(dst);
    p.extend(tail);
    p
}

fn ipv6(src: [u8; 16], dst: [u8; 16], tail: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
    p.extend(src);
    p.extend(dst);
    p.extend(tail);
    p
}

/// A deterministic stream of addresses (xorshift64).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn v4(&mut self) -> [u8; 4] {
        (self.next() as u32).to_be_bytes()
    }
    fn v6(&mut self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..8].copy_from_slice(&self.next().to_be_bytes());
        a[8..].copy_from_slice(&self.next().to_be_bytes());
        a
    }
}

#[test]
fn the_program_assembles_within_the_kernels_limits_and_ends_in_returns() {
    let p = program();
    assert!(p.len() > 50 && p.len() < 4096, "{} instructions", p.len());
    let last = p.last().expect("not empty");
    assert_eq!(last.code & 0x07, RET);
    for (i, ins) in p.iter().enumerate() {
        if ins.code & 0x07 == JMP {
            assert!(
                i + 1 + usize::from(ins.jt.max(ins.jf)) < p.len(),
                "jump at {i}"
            );
        }
    }
}

#[test]
fn both_directions_and_every_fragment_of_an_ipv4_flow_hash_alike() {
    let p = program();
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for _ in 0..500 {
        let (a, b) = (g.v4(), g.v4());
        let ports = (g.next() as u32).to_be_bytes();
        let rev = [ports[2], ports[3], ports[0], ports[1]];
        let fwd = run(
            &p,
            &Skb {
                protocol: 0x0800,
                net: &ipv4(a, b, 6, &ports),
            },
        );
        let back = run(
            &p,
            &Skb {
                protocol: 0x0800,
                net: &ipv4(b, a, 6, &rev),
            },
        );
        // A later fragment: no ports, other payload bytes.
        let frag = run(
            &p,
            &Skb {
                protocol: 0x0800,
                net: &ipv4(a, b, 6, &[7; 8]),
            },
        );
        assert_eq!(fwd, back, "{a:?} {b:?}");
        assert_eq!(fwd, frag, "{a:?} {b:?}");
    }
}

#[test]
fn both_directions_of_an_ipv6_flow_hash_alike_and_differ_from_other_pairs() {
    let p = program();
    let mut g = Gen(42);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..500 {
        let (a, b) = (g.v6(), g.v6());
        let fwd = run(
            &p,
            &Skb {
                protocol: 0x86dd,
                net: &ipv6(a, b, &[1, 2, 3, 4]),
            },
        );
        let back = run(
            &p,
            &Skb {
                protocol: 0x86dd,
                net: &ipv6(b, a, &[3, 4, 1, 2]),
            },
        );
        assert_eq!(fwd, back);
        seen.insert(fwd);
    }
    assert!(
        seen.len() > 490,
        "{} distinct hashes of 500 pairs",
        seen.len()
    );
}

#[test]
fn two_and_four_rings_share_the_pairs_evenly() {
    let p = program();
    let mut g = Gen(7);
    let mut rings = [0u32; 4];
    // Hosts of one /24 talking to one server: the case a plain XOR of addresses would spread
    // by the host's last byte only.
    let server = [198, 51, 100, 7];
    for _ in 0..4000 {
        let host = [10, 1, 2, (g.next() % 254 + 1) as u8];
        let h = run(
            &p,
            &Skb {
                protocol: 0x0800,
                net: &ipv4(host, server, 17, &[0; 8]),
            },
        );
        rings[(h % 4) as usize] += 1;
    }
    for r in rings {
        assert!((700..1300).contains(&r), "{rings:?}");
    }
}

#[test]
fn vlan_tags_left_in_the_frame_and_pppoe_sessions_are_read_through() {
    let p = program();
    let (a, b) = ([192, 0, 2, 1], [203, 0, 113, 9]);
    let plain = run(
        &p,
        &Skb {
            protocol: 0x0800,
            net: &ipv4(a, b, 6, &[0; 4]),
        },
    );
    assert_ne!(plain, 0);
    let mut tagged = vec![0x00, 0x64, 0x08, 0x00];
    tagged.extend(ipv4(b, a, 6, &[0; 4]));
    assert_eq!(
        run(
            &p,
            &Skb {
                protocol: 0x8100,
                net: &tagged
            }
        ),
        plain
    );
    let mut twice = vec![0x00, 0x0a, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00];
    twice.extend(ipv4(a, b, 17, &[0; 4]));
    assert_eq!(
        run(
            &p,
            &Skb {
                protocol: 0x88a8,
                net: &twice
            }
        ),
        plain
    );
    let mut pppoe = vec![0x11, 0x00, 0x12, 0x34, 0x00, 0x30, 0x00, 0x21];
    pppoe.extend(ipv4(a, b, 6, &[0; 4]));
    assert_eq!(
        run(
            &p,
            &Skb {
                protocol: 0x8864,
                net: &pppoe
            }
        ),
        plain
    );
    let (c, d) = (
        [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0xfe; 16],
    );
    let v6 = run(
        &p,
        &Skb {
            protocol: 0x86dd,
            net: &ipv6(c, d, &[]),
        },
    );
    let mut pppoe6 = vec![0x11, 0x00, 0x12, 0x34, 0x00, 0x30, 0x00, 0x57];
    pppoe6.extend(ipv6(d, c, &[]));
    assert_eq!(
        run(
            &p,
            &Skb {
                protocol: 0x8864,
                net: &pppoe6
            }
        ),
        v6
    );
}

#[test]
fn frames_it_does_not_read_all_go_to_the_first_ring() {
    let p = program();
    let v4 = ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, &[]);
    // MPLS (its payload may be a pseudowire's Ethernet), ARP, PPP control, cut short.
    let mut mpls = vec![0x00, 0x01, 0x01, 0x40];
    mpls.extend(&v4);
    assert_eq!(
        run(
            &p,
            &Skb {
                protocol: 0x8847,
                net: &mpls
            }
        ),
        0
    );
    assert_eq!(
        run(
            &p,
            &Skb {
                protocol: 0x0806,
                net: &[0; 28]
            }
        ),
        0
    );
    let mut lcp = vec![0x11, 0x00, 0x12, 0x34, 0x00, 0x30, 0xc0, 0x21];
    lcp.extend(&v4);
    assert_eq!(
        run(
            &p,
            &Skb {
                protocol: 0x8864,
                net: &lcp
            }
        ),
        0
    );
    assert_eq!(
        run(
            &p,
            &Skb {
                protocol: 0x0800,
                net: &v4[..18]
            }
        ),
        0
    );
    assert_eq!(
        run(
            &p,
            &Skb {
                protocol: 0x86dd,
                net: &[0x60; 30]
            }
        ),
        0
    );
}
