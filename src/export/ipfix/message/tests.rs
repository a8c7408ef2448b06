use super::*;
use crate::record::EndReason;
use std::net::{Ipv4Addr, Ipv6Addr};

fn v4_record() -> FlowRecord {
    FlowRecord {
        first: 1_700_000_000_123_456_789,
        last: 1_700_000_001_987_654_321,
        proto: 6,
        src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        sport: 40000,
        dst: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
        dport: 443,
        vlan: 100,
        inner_vlan: 7,
        interface: 0,
        src_mac: Some([0x02, 0, 0, 0, 0, 0x01]),
        dst_mac: None,
        packets: 10,
        bytes: 1500,
        rev_packets: 8,
        rev_bytes: 9000,
        tcp_flags: 0x1b,
        rev_tcp_flags: 0x12,
        end: EndReason::Fin,
    }
}

fn v6_record() -> FlowRecord {
    FlowRecord {
        src: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        dst: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
        proto: 17,
        rev_packets: 0,
        rev_bytes: 0,
        ..v4_record()
    }
}

/// Collects emitted messages.
fn collect(b: &mut MessageBuilder, recs: &[FlowRecord], t: u32) -> Vec<(Vec<u8>, u32)> {
    let mut out = Vec::new();
    for r in recs {
        b.add(r, t, &mut |m, n| out.push((m.to_vec(), n)));
    }
    b.flush(&mut |m, n| out.push((m.to_vec(), n)));
    out
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Walks a message's sets (RFC 7011 section 3.3): (set id, body) pairs.
fn sets(msg: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = MESSAGE_HEADER_LEN;
    while at < msg.len() {
        let id = be16(msg, at);
        let len = be16(msg, at + 2) as usize;
        assert!(len >= 4, "set length {len}");
        out.push((id, &msg[at + 4..at + len]));
        at += len;
    }
    assert_eq!(at, msg.len(), "sets end exactly at the message end");
    out
}

#[test]
fn message_header_template_set_and_data_record_match_the_rfc_layout() {
    let mut cfg = IpfixConfig::tcp();
    cfg.observation_domain = 0x0102_0304;
    let mut b = MessageBuilder::new(cfg).unwrap();
    let msgs = collect(&mut b, &[v4_record()], 0x6553_f100);
    assert_eq!(msgs.len(), 1);
    let (msg, n) = &msgs[0];
    assert_eq!(*n, 1);
    assert!(MessageBuilder::carries_templates(msg));

    // RFC 7011 3.1: version 10, length, export time, sequence number, observation domain.
    #[rustfmt::skip]
    let header = [
        0x00, 0x0a,
        (msg.len() >> 8) as u8, msg.len() as u8,
        0x65, 0x53, 0xf1, 0x00,
        0x00, 0x00, 0x00, 0x00,
        0x01, 0x02, 0x03, 0x04,
    ];
    assert_eq!(&msg[..16], &header);

    // RFC 7011 3.3.2 / 3.4.1 / 3.2: set id 2, then per template: id, field count, then
    // per field: id (enterprise bit for reverse), length, [PEN 29305 per RFC 5103 6.1].
    #[rustfmt::skip]
    let v4_template: Vec<u8> = vec![
        0x01, 0x00, 0x00, 18,
        0x00, 152, 0x00, 8,
        0x00, 153, 0x00, 8,
        0x00, 8, 0x00, 4,
        0x00, 12, 0x00, 4,
        0x00, 7, 0x00, 2,
        0x00, 11, 0x00, 2,
        0x00, 4, 0x00, 1,
        0x80, 6, 0x00, 2, 0x00, 0x00, 0x72, 0x79,
        0x00, 6, 0x00, 2,
        0x00, 2, 0x00, 8,
        0x00, 1, 0x00, 8,
        0x00, 56, 0x00, 6,
        0x00, 80, 0x00, 6,
        0x00, 58, 0x00, 2,
        0x00, 245, 0x00, 2,
        0x00, 136, 0x00, 1,
        0x80, 2, 0x00, 8, 0x00, 0x00, 0x72, 0x79,
        0x80, 1, 0x00, 8, 0x00, 0x00, 0x72, 0x79,
    ];
    let s = sets(msg);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].0, 2);
    let v6_template_len = 4 + 15 * 4 + 3 * 8;
    assert_eq!(s[0].1.len(), v4_template.len() + v6_template_len);
    assert_eq!(&s[0].1[..v4_template.len()], &v4_template[..]);
    let v6 = &s[0].1[v4_template.len()..];
    assert_eq!(&v6[..4], &[0x01, 0x01, 0x00, 18]);
    assert_eq!(&v6[12..20], &[0x00, 27, 0x00, 16, 0x00, 28, 0x00, 16]);

    // The data set: id 256, then the record's fields in template order, network order.
    assert_eq!(s[1].0, 256);
    #[rustfmt::skip]
    let record: Vec<u8> = vec![
        // 1_700_000_000_123 ms, 1_700_000_001_987 ms
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b,
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x6f, 0xc3,
        192, 0, 2, 1,
        198, 51, 100, 7,
        0x9c, 0x40,
        0x01, 0xbb,
        6,
        0x00, 0x12,
        0x00, 0x1b,
        0, 0, 0, 0, 0, 0, 0, 10,
        0, 0, 0, 0, 0, 0, 0x05, 0xdc,
        0x02, 0, 0, 0, 0, 0x01,
        0, 0, 0, 0, 0, 0,
        0x00, 100,
        0x00, 7,
        3,
        0, 0, 0, 0, 0, 0, 0, 8,
        0, 0, 0, 0, 0, 0, 0x23, 0x28,
    ];
    assert_eq!(s[1].1, &record[..]);
    assert_eq!(1_700_000_000_123u64.to_be_bytes()[..], record[..8]);
    assert_eq!(1_700_000_001_987u64.to_be_bytes()[..], record[8..16]);
}

