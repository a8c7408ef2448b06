//! Codec 4's fixed-width, byte-planar columns of integers.

use super::ColumnError;

/// Codec 4's fixed-width column: the width `w` (1 to 8 bytes, the fewest that hold the
/// largest value), then the values byte-planar (every value's low byte, then every value's
/// next byte...). High planes of small values are runs of zeros, which zstd all but removes.
/// No values: nothing at all.
pub(super) fn put_planar<I: Iterator<Item = u64>>(col: &mut Vec<u8>, vals: impl Fn() -> I) {
    let Some(max) = vals().max() else {
        return;
    };
    let w = (64 - max.leading_zeros()).div_ceil(8).max(1);
    col.push(w as u8);
    for p in 0..w {
        col.extend(vals().map(|v| (v >> (8 * p)) as u8));
    }
}

/// Reads a column written by [`put_planar`] holding `count` values into `vals`.
pub(super) fn get_planar(
    col: &[u8],
    count: usize,
    what: &'static str,
    vals: &mut Vec<u64>,
) -> Result<(), ColumnError> {
    vals.clear();
    if count == 0 {
        return if col.is_empty() {
            Ok(())
        } else {
            Err(ColumnError::NotEmpty { column: what })
        };
    }
    let (&w, planes) = col
        .split_first()
        .ok_or(ColumnError::EndsEarly { column: what })?;
    if !(1..=8).contains(&w) {
        return Err(ColumnError::PlanarWidth {
            column: what,
            width: w,
        });
    }
    if planes.len() != usize::from(w) * count {
        return Err(ColumnError::PlanarLength {
            column: what,
            len: col.len(),
            expected: 1 + usize::from(w) * count,
            values: count,
            width: w,
        });
    }
    // The low plane sets the values, the others add their bytes: no zeroing pass first.
    let mut planes = planes.chunks_exact(count);
    vals.extend(
        planes
            .next()
            .unwrap_or_default()
            .iter()
            .map(|&b| u64::from(b)),
    );
    for (p, plane) in planes.enumerate() {
        let shift = 8 * (p as u32 + 1);
        for (v, &b) in vals.iter_mut().zip(plane) {
            *v |= u64::from(b) << shift;
        }
    }
    Ok(())
}
