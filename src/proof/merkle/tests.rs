//! The tree held to published values, not only to itself: an implementation that agrees with
//! itself can still hash differently from every other RFC 9162 verifier.
//!
//! The expected hashes below are copied from transparency-dev/merkle (Apache-2.0, Copyright
//! Google LLC), which carries over the vectors of Google's certificate-transparency code:
//! - `testonly/constants.go`: the eight leaf inputs, every whole-subtree hash of their tree
//!   (`NodeHashes`) and the roots of sizes 0..=8 (`RootHashes`);
//! - `proof/verify_test.go`: inclusion proofs (`inclusionProofs`) and consistency proofs
//!   (`consistencyProofs`) as hex, the corruptions a verifier must reject, and the edge cases
//!   of `TestVerifyConsistency`;
//! - `proof/proof_test.go`: which nodes make up each inclusion and consistency proof
//!   (`TestInclusion`, `TestConsistency`), for the cases inside the eight-leaf tree;
//! - `rfc6962/rfc6962_test.go`: the empty root, the empty leaf and the leaf "L123456".

use super::*;
use proptest::prelude::*;

fn h(hex: &str) -> Hash {
    assert_eq!(hex.len(), 64, "{hex}");
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// `LeafInputs()` of testonly/constants.go.
const INPUTS: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];

/// `NodeHashes()` of testonly/constants.go: `NODES[level][index]`.
const NODES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// `RootHashes()` of testonly/constants.go, by tree size from 0.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// `inclusionProofs` of proof/verify_test.go as (leaf index, tree size, proof). The Go table
/// numbers leaves from 1; these are its `leaf - 1`. Its first row, {0, 0, nil}, is the
/// invalid path the Go test skips too.
const INCLUSION: [(u64, u64, &[&str]); 5] = [
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// `consistencyProofs` of proof/verify_test.go as (old size, new size, proof).
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// `sha256SomeHash` of proof/verify_test.go: a hash that is no node of the tree.
const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

fn leaves() -> Vec<Hash> {
    INPUTS.iter().map(|e| leaf_hash(e)).collect()
}

fn hashes(hex: &[&str]) -> Vec<Hash> {
    hex.iter().map(|x| h(x)).collect()
}

fn root_of(size: u64) -> Hash {
    h(ROOTS[size as usize])
}

#[test]
fn hashes_are_rfc6962s() {
    // rfc6962/rfc6962_test.go: `echo -n | sha256sum`, and the leaf hashes of "" and "L123456".
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let empty_leaf = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";
    let leaf = "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56";
    assert_eq!(empty_root(), h(empty));
    assert_eq!(leaf_hash(b""), h(empty_leaf));
    assert_eq!(leaf_hash(b"L123456"), h(leaf));
    // The empty tree and the tree of one empty entry must differ.
    assert_ne!(empty_root(), leaf_hash(b""));
}

#[test]
fn every_node_hash_is_the_published_one() {
    let leaves = leaves();
    let tree = Tree::from_leaves(&leaves);
    for (level, nodes) in NODES.iter().enumerate() {
        assert_eq!(tree.levels[level], hashes(nodes), "level {level}");
        for (i, want) in nodes.iter().enumerate() {
            // A whole subtree's hash is the root of its leaves, computed from nothing cached.
            let width = 1 << level;
            assert_eq!(root(&leaves[i * width..(i + 1) * width]), h(want));
        }
    }
    assert_eq!(node_hash(&h(NODES[0][0]), &h(NODES[0][1])), h(NODES[1][0]));
}

#[test]
fn roots_of_every_size_are_the_published_ones() {
    let leaves = leaves();
    let mut tree = Tree::new();
    assert_eq!(tree.root(), root_of(0));
    for size in 0..=8u64 {
        assert_eq!(root(&leaves[..size as usize]), root_of(size), "size {size}");
        if size > 0 {
            tree.push(leaves[size as usize - 1]);
            assert_eq!(tree.root(), root_of(size), "pushed to size {size}");
        }
    }
    for size in 0..=8 {
        assert_eq!(tree.root_at(size), Some(root_of(size)), "root_at({size})");
    }
    assert_eq!(tree.root_at(9), None);
}

/// The corruptions of `corruptInclusionProof` (proof/verify_test.go) that our types can express:
/// a wrong index or size, a wrong leaf or root, garbage added, an element dropped, inserted or
/// changed. (Its hashes of the wrong length cannot be built from `Hash`.)
fn rejects_corrupt_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) {
    let reject = |i: u64, s: u64, l: &Hash, p: &[Hash], r: &Hash, what: &str| {
        let accepted = verify_inclusion(i, s, l, p, r);
        assert!(!accepted, "index {index} size {size}: accepted {what}");
    };
    let with = |f: &dyn Fn(&mut Vec<Hash>)| {
        let mut p = proof.to_vec();
        f(&mut p);
        p
    };
    let (i, s, l, p, r) = (index, size, leaf, proof, root);
    let some = h(SOME_HASH);
    reject(i.wrapping_sub(1), s, l, p, r, "index - 1");
    reject(i + 1, s, l, p, r, "index + 1");
    reject(i ^ 2, s, l, p, r, "index ^ 2");
    reject(i, s * 2, l, p, r, "size * 2");
    reject(i, s / 2, l, p, r, "size / 2");
    reject(i, s, &leaf_hash(b"WrongLeaf"), p, r, "wrong leaf");
    reject(i, s, l, p, &empty_root(), "empty root");
    reject(i, s, l, p, &some, "random root");
    reject(i, s, l, &with(&|p| p.push(*r)), r, "trailing root");
    reject(i, s, l, &with(&|p| p.insert(0, *r)), r, "preceding root");
    for e in 0..p.len() {
        reject(
            i,
            s,
            l,
            &with(&|p| p[e][0] ^= 8),
            r,
            &format!("proof[{e}] bit 3"),
        );
    }
    if let Some((_, shorter)) = p.split_last() {
        reject(i, s, l, shorter, r, "removed component");
    }
    if p.len() > 1 {
        reject(
            i,
            s,
            l,
            &with(&|p| p.insert(1, some)),
            r,
            "inserted component",
        );
    }
}

