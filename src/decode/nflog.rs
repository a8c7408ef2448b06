//! LINKTYPE_NFLOG (239): what Linux's netfilter `NFLOG` target hands to user space (ulogd,
//! `tcpdump -i nflog:N`), and so what many routers' logging setups write (issue 15).
//!
//! A 4-byte header (address family, version, resource id in network byte order), then TLVs:
//! length (including the 4-byte TLV header) and type, both 16-bit in the byte order of the host
//! that wrote the capture, each TLV padded to 4 bytes. The packet is the value of the
//! NFULA_PAYLOAD TLV. As tshark 4.0 does (packet-nflog.c): the type's top bit (NLA_F_NESTED) is
//! ignored, a later payload TLV replaces an earlier one, a TLV shorter than its header ends the
//! frame as damaged, and the IP version comes from NFULA_PACKET_HDR's hardware protocol when it
//! is set (an ethertype), else from the header's address family.

use super::link::{be16, IpVersion};
use super::DecodeError;

const HEADER: usize = 4;
const TLV_HEADER: usize = 4;
const NFULA_PACKET_HDR: u16 = 1;
const NFULA_PAYLOAD: u16 = 9;
/// NFPROTO_IPV4 and NFPROTO_IPV6 (the kernel's AF_INET and AF_INET6).
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const ET_IPV4: u16 = 0x0800;
const ET_IPV6: u16 = 0x86dd;

/// Where the logged packet starts and which IP it is. `big_endian`: the TLV headers' byte order
/// (the capture file's, or this host's for a live capture). `wire` is the frame's length on
/// the wire: TLVs are walked as far as it reaches, as tshark walks its "reported" length.
pub(crate) fn locate(
    d: &[u8],
    big_endian: bool,
    wire: usize,
) -> Result<(usize, IpVersion), DecodeError> {
    let family = *d
        .first()
        .ok_or(DecodeError::Malformed("truncated NFLOG header"))?;
    if d.len() < HEADER {
        return Err(DecodeError::Malformed("truncated NFLOG header"));
    }
    let end = wire.max(d.len());
    let u16_at = |off: usize| {
        let b = d.get(off..)?.first_chunk::<2>()?;
        Some(if big_endian {
            u16::from_be_bytes(*b)
        } else {
            u16::from_le_bytes(*b)
        })
    };
    let (mut payload, mut hw_protocol) = (None, 0u16);
    let mut off = HEADER;
    // Terminates: every TLV is at least 4 bytes long, so `off` grows each turn.
    while end.saturating_sub(off) >= TLV_HEADER {
        let (Some(len), Some(kind)) = (u16_at(off), u16_at(off + 2)) else {
            return Err(DecodeError::Malformed("truncated NFLOG TLV"));
        };
        let len = usize::from(len);
        if len < TLV_HEADER {
            return Err(DecodeError::Malformed("NFLOG TLV shorter than its header"));
        }
        let value = off + TLV_HEADER;
        match kind & 0x7fff {
            NFULA_PAYLOAD if off + len > end => {
                return Err(DecodeError::Malformed(
                    "NFLOG payload longer than the frame",
                ));
            }
            NFULA_PAYLOAD => payload = Some(value),
            NFULA_PACKET_HDR if len - TLV_HEADER == 4 => {
                hw_protocol =
                    be16(d, value).ok_or(DecodeError::Malformed("truncated NFLOG TLV"))?;
            }
            _ => {}
        }
        off += len.next_multiple_of(4);
    }
    let Some(at) = payload else {
        // Logged without the packet (an `nflog-size 0` rule, or a message of another kind).
        return Err(DecodeError::NotIp);
    };
    let version = match (hw_protocol, family) {
        (ET_IPV4, _) | (0, NFPROTO_IPV4) => IpVersion::V4,
        (ET_IPV6, _) | (0, NFPROTO_IPV6) => IpVersion::V6,
        _ => return Err(DecodeError::NotIp),
    };
    Ok((at, version))
}
