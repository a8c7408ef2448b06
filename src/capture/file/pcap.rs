//! Classic pcap: both byte orders, micro- and nanosecond magic, and Kuznetzov's "modified"
//! records.

use super::{damage, u32_from, Damage, MAX_CAPLEN};
use crate::capture::{LinkType, Packet};
use crate::time::NANOS_PER_SEC;

#[derive(Clone, Copy)]
pub(super) struct Format {
    big_endian: bool,
    /// Nanoseconds per unit of the record's fractional timestamp (1000 or 1).
    frac_ns: i64,
    /// 16, or 24 for the modified format (ifindex, protocol, packet type, padding follow).
    record_header: usize,
    link: LinkType,
}

pub(super) fn header(data: &[u8], magic: u32) -> Result<Format, String> {
    let (big_endian, frac_ns, record_header) = match magic {
        0xa1b2_c3d4 => (false, 1000, 16),
        0xd4c3_b2a1 => (true, 1000, 16),
        0xa1b2_3c4d => (false, 1, 16),
        0x4d3c_b2a1 => (true, 1, 16),
        0xa1b2_cd34 => (false, 1000, 24),
        0x34cd_b2a1 => return Err("big-endian modified (Kuznetzov) pcap unsupported".into()),
        _ => return Err(format!("unknown magic 0x{magic:08x} (not pcap or pcapng)")),
    };
    if data.len() < 24 {
        return Err(format!(
            "pcap file header truncated ({} of 24 bytes)",
            data.len()
        ));
    }
    let hdr = match pcap_parser::parse_pcap_header(data) {
        Ok((_, hdr)) => hdr,
        Err(e) => return Err(format!("bad pcap file header: {e}")),
    };
    debug_assert_eq!(hdr.is_bigendian(), big_endian);
    if hdr.version_major != 2 {
        return Err(format!(
            "pcap version {}.{} unsupported",
            hdr.version_major, hdr.version_minor
        ));
    }
    // The upper bits carry FCS length and reserved flags, not the link type.
    let link = LinkType((hdr.network.0 as u32 & 0xffff) as u16).in_byte_order(big_endian);
    Ok(Format {
        big_endian,
        frac_ns,
        record_header,
        link,
    })
}