#[test]
fn published_inclusion_proofs() {
    let leaves = leaves();
    let tree = Tree::from_leaves(&leaves);
    for (index, size, want) in INCLUSION {
        let want = hashes(want);
        let of_size = &leaves[..size as usize];
        assert_eq!(inclusion_proof(of_size, index), Some(want.clone()));
        assert_eq!(tree.inclusion_proof(index, size), Some(want.clone()));
        let leaf = leaves[index as usize];
        assert!(verify_inclusion(index, size, &leaf, &want, &root_of(size)));
        rejects_corrupt_inclusion(index, size, &leaf, &want, &root_of(size));
    }
}

#[test]
fn inclusion_edge_cases() {
    // `TestVerifyInclusion` (proof/verify_test.go): no leaf at these indices.
    let some = h(SOME_HASH);
    for (index, size) in [(0, 0), (0, 1), (1, 0), (2, 1)] {
        assert!(!verify_inclusion(index, size, &some, &[], &empty_root()));
    }
    // `TestVerifyInclusionSingleEntry`: in a tree of one the leaf is the root.
    let one = leaf_hash(b"data");
    assert!(verify_inclusion(0, 1, &one, &[], &one));
    assert!(!verify_inclusion(0, 1, &one, &[], &some));
    let leaves = leaves();
    assert_eq!(inclusion_proof(&leaves, 8), None);
    assert_eq!(inclusion_proof(&leaves, u64::MAX), None);
    assert_eq!(inclusion_proof(&[], 0), None);
    let tree = Tree::from_leaves(&leaves);
    assert_eq!(tree.inclusion_proof(3, 9), None);
    assert_eq!(tree.inclusion_proof(7, 7), None);
    assert!(!verify_inclusion(
        u64::MAX - 1,
        u64::MAX,
        &some,
        &[some; 70],
        &some
    ));
}

