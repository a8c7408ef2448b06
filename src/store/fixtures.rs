//! Stores written and read back, for the store's tests. Records come from
//! [`crate::testing`].

use super::{ScanStats, Store, StoreWriter, WriterConfig, WriterStats};
use crate::record::FlowRecord;
use crate::testing::sample;
use crate::time::{Nanos, NANOS_PER_SEC};
use std::ops::ControlFlow;
use std::path::Path;

pub const T0: Nanos = 1_767_225_600 * NANOS_PER_SEC; // 2026-01-01T00:00:00Z
pub const HOUR: Nanos = 3600 * NANOS_PER_SEC;

pub fn rec(first: Nanos, last: Nanos, i: u64) -> FlowRecord {
    FlowRecord {
        first,
        last,
        ..sample(i)
    }
}

pub fn write(
    dir: &Path,
    recs: &[FlowRecord],
    tweak: impl FnOnce(&mut WriterConfig),
) -> WriterStats {
    let mut cfg = WriterConfig::new(dir);
    tweak(&mut cfg);
    let mut w = StoreWriter::create(cfg).unwrap();
    for r in recs {
        w.append(r).unwrap();
    }
    w.finish().unwrap()
}

pub fn read_all(
    dir: &Path,
    since: Option<Nanos>,
    until: Option<Nanos>,
) -> (Vec<FlowRecord>, ScanStats) {
    let mut out = Vec::new();
    let stats = Store::open(dir)
        .unwrap()
        .scan(since, until, |_, r| {
            out.push(r.clone());
            ControlFlow::Continue(())
        })
        .unwrap();
    (out, stats)
}

pub fn sorted(mut v: Vec<FlowRecord>) -> Vec<FlowRecord> {
    v.sort_by_key(|r| (r.first, r.last, r.sport, r.packets, format!("{r:?}")));
    v
}
