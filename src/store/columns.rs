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

use super::summary;
use crate::record::{EndReason, FlowFields, FlowRecord, Mac};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

type Map<K> = HashMap<K, u32, foldhash::fast::FixedState>;

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

/// A dictionary column under construction: distinct values in order of first appearance, and
/// one index per use.
struct Dict<K, const W: usize> {
    ids: Map<K>,
    values: Vec<[u8; W]>,
    src_idx: Vec<u32>,
    dst_idx: Vec<u32>,
    /// Entry order for writing (ascending values) and each entry's rank in it.
    perm: Vec<u32>,
    rank: Vec<u32>,
}

impl<K: std::hash::Hash + Eq + Copy, const W: usize> Dict<K, W> {
    fn new() -> Self {
        Dict {
            ids: Map::default(),
            values: Vec::new(),
            src_idx: Vec::new(),
            dst_idx: Vec::new(),
            perm: Vec::new(),
            rank: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.ids.clear();
        self.values.clear();
        self.src_idx.clear();
        self.dst_idx.clear();
    }

    fn id(&mut self, key: K, bytes: [u8; W]) -> u32 {
        let next = self.values.len() as u32;
        let id = *self.ids.entry(key).or_insert(next);
        if id == next {
            self.values.push(bytes);
        }
        id
    }
}

trait PutDict {
    fn put_into(&mut self, out: &mut Vec<u8>);
}

impl<K, const W: usize> PutDict for Dict<K, W> {
    fn put_into(&mut self, out: &mut Vec<u8>) {
        if self.values.is_empty() {
            return;
        }
        let d = self.values.len();
        let w = index_width(d);
        out.extend_from_slice(&(d as u32).to_le_bytes());
        out.push(w as u8);
        // Ascending entries: neighbours share leading bytes (one network's addresses, one
        // vendor's MACs), which the planes below turn into runs; it also makes the dictionary
        // canonical, which the reader checks.
        self.perm.clear();
        self.perm.extend(0..d as u32);
        let values = &self.values;
        self.perm
            .sort_unstable_by_key(|&i| values.get(i as usize).copied().unwrap_or([0; W]));
        self.rank.clear();
        self.rank.resize(d, 0);
        for (new, &old) in self.perm.iter().enumerate() {
            if let Some(r) = self.rank.get_mut(old as usize) {
                *r = new as u32;
            }
        }
        for i in self.src_idx.iter_mut().chain(self.dst_idx.iter_mut()) {
            *i = self.rank.get(*i as usize).copied().unwrap_or(0);
        }
        // Byte-planar: all first bytes, then all second bytes... Addresses of one network
        // share leading bytes, which then form long runs.
        for b in 0..W {
            out.extend(
                self.perm
                    .iter()
                    .map(|&i| self.values.get(i as usize).map_or(0, |v| v[b])),
            );
        }
        // Indices byte-planar too: with more than 256 entries the high bytes change slowly.
        for idx in [&self.src_idx, &self.dst_idx] {
            for plane in 0..w {
                out.extend(idx.iter().map(|&i| (i >> (8 * plane)) as u8));
            }
        }
    }
}

/// Bytes per dictionary index: the fewest that can number `d` entries.
fn index_width(d: usize) -> usize {
    match d {
        0..=256 => 1,
        257..=65_536 => 2,
        _ => 3,
    }
}

/// Reusable buffers for encoding blocks: after the first few blocks, encoding allocates nothing.
pub struct ColumnEncoder {
    /// (first, arrival index): sorting these pairs is a stable sort by `first` that needs no
    /// scratch memory and touches no record.
    order: Vec<(i64, u32)>,
    /// The records in column order, so that each column pass reads memory sequentially.
    sorted: Vec<FlowRecord>,
    col: Vec<u8>,
    v4: Dict<u32, 4>,
    v6: Dict<u128, 16>,
    macs: Dict<u64, 6>,
}

impl Default for ColumnEncoder {
    fn default() -> Self {
        ColumnEncoder::new()
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Codec 4's fixed-width column: the width `w` (1 to 8 bytes, the fewest that hold the
/// largest value), then the values byte-planar (every value's low byte, then every value's
/// next byte...). High planes of small values are runs of zeros, which zstd all but removes.
/// No values: nothing at all.
fn put_planar<I: Iterator<Item = u64>>(col: &mut Vec<u8>, vals: impl Fn() -> I) {
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
fn get_planar(col: &[u8], count: usize, what: &str, vals: &mut Vec<u64>) -> Result<(), String> {
    vals.clear();
    if count == 0 {
        return if col.is_empty() {
            Ok(())
        } else {
            Err(format!("{what} column should be empty"))
        };
    }
    let (&w, planes) = col
        .split_first()
        .ok_or_else(|| format!("{what} column ends early"))?;
    if !(1..=8).contains(&w) {
        return Err(format!("{what} column: value width {w}, not 1 to 8"));
    }
    if planes.len() != usize::from(w) * count {
        return Err(format!(
            "{what} column of {} bytes, expected {} for {count} values of {w} bytes",
            col.len(),
            1 + usize::from(w) * count
        ));
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

fn mac_key(m: &Mac) -> u64 {
    let mut b = [0u8; 8];
    b[..6].copy_from_slice(m);
    u64::from_le_bytes(b)
}

impl ColumnEncoder {
    pub fn new() -> ColumnEncoder {
        ColumnEncoder {
            order: Vec::new(),
            sorted: Vec::new(),
            col: Vec::new(),
            v4: Dict::new(),
            v6: Dict::new(),
            macs: Dict::new(),
        }
    }

    /// Appends the column data of `recs` in `layout` to `out` (codecs 1 and 2 only for tests of
    /// old segments); `recs.len()` must be at most `MAX_BLOCK_RECORDS`
    /// (the caller checks). Also builds the address filter into `filter` and returns its probe
    /// count.
    pub fn encode(
        &mut self,
        recs: &[FlowRecord],
        layout: Layout,
        out: &mut Vec<u8>,
        filter: &mut Vec<u8>,
    ) -> u8 {
        let planar = layout == Layout::Codec4;
        // Sorting by `first` turns the first-time column into small non-negative deltas; ties
        // keep their order of arrival.
        self.order.clear();
        self.order
            .extend(recs.iter().enumerate().map(|(i, r)| (r.first, i as u32)));
        self.order.sort_unstable();
        self.sorted.clear();
        self.sorted.extend(
            self.order
                .iter()
                .filter_map(|&(_, i)| recs.get(i as usize))
                .cloned(),
        );
        let sorted = || self.sorted.iter();

        // Column 0: flags.
        let col = &mut self.col;
        col.clear();
        col.extend(sorted().map(|r| {
            let mut f = 0;
            if r.src.is_ipv6() {
                f |= F_SRC_V6;
            }
            if r.dst.is_ipv6() {
                f |= F_DST_V6;
            }
            if r.src_mac.is_some() {
                f |= F_SRC_MAC;
            }
            if r.dst_mac.is_some() {
                f |= F_DST_MAC;
            }
            f
        }));
        put_col(out, col);

        // Columns 1 and 2: first (base + deltas) and last − first, in the largest unit 10^e ns
        // that divides every delta and duration (pcap gives µs, so usually e = 3).
        let base = sorted().next().map(|r| r.first);
        let deltas = || {
            let mut p = base.unwrap_or(0);
            sorted().map(move |r| {
                let d = r.first.wrapping_sub(p) as u64;
                p = r.first;
                d
            })
        };
        let durations = || sorted().map(|r| r.last.wrapping_sub(r.first) as u64);
        let exp = time_exp(deltas().chain(durations()));
        let unit = 10u64.pow(u32::from(exp));
        col.clear();
        if let Some(base) = base {
            col.push(exp);
            col.extend_from_slice(&base.to_le_bytes());
            if planar {
                put_planar(col, || deltas().skip(1).map(|d| d / unit));
            } else {
                for d in deltas().skip(1) {
                    put_varint(col, d / unit);
                }
            }
        }
        put_col(out, col);
        col.clear();
        if planar {
            put_planar(col, || durations().map(|d| d / unit));
        } else {
            for d in durations() {
                put_varint(col, d / unit);
            }
        }
        put_col(out, col);

        // Column 3: protocol; 4-7: ports and VLANs, byte-planar (low bytes, then high bytes).
        col.clear();
        col.extend(sorted().map(|r| r.proto));
        put_col(out, col);
        let u16_cols: [fn(&FlowRecord) -> u16; 4] =
            [|r| r.sport, |r| r.dport, |r| r.vlan, |r| r.inner_vlan];
        for get in u16_cols {
            col.clear();
            col.extend(sorted().map(|r| get(r) as u8));
            col.extend(sorted().map(|r| (get(r) >> 8) as u8));
            put_col(out, col);
        }

        // Columns 8-10: address and MAC dictionaries.
        self.v4.clear();
        self.v6.clear();
        self.macs.clear();
        for r in &self.sorted {
            for (a, is_src) in [(&r.src, true), (&r.dst, false)] {
                match a {
                    IpAddr::V4(v4) => {
                        let id = self.v4.id(u32::from(*v4), v4.octets());
                        if is_src {
                            &mut self.v4.src_idx
                        } else {
                            &mut self.v4.dst_idx
                        }
                        .push(id);
                    }
                    IpAddr::V6(v6) => {
                        let id = self.v6.id(u128::from(*v6), v6.octets());
                        if is_src {
                            &mut self.v6.src_idx
                        } else {
                            &mut self.v6.dst_idx
                        }
                        .push(id);
                    }
                }
            }
            if let Some(m) = &r.src_mac {
                let id = self.macs.id(mac_key(m), *m);
                self.macs.src_idx.push(id);
            }
            if let Some(m) = &r.dst_mac {
                let id = self.macs.id(mac_key(m), *m);
                self.macs.dst_idx.push(id);
            }
        }
        for dict in [
            &mut self.v4 as &mut dyn PutDict,
            &mut self.v6,
            &mut self.macs,
        ] {
            self.col.clear();
            dict.put_into(&mut self.col);
            put_col(out, &self.col);
        }

        // Columns 11-14: counters as LEB128 varints; 15-17: TCP flags and end reason.
        let col = &mut self.col;
        let sorted = || self.sorted.iter();
        let counters: [fn(&FlowRecord) -> u64; 4] = [
            |r| r.packets,
            |r| r.bytes,
            |r| r.rev_packets,
            |r| r.rev_bytes,
        ];
        for get in counters {
            col.clear();
            if planar {
                put_planar(col, || sorted().map(get));
            } else {
                for r in sorted() {
                    put_varint(col, get(r));
                }
            }
            put_col(out, col);
        }
        let bytes: [fn(&FlowRecord) -> u8; 3] =
            [|r| r.tcp_flags, |r| r.rev_tcp_flags, |r| r.end as u8];
        for get in bytes {
            col.clear();
            col.extend(sorted().map(get));
            put_col(out, col);
        }
        // Column 18 (codec 2): the capture interface index, byte-planar like the ports. One
        // interface gives a column of zeros, which zstd reduces to a few bytes.
        if layout.with_interface() {
            col.clear();
            col.extend(sorted().map(|r| r.interface as u8));
            col.extend(sorted().map(|r| (r.interface >> 8) as u8));
            put_col(out, col);
        }

        // The filter covers the distinct addresses, which the dictionaries already found.
        let keys = self
            .v4
            .values
            .iter()
            .map(|v| Ipv4Addr::from(*v).to_ipv6_mapped().octets())
            .chain(self.v6.values.iter().copied());
        summary::build(keys, self.v4.values.len() + self.v6.values.len(), filter)
    }
}

/// The largest e ≤ 9 such that 10^e divides every value.
fn time_exp(values: impl Iterator<Item = u64>) -> u8 {
    let mut exp = MAX_TIME_EXP;
    let mut unit = 10u64.pow(u32::from(exp));
    for v in values {
        while exp > 0 && v % unit != 0 {
            exp -= 1;
            unit /= 10;
        }
        if exp == 0 {
            break;
        }
    }
    exp
}

fn put_col(out: &mut Vec<u8>, col: &[u8]) {
    // A column is at most MAX_BYTES_PER_RECORD × 65 536 bytes, far inside u32.
    out.extend_from_slice(&(col.len() as u32).to_le_bytes());
    out.extend_from_slice(col);
}

/// A cursor over one column that refuses to read past its end.
struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cur<'a> {
    fn new(b: &'a [u8], what: &'static str) -> Cur<'a> {
        Cur { b, pos: 0, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| format!("{} column ends early", self.what))?;
        let s = self.b.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let s = self.take(4)?;
        Ok(s.try_into().map_or(0, u32::from_le_bytes))
    }

    fn i64(&mut self) -> Result<i64, String> {
        let s = self.take(8)?;
        Ok(s.try_into().map_or(0, i64::from_le_bytes))
    }

    /// One LEB128 varint. Counters, time deltas and durations are mostly 1 to 4 bytes: with 8
    /// bytes left in the column, a varint of up to 8 bytes is read from one little-endian word
    /// without a loop or a branch per byte; the rest (near the column's end, or longer) take
    /// the general path.
    #[inline(always)]
    fn varint(&mut self) -> Result<u64, String> {
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
    fn varint_long(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.b.get(self.pos) else {
                return Err(format!("{} column ends early", self.what));
            };
            self.pos += 1;
            // The tenth byte may carry only the top bit of a u64.
            if i == 9 && b > 1 {
                return Err(format!("{} column: varint overflows 64 bits", self.what));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("{} column: varint longer than 10 bytes", self.what))
    }

    fn end(&self) -> Result<(), String> {
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err(format!(
                "{} column has {} bytes left over",
                self.what,
                self.b.len() - self.pos
            ))
        }
    }
}

/// Decodes a dictionary column into `entries` (one value per entry, in stored order) and
/// `src`/`dst` (one entry index per use), checking the entry count and index width against the
/// number of uses, the entries' ascending order, and every index against the entry count.
fn decode_dict<const W: usize>(
    b: &[u8],
    uses: (usize, usize),
    what: &'static str,
    entries: &mut Vec<[u8; W]>,
    src: &mut Vec<u32>,
    dst: &mut Vec<u32>,
) -> Result<(), String> {
    entries.clear();
    src.clear();
    dst.clear();
    let (srcs, dsts) = uses;
    let total = srcs + dsts;
    if total == 0 {
        if !b.is_empty() {
            return Err(format!("{what} column should be empty"));
        }
        return Ok(());
    }
    let mut c = Cur::new(b, what);
    let d = c.u32()? as usize;
    if d == 0 || d > total {
        return Err(format!(
            "{what} dictionary of {d} entries for {total} values"
        ));
    }
    let w = usize::from(c.u8()?);
    if w != index_width(d) {
        return Err(format!(
            "{what} index width {w}, expected {}",
            index_width(d)
        ));
    }
    // d ≤ uses ≤ 2 × MAX_BLOCK_RECORDS: these products are small, and `d` is bounded by the
    // record count, not by the column's claim alone.
    let planes = c.take(d * W)?;
    let src_planes = c.take(srcs * w)?;
    let dst_planes = c.take(dsts * w)?;
    c.end()?;
    // Entries are byte-planar: byte b of entry i is at b × d + i.
    let planes: [&[u8]; W] =
        std::array::from_fn(|b| planes.get(b * d..(b + 1) * d).unwrap_or_default());
    entries.extend((0..d).map(|i| std::array::from_fn(|b| planes[b].get(i).copied().unwrap_or(0))));
    if entries.windows(2).any(|p| p.first() >= p.get(1)) {
        return Err(format!("{what} dictionary entries not in ascending order"));
    }
    for (ids, planes, count) in [(src, src_planes, srcs), (dst, dst_planes, dsts)] {
        // Indices are byte-planar too, low bytes first.
        ids.extend(planes.iter().take(count).map(|&x| u32::from(x)));
        for (p, plane) in planes.chunks_exact(count.max(1)).enumerate().skip(1) {
            for (id, &x) in ids.iter_mut().zip(plane) {
                *id |= u32::from(x) << (8 * p);
            }
        }
        // One pass that vectorizes; the position is looked for only when something is wrong.
        if ids.iter().fold(0, |m, &id| m.max(id)) as usize >= d {
            let i = ids.iter().position(|&id| id as usize >= d).unwrap_or(0);
            return Err(format!("{what} index {i} is outside the dictionary"));
        }
    }
    Ok(())
}

/// Which columns a reader wants: bit `i` for column `i`, in payload order (`docs/FORMAT.md`
/// § "Column data"). A scan loads the columns its filter reads first, and the others only for
/// blocks where something matched; with codec 4 each column is its own zstd frame, so columns
/// left out are not even decompressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ColumnSet(u32);

impl ColumnSet {
    pub const NONE: ColumnSet = ColumnSet(0);
    pub const FLAGS: ColumnSet = ColumnSet(1);
    /// `first` and `last`: the duration column needs the first-time column's unit and values.
    pub const TIMES: ColumnSet = ColumnSet(1 << 1 | 1 << 2);
    pub const PROTO: ColumnSet = ColumnSet(1 << 3);
    pub const SPORT: ColumnSet = ColumnSet(1 << 4);
    pub const DPORT: ColumnSet = ColumnSet(1 << 5);
    pub const VLAN: ColumnSet = ColumnSet(1 << 6);
    pub const INNER_VLAN: ColumnSet = ColumnSet(1 << 7);
    /// Both address dictionaries: which one a record's address is in depends on its flags.
    pub const ADDRS: ColumnSet = ColumnSet(1 << 8 | 1 << 9);
    pub const MACS: ColumnSet = ColumnSet(1 << 10);
    /// `packets` and `rev_packets`.
    pub const PACKETS: ColumnSet = ColumnSet(1 << 11 | 1 << 13);
    /// `bytes` and `rev_bytes`.
    pub const BYTES: ColumnSet = ColumnSet(1 << 12 | 1 << 14);
    pub const TCP_FLAGS: ColumnSet = ColumnSet(1 << 15 | 1 << 16);
    pub const END: ColumnSet = ColumnSet(1 << 17);
    pub const INTERFACE: ColumnSet = ColumnSet(1 << 18);
    pub const ALL: ColumnSet = ColumnSet((1 << COLUMNS) - 1);

    pub const fn union(self, other: ColumnSet) -> ColumnSet {
        ColumnSet(self.0 | other.0)
    }

    pub fn contains(self, other: ColumnSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn without(self, other: ColumnSet) -> ColumnSet {
        ColumnSet(self.0 & !other.0)
    }

    fn meets(self, other: ColumnSet) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether column `i` is in the set.
    pub fn has(self, i: usize) -> bool {
        i < COLUMNS && self.0 >> i & 1 == 1
    }
}

impl std::ops::BitOr for ColumnSet {
    type Output = ColumnSet;
    fn bitor(self, other: ColumnSet) -> ColumnSet {
        self.union(other)
    }
}

impl std::ops::BitOrAssign for ColumnSet {
    fn bitor_assign(&mut self, other: ColumnSet) {
        *self = self.union(other);
    }
}

/// A record whose MAC column says it has no MAC.
const NO_MAC: u32 = u32::MAX;

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

/// Splits column data (each column behind its `u32` length) into its columns; codec 1 has no
/// interface column (left empty).
pub fn split_columns(raw: &[u8], layout: Layout) -> Result<[&[u8]; COLUMNS], String> {
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
/// error): the whole path at once, for tests.
#[cfg(test)]
pub fn decode(
    raw: &[u8],
    n: usize,
    layout: Layout,
    out: &mut Vec<FlowRecord>,
) -> Result<(), String> {
    let cols = split_columns(raw, layout)?;
    let mut d = ColumnDecoder::new();
    d.reset(n);
    d.load(&cols, ColumnSet::ALL, layout)?;
    d.assemble(0..n, out);
    Ok(())
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
    ) -> Result<(), String> {
        let todo = want.union(ColumnSet::FLAGS).without(self.loaded);
        if todo.is_empty() {
            return Ok(());
        }
        let n = self.n;
        let col = |i: usize| cols.get(i).copied().unwrap_or_default();
        let fixed = |i: usize, width: usize, what: &str| {
            let c = col(i);
            if c.len() == n * width {
                Ok(c)
            } else {
                Err(format!(
                    "{what} column of {} bytes, expected {} for {n} records",
                    c.len(),
                    n * width
                ))
            }
        };
        if todo.meets(ColumnSet::FLAGS) {
            let flags = fixed(0, 1, "flags")?;
            if let Some(i) = flags.iter().position(|&f| f & !F_KNOWN != 0) {
                return Err(format!("record {i}: unknown flag bits"));
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
                    return Err(format!("record {i}: unknown end reason"));
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
    ) -> Result<(), String> {
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
                    return Err(format!("time unit exponent {exp} above {MAX_TIME_EXP}"));
                }
                let mut prev = t.i64()?;
                let unit = 10u64.pow(u32::from(exp));
                *first = prev;
                for (i, slot) in rest.iter_mut().enumerate() {
                    let delta = t.varint()?.checked_mul(unit);
                    prev = delta
                        .and_then(|d| prev.checked_add_unsigned(d))
                        .ok_or_else(|| format!("record {}: first time overflows", i + 1))?;
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
                .ok_or_else(|| format!("record {i}: duration overflows"))?;
            *last = first.wrapping_add(dur as i64);
        }
        d.end()
    }

    /// Codec 4's columns 1 and 2: the unit and base as before, deltas and durations planar.
    fn decode_planar_times(&mut self, firsts: &[u8], durations: &[u8]) -> Result<(), String> {
        let n = self.n;
        self.firsts.clear();
        self.lasts.clear();
        let mut unit = 1;
        if n > 0 {
            let mut t = Cur::new(firsts, "first time");
            let exp = t.u8()?;
            if exp > MAX_TIME_EXP {
                return Err(format!("time unit exponent {exp} above {MAX_TIME_EXP}"));
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
                    .ok_or_else(|| format!("record {}: first time overflows", i + 1))?;
                self.firsts.push(prev);
            }
        } else if !firsts.is_empty() {
            return Err("first time column should be empty".into());
        }
        get_planar(durations, n, "duration", &mut self.scratch)?;
        self.lasts.reserve(n);
        for (i, (&d, &first)) in self.scratch.iter().zip(&self.firsts).enumerate() {
            let dur = d
                .checked_mul(unit)
                .ok_or_else(|| format!("record {i}: duration overflows"))?;
            self.lasts.push(first.wrapping_add(dur as i64));
        }
        Ok(())
    }

    /// Record `i` of the block, read from the loaded columns; fields of columns not loaded
    /// read as zero or absent.
    pub fn row(&self, i: usize) -> Row<'_> {
        Row { d: self, i }
    }

    /// Appends records `rows` (a range within the block) to `out`, built from the loaded
    /// columns, which must be all of them. Callers take ranges small enough for the records to
    /// stay in cache until they are used. The records are filled in three passes of a few
    /// columns each: one pass over all nineteen columns keeps more iterators than there are
    /// registers, and spilling them cost more than walking the (cached) records three times.
    pub fn assemble(&self, rows: std::ops::Range<usize>, out: &mut Vec<FlowRecord>) {
        fn part<'v, T>(v: &'v [T], rows: &std::ops::Range<usize>) -> &'v [T] {
            v.get(rows.clone()).unwrap_or_default()
        }
        let [sport, dport, vlan, ivlan, iface] = &self.u16s;
        let [tf, rtf, end] = &self.small;
        let [pk, by, rpk, rby] = &self.counters;
        let start = out.len();
        // Times, counters and the one-byte columns.
        let times = part(&self.firsts, &rows)
            .iter()
            .zip(part(&self.lasts, &rows));
        let counters = part(pk, &rows)
            .iter()
            .zip(part(by, &rows))
            .zip(part(rpk, &rows))
            .zip(part(rby, &rows));
        let bytes = part(&self.proto, &rows)
            .iter()
            .zip(part(tf, &rows))
            .zip(part(rtf, &rows))
            .zip(part(end, &rows));
        out.extend(times.zip(counters).zip(bytes).map(
            |(((&first, &last), (((&pk, &by), &rpk), &rby)), (((&proto, &tf), &rtf), &end))| {
                record_core(first, last, proto, [pk, by, rpk, rby], [tf, rtf, end])
            },
        ));
        let built = out.get_mut(start..).unwrap_or_default();
        // Addresses and MACs.
        let addrs = part(&self.addr[0], &rows)
            .iter()
            .zip(part(&self.addr[1], &rows));
        let macs = part(&self.mac[0], &rows)
            .iter()
            .zip(part(&self.mac[1], &rows));
        for ((r, &f), ((&src, &dst), (&src_mac, &dst_mac))) in built
            .iter_mut()
            .zip(part(&self.flags, &rows))
            .zip(addrs.zip(macs))
        {
            r.src = self.addr_of(f & F_SRC_V6 != 0, src);
            r.dst = self.addr_of(f & F_DST_V6 != 0, dst);
            r.src_mac = self.mac_of(src_mac);
            r.dst_mac = self.mac_of(dst_mac);
        }
        // Ports, VLANs, interface.
        let u16s = part(sport, &rows)
            .iter()
            .zip(part(dport, &rows))
            .zip(part(vlan, &rows))
            .zip(part(ivlan, &rows))
            .zip(part(iface, &rows));
        for (r, ((((&sport, &dport), &vlan), &ivlan), &iface)) in built.iter_mut().zip(u16s) {
            r.sport = sport;
            r.dport = dport;
            r.vlan = vlan;
            r.inner_vlan = ivlan;
            r.interface = iface;
        }
    }

    /// [`ColumnDecoder::assemble`] for chosen records (ascending indexes within the block),
    /// in the same three passes.
    pub fn assemble_rows(&self, rows: &[u32], out: &mut Vec<FlowRecord>) {
        fn at<T: Copy + Default>(v: &[T], i: u32) -> T {
            v.get(i as usize).copied().unwrap_or_default()
        }
        let [sport, dport, vlan, ivlan, iface] = &self.u16s;
        let [tf, rtf, end] = &self.small;
        let [pk, by, rpk, rby] = &self.counters;
        let start = out.len();
        out.extend(rows.iter().map(|&i| {
            record_core(
                at(&self.firsts, i),
                at(&self.lasts, i),
                at(&self.proto, i),
                [at(pk, i), at(by, i), at(rpk, i), at(rby, i)],
                [at(tf, i), at(rtf, i), at(end, i)],
            )
        }));
        let built = out.get_mut(start..).unwrap_or_default();
        for (r, &i) in built.iter_mut().zip(rows) {
            let f = at(&self.flags, i);
            r.src = self.addr_of(f & F_SRC_V6 != 0, at(&self.addr[0], i));
            r.dst = self.addr_of(f & F_DST_V6 != 0, at(&self.addr[1], i));
            r.src_mac = self.mac_of(self.mac[0].get(i as usize).copied().unwrap_or(NO_MAC));
            r.dst_mac = self.mac_of(self.mac[1].get(i as usize).copied().unwrap_or(NO_MAC));
        }
        for (r, &i) in built.iter_mut().zip(rows) {
            r.sport = at(sport, i);
            r.dport = at(dport, i);
            r.vlan = at(vlan, i);
            r.inner_vlan = at(ivlan, i);
            r.interface = at(iface, i);
        }
    }

    /// The loaded columns as slices of `records()` values, for filters that test a whole block
    /// at once; a column not loaded is empty.
    pub fn flags(&self) -> &[u8] {
        &self.flags
    }
    pub fn protos(&self) -> &[u8] {
        &self.proto
    }
    pub fn sports(&self) -> &[u16] {
        &self.u16s[0]
    }
    pub fn dports(&self) -> &[u16] {
        &self.u16s[1]
    }
    pub fn vlans(&self) -> &[u16] {
        &self.u16s[2]
    }
    pub fn inner_vlans(&self) -> &[u16] {
        &self.u16s[3]
    }
    /// Packets, bytes, reverse packets, reverse bytes.
    pub fn counters(&self) -> [&[u64]; 4] {
        let [a, b, c, d] = &self.counters;
        [a, b, c, d]
    }
    /// TCP flags, reverse TCP flags, end reason codes.
    pub fn flag_bytes(&self) -> [&[u8]; 3] {
        let [a, b, c] = &self.small;
        [a, b, c]
    }

    /// Sets `out[i]` to whether record `i`'s source (`src`) or destination address passes
    /// `pred`, which is asked once per distinct address of the block, not once per record.
    pub fn addr_hits(&self, src: bool, pred: impl Fn(IpAddr) -> bool, out: &mut [bool]) {
        let v4: Vec<bool> = self
            .v4
            .iter()
            .map(|e| pred(IpAddr::V4(Ipv4Addr::from(*e))))
            .collect();
        let v6: Vec<bool> = self
            .v6
            .iter()
            .map(|e| pred(IpAddr::V6(Ipv6Addr::from(*e))))
            .collect();
        let (ids, bit) = if src {
            (&self.addr[0], F_SRC_V6)
        } else {
            (&self.addr[1], F_DST_V6)
        };
        for ((o, &id), &f) in out.iter_mut().zip(ids).zip(&self.flags) {
            let hits = if f & bit != 0 { &v6 } else { &v4 };
            *o = hits.get(id as usize).copied().unwrap_or(false);
        }
    }

    /// [`ColumnDecoder::addr_hits`] for the source or destination MAC (`None`: no MAC).
    pub fn mac_hits(&self, src: bool, pred: impl Fn(Option<Mac>) -> bool, out: &mut [bool]) {
        let hits: Vec<bool> = self.macs.iter().map(|m| pred(Some(*m))).collect();
        let none = pred(None);
        let ids = if src { &self.mac[0] } else { &self.mac[1] };
        for (o, &id) in out.iter_mut().zip(ids) {
            *o = hits.get(id as usize).copied().unwrap_or(none);
        }
    }

    #[inline]
    fn addr_of(&self, v6: bool, id: u32) -> IpAddr {
        if v6 {
            IpAddr::V6(Ipv6Addr::from(
                self.v6.get(id as usize).copied().unwrap_or([0; 16]),
            ))
        } else {
            IpAddr::V4(Ipv4Addr::from(
                self.v4.get(id as usize).copied().unwrap_or([0; 4]),
            ))
        }
    }

    #[inline]
    fn mac_of(&self, id: u32) -> Option<Mac> {
        self.macs.get(id as usize).copied()
    }
}

/// The first of the three passes that build a record: times, counters and the one-byte
/// columns; the addresses, MACs, ports, VLANs and interface are filled in by the later passes.
#[inline(always)]
fn record_core(
    first: i64,
    last: i64,
    proto: u8,
    [packets, bytes, rev_packets, rev_bytes]: [u64; 4],
    [tcp_flags, rev_tcp_flags, end]: [u8; 3],
) -> FlowRecord {
    FlowRecord {
        first,
        last,
        proto,
        src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        sport: 0,
        dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        dport: 0,
        vlan: 0,
        inner_vlan: 0,
        interface: 0,
        src_mac: None,
        dst_mac: None,
        packets,
        bytes,
        rev_packets,
        rev_bytes,
        tcp_flags,
        rev_tcp_flags,
        end: EndReason::from_u8(end).unwrap_or(EndReason::Idle),
    }
}

/// One record of a decoded block, read in place from its columns.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    d: &'a ColumnDecoder,
    i: usize,
}

impl Row<'_> {
    fn flag(&self, bit: u8) -> bool {
        self.d.flags.get(self.i).is_some_and(|f| f & bit != 0)
    }