/// The corruptions of `corruptConsistencyProof` (proof/verify_test.go), as far as `Hash` can
/// express them.
fn rejects_corrupt_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) {
    let (r1, r2) = (*old_root, *new_root);
    let wrong = leaf_hash(b"WrongRoot");
    let with = |f: &dyn Fn(&mut Vec<Hash>)| {
        let mut p = proof.to_vec();
        f(&mut p);
        p
    };
    let mut probes: Vec<(u64, u64, Hash, Hash, Vec<Hash>, String)> = vec![
        (old - 1, new, r1, r2, proof.to_vec(), "old - 1".into()),
        (old + 1, new, r1, r2, proof.to_vec(), "old + 1".into()),
        (old ^ 2, new, r1, r2, proof.to_vec(), "old ^ 2".into()),
        (old, new * 2, r1, r2, proof.to_vec(), "new * 2".into()),
        (old, new / 2, r1, r2, proof.to_vec(), "new / 2".into()),
        (old, new, wrong, r2, proof.to_vec(), "wrong old root".into()),
        (old, new, r1, wrong, proof.to_vec(), "wrong new root".into()),
        (old, new, r2, r1, proof.to_vec(), "swapped roots".into()),
        (old, new, r1, r2, Vec::new(), "empty proof".into()),
        (
            old,
            new,
            r1,
            r2,
            with(&|p| p.push(r1)),
            "trailing old root".into(),
        ),
        (
            old,
            new,
            r1,
            r2,
            with(&|p| p.push(r2)),
            "trailing new root".into(),
        ),
        (
            old,
            new,
            r1,
            r2,
            with(&|p| p.insert(0, r1)),
            "preceding old root".into(),
        ),
        (
            old,
            new,
            r1,
            r2,
            with(&|p| p.insert(0, r2)),
            "preceding new root".into(),
        ),
        (
            old,
            new,
            r1,
            r2,
            with(&|p| p.insert(0, p[0])),
            "preceding proof[0]".into(),
        ),
        (
            old,
            new,
            r1,
            r2,
            proof[..proof.len() - 1].to_vec(),
            "truncated".into(),
        ),
    ];
    for i in 0..proof.len() {
        let p = with(&|p| p[i][0] ^= 16);
        probes.push((old, new, r1, r2, p, format!("proof[{i}] bit 4")));
    }
    for (o, n, a, b, p, what) in probes {
        assert!(
            !verify_consistency(o, n, &a, &b, &p),
            "{old} to {new}: accepted {what}"
        );
    }
}

#[test]
fn published_consistency_proofs() {
    let leaves = leaves();
    let tree = Tree::from_leaves(&leaves);
    for (old, new, want) in CONSISTENCY {
        let want = hashes(want);
        let of_size = &leaves[..new as usize];
        assert_eq!(consistency_proof(of_size, old), Some(want.clone()));
        assert_eq!(tree.consistency_proof(old, new), Some(want.clone()));
        assert!(verify_consistency(
            old,
            new,
            &root_of(old),
            &root_of(new),
            &want
        ));
        // The Go test corrupts only proofs with something to prove.
        if !want.is_empty() {
            rejects_corrupt_consistency(old, new, &root_of(old), &root_of(new), &want);
        }
    }
}

#[test]
fn consistency_edge_cases() {
    // `TestVerifyConsistency` (proof/verify_test.go), where the Go test's roots are "don't
    // care" strings we use hashes that are no tree's root.
    let (a, b) = (leaf_hash(b"don't care 1"), leaf_hash(b"don't care 2"));
    let e = empty_root();
    let cases = [
        (0, 0, a, b, vec![], false),
        (1, 1, a, b, vec![], false),
        (1, 1, b, b, vec![], true),
        // Time travel to the past.
        (1, 0, a, b, vec![], false),
        (2, 1, a, b, vec![], false),
        // Something to prove, and no proof.
        (1, 2, a, b, vec![], false),
        (0, 0, e, b, vec![], false),
        (1, 1, e, b, vec![], false),
        // Roots match but the proof is not empty.
        (0, 0, e, e, vec![e], false),
        (0, 1, e, e, vec![e], false),
        (1, 1, e, e, vec![e], false),
        // The empty tree is a prefix of every tree, under its own root.
        (0, 0, e, e, vec![], true),
        (0, 1, e, b, vec![], true),
    ];
    for (old, new, r1, r2, proof, want) in cases {
        assert_eq!(
            verify_consistency(old, new, &r1, &r2, &proof),
            want,
            "{old} to {new}"
        );
    }
    // Stricter than the Go verifier, which takes any root for size 0: a size-0 tree head whose
    // root is not SHA-256("") is no tree head.
    assert!(!verify_consistency(0, 1, &a, &b, &[]));
    assert!(!verify_consistency(0, 0, &a, &a, &[]));

    let leaves = leaves();
    assert_eq!(consistency_proof(&leaves, 0), Some(vec![]));
    assert_eq!(consistency_proof(&leaves, 8), Some(vec![]));
    assert_eq!(consistency_proof(&leaves, 9), None);
    assert_eq!(consistency_proof(&[], 0), Some(vec![]));
    let tree = Tree::from_leaves(&leaves);
    // `TestConsistency` errors.
    assert_eq!(tree.consistency_proof(5, 0), None);
    assert_eq!(tree.consistency_proof(9, 8), None);
    assert_eq!(tree.consistency_proof(1, 9), None);
    assert!(!verify_consistency(u64::MAX, u64::MAX, &a, &b, &[a]));
    assert!(!verify_consistency(1, u64::MAX, &a, &b, &[a; 70]));
}

