use super::*;

#[test]
fn footer_reserve_matches_the_encoder() {
    // The writer keeps footer_and_trailer_len(blocks) + the filter bytes free after the
    // last block: that must be exactly what the footer takes.
    let e = BlockEntry {
        offset: 64,
        len: 20,
        records: 1,
        min_first: 1,
        max_last: 2,
        filter_len: 24,
        filter_hashes: 6,
        kind: KIND_FLOWS,
    };
    for n in [0usize, 1, 7, 100] {
        let entries = vec![e; n];
        let filters = vec![0xa5u8; 24 * n];
        let t = SegmentTotals {
            records: n as u64,
            leases: 0,
            min_first: 1,
            max_last: 2,
        };
        let names = ["eth1".to_string(), "é".repeat(200), String::new()];
        for interfaces in [None, Some(&[][..]), Some(&names[..])] {
            let mut out = Vec::new();
            encode_footer_and_trailer(
                &entries,
                &filters,
                &t,
                &CaptureStats::default(),
                interfaces,
                64,
                &mut out,
            );
            assert_eq!(
                out.len() as u64,
                footer_and_trailer_len(n) + filters.len() as u64 + interface_names_len(interfaces)
            );
        }
    }
}

/// A one-block segment file as format `version` lays it out.
fn segment_file(version: u16, interfaces: Option<&[String]>) -> (tempfile::TempDir, PathBuf) {
    use super::super::block::{encode_block, encode_block_codec1};
    use crate::record::FlowRecord;
    use crate::testing::sample;
    let recs: Vec<FlowRecord> = (0..10u64)
        .map(|i| FlowRecord {
            interface: (i % 2) as u16,
            ..sample(i)
        })
        .collect();
    let block = if version >= 3 {
        encode_block(&recs).unwrap()
    } else {
        encode_block_codec1(&recs).unwrap()
    };
    let header = SegmentHeader {
        version,
        writer_id: 0,
        partition_start: 0,
        partition_end: i64::MAX,
        sequence: 0,
        zstd_level: 3,
    };
    let entry = BlockEntry {
        offset: HEADER_LEN as u64,
        len: block.len() as u32,
        records: recs.len() as u32,
        min_first: recs.iter().map(|r| r.first).min().unwrap(),
        max_last: recs.iter().map(|r| r.last).max().unwrap(),
        filter_len: 0,
        filter_hashes: 0,
        kind: KIND_FLOWS,
    };
    let mut file = header.encode().to_vec();
    file.extend_from_slice(&block);
    let totals = SegmentTotals {
        records: 10,
        min_first: entry.min_first,
        max_last: entry.max_last,
        leases: 0,
    };
    let at = file.len() as u64;
    let mut footer = Vec::new();
    let stats = CaptureStats::default();
    encode_footer_and_trailer(&[entry], &[], &totals, &stats, interfaces, at, &mut footer);
    file.extend_from_slice(&footer);
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("seg-0-0.fks");
    std::fs::write(&path, file).unwrap();
    (d, path)
}

#[test]
fn format_3_names_interfaces_and_format_2_still_reads() {
    let names = vec!["eth1".to_string(), "mirror-2".to_string()];
    let (_d, path) = segment_file(3, Some(&names));
    let seg = SegmentFile::open(&path).unwrap();
    assert_eq!(seg.interfaces, names);
    let recs = super::super::decode_block(seg.block(&seg.entries[0]).unwrap()).unwrap();
    assert_eq!(recs.iter().filter(|r| r.interface == 1).count(), 5);

    let (_d, path) = segment_file(2, None);
    let seg = SegmentFile::open(&path).unwrap();
    assert_eq!(seg.header.version, 2);
    assert!(seg.interfaces.is_empty());
    let recs = super::super::decode_block(seg.block(&seg.entries[0]).unwrap()).unwrap();
    assert!(recs.iter().all(|r| r.interface == 0));

    // A format-2 footer under a format-3 header lacks the list: refused, not misread.
    let (_d, path) = segment_file(3, None);
    let e = SegmentFile::open(&path).err().unwrap().to_string();
    assert!(e.contains("interface list"), "{e}");
    // And a format-3 footer under a format-2 header has bytes left over.
    let (_d, path) = segment_file(2, Some(&names));
    assert!(SegmentFile::open(&path).is_err());
}

#[test]
fn interface_names_round_trip_cut_at_a_character_boundary() {
    let long = "é".repeat(200);
    let names = vec!["eth1".to_string(), long.clone(), String::new()];
    let mut out = Vec::new();
    let count = names.len() as u16;
    out.extend_from_slice(&count.to_le_bytes());
    for n in &names {
        let b = stored_name(n);
        out.push(b.len() as u8);
        out.extend_from_slice(b);
    }
    let back = parse_interface_names(&out).unwrap();
    assert_eq!(back[0], "eth1");
    // 255 bytes would split a two-byte character: 254 are kept.
    assert_eq!(back[1], "é".repeat(127));
    assert_eq!(back[2], "");
    assert_eq!(out.len() as u64, interface_names_len(Some(&names)));
    for cut in 0..out.len() {
        assert!(parse_interface_names(&out[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = out.clone();
    longer.push(0);
    assert!(parse_interface_names(&longer).is_err());
    assert!(parse_interface_names(&[0xff, 0xff, 1])
        .unwrap_err()
        .contains("claims 65535 names"));
    assert!(parse_interface_names(&[1, 0, 2, 0xc3, 0x28])
        .unwrap_err()
        .contains("not UTF-8"));
}
