//! Classic pcap files written byte by byte, for synthetic captures (benches/common includes
//! this file too).

pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_RAW: u32 = 101;

/// The file header of a classic little-endian pcap: version 2.4, microsecond times, snap length
/// 65535, link type `link_type`.
pub fn header(link_type: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, link_type] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Appends a packet record at `sec`.`usec`: `data` as captured, of a frame of `wire_len` bytes.
pub fn push_packet(out: &mut Vec<u8>, sec: u32, usec: u32, wire_len: u32, data: &[u8]) {
    for v in [sec, usec, data.len() as u32, wire_len] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(data);
}
