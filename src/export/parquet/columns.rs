//! The file schema, and how a row group of records fills its columns.

use crate::record::{community_id, FlowRecord, InterfaceLabels, Mac};
use parquet::data_type::{
    ByteArray, ByteArrayType, DataType, FixedLenByteArray, FixedLenByteArrayType, Int32Type,
    Int64Type,
};
use parquet::errors::ParquetError;
use parquet::file::writer::{SerializedColumnWriter, SerializedRowGroupWriter};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::IpAddr;

/// The file schema. The first 18 columns are the JSON-lines fields of `flowkeep query --format
/// jsonl`, in the same order; `src_addr`/`dst_addr` follow: the addresses as 16 bytes (IPv4 as
/// `::ffff:a.b.c.d`), which sort and compare as numbers and load into an engine's IP type.
/// Column order is a promise to readers: add at the end, never rename or reorder.
pub const SCHEMA: &str = "message flow {
  required int64 first (TIMESTAMP(NANOS,true));
  required int64 last (TIMESTAMP(NANOS,true));
  required int32 proto (INTEGER(8,false));
  required binary src (STRING);
  required int32 sport (INTEGER(16,false));
  required binary dst (STRING);
  required int32 dport (INTEGER(16,false));
  required int32 vlan (INTEGER(16,false));
  required int32 inner_vlan (INTEGER(16,false));
  optional binary src_mac (STRING);
  optional binary dst_mac (STRING);
  required int64 packets (INTEGER(64,false));
  required int64 bytes (INTEGER(64,false));
  required int64 rev_packets (INTEGER(64,false));
  required int64 rev_bytes (INTEGER(64,false));
  required int32 tcp_flags (INTEGER(8,false));
  required int32 rev_tcp_flags (INTEGER(8,false));
  required binary end (STRING);
  required binary community_id (STRING);
  required binary interface (STRING);
  required fixed_len_byte_array(16) src_addr;
  required fixed_len_byte_array(16) dst_addr;
}";

/// Column buffers reused from row group to row group: filling a column allocates nothing per
/// record (text goes into one buffer per column and row group, values are slices of it).
#[derive(Default)]
pub(super) struct Buffers {
    ints64: Vec<i64>,
    ints32: Vec<i32>,
    text: Vec<u8>,
    spans: Vec<(usize, usize)>,
    defs: Vec<i16>,
    strings: Vec<ByteArray>,
    fixed: Vec<FixedLenByteArray>,
}

type Rg<'a> = SerializedRowGroupWriter<'a, BufWriter<File>>;

impl Buffers {
    /// One call per column, in [`SCHEMA`] order.
    pub(super) fn write_row_group(
        &mut self,
        rg: &mut Rg<'_>,
        rows: &[FlowRecord],
        labels: &InterfaceLabels,
    ) -> Result<(), ParquetError> {
        self.int64(rg, rows, |r| r.first)?;
        self.int64(rg, rows, |r| r.last)?;
        self.int32(rg, rows, |r| r.proto.into())?;
        self.text(rg, rows, false, |r, out| push_ip(out, r.src))?;
        self.int32(rg, rows, |r| r.sport.into())?;
        self.text(rg, rows, false, |r, out| push_ip(out, r.dst))?;
        self.int32(rg, rows, |r| r.dport.into())?;
        self.int32(rg, rows, |r| r.vlan.into())?;
        self.int32(rg, rows, |r| r.inner_vlan.into())?;
        self.text(rg, rows, true, |r, out| push_mac(out, r.src_mac.as_ref()))?;
        self.text(rg, rows, true, |r, out| push_mac(out, r.dst_mac.as_ref()))?;
        // UINT_64 is stored in INT64's bits, as the Parquet spec has it; readers that know the
        // logical type see the full unsigned range.
        self.int64(rg, rows, |r| r.packets as i64)?;
        self.int64(rg, rows, |r| r.bytes as i64)?;
        self.int64(rg, rows, |r| r.rev_packets as i64)?;
        self.int64(rg, rows, |r| r.rev_bytes as i64)?;
        self.int32(rg, rows, |r| r.tcp_flags.into())?;
        self.int32(rg, rows, |r| r.rev_tcp_flags.into())?;
        self.text(rg, rows, false, |r, out| {
            out.extend_from_slice(r.end.as_str().as_bytes());
            true
        })?;
        self.text(rg, rows, false, |r, out| {
            out.extend_from_slice(community_id::of_record(r).as_bytes());
            true
        })?;
        self.text(rg, rows, false, |r, out| {
            out.extend_from_slice(labels.label(r.interface).as_bytes());
            true
        })?;
        self.addr16(rg, rows, |r| r.src)?;
        self.addr16(rg, rows, |r| r.dst)?;
        Ok(())
    }

