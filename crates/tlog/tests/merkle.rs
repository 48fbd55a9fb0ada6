//! RFC 9162 trees and proofs: known answers (the RFC 6962 reference tree of
//! certificate-transparency-go / transparency-dev/merkle), the naive reference for every
//! size 1..=300, sizes around 65536, and refusals.

mod common;

use auditlog_tlog::merkle::{
    consistency_nodes, consistency_proof, empty_root, inclusion_nodes, inclusion_proof, leaf_hash,
    node_hash, root_nodes, subtrees, tree_root, verify_consistency, verify_inclusion, Hash, Node,
};
use auditlog_tlog::Error;
use common::{hex32, leaves, MemTree, Reference};

/// The eight leaves of the reference tree.
const KAT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots of the reference tree for sizes 1..=8.
const KAT_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, proof).
const KAT_INCLUSION: &[(u64, u64, &[&str])] = &[
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

/// (old size, new size, proof).
const KAT_CONSISTENCY: &[(u64, u64, &[&str])] = &[
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

fn kat_tree() -> MemTree {
    let hashes: Vec<Hash> = KAT_LEAVES
        .iter()
        .map(|l| leaf_hash(&hex::decode(l).unwrap()))
        .collect();
    MemTree::new(&hashes)
}

fn hashes(list: &[&str]) -> Vec<Hash> {
    list.iter().map(|h| hex32(h)).collect()
}

#[test]
fn hashing_known_answers() {
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex::encode(leaf_hash(b"")),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
    let (a, b) = (leaf_hash(b""), leaf_hash(&[0]));
    assert_eq!(
        hex::encode(node_hash(&a, &b)),
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
    );
}

#[test]
fn reference_tree_roots() {
    let tree = kat_tree();
    for (i, want) in KAT_ROOTS.iter().enumerate() {
        let size = i as u64 + 1;
        assert_eq!(tree_root(size, &tree).unwrap(), hex32(want), "size {size}");
    }
    assert_eq!(tree_root(0, &tree).unwrap(), empty_root());
}

#[test]
fn reference_tree_inclusion_proofs() {
    let tree = kat_tree();
    for &(index, size, want) in KAT_INCLUSION {
        let proof = inclusion_proof(index, size, &tree).unwrap();
        assert_eq!(proof, hashes(want), "leaf {index} of {size}");
        let leaf = tree.levels[0][index as usize];
        let root = hex32(KAT_ROOTS[size as usize - 1]);
        verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
    }
}

#[test]
fn reference_tree_consistency_proofs() {
    let tree = kat_tree();
    for &(old, new, want) in KAT_CONSISTENCY {
        let proof = consistency_proof(old, new, &tree).unwrap();
        assert_eq!(proof, hashes(want), "{old} -> {new}");
        let (r1, r2) = (
            hex32(KAT_ROOTS[old as usize - 1]),
            hex32(KAT_ROOTS[new as usize - 1]),
        );
        verify_consistency(old, new, &proof, &r1, &r2).unwrap();
    }
}

/// Everything the fast code says about a tree of `n` leaves, against the reference, for the
/// leaf indexes and old sizes given; every proof verifies.
fn check_size(leaves: &[Hash], tree: &MemTree, n: usize, points: &[usize]) {
    let reference = Reference::new(&leaves[..n]);
    let root = reference.mth(0, n);
    let size = n as u64;
    assert_eq!(tree_root(size, tree).unwrap(), root, "root of {n}");
    for &m in points.iter().filter(|&&m| m < n) {
        let proof = inclusion_proof(m as u64, size, tree).unwrap();
        assert_eq!(proof, reference.path(m, 0, n), "PATH({m}, {n})");
        verify_inclusion(&leaves[m], m as u64, size, &proof, &root).unwrap();
    }
    for &m in points.iter().filter(|&&m| m <= n) {
        let proof = consistency_proof(m as u64, size, tree).unwrap();
        assert_eq!(proof, reference.proof(m, n), "PROOF({m}, {n})");
        let old_root = reference.mth(0, m);
        verify_consistency(m as u64, size, &proof, &old_root, &root).unwrap();
    }
}

#[test]
fn every_size_to_300_matches_the_reference() {
    let leaves = leaves(300);
    let tree = MemTree::new(&leaves);
    let points: Vec<usize> = (0..=300).collect();
    for n in 1..=300 {
        check_size(&leaves, &tree, n, &points);
    }
}

#[test]
fn sizes_around_65536_and_a_large_one_match_the_reference() {
    let leaves = leaves(100_003);
    let tree = MemTree::new(&leaves);
    let mut points = vec![0, 1, 2, 3, 255, 256, 257, 4095, 4096, 32767, 32768, 65534];
    points.extend([
        65535, 65536, 65537, 70000, 99_999, 100_000, 100_002, 100_003,
    ]);
    for n in [65535, 65536, 65537, 100_003] {
        check_size(&leaves, &tree, n, &points);
    }
}

#[test]
fn nodes_are_what_the_proofs_read() {
    // A reader that only holds the nodes announced must suffice.
    struct Only<'a>(&'a MemTree, Vec<Node>);
    impl auditlog_tlog::NodeReader for Only<'_> {
        fn node(&self, n: Node) -> auditlog_tlog::Result<Hash> {
            if !self.1.contains(&n) {
                return Err(Error::Missing(format!("{n:?} not announced")));
            }
            self.0.node(n)
        }
    }
    let leaves = leaves(40);
    let tree = MemTree::new(&leaves);
    for n in 1..=40u64 {
        tree_root(n, &Only(&tree, root_nodes(n))).unwrap();
        for m in 0..n {
            inclusion_proof(m, n, &Only(&tree, inclusion_nodes(m, n).unwrap())).unwrap();
        }
        for m in 0..=n {
            consistency_proof(m, n, &Only(&tree, consistency_nodes(m, n).unwrap())).unwrap();
        }
    }
}