#[inline]
pub(super) fn record<'a>(
    f: &Format,
    data: &'a [u8],
    pos: &mut usize,
) -> Result<Option<Packet<'a>>, Damage> {
    let at = *pos;
    let rest = data.get(at..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(None);
    }
    let Some(h) = rest.first_chunk::<16>() else {
        return Err(damage(
            at,
            format!(
                "file ends inside a record header ({} bytes left)",
                rest.len()
            ),
        ));
    };
    let be = f.big_endian;
    let sec = u32_from([h[0], h[1], h[2], h[3]], be);
    let frac = u32_from([h[4], h[5], h[6], h[7]], be);
    let caplen = u32_from([h[8], h[9], h[10], h[11]], be);
    let orig = u32_from([h[12], h[13], h[14], h[15]], be);
    if caplen > MAX_CAPLEN {
        return Err(damage(
            at,
            format!("record claims {caplen} captured bytes (limit {MAX_CAPLEN})"),
        ));
    }
    let start = at.saturating_add(f.record_header);
    let end = start.saturating_add(caplen as usize);
    let Some(bytes) = data.get(start..end) else {
        return Err(damage(
            at,
            format!(
                "file ends inside a record ({caplen} bytes claimed, {} left)",
                rest.len().saturating_sub(f.record_header)
            ),
        ));
    };
    *pos = end;
    // u32 seconds * 1e9 + u32 fraction * 1000 stays below i64::MAX (about year 2106 + 71 min),
    // so even invalid fractions (>= 1 s) cannot overflow.
    let ts = i64::from(sec) * NANOS_PER_SEC + i64::from(frac) * f.frac_ns;
    Ok(Some(Packet {
        ts,
        wire_len: orig.max(caplen),
        link: f.link,
        data: bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_captures::*;

    #[test]
    fn pcap_big_endian_nanoseconds() {
        let mut v = pcap_header(0xa1b2_3c4d, true, 0x1000_0001);
        pcap_record(&mut v, true, 1_700_000_000, 123_456_789, 60, &[1, 2, 3, 4]);
        pcap_record(&mut v, true, 1_700_000_001, 999_999_999, 2, &[9, 9, 9]);
        let (pkts, err) = read_bytes(v);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            pkts,
            vec![
                (1_700_000_000_123_456_789, 60, vec![1, 2, 3, 4], 1),
                // wire_len is never below the captured length.
                (1_700_000_001_999_999_999, 3, vec![9, 9, 9], 1),
            ]
        );
    }

    /// NFLOG's TLV headers are in the writer's byte order, which only the file header records:
    /// frames of a big-endian file say so in their link type, in pcap and in pcapng alike.
    #[test]
    fn nflog_link_type_carries_the_file_byte_order() {
        use crate::capture::LinkType;
        for be in [false, true] {
            let want = if be {
                LinkType::NFLOG_BE
            } else {
                LinkType::NFLOG
            };
            let mut v = pcap_header(0xa1b2_c3d4, be, 239);
            pcap_record(&mut v, be, 1, 0, 4, &[2, 0, 0, 0]);
            let (pkts, err) = read_bytes(v);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(pkts[0].3, want.0, "pcap, big-endian {be}");
            let mut ng = Vec::new();
            shb(&mut ng, be);
            idb(&mut ng, be, 239, 0, None, 0);
            idb(&mut ng, be, 1, 0, None, 0);
            epb(&mut ng, be, 0, 0, 4, &[2, 0, 0, 0]);
            epb(&mut ng, be, 1, 0, 4, &[2, 0, 0, 0]);
            let (pkts, err) = read_bytes(ng);
            assert!(err.is_none(), "{err:?}");
            let links: Vec<u16> = pkts.iter().map(|p| p.3).collect();
            assert_eq!(links, vec![want.0, 1], "pcapng, big-endian {be}");
        }
    }

    #[test]
    fn pcap_little_endian_microseconds_and_fcs_bits() {
        // LINKTYPE_NULL with the FCS-present bits set: link type is the low 16 bits.
        let mut v = pcap_header(0xa1b2_c3d4, false, 0x4000_0000);
        pcap_record(&mut v, false, 10, 5, 4, &[0; 4]);
        let (pkts, err) = read_bytes(v);
        assert!(err.is_none());
        assert_eq!(pkts, vec![(10_000_005_000, 4, vec![0; 4], 0)]);
    }

    #[test]
    fn pcap_modified_format_records() {
        let mut v = pcap_header(0xa1b2_cd34, false, 1);
        for (sec, byte) in [(7u32, 0xaau8), (8, 0xbb)] {
            w32(&mut v, sec, false);
            w32(&mut v, 1, false);
            w32(&mut v, 2, false);
            w32(&mut v, 2, false);
            v.extend_from_slice(&[0xee; 8]); // ifindex, protocol, packet type, pad
            v.extend_from_slice(&[byte; 2]);
        }
        let (pkts, err) = read_bytes(v);
        assert!(err.is_none());
        assert_eq!(
            pkts,
            vec![
                (7_000_001_000, 2, vec![0xaa; 2], 1),
                (8_000_001_000, 2, vec![0xbb; 2], 1)
            ]
        );
    }

    #[test]
    fn truncated_last_record_is_corrupt_after_the_good_packets() {
        let mut v = pcap_header(0xa1b2_c3d4, false, 1);
        pcap_record(&mut v, false, 1, 0, 3, &[1, 2, 3]);
        pcap_record(&mut v, false, 2, 0, 3, &[4, 5, 6]);
        let second = 24 + 16 + 3;
        v.truncate(v.len() - 1);
        let (pkts, err) = read_bytes(v.clone());
        assert_eq!(pkts.len(), 1);
        let (offset, reason) = corrupt_at(&err);
        assert_eq!(offset, second as u64);
        assert!(reason.contains("file ends inside a record"), "{reason}");
        assert!(err
            .unwrap()
            .to_string()
            .starts_with("test.cap: damaged at byte 43"));

        // Ending inside the record header is damage too.
        v.truncate(second + 7);
        let (pkts, err) = read_bytes(v);
        assert_eq!(pkts.len(), 1);
        assert!(corrupt_at(&err).1.contains("inside a record header"));
    }

    #[test]
    fn huge_claimed_record_is_refused_not_allocated() {
        let mut v = pcap_header(0xa1b2_c3d4, false, 1);
        pcap_record(&mut v, false, 1, 0, 3, &[1, 2, 3]);
        w32(&mut v, 2, false);
        w32(&mut v, 0, false);
        w32(&mut v, 1_409_179_648, false);
        w32(&mut v, 60, false);
        v.extend_from_slice(&[0; 64]);
        let (pkts, err) = read_bytes(v);
        assert_eq!(pkts.len(), 1);
        let (offset, reason) = corrupt_at(&err);
        assert_eq!(offset, 24 + 19);
        assert!(reason.contains("1409179648"), "{reason}");
    }
}
