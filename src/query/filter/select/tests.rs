//! The scan tests filters on stored columns and builds only the matching records; these tests
//! hold it to the plain definition: decode everything, test each `FlowRecord`.

use crate::query::{scan_matching, Filter};
use crate::record::{EndReason, FlowRecord};
use crate::store::{Store, StoreWriter, WriterConfig};
use crate::time::Nanos;
use proptest::prelude::*;
use std::ops::ControlFlow;

const T0: Nanos = 1_767_225_600_000_000_000;
const HOUR: Nanos = 3_600_000_000_000;
const ADDRS: [&str; 6] = [
    "10.0.0.1",
    "10.0.0.2",
    "192.0.2.7",
    "2001:db8::1",
    "2001:db8::2",
    "::ffff:10.0.0.1",
];
const MACS: [Option<[u8; 6]>; 3] = [None, Some([2, 0, 0, 0, 0, 1]), Some([2, 0, 0, 0, 0, 2])];
/// Every primitive, alone and combined, so that each column is the first one loaded by some
/// expression and the one tested after others by another.
const EXPRS: [&str; 24] = [
    "host 10.0.0.1",
    "src host 2001:db8::1",
    "dst host 192.0.2.7 or host ::ffff:10.0.0.1",
    "net 10.0.0.0/30",
    "dst net 2001:db8::/64",
    "port 53",
    "src port 443 or dst portrange 50-60",
    "proto udp",
    "icmp or icmp6",
    "ip6",
    "not ip",
    "vlan 10",
    "vlan 0",
    "mac 02:00:00:00:00:01",
    "dst mac 02:00:00:00:00:02 and not src mac 02:00:00:00:00:01",
    "packets > 5",
    "bytes < 1000",
    "flags S",
    "end rst or end fin",
    "tcp and port 443 and bytes > 2000",
    "not (host 10.0.0.2 or udp)",
    "(proto tcp or vlan 20) and packets < 3",
    "host 10.0.0.1 and host 2001:db8::2",
    "ip and flags R and not end idle",
];

fn arb_flow() -> impl Strategy<Value = FlowRecord> {
    (
        (
            0..2 * HOUR,
            0..HOUR / 4,
            0usize..ADDRS.len(),
            0usize..ADDRS.len(),
        ),
        (
            prop::sample::select(vec![6u8, 17, 1, 58, 47]),
            prop::sample::select(vec![53u16, 443, 55, 40000]),
            prop::sample::select(vec![53u16, 443, 55, 40000]),
            prop::sample::select(vec![0u16, 10, 20]),
        ),
        (0usize..3, 0usize..3, 0u64..10, 0u64..5000),
        (any::<u8>(), 0u8..6),
    )
        .prop_map(
            |((t, dur, s, d), (proto, sport, dport, vlan), (sm, dm, packets, bytes), (f, e))| {
                FlowRecord {
                    first: T0 + t,
                    last: T0 + t + dur,
                    proto,
                    src: ADDRS[s].parse().unwrap(),
                    sport,
                    dst: ADDRS[d].parse().unwrap(),
                    dport,
                    vlan,
                    inner_vlan: if vlan == 20 { 10 } else { 0 },
                    interface: 0,
                    src_mac: MACS[sm],
                    dst_mac: MACS[dm],
                    packets,
                    bytes,
                    rev_packets: packets / 2,
                    rev_bytes: bytes / 3,
                    tcp_flags: f,
                    rev_tcp_flags: f.rotate_left(3),
                    end: EndReason::from_u8(e).unwrap_or(EndReason::Idle),
                }
            },
        )
}

fn key(r: &FlowRecord) -> String {
    format!("{r:?}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn column_scan_equals_filtering_whole_records(
        recs in proptest::collection::vec(arb_flow(), 1..400),
        since in prop::option::of(0..2 * HOUR),
        until in prop::option::of(0..2 * HOUR),
    ) {
        let d = tempfile::tempdir().unwrap();
        let mut cfg = WriterConfig::new(d.path());
        // Small blocks: some with matches, some without, some inside the time range.
        cfg.block_records = 16;
        let mut w = StoreWriter::create(cfg).unwrap();
        for r in &recs {
            w.append(r).unwrap();
        }
        w.finish().unwrap();
        let store = Store::open(d.path()).unwrap();
        let (since, until) = (since.map(|s| T0 + s), until.map(|u| T0 + u));
        for expr in EXPRS {
            let filter = Filter::parse(expr).unwrap();
            let mut got = Vec::new();
            let stats = scan_matching(&store, since, until, &filter, |_, r| {
                got.push(key(r));
                ControlFlow::Continue(())
            })
            .unwrap();
            let mut want: Vec<String> = recs
                .iter()
                .filter(|r| since.is_none_or(|s| r.last >= s) && until.is_none_or(|u| r.first < u))
                .filter(|r| filter.matches(*r))
                .map(key)
                .collect();
            got.sort();
            want.sort();
            prop_assert_eq!(stats.matched as usize, want.len(), "{}", expr);
            prop_assert_eq!(got, want, "{}", expr);
        }
    }
}