#[test]
fn subtrees_are_the_largest_aligned() {
    let n = |level, index| Node { level, index };
    assert_eq!(subtrees(0, 0), vec![]);
    assert_eq!(subtrees(0, 8), vec![n(3, 0)]);
    assert_eq!(subtrees(0, 7), vec![n(2, 0), n(1, 2), n(0, 6)]);
    assert_eq!(subtrees(3, 9), vec![n(0, 3), n(2, 1), n(0, 8)]);
    assert_eq!(subtrees(0, u64::MAX).len(), 64);
    let node = n(3, 5);
    assert_eq!((node.first_leaf(), node.leaves()), (40, 8));
}

#[test]
fn out_of_range_arguments_are_refused() {
    let tree = kat_tree();
    assert!(matches!(inclusion_proof(3, 3, &tree), Err(Error::Range(_))));
    assert!(matches!(inclusion_nodes(0, 0), Err(Error::Range(_))));
    assert!(matches!(
        consistency_proof(4, 3, &tree),
        Err(Error::Range(_))
    ));
    assert!(matches!(consistency_nodes(9, 8), Err(Error::Range(_))));
    assert!(matches!(tree_root(9, &tree), Err(Error::Missing(_))));
    assert!(consistency_proof(0, 8, &tree).unwrap().is_empty());
    assert!(consistency_proof(8, 8, &tree).unwrap().is_empty());
}

/// Each variant of a valid inclusion proof that must be refused.
fn bad_inclusions(
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Vec<(u64, u64, Vec<Hash>, &'static str)> {
    let junk = [0xab; 32];
    let mut out = vec![
        (index.wrapping_sub(1), size, proof.to_vec(), "index - 1"),
        (index + 1, size, proof.to_vec(), "index + 1"),
        (index ^ 2, size, proof.to_vec(), "index ^ 2"),
        (index, size * 2, proof.to_vec(), "size * 2"),
        (index, size / 2, proof.to_vec(), "size / 2"),
        (
            index,
            size,
            [proof, &[junk]].concat(),
            "extra hash at the end",
        ),
        (
            index,
            size,
            [&[junk], proof].concat(),
            "extra hash at the front",
        ),
    ];
    if let Some((_, short)) = proof.split_last() {
        out.push((index, size, short.to_vec(), "missing hash"));
    }
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i][0] ^= 8;
        out.push((index, size, p, "flipped bit"));
    }
    out
}

