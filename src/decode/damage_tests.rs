//! Every link type's `decode` and `Dispatcher::hash` on damaged frames (cut at every length,
//! mutated, random): never a panic, and a frame that does not decode hashes to 0.

use super::test_frames::*;
use super::*;
use crate::capture::LinkType;

#[test]
fn every_prefix_of_a_frame_is_safe() {
    let frames = [
        (
            LinkType::ETHERNET,
            eth(
                0x8100,
                &cat(&[
                    &[0, 1, 0x86, 0xdd],
                    &ipv6(44, A6, B6, &cat(&[&frag6(6, 0, true, 1), &tcp(1, 2, 3)])),
                ]),
            ),
        ),
        (
            LinkType::ETHERNET,
            eth(0x8864, &cat(&[&[0x11, 0, 0, 1, 0, 0x40, 0, 0x21], &udp4()])),
        ),
        (
            LinkType::PPP,
            cat(&[&[0xff, 0x03, 0x02, 0x81, 0x00, 0x01, 0x01, 0x40], &udp4()]),
        ),
        (LinkType::LINUX_SLL2, sll2(1, 6, 0x0800, &udp4())),
        // An Ethernet pseudowire with control word, inner MACs of known vendors.
        (
            LinkType::ETHERNET,
            eth(
                0x8847,
                &cat(&[
                    &[0x03, 0xe8, 0x01, 0x40, 0, 0, 0, 1],
                    &[
                        0x00, 0x1b, 0x21, 1, 2, 3, 0x00, 0x0c, 0x29, 4, 5, 6, 0x08, 0x00,
                    ],
                    &udp4(),
                ]),
            ),
        ),
        (
            LinkType::NFLOG,
            cat(&[
                &[2, 0, 0, 5, 8, 0, 1, 0, 8, 0, 1, 0],
                &((4 + udp4().len()) as u16).to_le_bytes(),
                &[9, 0],
                &udp4(),
            ]),
        ),
    ];
    let mut d = Dispatcher::new();
    for (link, frame) in &frames {
        for n in 0..=frame.len() {
            let p = Packet {
                ts: 0,
                wire_len: frame.len() as u32,
                link: *link,
                data: &frame[..n],
            };
            let r = decode(&p);
            let h = d.hash(&p);
            if r.is_err() {
                assert_eq!(h, 0);
            }
        }
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const LINKS: [LinkType; 13] = LinkType::SUPPORTED;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            link in 0usize..LINKS.len(),
            data in proptest::collection::vec(any::<u8>(), 0..200),
            wire_len in any::<u32>(),
        ) {
            let p = Packet { ts: 0, wire_len, link: LINKS[link], data: &data };
            let r = decode(&p);
            let h = Dispatcher::new().hash(&p);
            if r.is_err() {
                prop_assert_eq!(h, 0);
            }
        }

        #[test]
        fn mutated_frames_never_panic(
            pos in 0usize..120,
            byte in any::<u8>(),
            cut in 0usize..130,
        ) {
            let mut frame = eth(0x8100, &cat(&[
                &[0, 1, 0x86, 0xdd],
                &ipv6(0, A6, B6, &cat(&[&[44, 0, 1, 4, 0, 0, 0, 0], &frag6(6, 0, true, 5), &tcp(1, 2, 3)])),
            ]));
            if let Some(b) = frame.get_mut(pos) {
                *b = byte;
            }
            frame.truncate(cut);
            let p = pkt(LinkType::ETHERNET, &frame);
            let _ = decode(&p);
            let _ = Dispatcher::new().hash(&p);
        }
    }
}