/// A node of a proof in proof/proof_test.go: a whole subtree `N(level, index)` of the
/// eight-leaf tree, or `L`, its `l = hash(i, j)` (the right subtree of the 7-leaf tree, which is
/// not whole and so has no entry in `NODES`).
#[derive(Clone, Copy)]
enum Node {
    N(usize, usize),
    L,
}
use Node::{L, N};

fn resolve(nodes: &[Node]) -> Vec<Hash> {
    nodes
        .iter()
        .map(|n| match *n {
            N(level, i) => h(NODES[level][i]),
            L => node_hash(&h(NODES[1][2]), &h(NODES[0][6])),
        })
        .collect()
}

#[test]
fn inclusion_proofs_are_made_of_the_published_nodes() {
    // `TestInclusion` (proof/proof_test.go): (size, index, nodes), up to size 8.
    let cases: [(u64, u64, &[Node]); 15] = [
        (1, 0, &[]),
        (2, 0, &[N(0, 1)]),
        (2, 1, &[N(0, 0)]),
        (3, 1, &[N(0, 0), N(0, 2)]),
        (7, 0, &[N(0, 1), N(1, 1), L]),
        (7, 1, &[N(0, 0), N(1, 1), L]),
        (7, 2, &[N(0, 3), N(1, 0), L]),
        (7, 3, &[N(0, 2), N(1, 0), L]),
        (7, 4, &[N(0, 5), N(0, 6), N(2, 0)]),
        (7, 5, &[N(0, 4), N(0, 6), N(2, 0)]),
        (7, 6, &[N(1, 2), N(2, 0)]),
        (4, 2, &[N(0, 3), N(1, 0)]),
        (5, 3, &[N(0, 2), N(1, 0), N(0, 4)]),
        (6, 3, &[N(0, 2), N(1, 0), N(1, 2)]),
        (6, 4, &[N(0, 5), N(2, 0)]),
    ];
    let leaves = leaves();
    let tree = Tree::from_leaves(&leaves);
    for (size, index, nodes) in cases {
        let want = resolve(nodes);
        assert_eq!(
            inclusion_proof(&leaves[..size as usize], index).as_ref(),
            Some(&want),
            "{size}:{index}"
        );
        assert_eq!(tree.inclusion_proof(index, size).as_ref(), Some(&want));
        let leaf = leaves[index as usize];
        assert!(verify_inclusion(index, size, &leaf, &want, &root_of(size)));
    }
    for (size, index) in [(0, 0), (0, 1), (1, 2), (0, 3), (7, 8)] {
        assert_eq!(tree.inclusion_proof(index, size), None, "{size}:{index}");
        assert_eq!(inclusion_proof(&leaves[..size as usize], index), None);
    }
}

