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

fn sha256(parts: &[&[u8]]) -> Hash {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `SHA-256(0x00 || data)`: the hash of a leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256(&[&[0x00], data])
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// `SHA-256("")`: the root of the empty tree.
pub fn empty_root() -> Hash {
    sha256(&[])
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
        self.index.checked_shl(self.level.into()).unwrap_or(0)
    }
    /// How many leaves it covers (`1 << level`).
    pub fn leaves(&self) -> u64 {
        1u64.checked_shl(self.level.into()).unwrap_or(u64::MAX)
    }
    /// One past the last leaf it covers (saturating).
    pub(crate) fn end_leaf(&self) -> u64 {
        self.first_leaf().saturating_add(self.leaves())
    }
}

/// Where node hashes come from (a [`crate::tiles::TileSet`], an in-memory tree in tests).
pub trait NodeReader {
    /// The hash of `node`, or [`Error::Missing`].
    fn node(&self, node: Node) -> Result<Hash>;
}

/// The leaves `start..end` as complete aligned subtrees, left to right (the largest that fit).
pub fn subtrees(start: u64, end: u64) -> Vec<Node> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let align = if at == 0 {
            63
        } else {
            at.trailing_zeros().min(63)
        };
        let fit = 63 - (end - at).leading_zeros();
        let level = align.min(fit);
        out.push(Node {
            level: level as u8,
            index: at >> level,
        });
        at += 1u64 << level;
    }
    out
}

/// The nodes [`tree_root`] reads: `subtrees(0, size)`.
pub fn root_nodes(size: u64) -> Vec<Node> {
    subtrees(0, size)
}

/// The MTH of the leaves `start..end` (a range the RFC's recursion produces: `start` is a
/// multiple of a power of two at least `end - start`), from its subtrees.
fn range_hash(start: u64, end: u64, r: &dyn NodeReader) -> Result<Hash> {
    let nodes = subtrees(start, end);
    let mut hashes = nodes.iter().rev().map(|n| r.node(*n));
    let Some(last) = hashes.next() else {
        return Ok(empty_root());
    };
    hashes.try_fold(last?, |right, left| Ok(node_hash(&left?, &right)))
}

/// The root of the tree of the first `size` leaves (RFC 9162 MTH); [`empty_root`] for 0.
pub fn tree_root(size: u64, r: &dyn NodeReader) -> Result<Hash> {
    range_hash(0, size, r)
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The leaf ranges whose MTHs make PATH(index, D[0:size]), leaf side first.
fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>> {
    if index >= size {
        return Err(Error::Range(format!(
            "leaf index {index} is not below tree size {size}"
        )));
    }
    let (mut lo, mut hi, mut out) = (0u64, size, Vec::new());
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index - lo < k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    Ok(out)
}

/// The leaf ranges whose MTHs make PROOF(old, D[0:new]), in proof order.
fn consistency_ranges(old: u64, new: u64) -> Result<Vec<(u64, u64)>> {
    if old > new {
        return Err(Error::Range(format!(
            "old size {old} is above new size {new}"
        )));
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let (mut lo, mut hi, mut whole, mut out) = (0u64, new, true, Vec::new());
    while old - lo != hi - lo {
        let k = split(hi - lo);
        if old - lo <= k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
            whole = false;
        }
    }
    if !whole {
        out.push((lo, hi));
    }
    out.reverse();
    Ok(out)
}

fn nodes_of(ranges: &[(u64, u64)]) -> Vec<Node> {
    ranges.iter().flat_map(|&(a, b)| subtrees(a, b)).collect()
}

fn hashes_of(ranges: &[(u64, u64)], r: &dyn NodeReader) -> Result<Vec<Hash>> {
    ranges.iter().map(|&(a, b)| range_hash(a, b, r)).collect()
}

/// Every node [`inclusion_proof`] reads for leaf `index` in a tree of `size`.
pub fn inclusion_nodes(index: u64, size: u64) -> Result<Vec<Node>> {
    Ok(nodes_of(&inclusion_ranges(index, size)?))
}

/// The inclusion proof (RFC 9162 2.1.3.1 PATH) of leaf `index` in the tree of `size` leaves.
/// [`Error::Range`] unless `index < size`.
pub fn inclusion_proof(index: u64, size: u64, r: &dyn NodeReader) -> Result<Vec<Hash>> {
    hashes_of(&inclusion_ranges(index, size)?, r)
}

/// Every node [`consistency_proof`] reads between sizes `old` and `new`.
pub fn consistency_nodes(old: u64, new: u64) -> Result<Vec<Node>> {
    Ok(nodes_of(&consistency_ranges(old, new)?))
}

/// The consistency proof (RFC 9162 2.1.4.1 PROOF) from size `old` to size `new`; empty when
/// `old == new` or `old == 0`. [`Error::Range`] unless `old <= new`.
pub fn consistency_proof(old: u64, new: u64, r: &dyn NodeReader) -> Result<Vec<Hash>> {
    hashes_of(&consistency_ranges(old, new)?, r)
}

fn refuse(why: impl Into<String>) -> Error {
    Error::Proof(why.into())
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
    if index >= size {
        return Err(refuse(format!(
            "leaf index {index} is not below tree size {size}"
        )));
    }
    let (mut f, mut s, mut r) = (index, size - 1, *leaf);
    for p in proof {
        if s == 0 {
            return Err(refuse("inclusion proof is longer than the tree needs"));
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(refuse("inclusion proof is shorter than the tree needs"));
    }
    if &r != root {
        return Err(refuse("inclusion proof leads to a different root"));
    }
    Ok(())
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
    if old > new {
        return Err(refuse(format!("old size {old} is above new size {new}")));
    }
    if old == 0 || old == new {
        if !proof.is_empty() {
            return Err(refuse(format!(
                "consistency proof from size {old} to {new} must be empty"
            )));
        }
        if old == new && old_root != new_root {
            return Err(refuse(format!("two different roots for size {old}")));
        }
        return Ok(());
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(refuse("consistency proof is empty"));
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return Err(refuse("consistency proof is longer than the trees need"));
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(refuse("consistency proof is shorter than the trees need"));
    }
    if &fr != old_root {
        return Err(refuse("consistency proof leads to a different old root"));
    }
    if &sr != new_root {
        return Err(refuse("consistency proof leads to a different new root"));
    }
    Ok(())
}
