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

use crate::merkle::{Hash, Node, NodeReader};
use crate::Result;

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
        todo!()
    }
    /// From stored bytes; [`crate::Error::Malformed`] unless a multiple of 32 (1..=256 hashes).
    pub fn from_bytes(id: TileId, bytes: &[u8]) -> Result<Tile> {
        todo!("{id:?}{bytes:?}")
    }
}

/// The width of tile `id` in a tree of `size` leaves (0 when the tile does not exist yet).
pub fn width_at(id: TileId, size: u64) -> u64 {
    todo!("{id:?}{size}")
}

/// The tiles holding every node in `nodes` (nodes that lie inside a tree of `size` leaves),
/// each once, sorted.
pub fn tiles_for(nodes: &[Node], size: u64) -> Vec<TileId> {
    todo!("{nodes:?}{size}")
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
        todo!("{node:?}")
    }
}

/// Appends leaves to a log and keeps its right edge: the last (partial) tile of each level,
/// enough for the root and for resuming. Memory: at most 256 hashes per tile level.
#[derive(Debug, Clone, Default)]
pub struct Appender {
    size: u64,
    /// `edge[L]`: hashes of the last tile of level `L` (shorter than 256 once full tiles are
    /// taken out), and which tiles changed since [`Appender::take_changed`].
    edge: Vec<Vec<Hash>>,
    changed: BTreeMap<TileId, Vec<Hash>>,
}

impl Appender {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tiles [`Appender::resume`] needs for a log of `size` leaves: the last tile of every
    /// level that has one at that size.
    pub fn edge_tiles(size: u64) -> Vec<TileId> {
        todo!("{size}")
    }

    /// The log of `size` leaves, from its edge tiles (wider tiles are cut to `size`).
    /// [`crate::Error::Missing`] when a tile is absent or too narrow.
    pub fn resume(size: u64, edge: &TileSet) -> Result<Self> {
        todo!("{size}{edge:?}")
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append one leaf hash.
    pub fn append(&mut self, leaf: Hash) {
        todo!("{leaf:?}{:?}{:?}", self.edge, self.changed)
    }

    /// The root of the log as it is now (RFC 9162 MTH).
    pub fn root(&self) -> Hash {
        todo!()
    }

    /// Every tile that changed since the last call, with its current hashes (full tiles once,
    /// when they fill; partial tiles as they are now), sorted by id.
    pub fn take_changed(&mut self) -> Vec<Tile> {
        todo!()
    }
}