#[test]
fn consistency_proofs_are_made_of_the_published_nodes() {
    // `TestConsistency` (proof/proof_test.go): (old size, new size, nodes), up to size 8.
    let cases: [(u64, u64, &[Node]); 23] = [
        (1, 2, &[N(0, 1)]),
        (1, 4, &[N(0, 1), N(1, 1)]),
        (1, 6, &[N(0, 1), N(1, 1), N(1, 2)]),
        (2, 3, &[N(0, 2)]),
        (2, 8, &[N(1, 1), N(2, 1)]),
        (3, 7, &[N(0, 2), N(0, 3), N(1, 0), L]),
        (4, 7, &[L]),
        (5, 7, &[N(0, 4), N(0, 5), N(0, 6), N(2, 0)]),
        (6, 7, &[N(1, 2), N(0, 6), N(2, 0)]),
        (7, 8, &[N(0, 6), N(0, 7), N(1, 2), N(2, 0)]),
        (1, 1, &[]),
        (2, 2, &[]),
        (3, 3, &[]),
        (4, 4, &[]),
        (5, 5, &[]),
        (7, 7, &[]),
        (8, 8, &[]),
        (2, 4, &[N(1, 1)]),
        (3, 5, &[N(0, 2), N(0, 3), N(1, 0), N(0, 4)]),
        (3, 6, &[N(0, 2), N(0, 3), N(1, 0), N(1, 2)]),
        (4, 6, &[N(1, 2)]),
        (1, 7, &[N(0, 1), N(1, 1), L]),
        // Not in the Go table: a power-of-two old tree inside a power-of-two new one.
        (4, 8, &[N(2, 1)]),
    ];
    let leaves = leaves();
    let tree = Tree::from_leaves(&leaves);
    for (old, new, nodes) in cases {
        let want = resolve(nodes);
        assert_eq!(
            consistency_proof(&leaves[..new as usize], old).as_ref(),
            Some(&want),
            "{old}:{new}"
        );
        assert_eq!(tree.consistency_proof(old, new).as_ref(), Some(&want));
        assert!(verify_consistency(
            old,
            new,
            &root_of(old),
            &root_of(new),
            &want
        ));
    }
}

/// Leaves that differ, so that a proof for one position cannot pass for another by accident.
fn numbered(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
}

#[test]
fn every_proof_of_small_trees_verifies_and_no_other() {
    let all = numbered(33);
    let tree = Tree::from_leaves(&all);
    for n in 1..=all.len() as u64 {
        let leaves = &all[..n as usize];
        let r = root(leaves);
        assert_eq!(tree.root_at(n), Some(r));
        for i in 0..n {
            let p = inclusion_proof(leaves, i).unwrap();
            assert_eq!(tree.inclusion_proof(i, n).as_ref(), Some(&p));
            assert!(verify_inclusion(i, n, &leaves[i as usize], &p, &r));
            for j in (0..n).filter(|&j| j != i) {
                assert!(!verify_inclusion(j, n, &leaves[i as usize], &p, &r));
            }
        }
        for m in 0..=n {
            let p = consistency_proof(leaves, m).unwrap();
            assert_eq!(tree.consistency_proof(m, n).as_ref(), Some(&p));
            let old = root(&leaves[..m as usize]);
            assert!(verify_consistency(m, n, &old, &r, &p), "{m} to {n}");
            for other in (1..n).filter(|&o| o != m) {
                let claimed = root(&leaves[..other as usize]);
                assert!(
                    !verify_consistency(other, n, &claimed, &r, &p),
                    "{m} as {other}"
                );
            }
        }
    }
}

/// The ways a proof is tampered with in the property below.
#[derive(Debug, Clone)]
enum Tamper {
    /// Flip bit `bit` of byte `byte` of element `elem` (modulo the proof's length).
    Flip {
        elem: usize,
        byte: usize,
        bit: u8,
    },
    /// Claim another size, with that size's root.
    Size(u64),
    /// Claim another position for the leaf, or another old tree for a consistency proof.
    Index(u64),
    Truncate,
    Extend(Hash),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (any::<usize>(), 0..32usize, 0..8u8).prop_map(|(elem, byte, bit)| Tamper::Flip {
            elem,
            byte,
            bit
        }),
        any::<u64>().prop_map(Tamper::Size),
        any::<u64>().prop_map(Tamper::Index),
        Just(Tamper::Truncate),
        any::<[u8; 32]>().prop_map(Tamper::Extend),
    ]
}

/// `x` moved to another value in `0..n` (n ≥ 2).
fn other(x: u64, pick: u64, n: u64) -> u64 {
    (x + 1 + pick % (n - 1)) % n
}