#[test]
fn one_way_mode_sends_the_responder_as_its_own_record_and_skips_silent_ones() {
    let mut cfg = IpfixConfig::tcp();
    cfg.biflow = false;
    let mut b = MessageBuilder::new(cfg).unwrap();
    let msgs = collect(&mut b, &[v4_record(), v6_record()], 1);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].1, 2, "flows");
    let s = sets(&msgs[0].0);
    assert_eq!(
        b.sequence(),
        3,
        "two for the v4 flow, one for the silent-back v6 flow"
    );
    assert_eq!(s[1].0, TEMPLATE_V4_ONEWAY);
    assert_eq!(s[1].1.len(), 2 * record_len(TEMPLATE_V4_ONEWAY));
    let back = &s[1].1[record_len(TEMPLATE_V4_ONEWAY)..];
    assert_eq!(&back[16..24], &[198, 51, 100, 7, 192, 0, 2, 1]);
    assert_eq!(&back[24..28], &[0x01, 0xbb, 0x9c, 0x40]);
    assert_eq!(&back[29..31], &[0x00, 0x12]);
    assert_eq!(be32(back, 35), 8, "low half of packetDeltaCount");
    assert_eq!(&back[47..53], &[0; 6], "src mac: the responder's, unknown");
    assert_eq!(&back[53..59], &[0x02, 0, 0, 0, 0, 0x01]);
    assert_eq!(s[2].0, TEMPLATE_V6_ONEWAY);
}

