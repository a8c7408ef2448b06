//! Storage for the flow table: an open-addressing index of 8-byte slots over a slab of entries.
//!
//! With hundreds of thousands of open flows the table is far larger than the caches, so a
//! packet's cost is mostly memory latency. The index holds only (hash tag, entry number): at
//! 8 bytes a slot it stays small enough for the last-level cache, and a lookup reads one
//! entry line from memory, the one whose tag matched. Entries never move (the slab grows by
//! fixed chunks, not by reallocating), so an entry number stays valid for the timer buckets.

/// Entries per slab chunk (a power of two): 65 536 × 128 B = 8 MiB, large enough to hold at
/// least three whole 2 MiB huge pages wherever the allocator puts it (see
/// [`crate::hint::huge_pages`]), at the cost of 8 MiB for even the smallest table.
const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;
const CHUNK_MASK: usize = CHUNK - 1;

/// Entries in fixed chunks with a free list: a freed entry is reused first (it is likely
/// still cached), and growing never copies or moves entries.
pub(super) struct Slab<T> {
    chunks: Vec<Box<[T]>>,
    free: Vec<u32>,
    /// Entries handed out at least once: the high-water mark.
    used: u32,
    blank: T,
}

impl<T: Clone> Slab<T> {
    pub(super) fn new(blank: T) -> Slab<T> {
        Slab {
            chunks: Vec::new(),
            free: Vec::new(),
            used: 0,
            blank,
        }
    }

    /// A free entry's number; its content is whatever it held before (the caller sets it).
    pub(super) fn alloc(&mut self) -> u32 {
        if let Some(i) = self.free.pop() {
            return i;
        }
        if self.used as usize == self.chunks.len() * CHUNK {
            let mut chunk = Vec::with_capacity(CHUNK);
            crate::hint::huge_pages(chunk.spare_capacity_mut());
            chunk.resize(CHUNK, self.blank.clone());
            self.chunks.push(chunk.into_boxed_slice());
        }
        let i = self.used;
        // 2^32 entries of 128 bytes would be 512 GiB: memory ends long before this wraps.
        self.used = self.used.wrapping_add(1);
        i
    }

    pub(super) fn release(&mut self, i: u32) {
        self.free.push(i);
    }

    #[inline]
    pub(super) fn get(&self, i: u32) -> &T {
        let i = i as usize;
        &self.chunks[i >> CHUNK_BITS][i & CHUNK_MASK]
    }

    /// Starts loading entry `i` into the cache, ahead of its use (any `i`: a hint only).
    #[inline]
    pub(super) fn prefetch(&self, i: u32) {
        let i = i as usize;
        if let Some(c) = self.chunks.get(i >> CHUNK_BITS) {
            crate::hint::prefetch(c.as_ptr().wrapping_add(i & CHUNK_MASK));
        }
    }

    #[inline]
    pub(super) fn get_mut(&mut self, i: u32) -> &mut T {
        let i = i as usize;
        &mut self.chunks[i >> CHUNK_BITS][i & CHUNK_MASK]
    }

    /// Every entry handed out so far, free or not, with its number.
    pub(super) fn iter_used(&self) -> impl Iterator<Item = (u32, &T)> {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .take(self.used as usize)
            .enumerate()
            .map(|(i, e)| (i as u32, e))
    }

    pub(super) fn clear(&mut self) {
        self.chunks.clear();
        self.free.clear();
        self.used = 0;
    }

    /// Bytes reserved for entries.
    pub(super) fn bytes(&self) -> usize {
        self.chunks.len() * CHUNK * std::mem::size_of::<T>()
    }
}

/// Linear-probing index. A slot is `tag << 32 | (entry + 1)`, 0 when empty; `tag` is the upper
/// half of the key's 64-bit hash and also picks the home slot, so growing and deleting never
/// need the keys.
pub(super) struct Index {
    slots: Vec<u64>,
    mask: usize,
    len: usize,
}

const MIN_SLOTS: usize = 1024;

