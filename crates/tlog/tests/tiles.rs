//! C2SP tiles: geometry, tile bytes, the appender's tiles answer every proof and equal the
//! reference, resuming gives the same log, a wider tile serves an older size.

mod common;

use auditlog_tlog::merkle::{
    consistency_nodes, consistency_proof, inclusion_nodes, inclusion_proof, root_nodes, tree_root,
    Hash, Node,
};
use auditlog_tlog::tiles::{tiles_for, width_at, TILE_WIDTH};
use auditlog_tlog::{Appender, Error, NodeReader, Tile, TileId, TileSet};
use common::{leaves, MemTree};

fn id(level: u8, index: u64) -> TileId {
    TileId { level, index }
}

/// Appends `leaves`, collecting every tile (newest version of each).
fn build(leaves: &[Hash]) -> (Appender, TileSet) {
    let mut app = Appender::new();
    let mut set = TileSet::default();
    for (i, leaf) in leaves.iter().enumerate() {
        app.append(*leaf);
        if i % 97 == 0 {
            for t in app.take_changed() {
                set.insert(t);
            }
        }
    }
    for t in app.take_changed() {
        set.insert(t);
    }
    (app, set)
}

fn tiles_of(set: &TileSet) -> Vec<Tile> {
    let mut out = Vec::new();
    for level in 0..4u8 {
        for index in 0..1100u64 {
            if let Some(h) = set.get(id(level, index)) {
                out.push(Tile {
                    id: id(level, index),
                    hashes: h.to_vec(),
                });
            }
        }
    }
    out
}

/// Only the tiles `ids` of `set`.
fn subset(set: &TileSet, ids: &[TileId]) -> TileSet {
    TileSet::new(ids.iter().filter_map(|&i| {
        set.get(i).map(|h| Tile {
            id: i,
            hashes: h.to_vec(),
        })
    }))
}

#[test]
fn width_and_tile_geometry() {
    assert_eq!(width_at(id(0, 0), 0), 0);
    assert_eq!(width_at(id(0, 0), 1), 1);
    assert_eq!(width_at(id(0, 0), 256), 256);
    assert_eq!(width_at(id(0, 1), 256), 0);
    assert_eq!(width_at(id(0, 1), 300), 44);
    assert_eq!(width_at(id(1, 0), 255), 0);
    assert_eq!(width_at(id(1, 0), 256), 1);
    assert_eq!(width_at(id(1, 0), 65536), 256);
    assert_eq!(width_at(id(1, 1), 65536 + 512), 2);
    assert_eq!(width_at(id(2, 0), 65536), 1);
    assert_eq!(width_at(id(7, 0), u64::MAX), 255);
    assert_eq!(width_at(id(9, 0), u64::MAX), 0);
    let n = |level, index| Node { level, index };
    // Level 0..8 nodes live in level-0 tiles, 8..16 in level 1, and so on.
    assert_eq!(
        tiles_for(
            &[
                n(0, 0),
                n(0, 255),
                n(0, 256),
                n(7, 1),
                n(8, 0),
                n(9, 3),
                n(16, 0)
            ],
            1 << 20
        ),
        vec![id(0, 0), id(0, 1), id(1, 0), id(2, 0)]
    );
    // Nodes outside the tree name no tile.
    assert_eq!(tiles_for(&[n(0, 9), n(0, 10), n(3, 1)], 10), vec![id(0, 0)]);
}

#[test]
fn tile_bytes_round_trip_and_refuse_bad_lengths() {
    let t = Tile {
        id: id(1, 2),
        hashes: leaves(3),
    };
    let bytes = t.to_bytes();
    assert_eq!(bytes.len(), 96);
    assert_eq!(&bytes[32..64], &t.hashes[1]);
    assert_eq!(Tile::from_bytes(t.id, &bytes).unwrap(), t);
    for bad in [0usize, 31, 33, 95, 257 * 32] {
        let err = Tile::from_bytes(t.id, &vec![0; bad]).unwrap_err();
        assert!(
            matches!(err, Error::Malformed { what: "tile", .. }),
            "{bad}: {err}"
        );
    }
    assert!(Tile::from_bytes(t.id, &vec![0; 256 * 32]).is_ok());
}

