//! Bounds-checked reading of one column's bytes.

use super::ColumnError;

/// A cursor over one column that refuses to read past its end.
pub(super) struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cur<'a> {
    pub(super) fn new(b: &'a [u8], what: &'static str) -> Cur<'a> {
        Cur { b, pos: 0, what }
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], ColumnError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(ColumnError::EndsEarly { column: self.what })?;
        let s = self.b.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(s)
    }

    pub(super) fn u8(&mut self) -> Result<u8, ColumnError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    pub(super) fn u32(&mut self) -> Result<u32, ColumnError> {
        let s = self.take(4)?;
        Ok(s.try_into().map_or(0, u32::from_le_bytes))
    }

    pub(super) fn i64(&mut self) -> Result<i64, ColumnError> {
        let s = self.take(8)?;
        Ok(s.try_into().map_or(0, i64::from_le_bytes))
    }

    /// One LEB128 varint. Counters, time deltas and durations are mostly 1 to 4 bytes: with 8
    /// bytes left in the column, a varint of up to 8 bytes is read from one little-endian word
    /// without a loop or a branch per byte; the rest (near the column's end, or longer) take
    /// the general path.
    #[inline(always)]
    pub(super) fn varint(&mut self) -> Result<u64, ColumnError> {
        let word = self
            .b
            .get(self.pos..)
            .and_then(|rest| rest.first_chunk::<8>())
            .map(|w| u64::from_le_bytes(*w));
        let Some(word) = word else {
            return self.varint_long();
        };
        // Each column is decoded in its own loop, so this branch is well predicted where one
        // byte is the rule (packet counts, time deltas of a busy link).
        if word & 0x80 == 0 {
            self.pos += 1;
            return Ok(word & 0x7f);
        }
        // The lowest byte whose top bit is clear ends the varint.
        let stops = !word & 0x8080_8080_8080_8080;
        if stops == 0 {
            return self.varint_long();
        }
        self.pos += (stops.trailing_zeros() / 8 + 1) as usize;
        // Every bit up to the stop bit: the varint's bytes, and no more.
        let x = word & (stops ^ stops.wrapping_sub(1)) & 0x7f7f_7f7f_7f7f_7f7f;
        // Squeeze the 7-bit groups together: pairs, then quads, then the two halves.
        let x = (x & 0x007f_007f_007f_007f) | ((x & 0x7f00_7f00_7f00_7f00) >> 1);
        let x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x3fff_0000_3fff_0000) >> 2);
        Ok((x & 0x0000_0000_0fff_ffff) | ((x & 0x0fff_ffff_0000_0000) >> 4))
    }

    #[cold]
    fn varint_long(&mut self) -> Result<u64, ColumnError> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.b.get(self.pos) else {
                return Err(ColumnError::EndsEarly { column: self.what });
            };
            self.pos += 1;
            // The tenth byte may carry only the top bit of a u64.
            if i == 9 && b > 1 {
                return Err(ColumnError::VarintOverflow { column: self.what });
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ColumnError::VarintTooLong { column: self.what })
    }

    pub(super) fn end(&self) -> Result<(), ColumnError> {
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err(ColumnError::LeftOver {
                column: self.what,
                left: self.b.len() - self.pos,
            })
        }
    }
}