#[test]
fn bad_inclusion_proofs_are_refused() {
    let leaves = leaves(70);
    let tree = MemTree::new(&leaves);
    for size in [1u64, 2, 3, 5, 8, 13, 64, 70] {
        let root = tree_root(size, &tree).unwrap();
        for index in 0..size {
            let leaf = leaves[index as usize];
            let proof = inclusion_proof(index, size, &tree).unwrap();
            for (i, s, p, what) in bad_inclusions(index, size, &proof) {
                assert!(
                    verify_inclusion(&leaf, i, s, &p, &root).is_err(),
                    "{what} verified: {index}/{size} as {i}/{s}"
                );
            }
            let wrong_leaf = leaf_hash(b"wrong");
            assert!(verify_inclusion(&wrong_leaf, index, size, &proof, &root).is_err());
            let wrong_root = [0x5a; 32];
            assert!(verify_inclusion(&leaf, index, size, &proof, &wrong_root).is_err());
        }
    }
}

/// old, new, proof, old root, new root, what was changed.
type BadConsistency = (u64, u64, Vec<Hash>, Hash, Hash, &'static str);

#[test]
fn bad_consistency_proofs_are_refused() {
    let leaves = leaves(70);
    let tree = MemTree::new(&leaves);
    let junk = [0xab; 32];
    for new in [2u64, 3, 5, 8, 13, 64, 70] {
        let new_root = tree_root(new, &tree).unwrap();
        for old in 1..new {
            let old_root = tree_root(old, &tree).unwrap();
            let proof = consistency_proof(old, new, &tree).unwrap();
            let mut bad: Vec<BadConsistency> = vec![
                (old - 1, new, proof.clone(), old_root, new_root, "old - 1"),
                (old + 1, new, proof.clone(), old_root, new_root, "old + 1"),
                (old ^ 2, new, proof.clone(), old_root, new_root, "old ^ 2"),
                (old, new * 2, proof.clone(), old_root, new_root, "new * 2"),
                (old, new / 2, proof.clone(), old_root, new_root, "new / 2"),
                (old, new, proof.clone(), junk, new_root, "wrong old root"),
                (old, new, proof.clone(), old_root, junk, "wrong new root"),
                (old, new, proof.clone(), new_root, old_root, "swapped roots"),
                (old, new, vec![], old_root, new_root, "empty proof"),
                (
                    old,
                    new,
                    [&proof[..], &[junk]].concat(),
                    old_root,
                    new_root,
                    "extra at end",
                ),
                (
                    old,
                    new,
                    [&[junk], &proof[..]].concat(),
                    old_root,
                    new_root,
                    "extra at front",
                ),
                (
                    old,
                    new,
                    proof[..proof.len() - 1].to_vec(),
                    old_root,
                    new_root,
                    "missing hash",
                ),
            ];
            for i in 0..proof.len() {
                let mut p = proof.clone();
                p[i][0] ^= 16;
                bad.push((old, new, p, old_root, new_root, "flipped bit"));
            }
            for (o, n, p, r1, r2, what) in bad {
                if o == 0 && p.is_empty() {
                    continue; // size 0 is consistent with everything
                }
                assert!(
                    verify_consistency(o, n, &p, &r1, &r2).is_err(),
                    "{what} verified: {old}->{new} as {o}->{n}"
                );
            }
        }
    }
    let root = tree_root(5, &tree).unwrap();
    assert!(verify_consistency(5, 5, &[], &root, &root).is_ok());
    assert!(verify_consistency(5, 5, &[root], &root, &root).is_err());
    assert!(verify_consistency(5, 5, &[], &root, &junk).is_err());
    assert!(verify_consistency(0, 5, &[], &junk, &root).is_ok());
    assert!(verify_consistency(0, 5, &[root], &junk, &root).is_err());
    assert!(verify_consistency(6, 5, &[], &root, &root).is_err());
}
