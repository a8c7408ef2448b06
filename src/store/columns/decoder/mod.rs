//! Column data into typed per-column buffers, checked whole as each column is loaded, and
//! records built from them.

mod assemble;
mod row;
mod views;

pub use row::Row;

use super::dictionary::decode_dict;
use super::planar::get_planar;
use super::{
    ColumnError, ColumnSet, Cur, Layout, COLUMNS, F_DST_MAC, F_DST_V6, F_KNOWN, F_SRC_MAC,
    F_SRC_V6, MAX_TIME_EXP,
};
use crate::record::{EndReason, Mac};

/// A record whose MAC column says it has no MAC.
pub(super) const NO_MAC: u32 = u32::MAX;

/// A block's columns decoded into typed, reused buffers. Columns are loaded on demand (see
/// [`ColumnSet`]); every column is checked whole when it is loaded (its length against the
/// record count and flags, every index against its dictionary, every time against overflow),
/// so reading a loaded column's values has no error path left. After the first block,
/// decoding allocates nothing.
#[derive(Default)]
pub struct ColumnDecoder {
    n: usize,
    loaded: ColumnSet,
    /// Uses of each dictionary, from the flags: [src v6, dst v6, src MAC, dst MAC].
    uses: [usize; 4],
    flags: Vec<u8>,
    proto: Vec<u8>,
    /// Source port, destination port, VLAN, inner VLAN, interface.
    u16s: [Vec<u16>; 5],
    firsts: Vec<i64>,
    lasts: Vec<i64>,
    /// Packets, bytes, reverse packets, reverse bytes.
    counters: [Vec<u64>; 4],
    /// TCP flags, reverse TCP flags, end reason (checked to be a known one).
    small: [Vec<u8>; 3],
    v4: Vec<[u8; 4]>,
    v6: Vec<[u8; 16]>,
    macs: Vec<Mac>,
    /// Dictionary indices per use, as stored: IPv4 src/dst, IPv6 src/dst, MAC src/dst.
    ids: [Vec<u32>; 6],
    /// Per record, its source and destination address's entry: in `v6` when its flags say so,
    /// else in `v4`.
    addr: [Vec<u32>; 2],
    /// Per record, its source and destination MAC's entry in `macs`, or `NO_MAC`.
    mac: [Vec<u32>; 2],
    /// Time deltas and durations before they become times.
    scratch: Vec<u64>,
}

impl ColumnDecoder {
    pub fn new() -> ColumnDecoder {
        ColumnDecoder::default()
    }

    /// Starts a block of `n` records, with no column loaded.
    pub fn reset(&mut self, n: usize) {
        self.n = n;
        self.loaded = ColumnSet::NONE;
        // Emptied (which frees nothing) so that a column not loaded reads as zero, never as
        // the previous block's values.
        for v in [&mut self.flags, &mut self.proto]
            .into_iter()
            .chain(&mut self.small)
        {
            v.clear();
        }
        self.u16s.iter_mut().for_each(Vec::clear);
        self.counters.iter_mut().for_each(Vec::clear);
        self.addr
            .iter_mut()
            .chain(&mut self.mac)
            .for_each(Vec::clear);
        self.firsts.clear();
        self.lasts.clear();
    }

    pub fn records(&self) -> usize {
        self.n
    }

    pub fn loaded(&self) -> ColumnSet {
        self.loaded
    }

