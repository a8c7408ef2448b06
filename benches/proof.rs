//! Merkle tree costs over a million audit entries, the size a long-lived store's log reaches:
//! a root and a consistency proof from the bare leaf hashes (every leaf rehashed, O(n)), and
//! from a `Tree` that keeps its whole subtrees (O(log n) and O(log² n)), plus building that
//! tree. Throughput is in leaves.

mod common;
use common::Rng;
use criterion::{Criterion, Throughput};
use flowkeep::proof::merkle::{self, Hash, Tree};
use std::hint::black_box;

/// Not a power of two either: a tree of 2^20 leaves is one stored subtree, and its root a lookup.
const LEAVES: u64 = 1_000_003;
/// Not a power of two, so that the proof takes the general path of RFC 9162 2.1.4.
const OLD_SIZE: u64 = 700_001;

/// Leaf hashes as random bytes: SHA-256 output looks the same, and hashing a million entries
/// here would only slow the setup.
fn leaves(n: u64) -> Vec<Hash> {
    let mut rng = Rng(13);
    (0..n)
        .map(|_| {
            let mut h = [0u8; 32];
            for chunk in h.chunks_exact_mut(8) {
                chunk.copy_from_slice(&rng.next().to_le_bytes());
            }
            h
        })
        .collect()
}

fn bench_proof(c: &mut Criterion) {
    let leaves = leaves(LEAVES);
    let tree = Tree::from_leaves(&leaves);
    let root = merkle::root(&leaves);
    let old_root = tree.root_at(OLD_SIZE).unwrap();
    // A benchmark of wrong answers would be no use: the two ways agree and the proof verifies.
    assert_eq!(tree.root(), root);
    let proof = merkle::consistency_proof(&leaves, OLD_SIZE).unwrap();
    assert_eq!(
        tree.consistency_proof(OLD_SIZE, LEAVES),
        Some(proof.clone())
    );
    assert!(merkle::verify_consistency(
        OLD_SIZE, LEAVES, &old_root, &root, &proof
    ));

    let mut g = c.benchmark_group("merkle");
    g.bench_function("tree_root/1M", |b| b.iter(|| black_box(&tree).root()));
    g.bench_function("tree_consistency_proof/1M", |b| {
        b.iter(|| black_box(&tree).consistency_proof(black_box(OLD_SIZE), LEAVES))
    });
    g.bench_function("verify_consistency/1M", |b| {
        b.iter(|| merkle::verify_consistency(OLD_SIZE, LEAVES, &old_root, &root, black_box(&proof)))
    });
    // Each iteration hashes a million nodes: fewer samples, or this group alone takes minutes.
    g.sample_size(10);
    g.throughput(Throughput::Elements(LEAVES));
    g.bench_function("root/1M", |b| b.iter(|| merkle::root(black_box(&leaves))));
    g.bench_function("consistency_proof/1M", |b| {
        b.iter(|| merkle::consistency_proof(black_box(&leaves), OLD_SIZE))
    });
    g.bench_function("tree_from_leaves/1M", |b| {
        b.iter(|| Tree::from_leaves(black_box(&leaves)))
    });
    g.finish();
}

common::bench_main!(bench_proof);
