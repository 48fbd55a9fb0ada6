//! C2SP tlog-tiles geometry (<https://c2sp.org/tlog-tiles>): tiles of height 8. The tile at
//! tile level `L`, index `k` holds the hashes of the tree-level-`8L` nodes `k*256 ..
//! k*256 + width` (width 1..=256; a partial tile is the right edge). Level 0 tiles hold the
//! leaf hashes. Any complete node of tree level `8L <= h < 8L + 8` is computed from
//! `2^(h-8L)` consecutive hashes of one tile of level `L`, so a proof of a tree of tens of
//! millions of leaves reads a handful of tiles.
//!
//! The log is append-only, so a tile's hashes at a smaller width are a prefix of its hashes at
//! a larger one: storing each tile's newest (widest) version serves every older tree size.

use std::collections::BTreeMap;

use crate::merkle::{node_hash, tree_root, Hash, Node, NodeReader};
use crate::{Error, Result};

/// Tile height: 8 tree levels per tile level.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile: 256.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

/// A tile's coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TileId {
    /// Tile level (tree level `8 * level` hashes).
    pub level: u8,
    /// Index among the tiles of this level.
    pub index: u64,
}

/// A tile and its hashes (its width is `hashes.len()`, 1..=256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tile {
    /// Where it is.
    pub id: TileId,
    /// The hashes it holds, left to right.
    pub hashes: Vec<Hash>,
}

impl Tile {
    /// The hashes as one byte string (`width * 32` bytes), as stored in `log_tiles.hashes`.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.hashes.concat()
    }
    /// From stored bytes; [`crate::Error::Malformed`] unless a multiple of 32 (1..=256 hashes).
    pub fn from_bytes(id: TileId, bytes: &[u8]) -> Result<Tile> {
        let n = bytes.len() / 32;
        if !bytes.len().is_multiple_of(32) || n == 0 || n as u64 > TILE_WIDTH {
            return Err(Error::Malformed {
                what: "tile",
                why: format!(
                    "tile {}/{} has {} bytes, not 32 to 8192 in steps of 32",
                    id.level,
                    id.index,
                    bytes.len()
                ),
            });
        }
        let hashes = bytes
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(Tile { id, hashes })
    }
}

/// Tree-level-`8 * level` nodes complete in a tree of `size` leaves.
fn nodes_at(level: u8, size: u64) -> u64 {
    size.checked_shr(u32::from(level) * u32::from(TILE_HEIGHT))
        .unwrap_or(0)
}

/// The width of tile `id` in a tree of `size` leaves (0 when the tile does not exist yet).
pub fn width_at(id: TileId, size: u64) -> u64 {
    let before = id.index.saturating_mul(TILE_WIDTH);
    nodes_at(id.level, size)
        .saturating_sub(before)
        .min(TILE_WIDTH)
}

/// Where a node's hash comes from: its tile, the first hash it covers in that tile and how
/// many (`2^(level % 8)`); `None` for a node above any tile level.
fn locate(node: Node) -> Option<(TileId, usize, usize)> {
    let sub = u32::from(node.level % TILE_HEIGHT);
    let level = node.level / TILE_HEIGHT;
    if u32::from(level) * u32::from(TILE_HEIGHT) >= 64 {
        return None;
    }
    let first = node.index.checked_shl(sub)?;
    if first >> sub != node.index {
        return None;
    }
    let id = TileId {
        level,
        index: first / TILE_WIDTH,
    };
    Some((id, (first % TILE_WIDTH) as usize, 1usize << sub))
}

/// The tiles holding every node in `nodes` (nodes that lie inside a tree of `size` leaves),
/// each once, sorted.
pub fn tiles_for(nodes: &[Node], size: u64) -> Vec<TileId> {
    let mut ids: Vec<TileId> = nodes
        .iter()
        .filter(|n| n.end_leaf() <= size && n.first_leaf() < size)
        .filter_map(|n| locate(*n).map(|(id, _, _)| id))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The root of `hashes` (a power of two of them) as a complete subtree.
fn complete_root(hashes: &[Hash]) -> Hash {
    let mut level = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|p| node_hash(&p[0], &p[1]))
            .collect();
    }
    level
        .first()
        .copied()
        .unwrap_or_else(crate::merkle::empty_root)
}

/// The hash of `node` from the hashes of its tile, when they reach far enough.
fn node_in_tile(node: Node, id: TileId, hashes: &[Hash]) -> Result<Hash> {
    let missing = |why: &str| {
        Error::Missing(format!(
            "node {}/{} ({why} tile {}/{})",
            node.level, node.index, id.level, id.index
        ))
    };
    let Some((want, start, count)) = locate(node) else {
        return Err(missing("above every"));
    };
    if want != id {
        return Err(missing("not in"));
    }
    match hashes.get(start..start + count) {
        Some(slice) => Ok(complete_root(slice)),
        None => Err(missing("too narrow")),
    }
}

/// Tiles in memory, answering node hashes. A tile wider than needed is fine (append-only).
#[derive(Debug, Clone, Default)]
pub struct TileSet {
    tiles: BTreeMap<TileId, Vec<Hash>>,
}

