//! What a store holds, in sums: what `flowkeep info` prints.

use super::segment::{CAPTURE_ANONYMIZED, CAPTURE_MACS_NOT_STORED};
use super::{CaptureStats, SegmentInfo, Store, StoreError};
use crate::time::Nanos;

/// The store as a whole. Sums are over the readable segments; `bytes` and the counts of
/// partitions and segments include the unreadable ones.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    /// Every sealed segment, readable or not, in listing order.
    pub segments: Vec<SegmentInfo>,
    pub partitions: usize,
    pub records: u64,
    pub leases: u64,
    pub bytes: u64,
    /// First packet of the oldest record and last packet of the newest; `None` when empty.
    pub first: Option<Nanos>,
    pub last: Option<Nanos>,
    /// The capture statistics of the readable segments, added up.
    pub capture: CaptureStats,
    pub readable: usize,
    /// Readable segments written under `--no-mac` (not counting anonymised ones).
    pub no_mac: usize,
    /// The readable segments as captured, and those rewritten by the anonymised tier.
    pub raw: TierSums,
    pub anonymized: TierSums,
    /// Every interface name the segments give, in order of first appearance.
    pub interfaces: Vec<String>,
}

/// A tier's share of the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierSums {
    pub segments: usize,
    pub records: u64,
    pub bytes: u64,
}

impl Overview {
    pub fn unreadable(&self) -> usize {
        self.segments.len() - self.readable
    }
}

impl Store {
    pub fn overview(&self) -> Result<Overview, StoreError> {
        let segments = self.segments()?;
        let mut o = Overview {
            leases: self.lease_count()?,
            bytes: segments.iter().map(|s| s.bytes).sum(),
            ..Overview::default()
        };
        let mut partitions: Vec<Nanos> = segments.iter().map(|s| s.partition_start).collect();
        partitions.dedup();
        o.partitions = partitions.len();
        for s in segments.iter().filter(|s| s.error.is_none()) {
            o.readable += 1;
            o.records += s.records;
            if s.first != Nanos::MAX {
                o.first = Some(o.first.map_or(s.first, |f| f.min(s.first)));
            }
            if s.last != Nanos::MIN {
                o.last = Some(o.last.map_or(s.last, |l| l.max(s.last)));
            }
            o.capture += &s.capture;
            let anonymized = s.capture.flags & CAPTURE_ANONYMIZED != 0;
            if s.capture.flags & CAPTURE_MACS_NOT_STORED != 0 && !anonymized {
                o.no_mac += 1;
            }
            let tier = if anonymized {
                &mut o.anonymized
            } else {
                &mut o.raw
            };
            tier.segments += 1;
            tier.records += s.records;
            tier.bytes += s.bytes;
            for name in &s.interfaces {
                if !o.interfaces.contains(name) {
                    o.interfaces.push(name.clone());
                }
            }
        }
        o.segments = segments;
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreWriter, WriterConfig};
    use crate::testing::sample;

    #[test]
    fn sums_the_readable_segments() {
        let d = tempfile::tempdir().unwrap();
        let mut cfg = WriterConfig::new(d.path());
        cfg.interfaces = vec!["eth1".into(), "eth2".into()];
        let mut w = StoreWriter::create(cfg).unwrap();
        let recs = [sample(5), sample(2), sample(9)];
        for r in &recs {
            w.append(r).unwrap();
        }
        w.add_capture_stats(&CaptureStats {
            frames: 40,
            kernel_drops: 3,
            ..CaptureStats::default()
        });
        w.finish().unwrap();
        let o = Store::open(d.path()).unwrap().overview().unwrap();
        assert_eq!(o.records, 3);
        assert_eq!(o.segments.len(), 1);
        assert_eq!((o.readable, o.unreadable()), (1, 0));
        assert_eq!(o.partitions, 1);
        assert_eq!(o.first, Some(recs[1].first));
        assert_eq!(o.last, Some(recs.iter().map(|r| r.last).max().unwrap()));
        assert_eq!((o.capture.frames, o.capture.kernel_drops), (40, 3));
        assert_eq!(o.interfaces, ["eth1", "eth2"]);
        assert_eq!(
            o.bytes,
            std::fs::metadata(&o.segments[0].path).unwrap().len()
        );
        assert_eq!(o.no_mac, 0);
        let raw = TierSums {
            segments: 1,
            records: 3,
            bytes: o.bytes,
        };
        assert_eq!((o.raw, o.anonymized), (raw, TierSums::default()));
        // Empty: nothing to span.
        let e = tempfile::tempdir().unwrap();
        StoreWriter::create(WriterConfig::new(e.path()))
            .unwrap()
            .finish()
            .unwrap();
        let o = Store::open(e.path()).unwrap().overview().unwrap();
        assert_eq!((o.records, o.first, o.last), (0, None, None));
    }
}