    fn at<T: Copy + Default>(&self, v: &[T]) -> T {
        v.get(self.i).copied().unwrap_or_default()
    }

    fn addr(&self, side: usize, v6_bit: u8) -> IpAddr {
        self.d
            .addr_of(self.flag(v6_bit), self.at(&self.d.addr[side]))
    }

    fn mac(&self, side: usize) -> Option<Mac> {
        self.d
            .mac_of(self.d.mac[side].get(self.i).copied().unwrap_or(NO_MAC))
    }
}

impl FlowFields for Row<'_> {
    fn first(&self) -> i64 {
        self.at(&self.d.firsts)
    }
    fn last(&self) -> i64 {
        self.at(&self.d.lasts)
    }
    fn proto(&self) -> u8 {
        self.at(&self.d.proto)
    }
    fn src(&self) -> IpAddr {
        self.addr(0, F_SRC_V6)
    }
    fn dst(&self) -> IpAddr {
        self.addr(1, F_DST_V6)
    }
    fn sport(&self) -> u16 {
        self.at(&self.d.u16s[0])
    }
    fn dport(&self) -> u16 {
        self.at(&self.d.u16s[1])
    }
    fn vlan(&self) -> u16 {
        self.at(&self.d.u16s[2])
    }
    fn inner_vlan(&self) -> u16 {
        self.at(&self.d.u16s[3])
    }
    fn src_mac(&self) -> Option<Mac> {
        self.mac(0)
    }
    fn dst_mac(&self) -> Option<Mac> {
        self.mac(1)
    }
    fn packets(&self) -> u64 {
        self.at(&self.d.counters[0])
    }
    fn bytes(&self) -> u64 {
        self.at(&self.d.counters[1])
    }
    fn rev_packets(&self) -> u64 {
        self.at(&self.d.counters[2])
    }
    fn rev_bytes(&self) -> u64 {
        self.at(&self.d.counters[3])
    }
    fn tcp_flags(&self) -> u8 {
        self.at(&self.d.small[0])
    }
    fn rev_tcp_flags(&self) -> u8 {
        self.at(&self.d.small[1])
    }
    fn end(&self) -> EndReason {
        EndReason::from_u8(self.at(&self.d.small[2])).unwrap_or(EndReason::Idle)
    }
}
