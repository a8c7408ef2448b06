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

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
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

/// A decoded dictionary column: entries and the src/dst index planes, all checked.
struct DictCol<'a, const W: usize> {
    d: usize,
    w: usize,
    entries: &'a [u8],
    src: &'a [u8],
    dst: &'a [u8],
}

impl<'a, const W: usize> DictCol<'a, W> {
    fn parse(
        b: &'a [u8],
        srcs: usize,
        dsts: usize,
        what: &'static str,
    ) -> Result<DictCol<'a, W>, String> {
        let uses = srcs + dsts;
        if uses == 0 {
            if !b.is_empty() {
                return Err(format!("{what} column should be empty"));
            }
            return Ok(DictCol {
                d: 0,
                w: 1,
                entries: &[],
                src: &[],
                dst: &[],
            });
        }
        let mut c = Cur::new(b, what);
        let d = c.u32()? as usize;
        if d == 0 || d > uses {
            return Err(format!(
                "{what} dictionary of {d} entries for {uses} values"
            ));
        }
        let w = usize::from(c.u8()?);
        if w != index_width(d) {
            return Err(format!(
                "{what} index width {w}, expected {}",
                index_width(d)
            ));
        }
        // d ≤ uses ≤ 2 × MAX_BLOCK_RECORDS: these products are small.
        let entries = c.take(d * W)?;
        let src = c.take(srcs * w)?;
        let dst = c.take(dsts * w)?;
        c.end()?;
        let col = DictCol {
            d,
            w,
            entries,
            src,
            dst,
        };
        for i in 1..d {
            if col.entry(i - 1) >= col.entry(i) {
                return Err(format!("{what} dictionary entries not in ascending order"));
            }
        }
        for (plane, count) in [(src, srcs), (dst, dsts)] {
            for i in 0..count {
                if col.index(plane, count, i) >= d {
                    return Err(format!("{what} index {i} is outside the dictionary"));
                }
            }
        }
        Ok(col)
    }

    /// Index `i` of a plane of `count` indices (planar: low bytes first).
    fn index(&self, plane: &[u8], count: usize, i: usize) -> usize {
        (0..self.w).fold(0usize, |acc, p| {
            let byte = plane.get(p * count + i).copied().unwrap_or(0);
            acc | usize::from(byte) << (8 * p)
        })
    }

    /// Entry `id` (already checked < d).
    fn entry(&self, id: usize) -> [u8; W] {
        let mut v = [0u8; W];
        for (b, out) in v.iter_mut().enumerate() {
            *out = self.entries.get(b * self.d + id).copied().unwrap_or(0);
        }
        v
    }
}