impl Index {
    pub(super) fn new() -> Index {
        Index {
            slots: vec![0; MIN_SLOTS],
            mask: MIN_SLOTS - 1,
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<u64>()
    }

    #[inline]
    fn home(&self, tag: u32) -> usize {
        tag as usize & self.mask
    }

    /// Starts loading the home slot of `tag` into the cache, ahead of a lookup.
    #[inline]
    pub(super) fn prefetch_home(&self, tag: u32) {
        crate::hint::prefetch(self.slots.as_ptr().wrapping_add(self.home(tag)));
    }

    /// The first entry of `tag`'s probe run whose tag matches (almost always the one a lookup
    /// will want), or `None`. Following the run, not only the home slot, matters: at the
    /// table's load a good share of flows sit a slot or more past their home.
    #[inline]
    pub(super) fn tagged_entry(&self, tag: u32) -> Option<u32> {
        let mut pos = self.home(tag);
        loop {
            let s = self.slots[pos];
            if s == 0 {
                return None;
            }
            if (s >> 32) as u32 == tag {
                return Some((s as u32).wrapping_sub(1));
            }
            pos = (pos + 1) & self.mask;
        }
    }

    /// The entry whose tag matches and for which `is_key` holds, or the empty slot where it
    /// would go.
    #[inline]
    pub(super) fn find(&self, tag: u32, mut is_key: impl FnMut(u32) -> bool) -> Result<u32, usize> {
        let mut pos = self.home(tag);
        loop {
            let s = self.slots[pos];
            if s == 0 {
                return Err(pos);
            }
            if (s >> 32) as u32 == tag {
                let entry = (s as u32).wrapping_sub(1);
                if is_key(entry) {
                    return Ok(entry);
                }
            }
            pos = (pos + 1) & self.mask;
        }
    }

    /// Fills the empty slot `pos` that [`Index::find`] just returned.
    pub(super) fn insert_at(&mut self, pos: usize, tag: u32, entry: u32) {
        self.slots[pos] = pack(tag, entry);
        self.len += 1;
        // Grow at 3/4 full: probe runs stay short, and the load stays between 3/8 and 3/4.
        if self.len * 4 > self.slots.len() * 3 {
            self.grow();
        }
    }

    fn grow(&mut self) {
        // Zeroed memory from the allocator is not written yet, so the hint still applies.
        let doubled = vec![0; self.slots.len() * 2];
        crate::hint::huge_pages(&doubled);
        let old = std::mem::replace(&mut self.slots, doubled);
        self.mask = self.slots.len() - 1;
        for s in old.into_iter().filter(|&s| s != 0) {
            let mut pos = self.home((s >> 32) as u32);
            while self.slots[pos] != 0 {
                pos = (pos + 1) & self.mask;
            }
            self.slots[pos] = s;
        }
    }

    /// Removes `entry` (present with `tag`), shifting later slots of the probe run back so
    /// lookups need no tombstones.
    pub(super) fn remove(&mut self, tag: u32, entry: u32) {
        let want = pack(tag, entry);
        let mut hole = self.home(tag);
        loop {
            let s = self.slots[hole];
            if s == want {
                break;
            }
            if s == 0 {
                return; // not present: nothing to do
            }
            hole = (hole + 1) & self.mask;
        }
        self.len -= 1;
        let mut pos = hole;
        loop {
            pos = (pos + 1) & self.mask;
            let s = self.slots[pos];
            if s == 0 {
                break;
            }
            // Move `s` into the hole unless its home lies cyclically in (hole, pos].
            let home = self.home((s >> 32) as u32);
            let stays = if hole <= pos {
                hole < home && home <= pos
            } else {
                hole < home || home <= pos
            };
            if !stays {
                self.slots[hole] = s;
                hole = pos;
            }
        }
        self.slots[hole] = 0;
    }

    pub(super) fn clear(&mut self) {
        self.slots.clear();
        self.slots.resize(MIN_SLOTS, 0);
        self.mask = MIN_SLOTS - 1;
        self.len = 0;
    }
}

#[inline]
fn pack(tag: u32, entry: u32) -> u64 {
    u64::from(tag) << 32 | u64::from(entry.wrapping_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index against a plain model, with tags chosen to collide and wrap around.
    #[test]
    fn index_finds_inserts_and_removes_like_a_map() {
        let mut idx = Index::new();
        let mut model: std::collections::HashMap<u32, u32> = Default::default();
        let mut x: u64 = 1;
        for step in 0..200_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Few distinct home slots and tags near the end of the table, so runs wrap.
            let key = (x >> 40) as u32 % 5000;
            let tag = (key % 37).wrapping_mul(0x0100_0000) | 0xff_fff0 | (key % 16);
            let found = idx.find(tag, |e| e == key);
            assert_eq!(found.is_ok(), model.contains_key(&key), "step {step}");
            match found {
                Ok(e) => {
                    if x & 1 == 0 {
                        idx.remove(tag, e);
                        model.remove(&key);
                    }
                }
                Err(pos) => {
                    idx.insert_at(pos, tag, key);
                    model.insert(key, tag);
                }
            }
            assert_eq!(idx.len(), model.len());
        }
        for (&key, &tag) in &model {
            assert_eq!(idx.find(tag, |e| e == key), Ok(key));
        }
    }

    #[test]
    fn slab_reuses_freed_entries_and_never_moves_others() {
        let mut s = Slab::new(0u64);
        let ids: Vec<u32> = (0..10_000).map(|_| s.alloc()).collect();
        for &i in &ids {
            *s.get_mut(i) = u64::from(i) * 3;
        }
        s.release(17);
        assert_eq!(s.alloc(), 17);
        assert_eq!(s.alloc(), 10_000);
        assert!(ids.iter().all(|&i| *s.get(i) == u64::from(i) * 3));
        assert_eq!(s.iter_used().count(), 10_001);
    }
}