fn flipped(proof: &[Hash], elem: usize, byte: usize, bit: u8) -> Vec<Hash> {
    let mut p = proof.to_vec();
    let e = elem % p.len();
    p[e][byte] ^= 1 << bit;
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn proofs_verify_and_tampered_ones_do_not(
        n in 1..=300u64,
        pick in any::<u64>(),
        t in tamper(),
    ) {
        let leaves = numbered(n);
        let tree = Tree::from_leaves(&leaves);
        let r = root(&leaves);
        prop_assert_eq!(tree.root(), r);
        let roots: Vec<Hash> = (0..=n).map(|s| tree.root_at(s).unwrap()).collect();
        for i in 0..n {
            let p = tree.inclusion_proof(i, n).unwrap();
            prop_assert!(verify_inclusion(i, n, &leaves[i as usize], &p, &r));
        }
        for m in 0..=n {
            let p = tree.consistency_proof(m, n).unwrap();
            prop_assert!(verify_consistency(m, n, &roots[m as usize], &r, &p));
        }
        // The slice functions, which rehash every leaf, agree with the cached tree.
        let i = pick % n;
        let m = pick % (n + 1);
        prop_assert_eq!(inclusion_proof(&leaves, i), tree.inclusion_proof(i, n));
        prop_assert_eq!(consistency_proof(&leaves, m), tree.consistency_proof(m, n));

        let leaf = leaves[i as usize];
        let p = tree.inclusion_proof(i, n).unwrap();
        let accepted = match &t {
            Tamper::Flip { .. } if n == 1 => false,
            Tamper::Flip { elem, byte, bit } => {
                verify_inclusion(i, n, &leaf, &flipped(&p, *elem, *byte, *bit), &r)
            }
            // Any other size that holds leaf i, up to 8 beyond the tree, with that size's own
            // root. Not with this tree's root: a path binds a leaf to a root, not to a size,
            // and one of the same shape (leaf 97 of 103 and of 104) proves it under either.
            Tamper::Size(s) => {
                let s = i + 1 + other(n - i - 1, *s, n - i + 8);
                let bigger = Tree::from_leaves(&numbered(n + 8));
                verify_inclusion(i, s, &leaf, &p, &bigger.root_at(s).unwrap())
            }
            Tamper::Index(j) if n == 1 => verify_inclusion(*j, n, &leaf, &p, &r) && *j != i,
            Tamper::Index(j) => verify_inclusion(other(i, *j, n), n, &leaf, &p, &r),
            Tamper::Truncate if p.is_empty() => false,
            Tamper::Truncate => verify_inclusion(i, n, &leaf, &p[..p.len() - 1], &r),
            Tamper::Extend(x) => {
                let mut longer = p.clone();
                longer.push(*x);
                verify_inclusion(i, n, &leaf, &longer, &r)
            }
        };
        prop_assert!(!accepted, "inclusion {} of {} accepted {:?}", i, n, t);

        // Consistency proofs with something to prove: 0 < m < n.
        if n >= 2 {
            let m = 1 + pick % (n - 1);
            let p = tree.consistency_proof(m, n).unwrap();
            let old = roots[m as usize];
            let accepted = match &t {
                Tamper::Flip { elem, byte, bit } => {
                    verify_consistency(m, n, &old, &r, &flipped(&p, *elem, *byte, *bit))
                }
                // A larger new tree than the proof was made for, with its true root.
                Tamper::Size(s) => {
                    let bigger = n + 1 + s % 8;
                    let more = numbered(bigger);
                    verify_consistency(m, bigger, &old, &root(&more), &p)
                }
                // Another old tree, with its true root.
                Tamper::Index(o) => {
                    let o = other(m, *o, n + 1);
                    verify_consistency(o, n, &roots[o as usize], &r, &p)
                }
                Tamper::Truncate => verify_consistency(m, n, &old, &r, &p[..p.len() - 1]),
                Tamper::Extend(x) => {
                    let mut longer = p.clone();
                    longer.push(*x);
                    verify_consistency(m, n, &old, &r, &longer)
                }
            };
            prop_assert!(!accepted, "consistency {} to {} accepted {:?}", m, n, t);
        }
    }
}
