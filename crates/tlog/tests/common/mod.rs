//! Test helpers: an in-memory tree (a `NodeReader` over every complete node) and a naive
//! RFC 9162 reference (MTH, PATH, PROOF written straight from section 2.1, memoized).
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;

use auditlog_tlog::merkle::{empty_root, leaf_hash, node_hash, Hash, Node, NodeReader};
use auditlog_tlog::{Error, Result};

/// Leaf hashes of `n` distinct leaves (the big-endian index as data).
pub fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// Every complete node of a tree: `levels[h][i]` is node `(h, i)`.
pub struct MemTree {
    pub levels: Vec<Vec<Hash>>,
}

impl MemTree {
    pub fn new(leaves: &[Hash]) -> Self {
        let mut levels = vec![leaves.to_vec()];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let up = levels
                .last()
                .unwrap()
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            levels.push(up);
        }
        MemTree { levels }
    }
}

impl NodeReader for MemTree {
    fn node(&self, node: Node) -> Result<Hash> {
        self.levels
            .get(usize::from(node.level))
            .and_then(|l| l.get(node.index as usize))
            .copied()
            .ok_or_else(|| Error::Missing(format!("{node:?}")))
    }
}

/// RFC 9162 2.1 over `leaves` (leaf hashes), recursion as written, MTH memoized.
pub struct Reference<'a> {
    pub leaves: &'a [Hash],
    memo: RefCell<HashMap<(usize, usize), Hash>>,
}

/// The largest power of two smaller than `n`.
fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

impl<'a> Reference<'a> {
    pub fn new(leaves: &'a [Hash]) -> Self {
        Reference {
            leaves,
            memo: RefCell::default(),
        }
    }

    /// MTH(D[lo:hi]).
    pub fn mth(&self, lo: usize, hi: usize) -> Hash {
        let n = hi - lo;
        if n == 0 {
            return empty_root();
        }
        if n == 1 {
            return self.leaves[lo];
        }
        if let Some(h) = self.memo.borrow().get(&(lo, hi)) {
            return *h;
        }
        let k = k_of(n);
        let h = node_hash(&self.mth(lo, lo + k), &self.mth(lo + k, hi));
        self.memo.borrow_mut().insert((lo, hi), h);
        h
    }

    /// PATH(m, D[lo:hi]).
    pub fn path(&self, m: usize, lo: usize, hi: usize) -> Vec<Hash> {
        let n = hi - lo;
        if n <= 1 {
            return Vec::new();
        }
        let k = k_of(n);
        if m < k {
            let mut p = self.path(m, lo, lo + k);
            p.push(self.mth(lo + k, hi));
            p
        } else {
            let mut p = self.path(m - k, lo + k, hi);
            p.push(self.mth(lo, lo + k));
            p
        }
    }

    /// SUBPROOF(m, D[lo:hi], b).
    fn subproof(&self, m: usize, lo: usize, hi: usize, b: bool) -> Vec<Hash> {
        let n = hi - lo;
        if m == n {
            return if b {
                Vec::new()
            } else {
                vec![self.mth(lo, hi)]
            };
        }
        let k = k_of(n);
        if m <= k {
            let mut p = self.subproof(m, lo, lo + k, b);
            p.push(self.mth(lo + k, hi));
            p
        } else {
            let mut p = self.subproof(m - k, lo + k, hi, false);
            p.push(self.mth(lo, lo + k));
            p
        }
    }

    /// PROOF(m, D[0:n]) (empty for m = 0 or m = n).
    pub fn proof(&self, m: usize, n: usize) -> Vec<Hash> {
        if m == 0 || m == n {
            return Vec::new();
        }
        self.subproof(m, 0, n, true)
    }
}

pub fn hex32(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}
