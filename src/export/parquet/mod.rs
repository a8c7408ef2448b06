//! Parquet export: the store's records as files that columnar engines (DuckDB, ClickHouse,
//! Trino, Spark) read directly, one file per store partition. The schema (docs/EXPORT.md) uses
//! the JSON-lines field names and Parquet logical types, so an engine sees timestamps,
//! unsigned integers and strings without being told.
//!
//! Built on parquet's low-level column writer rather than arrow: the records are already
//! columns of fixed types, and arrow would only add a copy and a long build.

mod columns;

pub use columns::{ip16, SCHEMA};

use super::ExportError;
use crate::fs;
use crate::record::{FlowRecord, InterfaceLabels};
use crate::store::{partition_dir_name, ScanStats, Store};
use crate::time::{format_rfc3339, Nanos};
use columns::Buffers;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::Type;
use std::io::{self, BufWriter};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows per row group: large enough for good compression and few footer entries, small enough
/// that min/max statistics on `first` let a time-range query skip most of a busy partition.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

#[derive(Clone, Debug)]
pub struct ParquetOptions {
    /// Replace a file of the same name; otherwise an existing file is an error.
    pub overwrite: bool,
    pub row_group_rows: usize,
    pub zstd_level: i32,
}

impl Default for ParquetOptions {
    fn default() -> ParquetOptions {
        ParquetOptions {
            overwrite: false,
            row_group_rows: ROW_GROUP_ROWS,
            zstd_level: 3,
        }
    }
}

/// One written file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParquetFile {
    pub path: PathBuf,
    pub partition_start: Nanos,
    pub records: u64,
    pub row_groups: u64,
    pub bytes: u64,
}

#[derive(Debug, Default)]
pub struct ParquetSummary {
    /// In partition order.
    pub files: Vec<ParquetFile>,
    pub records: u64,
    pub bytes: u64,
    /// What the store scan met: damaged segments skipped, segments still being written.
    pub scan: ScanStats,
}

/// File name for the partition starting at `start`: `flows-<partition directory name>.parquet`,
/// e.g. `flows-2026-11-14T02-00Z.parquet`; names sort in time order.
pub fn file_name(start: Nanos) -> String {
    format!("flows-{}.parquet", partition_dir_name(start))
}

/// [`export_parquet_with`] with the default options (no overwriting).
pub fn export_parquet(
    store: &Store,
    since: Option<Nanos>,
    until: Option<Nanos>,
    keep: &dyn Fn(&FlowRecord) -> bool,
    outdir: &Path,
) -> Result<ParquetSummary, ExportError> {
    export_parquet_with(
        store,
        since,
        until,
        keep,
        outdir,
        &ParquetOptions::default(),
    )
}

