//! Which flows a sweep has to look at: entry numbers filed by the second in which each flow's
//! earliest possible ending falls.
//!
//! A flow's due time only grows with its packets (its last packet moves its idle deadline
//! later), so it is filed once and re-filed lazily: when its bucket comes up and it is not due
//! after all. A bucket may hold stale numbers (the flow was re-filed earlier, or ended); the
//! table tells them apart by the bucket it recorded for the entry.

use std::collections::BTreeMap;

pub(super) struct Wheel {
    buckets: BTreeMap<i64, Vec<u32>>,
    /// Emptied bucket vectors, reused so filing allocates only while the wheel grows.
    pool: Vec<Vec<u32>>,
    /// The most recently used bucket, kept out of the map: new flows arrive in time order, so
    /// most filings go to the same second as the one before.
    hot: Option<(i64, Vec<u32>)>,
}

impl Wheel {
    pub(super) fn new() -> Wheel {
        Wheel {
            buckets: BTreeMap::new(),
            pool: Vec::new(),
            hot: None,
        }
    }

    pub(super) fn push(&mut self, sec: i64, entry: u32) {
        if let Some((s, v)) = &mut self.hot {
            if *s == sec {
                v.push(entry);
                return;
            }
        }
        if let Some((s, v)) = self.hot.take() {
            self.stash(s, v);
        }
        let mut v = self
            .buckets
            .remove(&sec)
            .unwrap_or_else(|| self.pool.pop().unwrap_or_default());
        v.push(entry);
        self.hot = Some((sec, v));
    }

    fn stash(&mut self, sec: i64, v: Vec<u32>) {
        match self.buckets.entry(sec) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(v);
            }
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let mut v = v;
                e.get_mut().append(&mut v);
                self.pool.push(v);
            }
        }
    }

    /// Takes the earliest bucket if its second is at most `upto`.
    pub(super) fn pop_due(&mut self, upto: i64) -> Option<(i64, Vec<u32>)> {
        if let Some((s, v)) = self.hot.take() {
            self.stash(s, v);
        }
        let e = self.buckets.first_entry()?;
        if *e.key() > upto {
            return None;
        }
        Some(e.remove_entry())
    }

    /// Takes one entry number filed under the earliest second (the one filed last there), with
    /// that second; `None` when nothing is filed.
    pub(super) fn pop_earliest(&mut self) -> Option<(i64, u32)> {
        if let Some((s, v)) = self.hot.take() {
            self.stash(s, v);
        }
        loop {
            let mut e = self.buckets.first_entry()?;
            if let Some(i) = e.get_mut().pop() {
                return Some((*e.key(), i));
            }
            let v = e.remove();
            self.pool.push(v);
        }
    }

    /// Returns a vector from [`Wheel::pop_due`] for reuse.
    pub(super) fn recycle(&mut self, mut v: Vec<u32>) {
        v.clear();
        self.pool.push(v);
    }

    pub(super) fn clear(&mut self) {
        self.buckets.clear();
        self.hot = None;
    }

    /// Filed entry numbers (stale ones included).
    pub(super) fn len(&self) -> usize {
        self.buckets.values().map(Vec::len).sum::<usize>()
            + self.hot.as_ref().map_or(0, |(_, v)| v.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_come_out_in_time_order_up_to_the_limit() {
        let mut w = Wheel::new();
        for (sec, e) in [(5, 1), (3, 2), (5, 3), (9, 4), (3, 5), (-2, 6)] {
            w.push(sec, e);
        }
        assert_eq!(w.len(), 6);
        let mut seen = Vec::new();
        while let Some((sec, v)) = w.pop_due(5) {
            seen.push((sec, v.clone()));
            w.recycle(v);
        }
        assert_eq!(seen, [(-2, vec![6]), (3, vec![2, 5]), (5, vec![1, 3])]);
        assert_eq!(w.pop_due(8), None);
        assert_eq!(w.pop_due(9), Some((9, vec![4])));
    }

    #[test]
    fn pop_earliest_takes_entries_of_the_earliest_second_first() {
        let mut w = Wheel::new();
        for (sec, e) in [(5, 1), (3, 2), (5, 3), (3, 4)] {
            w.push(sec, e);
        }
        let mut seen = Vec::new();
        while let Some(x) = w.pop_earliest() {
            seen.push(x);
            if x == (3, 2) {
                w.push(4, 9);
            }
        }
        assert_eq!(seen, [(3, 4), (3, 2), (4, 9), (5, 3), (5, 1)]);
        assert_eq!(w.len(), 0);
    }
}