/// For a log of `n` leaves: the appender's root and tiles equal the reference, every node a
/// proof needs is answered by exactly the tiles `tiles_for` names.
fn check_tiles(all: &[Hash], n: u64, set: &TileSet, probes: &[u64]) {
    let mem = MemTree::new(&all[..n as usize]);
    let root = tree_root(n, &mem).unwrap();
    let read = |nodes: Vec<Node>| subset(set, &tiles_for(&nodes, n));
    assert_eq!(
        tree_root(n, &read(root_nodes(n))).unwrap(),
        root,
        "root {n}"
    );
    for &m in probes.iter().filter(|&&m| m < n) {
        let want = inclusion_proof(m, n, &mem).unwrap();
        let got = inclusion_proof(m, n, &read(inclusion_nodes(m, n).unwrap())).unwrap();
        assert_eq!(got, want, "inclusion {m} of {n}");
    }
    for &m in probes.iter().filter(|&&m| m <= n) {
        let want = consistency_proof(m, n, &mem).unwrap();
        let got = consistency_proof(m, n, &read(consistency_nodes(m, n).unwrap())).unwrap();
        assert_eq!(got, want, "consistency {m} -> {n}");
    }
}

#[test]
fn appender_tiles_answer_every_proof_across_tile_boundaries() {
    let all = leaves(65537 + 300);
    let probes = [
        0u64, 1, 7, 254, 255, 256, 257, 511, 512, 4000, 65534, 65535, 65536, 65537,
    ];
    for n in [
        1u64,
        2,
        255,
        256,
        257,
        511,
        512,
        513,
        65535,
        65536,
        65537,
        65537 + 300,
    ] {
        let (app, set) = build(&all[..n as usize]);
        assert_eq!(app.size(), n);
        let mem = MemTree::new(&all[..n as usize]);
        assert_eq!(app.root(), tree_root(n, &mem).unwrap(), "appender root {n}");
        // Every stored hash is the tree's node: level-8L tiles hold level-8L nodes.
        for t in tiles_of(&set) {
            assert_eq!(
                t.hashes.len() as u64,
                width_at(t.id, n),
                "width of {:?} at {n}",
                t.id
            );
            for (i, h) in t.hashes.iter().enumerate() {
                let node = Node {
                    level: t.id.level * 8,
                    index: t.id.index * TILE_WIDTH + i as u64,
                };
                assert_eq!(mem.node(node).unwrap(), *h, "{node:?}");
            }
        }
        check_tiles(&all, n, &set, &probes);
    }
}

#[test]
fn every_small_size_root_from_the_appender() {
    let all = leaves(600);
    let mut app = Appender::new();
    assert_eq!(app.root(), auditlog_tlog::merkle::empty_root());
    let mem = MemTree::new(&all);
    for (i, leaf) in all.iter().enumerate() {
        app.append(*leaf);
        assert_eq!(
            app.root(),
            tree_root(i as u64 + 1, &mem).unwrap(),
            "size {}",
            i + 1
        );
    }
}

#[test]
fn take_changed_reports_full_tiles_once_and_partial_as_they_are() {
    let all = leaves(600);
    let mut app = Appender::new();
    for l in &all[..10] {
        app.append(*l);
    }
    let first = app.take_changed();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].id, first[0].hashes.len()), (id(0, 0), 10));
    assert!(app.take_changed().is_empty());
    for l in &all[10..300] {
        app.append(*l);
    }
    let got: Vec<(TileId, usize)> = app
        .take_changed()
        .iter()
        .map(|t| (t.id, t.hashes.len()))
        .collect();
    assert_eq!(got, vec![(id(0, 0), 256), (id(0, 1), 44), (id(1, 0), 1)]);
    app.append(all[300]);
    let got: Vec<(TileId, usize)> = app
        .take_changed()
        .iter()
        .map(|t| (t.id, t.hashes.len()))
        .collect();
    assert_eq!(got, vec![(id(0, 1), 45)]);
}