/// Decodes a payload of `n` records, appending them to `out` (which the caller clears on
/// error): codec 1 (format 2, no interface column: every record's interface is 0) or codec 2.
pub fn decode(
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
    let count = |bit: u8, set: bool| flags.iter().filter(|&&f| (f & bit != 0) == set).count();
    if let Some(i) = flags.iter().position(|&f| f & !F_KNOWN != 0) {
        return Err(format!("record {i}: unknown flag bits"));
    }
    let v4 = DictCol::<4>::parse(v4, count(F_SRC_V6, false), count(F_DST_V6, false), "IPv4")?;
    let v6 = DictCol::<16>::parse(v6, count(F_SRC_V6, true), count(F_DST_V6, true), "IPv6")?;
    let macs = DictCol::<6>::parse(macs, count(F_SRC_MAC, true), count(F_DST_MAC, true), "MAC")?;
    if let Some(i) = end.iter().position(|&e| EndReason::from_u8(e).is_none()) {
        return Err(format!("record {i}: unknown end reason"));
    }

    let mut t = Cur::new(firsts, "first time");
    let mut d = Cur::new(durations, "duration");
    let mut counters = [
        Cur::new(pk, "packets"),
        Cur::new(by, "bytes"),
        Cur::new(rpk, "reverse packets"),
        Cur::new(rby, "reverse bytes"),
    ];
    let (unit, mut prev) = if n == 0 {
        (1, 0)
    } else {
        let exp = t.u8()?;
        if exp > MAX_TIME_EXP {
            return Err(format!("time unit exponent {exp} above {MAX_TIME_EXP}"));
        }
        (10u64.pow(u32::from(exp)), t.i64()?)
    };
    let u16_at = |col: &[u8], i: usize| {
        u16::from(col.get(i).copied().unwrap_or(0))
            | u16::from(col.get(n + i).copied().unwrap_or(0)) << 8
    };
    let (mut s4, mut d4, mut s6, mut d6, mut sm, mut dm) = (0, 0, 0, 0, 0, 0);
    let (n_s4, n_d4) = (v4.src.len() / v4.w, v4.dst.len() / v4.w);
    let (n_s6, n_d6) = (v6.src.len() / v6.w, v6.dst.len() / v6.w);
    let (n_sm, n_dm) = (macs.src.len() / macs.w, macs.dst.len() / macs.w);
    out.reserve(n);
    for i in 0..n {
        let f = flags.get(i).copied().unwrap_or(0);
        let first = if i == 0 {
            prev
        } else {
            let delta = t
                .varint()?
                .checked_mul(unit)
                .ok_or_else(|| format!("record {i}: first time overflows"))?;
            prev.checked_add_unsigned(delta)
                .ok_or_else(|| format!("record {i}: first time overflows"))?
        };
        prev = first;
        let dur = d
            .varint()?
            .checked_mul(unit)
            .ok_or_else(|| format!("record {i}: duration overflows"))?;
        let last = first.wrapping_add(dur as i64);
        let addr = |v6f: bool, s4i: &mut usize, s6i: &mut usize, src: bool| {
            if v6f {
                let (plane, cnt) = if src { (v6.src, n_s6) } else { (v6.dst, n_d6) };
                let id = v6.index(plane, cnt, *s6i);
                *s6i += 1;
                IpAddr::V6(Ipv6Addr::from(v6.entry(id)))
            } else {
                let (plane, cnt) = if src { (v4.src, n_s4) } else { (v4.dst, n_d4) };
                let id = v4.index(plane, cnt, *s4i);
                *s4i += 1;
                IpAddr::V4(Ipv4Addr::from(v4.entry(id)))
            }
        };
        let src = addr(f & F_SRC_V6 != 0, &mut s4, &mut s6, true);
        let dst = addr(f & F_DST_V6 != 0, &mut d4, &mut d6, false);
        let mac = |present: bool, k: &mut usize, src: bool| {
            present.then(|| {
                let (plane, cnt) = if src {
                    (macs.src, n_sm)
                } else {
                    (macs.dst, n_dm)
                };
                let id = macs.index(plane, cnt, *k);
                *k += 1;
                macs.entry(id)
            })
        };
        let src_mac = mac(f & F_SRC_MAC != 0, &mut sm, true);
        let dst_mac = mac(f & F_DST_MAC != 0, &mut dm, false);
        let [a, b, c2, d2] = &mut counters;
        out.push(FlowRecord {
            first,
            last,
            proto: proto.get(i).copied().unwrap_or(0),
            src,
            sport: u16_at(sport, i),
            dst,
            dport: u16_at(dport, i),
            vlan: u16_at(vlan, i),
            inner_vlan: u16_at(ivlan, i),
            // An empty column (codec 1) reads as interface 0.
            interface: u16_at(iface, i),
            src_mac,
            dst_mac,
            packets: a.varint()?,
            bytes: b.varint()?,
            rev_packets: c2.varint()?,
            rev_bytes: d2.varint()?,
            tcp_flags: tf.get(i).copied().unwrap_or(0),
            rev_tcp_flags: rtf.get(i).copied().unwrap_or(0),
            end: end
                .get(i)
                .and_then(|&e| EndReason::from_u8(e))
                .unwrap_or(EndReason::Idle),
        });
    }
    t.end()?;
    d.end()?;
    for c in &counters {
        c.end()?;
    }
    Ok(())
}
