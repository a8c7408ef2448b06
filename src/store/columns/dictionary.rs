//! Dictionary columns (addresses and MACs): each distinct value once, sorted and byte-planar,
//! then one index per use.

use super::cursor::Cur;
use super::ColumnError;
use crate::record::Mac;
use std::collections::HashMap;

type Map<K> = HashMap<K, u32, foldhash::fast::FixedState>;

/// A dictionary column under construction: distinct values in order of first appearance, and
/// one index per use.
pub(super) struct Dict<K, const W: usize> {
    ids: Map<K>,
    pub(super) values: Vec<[u8; W]>,
    src_idx: Vec<u32>,
    dst_idx: Vec<u32>,
    /// Entry order for writing (ascending values) and each entry's rank in it.
    perm: Vec<u32>,
    rank: Vec<u32>,
}

impl<K: std::hash::Hash + Eq + Copy, const W: usize> Dict<K, W> {
    pub(super) fn new() -> Self {
        Dict {
            ids: Map::default(),
            values: Vec::new(),
            src_idx: Vec::new(),
            dst_idx: Vec::new(),
            perm: Vec::new(),
            rank: Vec::new(),
        }
    }

    pub(super) fn clear(&mut self) {
        self.ids.clear();
        self.values.clear();
        self.src_idx.clear();
        self.dst_idx.clear();
    }

    /// Records one use of the value, as a source (`src`) or destination: its index, and the
    /// value itself if this is its first use.
    #[inline]
    pub(super) fn add(&mut self, key: K, bytes: [u8; W], src: bool) {
        let next = self.values.len() as u32;
        let id = *self.ids.entry(key).or_insert(next);
        if id == next {
            self.values.push(bytes);
        }
        if src {
            self.src_idx.push(id)
        } else {
            self.dst_idx.push(id)
        }
    }
}

pub(super) trait PutDict {
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

pub(super) fn mac_key(m: &Mac) -> u64 {
    let mut b = [0u8; 8];
    b[..6].copy_from_slice(m);
    u64::from_le_bytes(b)
}

/// Decodes a dictionary column into `entries` (one value per entry, in stored order) and
/// `src`/`dst` (one entry index per use), checking the entry count and index width against the
/// number of uses, the entries' ascending order, and every index against the entry count.
pub(super) fn decode_dict<const W: usize>(
    b: &[u8],
    uses: (usize, usize),
    what: &'static str,
    entries: &mut Vec<[u8; W]>,
    src: &mut Vec<u32>,
    dst: &mut Vec<u32>,
) -> Result<(), ColumnError> {
    entries.clear();
    src.clear();
    dst.clear();
    let (srcs, dsts) = uses;
    let total = srcs + dsts;
    if total == 0 {
        if !b.is_empty() {
            return Err(ColumnError::NotEmpty { column: what });
        }
        return Ok(());
    }
    let mut c = Cur::new(b, what);
    let d = c.u32()? as usize;
    if d == 0 || d > total {
        return Err(ColumnError::DictionarySize {
            column: what,
            entries: d,
            values: total,
        });
    }
    let w = usize::from(c.u8()?);
    if w != index_width(d) {
        return Err(ColumnError::IndexWidth {
            column: what,
            width: w,
            expected: index_width(d),
        });
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
        return Err(ColumnError::DictionaryOrder { column: what });
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
            return Err(ColumnError::IndexOutside {
                column: what,
                index: i,
            });
        }
    }
    Ok(())
}