#[test]
fn resume_then_append_equals_appending_straight_through() {
    let all = leaves(65_800);
    let (straight, straight_tiles) = build(&all);
    for cut in [0u64, 1, 255, 256, 257, 1000, 65535, 65536, 65537] {
        let (_, before) = build(&all[..cut as usize]);
        let edge_ids = Appender::edge_tiles(cut);
        let mut app = Appender::resume(cut, &subset(&before, &edge_ids)).unwrap();
        assert_eq!(app.size(), cut);
        let mut after = before.clone();
        for (i, l) in all[cut as usize..].iter().enumerate() {
            app.append(*l);
            if i % 1000 == 0 {
                for t in app.take_changed() {
                    after.insert(t);
                }
            }
        }
        for t in app.take_changed() {
            after.insert(t);
        }
        assert_eq!(app.root(), straight.root(), "root after resuming at {cut}");
        let (a, b) = (tiles_of(&after), tiles_of(&straight_tiles));
        assert_eq!(a.len(), b.len(), "tile count after resuming at {cut}");
        assert!(a == b, "tiles differ after resuming at {cut}");
    }
}

#[test]
fn edge_tiles_and_resume_refusals() {
    assert!(Appender::edge_tiles(0).is_empty());
    assert_eq!(Appender::edge_tiles(1), vec![id(0, 0)]);
    assert!(Appender::edge_tiles(256).iter().all(|t| *t == id(1, 0)));
    assert_eq!(Appender::edge_tiles(257), vec![id(0, 1), id(1, 0)]);
    assert_eq!(Appender::edge_tiles(65536), vec![id(2, 0)]);
    let all = leaves(300);
    let (_, set) = build(&all);
    // Missing tile, too narrow a tile.
    let err = Appender::resume(300, &TileSet::default()).unwrap_err();
    assert!(matches!(err, Error::Missing(_)), "{err}");
    let narrow = TileSet::new([
        Tile {
            id: id(0, 1),
            hashes: all[256..290].to_vec(),
        },
        Tile {
            id: id(1, 0),
            hashes: set.get(id(1, 0)).unwrap().to_vec(),
        },
    ]);
    assert!(matches!(
        Appender::resume(300, &narrow),
        Err(Error::Missing(_))
    ));
}

#[test]
fn a_wider_tile_serves_an_older_size() {
    let all = leaves(1000);
    let (_, newest) = build(&all);
    // Resume at an older size from the newest (wider) tiles.
    for old in [1u64, 100, 256, 300, 700, 999] {
        let app = Appender::resume(old, &newest).unwrap();
        let mem = MemTree::new(&all[..old as usize]);
        assert_eq!(app.root(), tree_root(old, &mem).unwrap(), "resume at {old}");
        check_tiles(&all, old, &newest, &[0, 1, 50, 255, 256, 299, 500, 998]);
    }
}

#[test]
fn a_too_narrow_tile_is_missing_not_wrong() {
    let all = leaves(300);
    let set = TileSet::new([Tile {
        id: id(0, 1),
        hashes: all[256..260].to_vec(),
    }]);
    let err = set
        .node(Node {
            level: 3,
            index: 32,
        })
        .unwrap_err();
    assert!(matches!(err, Error::Missing(_)), "{err}");
    let four = set.node(Node { level: 2, index: 64 }).unwrap();
    assert_eq!(four, tree_root(4, &MemTree::new(&all[256..260])).unwrap());
    assert!(matches!(
        set.node(Node { level: 0, index: 0 }),
        Err(Error::Missing(_))
    ));
    assert!(matches!(
        set.node(Node {
            level: 64,
            index: 0
        }),
        Err(Error::Missing(_))
    ));
}