#[test]
fn messages_never_exceed_the_limit_and_sequence_numbers_count_data_records() {
    let mut cfg = IpfixConfig::udp();
    cfg.max_message = 512;
    cfg.refresh = TemplateRefresh::Every {
        seconds: 1_000,
        messages: 1_000,
    };
    let mut b = MessageBuilder::new(cfg).unwrap();
    let recs: Vec<FlowRecord> = (0..100)
        .map(|i| if i % 3 == 0 { v6_record() } else { v4_record() })
        .collect();
    let msgs = collect(&mut b, &recs, 5);
    assert!(msgs.len() > 10);
    let mut expected_seq = 0u32;
    let mut total = 0;
    for (i, (m, n)) in msgs.iter().enumerate() {
        assert!(m.len() <= 512, "message {i} is {} bytes", m.len());
        assert_eq!(be16(m, 2) as usize, m.len());
        assert_eq!(be32(m, 8), expected_seq, "message {i}");
        let data: usize = sets(m)
            .iter()
            .filter(|(id, _)| *id >= 256)
            .map(|(id, body)| body.len() / record_len(*id))
            .sum();
        assert_eq!(data as u32, *n);
        // Full: the next message's first record would not have fitted.
        if i + 1 < msgs.len() {
            assert!(m.len() + record_len(TEMPLATE_V4_BIFLOW) > 512 - 4);
        }
        expected_seq += n;
        total += n;
    }
    assert_eq!(total, 100);
    assert_eq!(b.sequence(), 100);
    // Only the first message carries templates (the refresh is far off).
    assert_eq!(sets(&msgs[0].0)[0].0, 2);
    assert!(msgs[1..].iter().all(|(m, _)| sets(m)[0].0 != 2));
}

#[test]
fn sequence_numbers_wrap_modulo_2_32() {
    let mut b = MessageBuilder::new(IpfixConfig::tcp()).unwrap();
    b.sequence = u32::MAX - 1;
    let msgs = collect(&mut b, &[v4_record(), v4_record(), v4_record()], 1);
    assert_eq!(be32(&msgs[0].0, 8), u32::MAX - 1);
    assert_eq!(b.sequence(), 1);
}

#[test]
fn udp_templates_are_resent_by_time_and_by_message_count() {
    let mut cfg = IpfixConfig::udp();
    cfg.refresh = TemplateRefresh::Every {
        seconds: 60,
        messages: 3,
    };
    let mut b = MessageBuilder::new(cfg).unwrap();
    let has_templates = |m: &[u8]| sets(m)[0].0 == TEMPLATE_SET_ID;
    let mut seen = Vec::new();
    // One message per flush; time 1000, 1010, 1020, 1030 (fourth: by count), ...
    for t in [1000, 1010, 1020, 1030, 1040, 1100, 1101] {
        b.add(&v4_record(), t, &mut |_, _| unreachable!());
        b.flush(&mut |m, _| seen.push(has_templates(m)));
    }
    assert_eq!(seen, [true, false, false, true, false, true, false]);
}

#[test]
fn tcp_sends_templates_once_and_a_template_message_for_a_new_connection() {
    let mut b = MessageBuilder::new(IpfixConfig::tcp()).unwrap();
    let mut seen = Vec::new();
    let mut last = Vec::new();
    for t in [0, 10_000, 20_000] {
        b.add(&v4_record(), t, &mut |_, _| unreachable!());
        b.flush(&mut |m, _| {
            seen.push((sets(m)[0].0, be32(m, 8)));
            last = m.to_vec();
        });
    }
    assert_eq!(seen, [(2, 0), (256, 1), (256, 2)]);
    assert!(!MessageBuilder::carries_templates(&last));
    let t = b.templates_only(&last);
    assert_eq!(be16(&t, 2) as usize, t.len());
    assert_eq!(
        &t[4..12],
        &last[4..12],
        "export time and sequence of the next message"
    );
    let s = sets(&t);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, TEMPLATE_SET_ID);
    assert!(MessageBuilder::carries_templates(&t));
}

#[test]
fn message_size_limits_are_checked() {
    let mut cfg = IpfixConfig::udp();
    cfg.max_message = 200;
    let e = MessageBuilder::new(cfg).err().unwrap();
    assert!(e.to_string().contains("200"), "{e}");
    cfg.max_message = IpfixConfig::min_message(true);
    let mut b = MessageBuilder::new(cfg).unwrap();
    let msgs = collect(&mut b, &[v6_record(), v6_record()], 0);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].0.len(), cfg.max_message);
    cfg.max_message = 70_000;
    assert!(MessageBuilder::new(cfg).is_err());
}

#[test]
fn times_before_1970_are_sent_as_zero() {
    assert_eq!(millis(-1), 0);
    assert_eq!(millis(1_999_999), 1);
}
