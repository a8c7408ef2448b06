//! The counters in Prometheus text exposition format 0.0.4, and the store figures served beside
//! them.

use super::Snapshot;
use crate::store::Store;
use crate::time::{Nanos, NANOS_PER_SEC};
use std::fmt::Write as _;
use std::path::Path;

/// What the store listing says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreUsage {
    /// Bytes of the sealed segment files.
    pub bytes: u64,
    /// `first` of the oldest record in a readable segment; `None` for an empty store.
    pub oldest_first: Option<Nanos>,
}

impl StoreUsage {
    pub fn read(dir: &Path) -> StoreUsage {
        let Ok(segs) = Store::open(dir).and_then(|s| s.segments()) else {
            return StoreUsage::default();
        };
        StoreUsage {
            bytes: segs.iter().map(|s| s.bytes).sum(),
            oldest_first: segs
                .iter()
                .filter(|s| s.error.is_none() && s.records > 0)
                .map(|s| s.first)
                .min(),
        }
    }
}

/// One always-present metric: name, type, help, and whether it is labelled with the capture
/// interface (the reader's counters are the interface's; the workers' are the process's).
struct Row {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    per_interface: bool,
    value: fn(&Snapshot, &StoreUsage) -> u64,
}

const fn row(
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    per_interface: bool,
    value: fn(&Snapshot, &StoreUsage) -> u64,
) -> Row {
    Row {
        name,
        kind,
        help,
        per_interface,
        value,
    }
}

/// In the order they are served; names and help texts are what dashboards and alert rules
/// are written against, so they never change.
const ROWS: [Row; 16] = [
    row(
        "flowkeep_frames_total",
        "counter",
        "Frames read from the interface.",
        true,
        |s, _| s.frames,
    ),
    row(
        "flowkeep_kernel_drops_total",
        "counter",
        "Frames the kernel dropped (ring full), per libpcap.",
        true,
        |s, _| s.kernel_drops,
    ),
    row(
        "flowkeep_interface_drops_total",
        "counter",
        "Frames the interface dropped, per libpcap.",
        true,
        |s, _| s.interface_drops,
    ),
    row(
        "flowkeep_future_packets_total",
        "counter",
        "Frames stamped more than 5 minutes after the wall clock (a bad timestamp: never taken as the time).",
        true,
        |s, _| s.future_packets,
    ),
    row(
        "flowkeep_packets_total",
        "counter",
        "IP packets counted into flows.",
        false,
        |s, _| s.workers.packets,
    ),
    row(
        "flowkeep_bytes_total",
        "counter",
        "IP-layer bytes counted into flows.",
        false,
        |s, _| s.workers.bytes,
    ),
    row(
        "flowkeep_non_ip_frames_total",
        "counter",
        "Frames that carried no IP packet.",
        false,
        |s, _| s.workers.non_ip,
    ),
    row(
        "flowkeep_malformed_frames_total",
        "counter",
        "Frames whose headers could not be decoded.",
        false,
        |s, _| s.workers.malformed,
    ),
    row(
        "flowkeep_active_flows",
        "gauge",
        "Flows in memory, not yet written.",
        false,
        |s, _| s.workers.active_flows,
    ),
    row(
        "flowkeep_flow_evictions_total",
        "counter",
        "Flow records written early because the flow table was full (--max-flows).",
        false,
        |s, _| s.workers.evictions,
    ),
    row(
        "flowkeep_records_written_total",
        "counter",
        "Flow records written to the store.",
        false,
        |s, _| s.workers.records_written,
    ),
    row(
        "flowkeep_records_not_stored_total",
        "counter",
        "Flow records the store could not take (see the log).",
        false,
        |s, _| s.workers.records_not_stored,
    ),
    row(
        "flowkeep_segments_total",
        "counter",
        "Segment files sealed.",
        false,
        |s, _| s.workers.segments,
    ),
    row(
        "flowkeep_store_bytes_written_total",
        "counter",
        "Bytes written to segment files.",
        false,
        |s, _| s.workers.store_bytes,
    ),
    row(
        "flowkeep_up",
        "gauge",
        "1 while capturing.",
        false,
        |_, _| 1,
    ),
    row(
        "flowkeep_store_bytes",
        "gauge",
        "Bytes of the store's sealed segment files (from its listing, at most 5 s old).",
        false,
        |_, u| u.bytes,
    ),
];