/// Writes the records overlapping `[since, until)` for which `keep` is true into `outdir`
/// (created when missing), one file per store partition that has any, sorted by `first` then
/// `last`. Each file appears whole under its final name or not at all. On an error, files of
/// earlier partitions stay (each complete) and the error names the file that failed.
pub fn export_parquet_with(
    store: &Store,
    since: Option<Nanos>,
    until: Option<Nanos>,
    keep: &dyn Fn(&FlowRecord) -> bool,
    outdir: &Path,
    opts: &ParquetOptions,
) -> Result<ParquetSummary, ExportError> {
    let mut writer = PartitionWriter::new(outdir, opts)?;
    fs::create_dir_all(outdir).map_err(|e| io_error(outdir, e))?;
    let mut files = Vec::new();
    let mut pending: Vec<FlowRecord> = Vec::new();
    let mut partition = None;
    let mut failed = None;
    // The scan delivers partitions one after the other, so one partition's records are held
    // at a time.
    let scan = store.scan_with_interfaces(since, until, None, |p, names, r| {
        if partition != Some(p) {
            if let Some(prev) = partition {
                match writer.write(prev, &mut pending) {
                    Ok(f) => files.extend(f),
                    Err(e) => {
                        failed = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            partition = Some(p);
        }
        if keep(r) {
            let mut r = r.clone();
            r.interface = writer.labels.index(names, r.interface);
            pending.push(r);
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(p) = partition {
        files.extend(writer.write(p, &mut pending)?);
    }
    Ok(ParquetSummary {
        records: files.iter().map(|f| f.records).sum(),
        bytes: files.iter().map(|f| f.bytes).sum(),
        files,
        scan,
    })
}

fn io_error(path: &Path, source: io::Error) -> ExportError {
    ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

struct PartitionWriter<'a> {
    outdir: &'a Path,
    overwrite: bool,
    row_group_rows: usize,
    schema: Arc<Type>,
    props: Arc<WriterProperties>,
    buffers: Buffers,
    /// The records' `interface` numbers are renumbered into this one list across segments.
    labels: InterfaceLabels,
}

impl<'a> PartitionWriter<'a> {
    fn new(outdir: &'a Path, opts: &ParquetOptions) -> Result<PartitionWriter<'a>, ExportError> {
        if opts.row_group_rows == 0 {
            return Err(ExportError::Option(
                "rows per row group must be at least 1".into(),
            ));
        }
        let level = ZstdLevel::try_new(opts.zstd_level)
            .map_err(|e| ExportError::Option(format!("zstd level {}: {e}", opts.zstd_level)))?;
        let schema = parse_message_type(SCHEMA).map_err(|source| ExportError::Parquet {
            path: outdir.to_path_buf(),
            source,
        })?;
        let ascending = |column_idx| SortingColumn {
            column_idx,
            descending: false,
            nulls_first: false,
        };
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_sorting_columns(Some(vec![ascending(0), ascending(1)]))
            .build();
        Ok(PartitionWriter {
            outdir,
            overwrite: opts.overwrite,
            row_group_rows: opts.row_group_rows,
            schema: Arc::new(schema),
            props: Arc::new(props),
            buffers: Buffers::default(),
            labels: InterfaceLabels::default(),
        })
    }

    /// Writes and empties `records` (nothing when it is empty).
    fn write(
        &mut self,
        partition: Nanos,
        records: &mut Vec<FlowRecord>,
    ) -> Result<Option<ParquetFile>, ExportError> {
        if records.is_empty() {
            return Ok(None);
        }
        records.sort_by_key(|r| (r.first, r.last));
        let name = file_name(partition);
        let dest = self.outdir.join(&name);
        if !self.overwrite && dest.symlink_metadata().is_ok() {
            return Err(ExportError::Exists { path: dest });
        }
        // Hidden and not ending in .parquet, so a `*.parquet` glob never reads a half file.
        let tmp = self
            .outdir
            .join(format!(".{name}.{}.tmp", std::process::id()));
        let written =
            self.write_file(&tmp, &dest, partition, records)
                .and_then(|(row_groups, bytes)| {
                    install(&tmp, &dest, self.overwrite)?;
                    Ok((row_groups, bytes))
                });
        let (row_groups, bytes) = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        fs::sync_dir(self.outdir).map_err(|e| io_error(self.outdir, e))?;
        let file = ParquetFile {
            path: dest,
            partition_start: partition,
            records: records.len() as u64,
            row_groups,
            bytes,
        };
        records.clear();
        Ok(Some(file))
    }

    /// Returns (row groups, file size); the file is on disk (fsynced) when this returns.
    fn write_file(
        &mut self,
        tmp: &Path,
        dest: &Path,
        partition: Nanos,
        records: &[FlowRecord],
    ) -> Result<(u64, u64), ExportError> {
        let file = fs::create(tmp).map_err(|e| io_error(tmp, e))?;
        let parquet_error = |source| ExportError::Parquet {
            path: dest.to_path_buf(),
            source,
        };
        let mut w = SerializedFileWriter::new(
            BufWriter::with_capacity(1 << 20, file),
            Arc::clone(&self.schema),
            Arc::clone(&self.props),
        )
        .map_err(parquet_error)?;
        w.append_key_value_metadata(KeyValue::new(
            "flowkeep.partition_start".into(),
            format_rfc3339(partition),
        ));
        w.append_key_value_metadata(KeyValue::new(
            "flowkeep.version".into(),
            env!("CARGO_PKG_VERSION").to_string(),
        ));
        let mut row_groups = 0;
        for rows in records.chunks(self.row_group_rows) {
            let mut rg = w.next_row_group().map_err(parquet_error)?;
            self.buffers
                .write_row_group(&mut rg, rows, &self.labels)
                .map_err(parquet_error)?;
            rg.close().map_err(parquet_error)?;
            row_groups += 1;
        }
        let buffered = w.into_inner().map_err(parquet_error)?;
        let file = buffered
            .into_inner()
            .map_err(|e| io_error(tmp, e.into_error()))?;
        fs::sync(&file).map_err(|e| io_error(tmp, e))?;
        let bytes = fs::file_metadata(&file)
            .map_err(|e| io_error(tmp, e))?
            .len();
        Ok((row_groups, bytes))
    }
}

/// Puts the finished temporary file under its final name. Without `overwrite`, a hard link
/// refuses atomically to replace a file that appeared meanwhile; where the file system has no
/// hard links, the name is checked and the file renamed.
fn install(tmp: &Path, dest: &Path, overwrite: bool) -> Result<(), ExportError> {
    if !overwrite {
        match fs::hard_link(tmp, dest) {
            Ok(()) => return fs::remove_file(tmp).map_err(|e| io_error(tmp, e)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(ExportError::Exists {
                    path: dest.to_path_buf(),
                })
            }
            Err(_) if dest.symlink_metadata().is_ok() => {
                return Err(ExportError::Exists {
                    path: dest.to_path_buf(),
                })
            }
            Err(_) => {}
        }
    }
    fs::rename(tmp, dest).map_err(|e| io_error(dest, e))
}

/// Makes the new directory entry durable.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{format_mac, EndReason};
    use crate::store::{StoreWriter, WriterConfig};
    use crate::testing::sample;
    use crate::time::NANOS_PER_SEC;
    use parquet::basic::{LogicalType, Type as PhysicalType};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::statistics::Statistics;
    use parquet::record::Field;
    use std::fs;
    use std::fs::File;
    use std::net::{IpAddr, Ipv6Addr};

    const T0: Nanos = 1_767_225_600 * NANOS_PER_SEC; // 2026-01-01T00:00:00Z
    const HOUR: Nanos = 3600 * NANOS_PER_SEC;

    /// 10 records in the first hour (IPv4, one IPv6 without MACs), 3 in the third.
    fn records() -> Vec<FlowRecord> {
        let mut v = Vec::new();
        for i in 0..10u64 {
            let mut r = sample(i);
            // Reverse time order within the partition: the export sorts.
            r.first = T0 + (10 - i as i64) * NANOS_PER_SEC;
            r.last = r.first + 7;
            r.packets = u64::MAX - i; // past i64::MAX: the unsigned type must carry it
            if i == 3 {
                r.src = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
                r.dst = IpAddr::V6(Ipv6Addr::LOCALHOST);
                r.src_mac = None;
                r.dst_mac = None;
                r.end = EndReason::Rst;
                r.vlan = 4094;
                r.sport = 65535;
            }
            v.push(r);
        }
        for i in 0..3u64 {
            let mut r = sample(100 + i);
            r.first = T0 + 2 * HOUR + i as i64;
            r.last = r.first + 1;
            v.push(r);
        }
        v
    }

    fn store(dir: &Path, recs: &[FlowRecord]) -> Store {
        let mut w = StoreWriter::create(WriterConfig::new(dir)).unwrap();
        for r in recs {
            w.append(r).unwrap();
        }
        w.finish().unwrap();
        Store::open(dir).unwrap()
    }

    fn read_rows(path: &Path) -> Vec<Vec<(String, Field)>> {
        let reader = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
        reader
            .get_row_iter(None)
            .unwrap()
            .map(|row| {
                row.unwrap()
                    .get_column_iter()
                    .map(|(n, f)| (n.clone(), f.clone()))
                    .collect()
            })
            .collect()
    }

    /// [`records`] exported in row groups of 4: the directory (with the store and the output
    /// in `out`), the records, and what the export says it wrote.
    fn exported() -> (tempfile::TempDir, Vec<FlowRecord>, ParquetSummary) {
        let d = tempfile::tempdir().unwrap();
        let recs = records();
        let st = store(&d.path().join("store"), &recs);
        let opts = ParquetOptions {
            row_group_rows: 4,
            ..ParquetOptions::default()
        };
        let s =
            export_parquet_with(&st, None, None, &|_| true, &d.path().join("out"), &opts).unwrap();
        (d, recs, s)
    }

    #[test]
    fn one_file_per_partition_and_nothing_else() {
        let (d, _, s) = exported();
        assert_eq!(s.records, 13);
        let names: Vec<_> = s
            .files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "flows-2026-01-01T00-00Z.parquet",
                "flows-2026-01-01T02-00Z.parquet"
            ]
        );
        assert_eq!(s.files[0].records, 10);
        assert_eq!(s.files[0].row_groups, 3);
        assert_eq!(s.files[1].partition_start, T0 + 2 * HOUR);
        assert_eq!(
            s.bytes,
            s.files
                .iter()
                .map(|f| fs::metadata(&f.path).unwrap().len())
                .sum::<u64>()
        );
        // Nothing but the two files: no temporary left behind.
        assert_eq!(fs::read_dir(d.path().join("out")).unwrap().count(), 2);
    }

    #[test]
    fn columns_have_the_jsonl_names_and_logical_types() {
        let (_d, _, s) = exported();
        let reader = SerializedFileReader::new(File::open(&s.files[0].path).unwrap()).unwrap();
        let meta = reader.metadata();
        let schema = meta.file_metadata().schema_descr();
        let cols: Vec<_> = schema
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let jsonl = "first,last,proto,src,sport,dst,dport,vlan,inner_vlan,src_mac,dst_mac,\
                     packets,bytes,rev_packets,rev_bytes,tcp_flags,rev_tcp_flags,end,community_id,\
                     interface";
        assert_eq!(cols[..20].join(","), jsonl);
        assert_eq!(&cols[20..], ["src_addr", "dst_addr"]);
        let col = |name: &str| {
            schema
                .columns()
                .iter()
                .find(|c| c.name() == name)
                .unwrap()
                .clone()
        };
        assert!(
            col("first").logical_type_ref()
                == Some(&LogicalType::timestamp(
                    true,
                    parquet::basic::TimeUnit::NANOS
                ))
        );
        assert_eq!(
            col("bytes").logical_type_ref(),
            Some(&LogicalType::integer(64, false))
        );
        assert_eq!(
            col("dport").logical_type_ref(),
            Some(&LogicalType::integer(16, false))
        );
        assert_eq!(
            col("src_addr").physical_type(),
            PhysicalType::FIXED_LEN_BYTE_ARRAY
        );
        assert_eq!(col("src_addr").type_length(), 16);
        assert_eq!(
            col("src_mac").logical_type_ref(),
            Some(&LogicalType::String)
        );
    }

    #[test]
    fn row_groups_are_compressed_and_follow_each_other_in_time() {
        let (_d, _, s) = exported();
        let reader = SerializedFileReader::new(File::open(&s.files[0].path).unwrap()).unwrap();
        let meta = reader.metadata();
        assert_eq!(s.files[0].row_groups, 3);
        // Row-group statistics on time, sorted: the groups' ranges follow each other.
        let mut prev_max = Nanos::MIN;
        for rg in meta.row_groups() {
            // (The level is not recorded in the file.)
            assert!(rg
                .columns()
                .iter()
                .all(|c| matches!(c.compression(), Compression::ZSTD(_))));
            let Some(Statistics::Int64(st)) = rg.column(0).statistics() else {
                panic!("no statistics on first")
            };
            assert!(*st.min_opt().unwrap() > prev_max);
            prev_max = *st.max_opt().unwrap();
        }
        assert_eq!(prev_max, T0 + 10 * NANOS_PER_SEC);
    }

    #[test]
    fn rows_are_sorted_by_first_with_the_record_values() {
        let (_d, recs, s) = exported();
        let rows = read_rows(&s.files[0].path);
        assert_eq!(rows.len(), 10);
        // Sorted by first: the record written last (i = 9) comes first.
        let mut expect: Vec<_> = recs[..10].to_vec();
        expect.sort_by_key(|r| r.first);
        for (row, r) in rows.iter().zip(&expect) {
            let get = |name: &str| &row.iter().find(|(n, _)| n == name).unwrap().1;
            assert_eq!(get("first"), &Field::Long(r.first), "{row:?}");
            assert_eq!(get("packets"), &Field::ULong(r.packets));
            assert_eq!(get("sport"), &Field::UShort(r.sport));
            assert_eq!(get("vlan"), &Field::UShort(r.vlan));
            assert_eq!(get("proto"), &Field::UByte(r.proto));
            assert_eq!(get("src"), &Field::Str(r.src.to_string()));
            assert_eq!(get("end"), &Field::Str(r.end.as_str().into()));
            match r.src_mac {
                Some(m) => assert_eq!(get("src_mac"), &Field::Str(format_mac(&m))),
                None => assert_eq!(get("src_mac"), &Field::Null),
            }
            let Field::Bytes(addr) = get("dst_addr") else {
                panic!("dst_addr: {:?}", get("dst_addr"))
            };
            assert_eq!(addr.data(), ip16(r.dst));
        }
    }

    #[test]
    fn existing_files_are_refused_unless_overwriting() {
        let d = tempfile::tempdir().unwrap();
        let st = store(&d.path().join("store"), &records());
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        let taken = out.join(file_name(T0 + 2 * HOUR));
        fs::write(&taken, b"not mine").unwrap();
        let err = export_parquet(&st, None, None, &|_| true, &out).unwrap_err();
        assert!(
            matches!(&err, ExportError::Exists { path } if *path == taken),
            "{err}"
        );
        assert!(err.to_string().contains("--overwrite"));
        assert_eq!(fs::read(&taken).unwrap(), b"not mine");
        // Earlier partitions were written whole; no temporary is left.
        let mut names: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [file_name(T0), file_name(T0 + 2 * HOUR)]);

        let opts = ParquetOptions {
            overwrite: true,
            ..ParquetOptions::default()
        };
        let s = export_parquet_with(&st, None, None, &|_| true, &out, &opts).unwrap();
        assert_eq!(s.records, 13);
        assert_eq!(read_rows(&taken).len(), 3);
    }

    #[test]
    fn range_and_keep_choose_records_and_empty_partitions_make_no_file() {
        let d = tempfile::tempdir().unwrap();
        let st = store(&d.path().join("store"), &records());
        let out = d.path().join("out");
        let keep = |r: &FlowRecord| r.src.is_ipv4();
        let s = export_parquet(&st, None, Some(T0 + HOUR), &keep, &out).unwrap();
        assert_eq!(s.files.len(), 1);
        assert_eq!(s.records, 9);
        let s = export_parquet(
            &st,
            Some(T0 + 3 * HOUR),
            None,
            &|_| true,
            &d.path().join("none"),
        )
        .unwrap();
        assert!(s.files.is_empty());
        assert_eq!(s.records, 0);
    }

    #[test]
    fn bad_options_are_refused_before_writing() {
        let d = tempfile::tempdir().unwrap();
        let st = store(&d.path().join("store"), &records());
        let out = d.path().join("out");
        for opts in [
            ParquetOptions {
                row_group_rows: 0,
                ..ParquetOptions::default()
            },
            ParquetOptions {
                zstd_level: 99,
                ..ParquetOptions::default()
            },
        ] {
            let err = export_parquet_with(&st, None, None, &|_| true, &out, &opts).unwrap_err();
            assert!(matches!(err, ExportError::Option(_)), "{err}");
        }
        assert!(!out.exists());
    }
}