    /// Decodes and checks the columns of `want` not loaded yet, and the flags, which every
    /// other column's reading depends on. `cols[i]` holds column `i`'s bytes; only the columns
    /// being loaded are looked at. On error the block must be dropped whole.
    pub fn load(
        &mut self,
        cols: &[&[u8]; COLUMNS],
        want: ColumnSet,
        layout: Layout,
    ) -> Result<(), ColumnError> {
        let todo = want.union(ColumnSet::FLAGS).without(self.loaded);
        if todo.is_empty() {
            return Ok(());
        }
        let n = self.n;
        let col = |i: usize| cols.get(i).copied().unwrap_or_default();
        let fixed = |i: usize, width: usize, what: &'static str| {
            let c = col(i);
            if c.len() == n * width {
                Ok(c)
            } else {
                Err(ColumnError::FixedLength {
                    column: what,
                    len: c.len(),
                    expected: n * width,
                    records: n,
                })
            }
        };
        if todo.meets(ColumnSet::FLAGS) {
            let flags = fixed(0, 1, "flags")?;
            if let Some(i) = flags.iter().position(|&f| f & !F_KNOWN != 0) {
                return Err(ColumnError::UnknownFlags { record: i });
            }
            // Uses of each dictionary, counted in one pass.
            let mut uses = [0usize; 4];
            for &f in flags {
                for (bit, u) in uses.iter_mut().enumerate() {
                    *u += usize::from(f >> bit & 1);
                }
            }
            self.uses = uses;
            self.flags.clear();
            self.flags.extend_from_slice(flags);
        }
        if todo.meets(ColumnSet::TIMES) {
            self.decode_times(col(1), col(2), layout)?;
        }
        if todo.meets(ColumnSet::PROTO) {
            let proto = fixed(3, 1, "protocol")?;
            self.proto.clear();
            self.proto.extend_from_slice(proto);
        }
        for (k, (i, what)) in [
            (4, "source port"),
            (5, "destination port"),
            (6, "VLAN"),
            (7, "inner VLAN"),
            (18, "interface"),
        ]
        .into_iter()
        .enumerate()
        {
            if !todo.has(i) {
                continue;
            }
            let vals = &mut self.u16s[k];
            vals.clear();
            if i == 18 && !layout.with_interface() {
                // Codec 1 has no interface column: every record's is 0.
                vals.resize(n, 0);
                continue;
            }
            // Byte-planar: n low bytes, then n high bytes.
            let (lo, hi) = fixed(i, 2, what)?.split_at(n);
            vals.extend(
                lo.iter()
                    .zip(hi)
                    .map(|(&lo, &hi)| u16::from(lo) | u16::from(hi) << 8),
            );
        }
        if todo.meets(ColumnSet::ADDRS) {
            let [s6, d6, ..] = self.uses;
            let [i_s4, i_d4, i_s6, i_d6, ..] = &mut self.ids;
            decode_dict(col(8), (n - s6, n - d6), "IPv4", &mut self.v4, i_s4, i_d4)?;
            decode_dict(col(9), (s6, d6), "IPv6", &mut self.v6, i_s6, i_d6)?;
            for (side, bit, v4_ids, v6_ids) in
                [(0, F_SRC_V6, &*i_s4, &*i_s6), (1, F_DST_V6, i_d4, i_d6)]
            {
                let out = &mut self.addr[side];
                out.clear();
                // One family on this side, the usual case: the indices are the column.
                if v6_ids.is_empty() || v4_ids.is_empty() {
                    out.extend_from_slice(if v6_ids.is_empty() { v4_ids } else { v6_ids });
                    continue;
                }
                let (mut v4_ids, mut v6_ids) = (v4_ids.iter(), v6_ids.iter());
                // The use counts came from these flags, so each `next` finds its index.
                out.extend(self.flags.iter().map(|&f| {
                    if f & bit != 0 {
                        v6_ids.next()
                    } else {
                        v4_ids.next()
                    }
                    .copied()
                    .unwrap_or(0)
                }));
            }
        }
        if todo.meets(ColumnSet::MACS) {
            let [.., sm, dm] = self.uses;
            let [.., i_sm, i_dm] = &mut self.ids;
            decode_dict(col(10), (sm, dm), "MAC", &mut self.macs, i_sm, i_dm)?;
            for (side, bit, ids) in [(0, F_SRC_MAC, &*i_sm), (1, F_DST_MAC, i_dm)] {
                let out = &mut self.mac[side];
                out.clear();
                // Every record has this MAC, the usual case: the indices are the column.
                if ids.len() == n {
                    out.extend_from_slice(ids);
                    continue;
                }
                let mut ids = ids.iter();
                out.extend(self.flags.iter().map(|&f| {
                    if f & bit != 0 {
                        ids.next().copied().unwrap_or(NO_MAC)
                    } else {
                        NO_MAC
                    }
                }));
            }
        }
        for (k, what) in ["packets", "bytes", "reverse packets", "reverse bytes"]
            .into_iter()
            .enumerate()
        {
            if !todo.has(11 + k) {
                continue;
            }
            let vals = &mut self.counters[k];
            if layout == Layout::Codec4 {
                get_planar(col(11 + k), n, what, vals)?;
                continue;
            }
            // Written in place: a push would check the capacity and store the length per value.
            vals.clear();
            vals.resize(n, 0);
            let mut c = Cur::new(col(11 + k), what);
            for v in vals.iter_mut() {
                *v = c.varint()?;
            }
            c.end()?;
        }
        for (k, what) in ["TCP flags", "reverse TCP flags", "end reason"]
            .into_iter()
            .enumerate()
        {
            if !todo.has(15 + k) {
                continue;
            }
            let vals = fixed(15 + k, 1, what)?;
            if k == 2 {
                if let Some(i) = vals.iter().position(|&e| EndReason::from_u8(e).is_none()) {
                    return Err(ColumnError::UnknownEndReason { record: i });
                }
            }
            self.small[k].clear();
            self.small[k].extend_from_slice(vals);
        }
        self.loaded = self.loaded.union(todo);
        Ok(())
    }

    /// Columns 1 and 2 into absolute `first` and `last` times, every step checked for overflow.
    fn decode_times(
        &mut self,
        firsts: &[u8],
        durations: &[u8],
        layout: Layout,
    ) -> Result<(), ColumnError> {
        if layout == Layout::Codec4 {
            return self.decode_planar_times(firsts, durations);
        }
        let n = self.n;
        self.firsts.clear();
        self.lasts.clear();
        self.firsts.resize(n, 0);
        self.lasts.resize(n, 0);
        let mut t = Cur::new(firsts, "first time");
        let unit = match self.firsts.split_first_mut() {
            None => 1,
            Some((first, rest)) => {
                let exp = t.u8()?;
                if exp > MAX_TIME_EXP {
                    return Err(ColumnError::TimeExponent { exp });
                }
                let mut prev = t.i64()?;
                let unit = 10u64.pow(u32::from(exp));
                *first = prev;
                for (i, slot) in rest.iter_mut().enumerate() {
                    let delta = t.varint()?.checked_mul(unit);
                    prev = delta
                        .and_then(|d| prev.checked_add_unsigned(d))
                        .ok_or(ColumnError::FirstTimeOverflow { record: i + 1 })?;
                    *slot = prev;
                }
                unit
            }
        };
        t.end()?;
        let mut d = Cur::new(durations, "duration");
        for (i, (last, &first)) in self.lasts.iter_mut().zip(&self.firsts).enumerate() {
            let dur = d
                .varint()?
                .checked_mul(unit)
                .ok_or(ColumnError::DurationOverflow { record: i })?;
            *last = first.wrapping_add(dur as i64);
        }
        d.end()
    }

    /// Codec 4's columns 1 and 2: the unit and base as before, deltas and durations planar.
    fn decode_planar_times(&mut self, firsts: &[u8], durations: &[u8]) -> Result<(), ColumnError> {
        let n = self.n;
        self.firsts.clear();
        self.lasts.clear();
        let mut unit = 1;
        if n > 0 {
            let mut t = Cur::new(firsts, "first time");
            let exp = t.u8()?;
            if exp > MAX_TIME_EXP {
                return Err(ColumnError::TimeExponent { exp });
            }
            unit = 10u64.pow(u32::from(exp));
            let mut prev = t.i64()?;
            let deltas = firsts.get(9..).unwrap_or_default();
            get_planar(deltas, n - 1, "first time", &mut self.scratch)?;
            self.firsts.reserve(n);
            self.firsts.push(prev);
            for (i, &d) in self.scratch.iter().enumerate() {
                prev = d
                    .checked_mul(unit)
                    .and_then(|d| prev.checked_add_unsigned(d))
                    .ok_or(ColumnError::FirstTimeOverflow { record: i + 1 })?;
                self.firsts.push(prev);
            }
        } else if !firsts.is_empty() {
            return Err(ColumnError::NotEmpty {
                column: "first time",
            });
        }
        get_planar(durations, n, "duration", &mut self.scratch)?;
        self.lasts.reserve(n);
        for (i, (&d, &first)) in self.scratch.iter().zip(&self.firsts).enumerate() {
            let dur = d
                .checked_mul(unit)
                .ok_or(ColumnError::DurationOverflow { record: i })?;
            self.lasts.push(first.wrapping_add(dur as i64));
        }
        Ok(())
    }
}
