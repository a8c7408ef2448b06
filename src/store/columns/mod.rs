//! The columnar layout of a block's records before compression (`docs/FORMAT.md` § "Column
//! data"; [`Layout`] names the three codecs' variants). Records are sorted by `first` and
//! written column by column: like values next to like values is what lets zstd find the
//! repetition that rows hide (ports, protocols, VLANs, flags), times become small deltas, and
//! addresses and MACs, which repeat a lot within a block, become small indices into per-block
//! dictionaries.
//!
//! Reading is by column: a [`ColumnDecoder`] loads the columns a reader asks for
//! ([`ColumnSet`]), and a query tests its filter on them ([`Row`], or whole columns) before
//! any record is built. Decoding trusts nothing: every column's length is checked against the
//! record count and the flags before it is read, every index against its dictionary, every
//! time against overflow.

mod cursor;
mod decoder;
mod dictionary;
mod encoder;
mod error;
mod planar;
mod set;

pub use decoder::ColumnDecoder;
pub use decoder::Row;
pub use encoder::ColumnEncoder;
pub use error::ColumnError;
pub use set::ColumnSet;

#[cfg(any(test, feature = "fuzzing"))]
use crate::record::FlowRecord;
use cursor::Cur;

/// Columns in a codec-1 payload (format 2), each preceded by its `u32` byte length.
pub const COLUMNS_V1: usize = 18;
/// Columns in a codec-2 or codec-4 payload (formats 3 and 4): codec 1's, then the capture
/// interface index.
pub const COLUMNS: usize = 19;
/// Upper bound of the uncompressed payload per record (sum over the columns of a record's
/// largest contribution: 1 flags + 10 + 10 time varints + 1 proto + 8 ports/VLANs + 2 × (16 + 3)
/// addresses + 2 × (6 + 3) MACs + 4 × 10 counters + 3 flag/reason bytes + 2 interface = 131),
/// rounded up. Codec 4 stays within it: its six fixed-width columns take at most 8 bytes per
/// value where a varint takes 10, which pays for their six width bytes from the first record.
pub const MAX_BYTES_PER_RECORD: usize = 136;
/// Fixed part of the payload: column lengths, the time column's exponent and base, and the
/// three dictionaries' counts and widths.
pub const FIXED_BYTES: usize = COLUMNS * 4 + 9 + 3 * 5;

pub const F_SRC_V6: u8 = 0x01;
pub const F_DST_V6: u8 = 0x02;
pub const F_SRC_MAC: u8 = 0x04;
pub const F_DST_MAC: u8 = 0x08;
const F_KNOWN: u8 = F_SRC_V6 | F_DST_V6 | F_SRC_MAC | F_DST_MAC;
/// Times are stored in units of 10^e ns, e ≤ 9 (whole seconds).
const MAX_TIME_EXP: u8 = 9;

/// How a block's columns are laid out, by the codec that names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Codec 1 (format 2): 18 columns, no interface; times and counters as varints.
    Codec1,
    /// Codec 2 (format 3): codec 1's columns and the interface column.
    Codec2,
    /// Codec 4 (format 4): codec 2's columns, but times and counters are fixed-width per
    /// block and byte-planar, which a reader unpacks in a few instructions per value where a
    /// varint takes a few dozen.
    Codec4,
}

impl Layout {
    fn with_interface(self) -> bool {
        self != Layout::Codec1
    }
}

/// Splits column data (each column behind its `u32` length) into its columns; codec 1 has no
/// interface column (left empty).
pub fn split_columns(raw: &[u8], layout: Layout) -> Result<[&[u8]; COLUMNS], ColumnError> {
    let mut c = Cur::new(raw, "payload");
    let mut cols: [&[u8]; COLUMNS] = [&[]; COLUMNS];
    let count = if layout.with_interface() {
        COLUMNS
    } else {
        COLUMNS_V1
    };
    for col in cols.iter_mut().take(count) {
        let len = c.u32()? as usize;
        *col = c.take(len)?;
    }
    c.end()?;
    Ok(cols)
}

/// Decodes the column data of `n` records, appending them to `out` (which the caller clears on
/// error): the whole path at once, for tests and the fuzz targets.
#[cfg(any(test, feature = "fuzzing"))]
pub fn decode(
    raw: &[u8],
    n: usize,
    layout: Layout,
    out: &mut Vec<FlowRecord>,
) -> Result<(), ColumnError> {
    let cols = split_columns(raw, layout)?;
    let mut d = ColumnDecoder::new();
    d.reset(n);
    d.load(&cols, ColumnSet::ALL, layout)?;
    d.assemble(0..n, out);
    Ok(())
}
