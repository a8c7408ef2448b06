//! The append-only Merkle tree of RFC 9162 (Certificate Transparency v2) section 2.1, over leaf
//! hashes: tree heads, inclusion proofs and consistency proofs, and their verification.
//!
//! Leaves and nodes are hashed with different prefixes (0x00, 0x01) so that no node can pass
//! for a leaf (second-preimage resistance). A tree of `n` leaves splits at the largest power of
//! two smaller than `n`, so that the tree of the first `m` leaves is made of whole subtrees of
//! every later tree: that is what makes consistency proofs possible.
//!
//! Proofs are built here from the leaves; verification needs only sizes, hashes and the proof,
//! so that whoever checks need not trust the machine that built them. Nothing panics on bad
//! input: an index or size out of range gives `None` or `false`.

use sha2::{Digest, Sha256};

#[cfg(test)]
mod tests;

/// A SHA-256 digest: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// The leaf hash of an entry: SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The Merkle Tree Hash of the leaves (already leaf-hashed), MTH of RFC 9162 2.1.1.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let k = split(leaves.len() as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The inclusion proof (audit path, RFC 9162 2.1.3.1) of the leaf at `index` in the tree of
/// all `leaves`; `None` if there is no such leaf.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Option<Vec<Hash>> {
    inclusion_in(leaves, index, leaves.len() as u64)
}

/// The consistency proof (RFC 9162 2.1.4.1) that the tree of the first `old_size` leaves is a
/// prefix of the tree of all `leaves`; `None` if `old_size` is larger than the tree. The proof
/// is empty for an old size of 0 or of the whole tree: nothing needs proving then.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Option<Vec<Hash>> {
    consistency_in(leaves, old_size, leaves.len() as u64)
}

/// Whether `proof` shows that `leaf` is the leaf at `index` of the tree of `size` leaves whose
/// root is `root` (RFC 9162 2.1.3.2).
///
/// The proof binds the leaf to `root`, and to `size` only through it: where two sizes give the
/// leaf a path of the same shape (leaf 97 of 103 and of 104 leaves) it passes under either, so
/// size and root must come together, from one signed checkpoint.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            // Up past the levels where this node is a right edge without a sibling.
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// Whether `proof` shows that the tree of `old_size` leaves with root `old_root` is a prefix of
/// the tree of `new_size` leaves with root `new_root` (RFC 9162 2.1.4.2).
///
/// The RFC's algorithm is for `0 < old_size < new_size`; around it: an older tree cannot be
/// larger (false); a tree is consistent with itself only with an empty proof and the same
/// root; and the empty tree is a prefix of every tree, with an empty proof, but only under its
/// own root, SHA-256(""): a size-0 checkpoint claiming any other root is not a tree head.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == 0 {
        return proof.is_empty()
            && *old_root == empty_root()
            && (new_size != 0 || *new_root == empty_root());
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    let Some((first, rest)) = proof.split_first() else {
        return false;
    };
    // When the old tree is a whole subtree of the new one its root is the proof's first node,
    // so the proof leaves it out and the verifier starts from the old root itself.
    let (seed, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (first, rest)
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*seed, *seed);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == *old_root && sr == *new_root && sn == 0
}

