//! RFC 9162 section 2.1 Merkle trees: hashing (`0x00 || leaf`, `0x01 || left || right`,
//! SHA-256), the tree head of any size, inclusion and consistency proofs (generated from a
//! [`NodeReader`], so O(log n) stored hashes are read), and their verification.
//!
//! Every hash a proof needs is the hash of a *complete aligned subtree* ([`Node`]): the
//! proof functions first say which nodes they read ([`inclusion_nodes`],
//! [`consistency_nodes`], [`root_nodes`]) so a caller can fetch them in one read (the tiles
//! holding them, [`crate::tiles::tiles_for`]), then compute from a reader over what it fetched.

use crate::{Error, Result};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`: the hash of a leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    todo!("{data:?}")
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    todo!("{left:?}{right:?}")
}

/// `SHA-256("")`: the root of the empty tree.
pub fn empty_root() -> Hash {
    todo!()
}

/// A complete aligned subtree: `level` 0 is a leaf; node `(level, index)` covers the leaves
/// `index << level .. (index + 1) << level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Node {
    /// Height above the leaves (0 = a leaf).
    pub level: u8,
    /// Position among the nodes of this level, from the left.
    pub index: u64,
}

impl Node {
    /// The first leaf it covers.
    pub fn first_leaf(&self) -> u64 {
        todo!()
    }
    /// How many leaves it covers (`1 << level`).
    pub fn leaves(&self) -> u64 {
        todo!()
    }
}

/// Where node hashes come from (a [`crate::tiles::TileSet`], an in-memory tree in tests).
pub trait NodeReader {
    /// The hash of `node`, or [`Error::Missing`].
    fn node(&self, node: Node) -> Result<Hash>;
}

/// The leaves `start..end` as complete aligned subtrees, left to right (the largest that fit).
pub fn subtrees(start: u64, end: u64) -> Vec<Node> {
    todo!("{start}{end}")
}

/// The nodes [`tree_root`] reads: `subtrees(0, size)`.
pub fn root_nodes(size: u64) -> Vec<Node> {
    subtrees(0, size)
}

/// The root of the tree of the first `size` leaves (RFC 9162 MTH); [`empty_root`] for 0.
pub fn tree_root(size: u64, r: &dyn NodeReader) -> Result<Hash> {
    todo!("{size}{:?}", r.node(Node { level: 0, index: 0 }))
}

/// Every node [`inclusion_proof`] reads for leaf `index` in a tree of `size`.
pub fn inclusion_nodes(index: u64, size: u64) -> Result<Vec<Node>> {
    todo!("{index}{size}")
}

/// The inclusion proof (RFC 9162 2.1.3.1 PATH) of leaf `index` in the tree of `size` leaves.
/// [`Error::Range`] unless `index < size`.
pub fn inclusion_proof(index: u64, size: u64, r: &dyn NodeReader) -> Result<Vec<Hash>> {
    todo!("{index}{size}{:?}", r.node(Node { level: 0, index: 0 }))
}

/// Every node [`consistency_proof`] reads between sizes `old` and `new`.
pub fn consistency_nodes(old: u64, new: u64) -> Result<Vec<Node>> {
    todo!("{old}{new}")
}

/// The consistency proof (RFC 9162 2.1.4.1 PROOF) from size `old` to size `new`; empty when
/// `old == new` or `old == 0`. [`Error::Range`] unless `old <= new`.
pub fn consistency_proof(old: u64, new: u64, r: &dyn NodeReader) -> Result<Vec<Hash>> {
    todo!("{old}{new}{:?}", r.node(Node { level: 0, index: 0 }))
}

/// RFC 9162 2.1.3.2: `proof` proves `leaf` (a leaf hash) is leaf `index` of the tree of
/// `size` leaves whose root is `root`. [`Error::Proof`] says why not.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    todo!("{leaf:?}{index}{size}{proof:?}{root:?}")
}

/// RFC 9162 2.1.4.2: `proof` proves the tree of `old` leaves with root `old_root` is a prefix
/// of the tree of `new` leaves with root `new_root`. `old == new` needs an empty proof and
/// equal roots; `old == 0` an empty proof. [`Error::Proof`] says why not.
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<()> {
    todo!("{old}{new}{proof:?}{old_root:?}{new_root:?}")
}

#[allow(dead_code)]
fn unused(_: Error) {}