/// Prometheus text exposition format 0.0.4. `interface` labels the capture counters (several
/// interfaces: their names joined with commas); `now` is the wall clock the oldest record's
/// age is measured against.
pub fn render(s: &Snapshot, interface: &str, store: &StoreUsage, now: Nanos) -> String {
    let iface = interface.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::with_capacity(2048);
    for r in &ROWS {
        let labels = if r.per_interface {
            format!("{{interface=\"{iface}\"}}")
        } else {
            String::new()
        };
        let (name, kind, help, value) = (r.name, r.kind, r.help, (r.value)(s, store));
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{labels} {value}\n"
        );
    }
    if let Some(e) = &s.export {
        for (name, help, value) in [
            (
                "flowkeep_export_records_sent_total",
                "Flow records sent to the IPFIX collector (--export).",
                e.sent,
            ),
            (
                "flowkeep_export_records_failed_total",
                "Flow records not exported: send errors, or the export queue was full. They are in the store.",
                e.failed,
            ),
        ] {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            );
        }
    }
    // No sample for an empty store: there is no oldest record, and 0 would say there is one
    // just written.
    let name = "flowkeep_oldest_record_age_seconds";
    let _ = write!(
        out,
        "# HELP {name} Age of the oldest stored record (its first packet), from the store listing.\n# TYPE {name} gauge\n"
    );
    if let Some(first) = store.oldest_first {
        let age = now.saturating_sub(first).max(0) / NANOS_PER_SEC;
        let _ = writeln!(out, "{name} {age}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::metrics::WorkerTotals;
    use crate::store::Store;

    #[test]
    fn renders_every_metric_once_with_help_and_type() {
        let s = Snapshot {
            frames: 10,
            kernel_drops: 2,
            interface_drops: 0,
            future_packets: 1,
            workers: WorkerTotals {
                packets: 7,
                bytes: 700,
                active_flows: 3,
                evictions: 4,
                ..WorkerTotals::default()
            },
            export: None,
        };
        let store = StoreUsage {
            bytes: 123_456,
            oldest_first: Some(1_000 * NANOS_PER_SEC),
        };
        let text = render(
            &s,
            "eth\"1",
            &store,
            3_600 * NANOS_PER_SEC + 1_000 * NANOS_PER_SEC,
        );
        assert!(
            text.contains("flowkeep_frames_total{interface=\"eth\\\"1\"} 10\n"),
            "{text}"
        );
        assert!(text.contains("flowkeep_kernel_drops_total{interface=\"eth\\\"1\"} 2\n"));
        assert!(text.contains("\nflowkeep_packets_total 7\n"));
        assert!(text.contains("\nflowkeep_bytes_total 700\n"));
        assert!(text.contains("# TYPE flowkeep_active_flows gauge\nflowkeep_active_flows 3\n"));
        assert!(text.contains(
            "# TYPE flowkeep_flow_evictions_total counter\nflowkeep_flow_evictions_total 4\n"
        ));
        assert!(text.contains("# TYPE flowkeep_store_bytes gauge\nflowkeep_store_bytes 123456\n"));
        assert!(text.contains(
            "# TYPE flowkeep_oldest_record_age_seconds gauge\nflowkeep_oldest_record_age_seconds 3600\n"
        ));
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        assert!(text.contains("flowkeep_future_packets_total{interface=\"eth\\\"1\"} 1\n"));
        assert_eq!(samples, 17);
        assert!(!text.contains("export"));
        assert_eq!(text.lines().filter(|l| l.starts_with("# HELP")).count(), 17);
        // An empty store has no oldest record: no sample rather than a misleading 0.
        let empty = render(&s, "lo", &StoreUsage::default(), 0);
        assert!(!empty.contains("\nflowkeep_oldest_record_age_seconds "));
        assert!(empty.contains("\nflowkeep_store_bytes 0\n"));
    }

    #[test]
    fn store_usage_comes_from_the_segments() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(StoreUsage::read(d.path()), StoreUsage::default());
        let mut w =
            crate::store::StoreWriter::create(crate::store::WriterConfig::new(d.path())).unwrap();
        let recs = [crate::testing::sample(5), crate::testing::sample(2)];
        for r in &recs {
            w.append(r).unwrap();
        }
        w.finish().unwrap();
        let u = StoreUsage::read(d.path());
        let segs = Store::open(d.path()).unwrap().segments().unwrap();
        assert!(u.bytes > 0);
        assert_eq!(u.bytes, segs.iter().map(|s| s.bytes).sum::<u64>());
        assert_eq!(u.oldest_first, Some(recs[1].first));
    }

    #[test]
    fn export_counters_appear_when_exporting() {
        let s = Snapshot {
            export: Some(crate::pipeline::metrics::ExportTotals { sent: 5, failed: 2 }),
            ..Snapshot::default()
        };
        let text = render(&s, "lo", &StoreUsage::default(), 0);
        assert!(
            text.contains("\nflowkeep_export_records_sent_total 5\n"),
            "{text}"
        );
        assert!(text.contains(
            "# TYPE flowkeep_export_records_failed_total counter\nflowkeep_export_records_failed_total 2\n"
        ));
    }
}