/// An append-only tree that keeps every level of whole subtrees, so that its root is
/// O(log n) and a proof O(log² n) hashes instead of rehashing all leaves. The cost is memory:
/// about twice the leaf hashes (64 MB for a million entries).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// `levels[h][i]`: the root of the whole subtree of 2^h leaves starting at leaf i·2^h.
    /// Level 0 is the leaf hashes.
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    /// A tree of `leaves` (leaf hashes), in order.
    pub fn from_leaves(leaves: &[Hash]) -> Tree {
        let mut t = Tree::new();
        for l in leaves {
            t.push(*l);
        }
        t
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.leaves().len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaf hashes, in order.
    pub fn leaves(&self) -> &[Hash] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    /// Appends a leaf hash (see [`leaf_hash`]); amortised O(1) hashes.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut h = 0;
        loop {
            if self.levels.len() == h {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[h];
            level.push(node);
            if level.len() % 2 == 1 {
                return;
            }
            node = node_hash(&level[level.len() - 2], &level[level.len() - 1]);
            h += 1;
        }
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.root_at(self.len()).unwrap_or_else(empty_root)
    }

    /// The root the tree had when it was `size` leaves; `None` beyond its size.
    pub fn root_at(&self, size: u64) -> Option<Hash> {
        match size {
            0 => Some(empty_root()),
            s if s <= self.len() => Some(self.range_root(0, s)),
            _ => None,
        }
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        if size > self.len() {
            return None;
        }
        inclusion_in(self, index, size)
    }

    /// The consistency proof from the tree of `old_size` leaves to that of `new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Option<Vec<Hash>> {
        if new_size > self.len() {
            return None;
        }
        consistency_in(self, old_size, new_size)
    }
}

/// What building a proof needs: the Merkle Tree Hash of a range of leaves. A slice computes it;
/// a [`Tree`] looks its whole subtrees up.
trait Ranges {
    /// MTH of the `len` (≥ 1) leaves from `start`, all within the tree.
    fn range_root(&self, start: u64, len: u64) -> Hash;
}

impl Ranges for [Hash] {
    fn range_root(&self, start: u64, len: u64) -> Hash {
        root(&self[start as usize..(start + len) as usize])
    }
}

impl Ranges for Tree {
    fn range_root(&self, start: u64, len: u64) -> Hash {
        // The ranges of RFC 9162's recursion are aligned: a power-of-two range starts at a
        // multiple of its length, and so is a stored subtree.
        if len.is_power_of_two() && start % len == 0 {
            let h = len.trailing_zeros() as usize;
            return self.levels[h][(start >> h) as usize];
        }
        let k = split(len);
        node_hash(
            &self.range_root(start, k),
            &self.range_root(start + k, len - k),
        )
    }
}

/// The largest power of two smaller than `n` (≥ 2): where RFC 9162 splits a tree.
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

fn inclusion_in<R: Ranges + ?Sized>(tree: &R, index: u64, size: u64) -> Option<Vec<Hash>> {
    if index >= size {
        return None;
    }
    let mut out = Vec::new();
    path(tree, index, 0, size, &mut out);
    Some(out)
}

/// PATH(m, D[start:start+len]) of RFC 9162 2.1.3.1, appended to `out`; `m` counts from `start`.
fn path<R: Ranges + ?Sized>(tree: &R, m: u64, start: u64, len: u64, out: &mut Vec<Hash>) {
    if len == 1 {
        return;
    }
    let k = split(len);
    if m < k {
        path(tree, m, start, k, out);
        out.push(tree.range_root(start + k, len - k));
    } else {
        path(tree, m - k, start + k, len - k, out);
        out.push(tree.range_root(start, k));
    }
}

fn consistency_in<R: Ranges + ?Sized>(tree: &R, old_size: u64, size: u64) -> Option<Vec<Hash>> {
    if old_size > size {
        return None;
    }
    let mut out = Vec::new();
    if old_size > 0 {
        subproof(tree, old_size, 0, size, true, &mut out);
    }
    Some(out)
}

/// SUBPROOF(m, D[start:start+len], complete) of RFC 9162 2.1.4.1, appended to `out`.
/// `complete` says the range is the old tree's own root, which the verifier already holds.
fn subproof<R: Ranges + ?Sized>(
    tree: &R,
    m: u64,
    start: u64,
    len: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) {
    if m == len {
        if !complete {
            out.push(tree.range_root(start, len));
        }
        return;
    }
    let k = split(len);
    if m <= k {
        subproof(tree, m, start, k, complete, out);
        out.push(tree.range_root(start + k, len - k));
    } else {
        subproof(tree, m - k, start + k, len - k, false, out);
        out.push(tree.range_root(start, k));
    }
}
