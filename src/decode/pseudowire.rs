//! What follows an MPLS label stack: IP, or an Ethernet pseudowire (EoMPLS/VPLS, RFC 4448) with
//! or without its control word, decided the way tshark 4.0 decides it, so that flows inside a
//! pseudowire are accounted as the reference counts them (issue 15).
//!
//! tshark 4.0's order of decisions (packet-mpls.c `dissect_mpls`, packet-pw-eth.c), checked
//! frame by frame against tshark 4.0.17:
//! 1. While walking the stack, a bottom-of-stack label 13 (GAL) means an associated channel
//!    header follows, whatever the payload looks like.
//! 2. A bottom-of-stack label 14 (OAM alert) is bound to Y.1711 OAM: never IP.
//! 3. Otherwise the first nibble of the payload decides: 4 is IPv4 and 6 is IPv6, even when
//!    the bytes are really a pseudowire whose destination MAC starts with that nibble (tshark
//!    checks neither a length nor a checksum there); 1 is an associated channel header; 0 goes
//!    to the Ethernet pseudowire heuristic; anything else is data, not IP.
//! 4. The heuristic (`pwethheuristic`): when at least 14 bytes remain on the wire and the first
//!    3 bytes of both would-be MAC addresses (bytes 0-2 and 6-8) are OUIs that Wireshark's
//!    `manuf` file names, an Ethernet frame starts right there (no control word); otherwise a
//!    4-byte control word comes first (`pwethcw`) and the Ethernet frame after it, unless fewer
//!    than 4 bytes remain (data). A control word's own first nibble is 0 here, so its
//!    "first nibble is IP" shortcut cannot fire.
//! 5. An associated channel header (4 bytes) carries IPv4 for channel type 0x21 and IPv6 for
//!    0x57 (RFC 4385); other channels are OAM.

use super::link::{be16, be32, IpVersion};
use super::DecodeError;

/// Label 13, the Generic Associated Channel Label (RFC 5586).
const LABEL_GAL: u32 = 13;
/// Label 14, OAM Alert (ITU-T Y.1711).
const LABEL_OAM_ALERT: u32 = 14;
/// Associated channel types carrying IP (RFC 4385 section 6).
const ACH_IPV4: u16 = 0x0021;
const ACH_IPV6: u16 = 0x0057;
const ETHERNET_HEADER: usize = 14;
const CONTROL_WORD: usize = 4;

/// Every 24-bit OUI Wireshark 4.0.17's `manuf` file names, 3 bytes each, sorted
/// (`scripts/manuf-ouis.py` writes it): the table the heuristic's decision rests on.
static KNOWN_OUIS: &[u8] = include_bytes!("oui24.bin");

/// What an MPLS label stack carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Payload {
    Ip(usize, IpVersion),
    /// An Ethernet header starts at this offset.
    Ethernet(usize),
}

/// Walks the label stack at `off` in `d`; `wire` is the frame's length on the wire, which the
/// heuristic's length checks use (tshark's "reported" length).
pub(crate) fn mpls(d: &[u8], mut off: usize, wire: usize) -> Result<Payload, DecodeError> {
    let label = loop {
        let lse = be32(d, off).ok_or(DecodeError::Malformed("truncated MPLS label stack"))?;
        off += 4;
        let label = lse >> 12;
        if lse & 0x100 != 0 {
            break label;
        }
    };
    let first = *d
        .get(off)
        .ok_or(DecodeError::Malformed("MPLS label stack without payload"))?;
    match label {
        LABEL_GAL => return associated_channel(d, off, wire),
        LABEL_OAM_ALERT => return Err(DecodeError::NotIp),
        _ => {}
    }
    match first >> 4 {
        4 => Ok(Payload::Ip(off, IpVersion::V4)),
        6 => Ok(Payload::Ip(off, IpVersion::V6)),
        1 => associated_channel(d, off, wire),
        0 => ethernet_heuristic(d, off, wire),
        _ => Err(DecodeError::NotIp),
    }
}

fn associated_channel(d: &[u8], off: usize, wire: usize) -> Result<Payload, DecodeError> {
    if reported_rest(d, off, wire) < 4 {
        return Err(DecodeError::Malformed(
            "truncated associated channel header",
        ));
    }
    match be16(d, off + 2) {
        Some(ACH_IPV4) => Ok(Payload::Ip(off + 4, IpVersion::V4)),
        Some(ACH_IPV6) => Ok(Payload::Ip(off + 4, IpVersion::V6)),
        Some(_) => Err(DecodeError::NotIp),
        None => Err(DecodeError::Malformed(
            "truncated associated channel header",
        )),
    }
}

fn ethernet_heuristic(d: &[u8], off: usize, wire: usize) -> Result<Payload, DecodeError> {
    if reported_rest(d, off, wire) >= ETHERNET_HEADER {
        let (Some(dst), Some(src)) = (oui_at(d, off), oui_at(d, off + 6)) else {
            return Err(DecodeError::Malformed("truncated Ethernet pseudowire"));
        };
        if known_oui(dst) && known_oui(src) {
            return Ok(Payload::Ethernet(off));
        }
    }
    if reported_rest(d, off, wire) < CONTROL_WORD {
        return Err(DecodeError::NotIp);
    }
    Ok(Payload::Ethernet(off + CONTROL_WORD))
}

fn reported_rest(d: &[u8], off: usize, wire: usize) -> usize {
    wire.max(d.len()).saturating_sub(off)
}

fn oui_at(d: &[u8], off: usize) -> Option<[u8; 3]> {
    d.get(off..)?.first_chunk::<3>().copied()
}

/// Binary search of [`KNOWN_OUIS`].
fn known_oui(oui: [u8; 3]) -> bool {
    let (mut lo, mut hi) = (0, KNOWN_OUIS.len() / 3);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match KNOWN_OUIS.get(mid * 3..mid * 3 + 3) {
            Some(entry) if entry < &oui[..] => lo = mid + 1,
            Some(entry) if entry > &oui[..] => hi = mid,
            Some(_) => return true,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oui_table_is_sorted_and_answers_both_ways() {
        assert_eq!(KNOWN_OUIS.len() % 3, 0);
        assert_eq!(
            KNOWN_OUIS.len() / 3,
            36_231,
            "the OUIs of Wireshark 4.0.17's manuf"
        );
        assert!(KNOWN_OUIS
            .chunks_exact(3)
            .zip(KNOWN_OUIS.chunks_exact(3).skip(1))
            .all(|(a, b)| a < b));
        // Xerox's 00:00:00, Cisco's 00:00:0c, Intel's 00:1b:21, the last entry.
        for oui in [[0, 0, 0], [0, 0, 0x0c], [0, 0x1b, 0x21]] {
            assert!(known_oui(oui), "{oui:02x?}");
        }
        let last = KNOWN_OUIS.len() - 3;
        assert!(known_oui([
            KNOWN_OUIS[last],
            KNOWN_OUIS[last + 1],
            KNOWN_OUIS[last + 2]
        ]));
        // Locally administered, multicast, and a prefix sold only in /28 blocks.
        for oui in [
            [2, 0, 0],
            [0x01, 0x00, 0x5e],
            [0x1c, 0x87, 0x74],
            [0xff, 0xff, 0xff],
        ] {
            assert!(!known_oui(oui), "{oui:02x?}");
        }
    }
}
