//! The workspace logs in memory: every committed head (loaded at startup, one row per
//! workspace) and, for the logs appended to since, an [`Appender`] resumed from the head's
//! edge tiles at first use (checked against the head's root).

use std::collections::{BTreeMap, HashMap};

use auditlog_store::log::read::sequencer as read;
use auditlog_store::log::rows::{HeadRow, TileRow};
use auditlog_tlog::{Appender, Hash, Tile, TileId, TileSet};
use clickhouse::Client;

use crate::error::{Error, Result};

/// A committed head: leaves `0..size` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Committed leaves.
    pub size: u64,
    /// Their root.
    pub root: Hash,
}

/// Every log's committed head, and the appenders of the logs in use.
#[derive(Debug, Default)]
pub struct Logs {
    /// Committed heads by workspace (absent: an empty log).
    pub heads: BTreeMap<String, Head>,
    appenders: HashMap<String, Appender>,
}

impl Logs {
    /// The heads as stored.
    pub async fn load(client: &Client) -> Result<Self> {
        let heads = read::heads(client)
            .await?
            .into_iter()
            .map(|h| {
                (
                    h.workspace_id,
                    Head {
                        size: h.tree_size,
                        root: h.root_hash,
                    },
                )
            })
            .collect();
        Ok(Self {
            heads,
            appenders: HashMap::new(),
        })
    }

    /// The committed size of `workspace`'s log.
    pub fn committed(&self, workspace: &str) -> u64 {
        self.heads.get(workspace).map_or(0, |h| h.size)
    }

    /// Makes sure every workspace of `workspaces` has an appender at its committed head:
    /// the edge tiles of all that lack one, in one read.
    pub async fn ensure(&mut self, client: &Client, workspaces: &[&str]) -> Result<()> {
        let missing: Vec<(&str, Head)> = workspaces
            .iter()
            .filter(|w| !self.appenders.contains_key(**w))
            .map(|w| {
                let head = self.heads.get(*w).copied().unwrap_or(Head {
                    size: 0,
                    root: auditlog_tlog::merkle::empty_root(),
                });
                (*w, head)
            })
            .collect();
        let ids: Vec<(String, u8, u64)> = missing
            .iter()
            .flat_map(|(w, h)| {
                Appender::edge_tiles(h.size)
                    .into_iter()
                    .map(|t| ((*w).to_owned(), t.level, t.index))
            })
            .collect();
        let mut by_ws: HashMap<String, Vec<TileRow>> = HashMap::new();
        for row in read::tiles(client, &ids).await? {
            by_ws.entry(row.workspace_id.clone()).or_default().push(row);
        }
        for (w, head) in missing {
            let appender = resume(w, head, by_ws.remove(w).unwrap_or_default())?;
            self.appenders.insert(w.to_owned(), appender);
        }
        Ok(())
    }

    /// The appender of `workspace` (after [`Logs::ensure`]).
    pub fn appender(&mut self, workspace: &str) -> &mut Appender {
        self.appenders
            .get_mut(workspace)
            .expect("Logs::ensure loads every workspace of a step first")
    }

    /// Records a committed step: the new heads.
    pub fn commit(&mut self, heads: &[HeadRow]) {
        for h in heads {
            self.heads.insert(
                h.workspace_id.clone(),
                Head {
                    size: h.tree_size,
                    root: h.root_hash,
                },
            );
        }
    }
}

/// Stored tile rows as tiles.
pub fn tiles_of(rows: Vec<TileRow>) -> Result<Vec<Tile>> {
    rows.into_iter()
        .map(|r| {
            let id = TileId {
                level: r.tile_level,
                index: r.tile_index,
            };
            Tile::from_bytes(id, &r.hashes).map_err(|e| Error::Corrupt {
                workspace: r.workspace_id.clone(),
                reason: format!("tile {id:?}: {e}"),
            })
        })
        .collect()
}

/// The appender of a log at `head`, from its stored edge tiles; its root must be the head's.
fn resume(workspace: &str, head: Head, rows: Vec<TileRow>) -> Result<Appender> {
    if head.size == 0 {
        return Ok(Appender::new());
    }
    let set = TileSet::new(tiles_of(rows)?);
    let appender = Appender::resume(head.size, &set).map_err(|e| Error::Corrupt {
        workspace: workspace.to_owned(),
        reason: format!("edge tiles of tree size {}: {e}", head.size),
    })?;
    if appender.root() != head.root {
        return Err(Error::Corrupt {
            workspace: workspace.to_owned(),
            reason: format!(
                "the stored tiles give another root than the stored head of tree size {}",
                head.size
            ),
        });
    }
    Ok(appender)
}
