//! What is wrong with a block's column data. `column` names the column as the messages do
//! ("source port", "IPv4", "payload" for the lengths in front of the columns).

use super::MAX_TIME_EXP;

/// Small and `Copy` on purpose: it is the error type of the per-value reads of a column scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ColumnError {
    #[error("{column} column ends early")]
    EndsEarly { column: &'static str },
    #[error("{column} column has {left} bytes left over")]
    LeftOver { column: &'static str, left: usize },
    #[error("{column} column should be empty")]
    NotEmpty { column: &'static str },
    #[error("{column} column: varint overflows 64 bits")]
    VarintOverflow { column: &'static str },
    #[error("{column} column: varint longer than 10 bytes")]
    VarintTooLong { column: &'static str },
    /// A column of one fixed-size value per record whose length is not that.
    #[error("{column} column of {len} bytes, expected {expected} for {records} records")]
    FixedLength {
        column: &'static str,
        len: usize,
        expected: usize,
        records: usize,
    },
    #[error("{column} column: value width {width}, not 1 to 8")]
    PlanarWidth { column: &'static str, width: u8 },
    #[error(
        "{column} column of {len} bytes, expected {expected} for {values} values of {width} bytes"
    )]
    PlanarLength {
        column: &'static str,
        len: usize,
        expected: usize,
        values: usize,
        width: u8,
    },
    #[error("{column} dictionary of {entries} entries for {values} values")]
    DictionarySize {
        column: &'static str,
        entries: usize,
        values: usize,
    },
    #[error("{column} index width {width}, expected {expected}")]
    IndexWidth {
        column: &'static str,
        width: usize,
        expected: usize,
    },
    #[error("{column} dictionary entries not in ascending order")]
    DictionaryOrder { column: &'static str },
    #[error("{column} index {index} is outside the dictionary")]
    IndexOutside { column: &'static str, index: usize },
    #[error("record {record}: unknown flag bits")]
    UnknownFlags { record: usize },
    #[error("record {record}: unknown end reason")]
    UnknownEndReason { record: usize },
    #[error("time unit exponent {exp} above {MAX_TIME_EXP}")]
    TimeExponent { exp: u8 },
    #[error("record {record}: first time overflows")]
    FirstTimeOverflow { record: usize },
    #[error("record {record}: duration overflows")]
    DurationOverflow { record: usize },
}