    fn int64(
        &mut self,
        rg: &mut Rg<'_>,
        rows: &[FlowRecord],
        value: impl Fn(&FlowRecord) -> i64,
    ) -> Result<(), ParquetError> {
        self.ints64.clear();
        self.ints64.extend(rows.iter().map(value));
        write_column::<Int64Type>(rg, &self.ints64, None)
    }

    fn int32(
        &mut self,
        rg: &mut Rg<'_>,
        rows: &[FlowRecord],
        value: impl Fn(&FlowRecord) -> i32,
    ) -> Result<(), ParquetError> {
        self.ints32.clear();
        self.ints32.extend(rows.iter().map(value));
        write_column::<Int32Type>(rg, &self.ints32, None)
    }

    /// `value` appends the text and says whether there is one (false: null, for `optional`).
    fn text(
        &mut self,
        rg: &mut Rg<'_>,
        rows: &[FlowRecord],
        optional: bool,
        value: impl Fn(&FlowRecord, &mut Vec<u8>) -> bool,
    ) -> Result<(), ParquetError> {
        self.text.clear();
        self.spans.clear();
        self.defs.clear();
        for r in rows {
            let start = self.text.len();
            let present = value(r, &mut self.text);
            self.defs.push(i16::from(present));
            if present {
                self.spans.push((start, self.text.len() - start));
            }
        }
        let whole = ByteArray::from(std::mem::take(&mut self.text));
        self.strings.clear();
        self.strings.extend(
            self.spans
                .iter()
                .map(|&(start, len)| whole.slice(start, len)),
        );
        let defs = optional.then_some(&self.defs[..]);
        let result = write_column::<ByteArrayType>(rg, &self.strings, defs);
        self.strings.clear();
        result
    }

    fn addr16(
        &mut self,
        rg: &mut Rg<'_>,
        rows: &[FlowRecord],
        addr: impl Fn(&FlowRecord) -> IpAddr,
    ) -> Result<(), ParquetError> {
        self.text.clear();
        for r in rows {
            self.text.extend_from_slice(&ip16(addr(r)));
        }
        let whole = ByteArray::from(std::mem::take(&mut self.text));
        self.fixed.clear();
        self.fixed
            .extend((0..rows.len()).map(|i| FixedLenByteArray::from(whole.slice(i * 16, 16))));
        let result = write_column::<FixedLenByteArrayType>(rg, &self.fixed, None);
        self.fixed.clear();
        result
    }
}

fn write_column<T: DataType>(
    rg: &mut Rg<'_>,
    values: &[T::T],
    defs: Option<&[i16]>,
) -> Result<(), ParquetError> {
    let mut col: SerializedColumnWriter<'_> = rg
        .next_column()?
        .ok_or_else(|| ParquetError::General("more columns written than the schema has".into()))?;
    col.typed::<T>().write_batch(values, defs, None)?;
    col.close()
}

/// IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`), so one 16-byte column holds both families.
pub fn ip16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) -> bool {
    // Display of an address formats on the stack; writing to a Vec cannot fail.
    let _ = write!(out, "{ip}");
    true
}

/// `00:1b:21:0a:0b:ff`, as `flowkeep query` prints it.
fn push_mac(out: &mut Vec<u8>, mac: Option<&Mac>) -> bool {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let Some(mac) = mac else { return false };
    for (i, b) in mac.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0x0f)]);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms() {
        let mut out = Vec::new();
        assert!(push_mac(&mut out, Some(&[0, 0x1b, 0x21, 0xa, 0xb, 0xff])));
        assert_eq!(out, b"00:1b:21:0a:0b:ff");
        assert!(!push_mac(&mut out, None));
        assert_eq!(
            ip16("1.2.3.4".parse().unwrap())[10..],
            [0xff, 0xff, 1, 2, 3, 4]
        );
    }
}