impl TileSet {
    /// The tiles given (a later tile with the same id replaces an earlier one).
    pub fn new(tiles: impl IntoIterator<Item = Tile>) -> Self {
        let mut s = Self::default();
        for t in tiles {
            s.insert(t);
        }
        s
    }
    /// Add or replace a tile.
    pub fn insert(&mut self, tile: Tile) {
        self.tiles.insert(tile.id, tile.hashes);
    }
    /// The hashes of a tile, if held.
    pub fn get(&self, id: TileId) -> Option<&[Hash]> {
        self.tiles.get(&id).map(Vec::as_slice)
    }
}

impl NodeReader for TileSet {
    fn node(&self, node: Node) -> Result<Hash> {
        let Some((id, _, _)) = locate(node) else {
            return Err(Error::Missing(format!(
                "node {}/{} is above every tile level",
                node.level, node.index
            )));
        };
        let Some(hashes) = self.get(id) else {
            return Err(Error::Missing(format!(
                "node {}/{} needs tile {}/{}, which is not held",
                node.level, node.index, id.level, id.index
            )));
        };
        node_in_tile(node, id, hashes)
    }
}

/// Appends leaves to a log and keeps its right edge: the last (partial) tile of each level,
/// enough for the root and for resuming. Memory: at most 256 hashes per tile level.
#[derive(Debug, Clone, Default)]
pub struct Appender {
    size: u64,
    /// `edge[L]`: hashes of the last tile of level `L` (shorter than 256 once full tiles are
    /// taken out).
    edge: Vec<Vec<Hash>>,
    /// Which tiles changed since [`Appender::take_changed`]: full tiles with their hashes,
    /// partial (edge) tiles with an empty vector (their hashes are read from `edge`).
    changed: BTreeMap<TileId, Vec<Hash>>,
}

impl Appender {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tiles [`Appender::resume`] needs for a log of `size` leaves: the last tile of every
    /// level that has a partial one at that size (a level whose tiles are all full needs
    /// none).
    pub fn edge_tiles(size: u64) -> Vec<TileId> {
        (0u8..8)
            .map(|level| (level, nodes_at(level, size)))
            .filter(|&(_, n)| !n.is_multiple_of(TILE_WIDTH))
            .map(|(level, n)| TileId {
                level,
                index: n / TILE_WIDTH,
            })
            .collect()
    }

    /// The log of `size` leaves, from its edge tiles (wider tiles are cut to `size`).
    /// [`crate::Error::Missing`] when a tile is absent or too narrow.
    pub fn resume(size: u64, edge: &TileSet) -> Result<Self> {
        let levels = (0u8..8).take_while(|&l| nodes_at(l, size) > 0).count();
        let mut out = Appender {
            size,
            edge: vec![Vec::new(); levels],
            changed: BTreeMap::new(),
        };
        for id in Self::edge_tiles(size) {
            let width = width_at(id, size) as usize;
            let hashes = edge.get(id).and_then(|h| h.get(..width)).ok_or_else(|| {
                Error::Missing(format!(
                    "resuming at size {size} needs tile {}/{} of width {width}",
                    id.level, id.index
                ))
            })?;
            out.edge[usize::from(id.level)] = hashes.to_vec();
        }
        Ok(out)
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append one leaf hash.
    pub fn append(&mut self, leaf: Hash) {
        self.size += 1;
        let mut carry = leaf;
        for level in 0u8.. {
            let l = usize::from(level);
            if self.edge.len() <= l {
                self.edge.push(Vec::new());
            }
            self.edge[l].push(carry);
            let id = TileId {
                level,
                index: (nodes_at(level, self.size) - 1) / TILE_WIDTH,
            };
            if (self.edge[l].len() as u64) < TILE_WIDTH {
                self.changed.insert(id, Vec::new());
                return;
            }
            let full = std::mem::take(&mut self.edge[l]);
            carry = complete_root(&full);
            self.changed.insert(id, full);
        }
    }

    /// The root of the log as it is now (RFC 9162 MTH).
    pub fn root(&self) -> Hash {
        // The edge holds every node of the root (module docs); a gap would be a bug here.
        tree_root(self.size, &EdgeReader(self)).unwrap_or_else(|e| panic!("appender edge: {e}"))
    }

    /// Every tile that changed since the last call, with its current hashes (full tiles once,
    /// when they fill; partial tiles as they are now), sorted by id.
    pub fn take_changed(&mut self) -> Vec<Tile> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .filter_map(|(id, hashes)| {
                let hashes = if hashes.is_empty() {
                    self.edge.get(usize::from(id.level))?.clone()
                } else {
                    hashes
                };
                (!hashes.is_empty()).then_some(Tile { id, hashes })
            })
            .collect()
    }
}

/// The appender's edge tiles as a [`NodeReader`] (answers the nodes of its root).
struct EdgeReader<'a>(&'a Appender);

impl NodeReader for EdgeReader<'_> {
    fn node(&self, node: Node) -> Result<Hash> {
        let Some((id, _, _)) = locate(node) else {
            return Err(Error::Missing(format!(
                "node {}/{}",
                node.level, node.index
            )));
        };
        let current = nodes_at(id.level, self.0.size) / TILE_WIDTH;
        let hashes = match self.0.edge.get(usize::from(id.level)) {
            Some(h) if id.index == current => h.as_slice(),
            _ => &[],
        };
        node_in_tile(node, id, hashes)
    }
}
