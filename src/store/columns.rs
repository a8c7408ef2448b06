//! The columnar layout of a block's records before compression (codec 1, `docs/FORMAT.md`
//! § "Block payload"). Records are sorted by `first` and written column by column: like values
//! next to like values is what lets zstd find the repetition that rows hide (ports, protocols,
//! VLANs, flags), times become small deltas, and addresses and MACs, which repeat a lot within a
//! block, become small indices into per-block dictionaries.
//!
//! Decoding trusts nothing: every column's length is checked against the record count and the
//! flags before it is read, every index against its dictionary, every time against overflow.

use super::summary;
use crate::record::{EndReason, FlowRecord, Mac};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Columns in a codec-1 payload (format 2), each preceded by its `u32` byte length.
pub const COLUMNS_V1: usize = 18;
/// Columns in a codec-2 payload (format 3): codec 1's, then the capture interface index.
pub const COLUMNS: usize = 19;
/// Upper bound of the uncompressed payload per record (sum over the columns of a record's
/// largest contribution: 1 flags + 10 + 10 time varints + 1 proto + 8 ports/VLANs + 2 × (16 + 3)
/// addresses + 2 × (6 + 3) MACs + 4 × 10 counters + 3 flag/reason bytes + 2 interface = 131),
/// rounded up.
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

    /// Appends the codec-2 payload of `recs` to `out` (codec 1's columns when `with_interface`
    /// is false, for tests of old segments); `recs.len()` must be at most `MAX_BLOCK_RECORDS`
    /// (the caller checks). Also builds the address filter into `filter` and returns its probe
    /// count.
    pub fn encode(
        &mut self,
        recs: &[FlowRecord],
        with_interface: bool,
        out: &mut Vec<u8>,
        filter: &mut Vec<u8>,
    ) -> u8 {
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
            for d in deltas().skip(1) {
                put_varint(col, d / unit);
            }
        }
        put_col(out, col);
        col.clear();
        for d in durations() {
            put_varint(col, d / unit);
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
            for r in sorted() {
                put_varint(col, get(r));
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
        if with_interface {
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
    entries.resize(d, [0; W]);
    for (b, plane) in planes.chunks_exact(d).enumerate() {
        for (e, &x) in entries.iter_mut().zip(plane) {
            if let Some(slot) = e.get_mut(b) {
                *slot = x;
            }
        }
    }
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
        if let Some(i) = ids.iter().position(|&id| id as usize >= d) {
            return Err(format!("{what} index {i} is outside the dictionary"));
        }
    }
    Ok(())
}

/// Reusable buffers for decoding blocks: the varint columns and dictionaries are decoded (and
/// checked) column by column into these, then records are assembled in one pass with no
/// per-record checks left to do. After the first block, decoding allocates nothing.
#[derive(Default)]
pub struct ColumnDecoder {
    firsts: Vec<i64>,
    lasts: Vec<i64>,
    counters: [Vec<u64>; 4],
    v4: Vec<[u8; 4]>,
    v6: Vec<[u8; 16]>,
    macs: Vec<Mac>,
    /// Dictionary indices per use: IPv4 src/dst, IPv6 src/dst, MAC src/dst.
    ids: [Vec<u32>; 6],
    /// Codec 1's missing interface column.
    zeros: Vec<u8>,
}

/// Decodes a payload of `n` records, appending them to `out` (which the caller clears on
/// error): codec 1 (format 2, no interface column: every record's interface is 0) or codec 2.
/// Allocates its scratch buffers; [`ColumnDecoder::decode`] reuses them.
pub fn decode(
    raw: &[u8],
    n: usize,
    with_interface: bool,
    out: &mut Vec<FlowRecord>,
) -> Result<(), String> {
    ColumnDecoder::default().decode(raw, n, with_interface, out)
}

impl ColumnDecoder {
    pub fn new() -> ColumnDecoder {
        ColumnDecoder::default()
    }

    /// Decodes a payload of `n` records, appending them to `out`; see [`decode`]. Nothing is
    /// appended unless the whole payload is valid.
    pub fn decode(
        &mut self,
        raw: &[u8],
        n: usize,
        with_interface: bool,
        out: &mut Vec<FlowRecord>,
    ) -> Result<(), String> {
        let mut c = Cur::new(raw, "payload");
        let mut cols: [&[u8]; COLUMNS] = [&[]; COLUMNS];
        let count = if with_interface { COLUMNS } else { COLUMNS_V1 };
        for col in cols.iter_mut().take(count) {
            let len = c.u32()? as usize;
            *col = c.take(len)?;
        }
        c.end()?;
        let [flags, firsts, durations, proto, sport, dport, vlan, ivlan, v4, v6, macs, pk, by, rpk, rby, tf, rtf, end, iface] =
            cols;
        let fixed = |col: &[u8], width: usize, what: &str| {
            if col.len() == n * width {
                Ok(())
            } else {
                Err(format!(
                    "{what} column of {} bytes, expected {} for {n} records",
                    col.len(),
                    n * width
                ))
            }
        };
        fixed(flags, 1, "flags")?;
        fixed(proto, 1, "protocol")?;
        for (col, what) in [
            (sport, "source port"),
            (dport, "destination port"),
            (vlan, "VLAN"),
            (ivlan, "inner VLAN"),
        ] {
            fixed(col, 2, what)?;
        }
        if with_interface {
            fixed(iface, 2, "interface")?;
        }
        for (col, what) in [
            (tf, "TCP flags"),
            (rtf, "reverse TCP flags"),
            (end, "end reason"),
        ] {
            fixed(col, 1, what)?;
        }
        if let Some(i) = flags.iter().position(|&f| f & !F_KNOWN != 0) {
            return Err(format!("record {i}: unknown flag bits"));
        }
        // Uses of each dictionary, counted in one pass: [src v6, dst v6, src MAC, dst MAC].
        let mut set = [0usize; 4];
        for &f in flags {
            for (bit, s) in set.iter_mut().enumerate() {
                *s += usize::from(f >> bit & 1);
            }
        }
        let [s6, d6, sm, dm] = set;
        let [i_s4, i_d4, i_s6, i_d6, i_sm, i_dm] = &mut self.ids;
        decode_dict(v4, (n - s6, n - d6), "IPv4", &mut self.v4, i_s4, i_d4)?;
        decode_dict(v6, (s6, d6), "IPv6", &mut self.v6, i_s6, i_d6)?;
        decode_dict(macs, (sm, dm), "MAC", &mut self.macs, i_sm, i_dm)?;
        if let Some(i) = end.iter().position(|&e| EndReason::from_u8(e).is_none()) {
            return Err(format!("record {i}: unknown end reason"));
        }
        self.decode_times(firsts, durations, n)?;
        for ((col, what), vals) in [
            (pk, "packets"),
            (by, "bytes"),
            (rpk, "reverse packets"),
            (rby, "reverse bytes"),
        ]
        .into_iter()
        .zip(&mut self.counters)
        {
            // Written in place: a push would check the capacity and store the length per value.
            vals.clear();
            vals.resize(n, 0);
            let mut c = Cur::new(col, what);
            for v in vals.iter_mut() {
                *v = c.varint()?;
            }
            c.end()?;
        }
        if !with_interface {
            self.zeros.clear();
            self.zeros.resize(2 * n, 0);
        }
        self.assemble(
            n,
            [flags, proto, sport, dport, vlan, ivlan, iface, tf, rtf, end],
            &self.zeros,
            out,
        );
        Ok(())
    }

    /// Columns 1 and 2 into absolute `first` and `last` times, every step checked for overflow.
    fn decode_times(&mut self, firsts: &[u8], durations: &[u8], n: usize) -> Result<(), String> {
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

    /// Builds the records from checked columns: lengths, indices and end reasons were all
    /// verified, so the fallbacks below are never taken and no per-record error is possible.
    /// Every column is walked by its own iterator, which leaves no bounds check in the loop.
    fn assemble<'a>(
        &self,
        n: usize,
        cols: [&'a [u8]; 10],
        zeros: &'a [u8],
        out: &mut Vec<FlowRecord>,
    ) {
        let [flags, proto, sport, dport, vlan, ivlan, iface, tf, rtf, end] = cols;
        // Byte-planar u16 columns: n low bytes, then n high bytes.
        let u16s = |col: &'a [u8]| {
            let (lo, hi) = col.split_at(n.min(col.len()));
            lo.iter()
                .zip(hi)
                .map(|(&lo, &hi)| u16::from(lo) | u16::from(hi) << 8)
        };
        // Codec 1 has no interface column: every record's is 0.
        let iface = if iface.is_empty() { zeros } else { iface };
        let bytes = flags.iter().zip(proto).zip(tf).zip(rtf).zip(end);
        let ports = u16s(sport).zip(u16s(dport));
        let vlans = u16s(vlan).zip(u16s(ivlan)).zip(u16s(iface));
        let times = self.firsts.iter().zip(&self.lasts);
        let [pk, by, rpk, rby] = &self.counters;
        let counters = pk.iter().zip(by).zip(rpk).zip(rby);
        let [s4, d4, s6, d6, sm, dm] = &self.ids;
        let (mut s4, mut d4, mut s6, mut d6) = (s4.iter(), d4.iter(), s6.iter(), d6.iter());
        let (mut sm, mut dm) = (sm.iter(), dm.iter());
        let addr = |v6: bool, i4: &mut std::slice::Iter<u32>, i6: &mut std::slice::Iter<u32>| {
            if v6 {
                let e = i6.next().and_then(|&id| self.v6.get(id as usize));
                IpAddr::V6(Ipv6Addr::from(e.copied().unwrap_or([0; 16])))
            } else {
                let e = i4.next().and_then(|&id| self.v4.get(id as usize));
                IpAddr::V4(Ipv4Addr::from(e.copied().unwrap_or([0; 4])))
            }
        };
        let mac = |present: bool, ids: &mut std::slice::Iter<u32>| {
            if present {
                ids.next()
                    .and_then(|&id| self.macs.get(id as usize))
                    .copied()
            } else {
                None
            }
        };
        out.reserve(n);
        for (
            (
                ((((((&f, &proto), &tf), &rtf), &end), (sport, dport)), ((vlan, ivlan), iface)),
                (&first, &last),
            ),
            (((&pk, &by), &rpk), &rby),
        ) in bytes.zip(ports).zip(vlans).zip(times).zip(counters)
        {
            out.push(FlowRecord {
                first,
                last,
                proto,
                src: addr(f & F_SRC_V6 != 0, &mut s4, &mut s6),
                sport,
                dst: addr(f & F_DST_V6 != 0, &mut d4, &mut d6),
                dport,
                vlan,
                inner_vlan: ivlan,
                interface: iface,
                src_mac: mac(f & F_SRC_MAC != 0, &mut sm),
                dst_mac: mac(f & F_DST_MAC != 0, &mut dm),
                packets: pk,
                bytes: by,
                rev_packets: rpk,
                rev_bytes: rby,
                tcp_flags: tf,
                rev_tcp_flags: rtf,
                end: EndReason::from_u8(end).unwrap_or(EndReason::Idle),
            });
        }
    }
}
