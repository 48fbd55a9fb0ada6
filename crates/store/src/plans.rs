//! Workspace plans and the retention they grant.
//!
//! Plans live in the `workspace_plans` table (newest `updated_at` wins); every change is also
//! appended to `plan_changes` at the same time (the retention history the log's verifier
//! judges deletions by, `GET /v1/log/retention`). A workspace with no
//! row is on [`Plan::Free`], the safe default: it keeps the least. Setting a plan also applies
//! it to rows already stored: their `retention_days` is rewritten (a ClickHouse mutation, so
//! TTL deletes what is now beyond retention at the next merge or `MATERIALIZE TTL`), and reads
//! filter on the current plan at once. An upgrade extends the life of rows still stored; rows
//! already deleted by an earlier, shorter retention cannot come back.

use std::fmt;
use std::str::FromStr;

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};

use crate::layout::Layout;
use crate::{Error, Result};

/// Days kept on the Free plan.
pub const FREE_DAYS: u32 = 7;
/// Days kept on the Pro plan.
pub const PRO_DAYS: u32 = 90;

/// A workspace's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plan {
    /// 7 days.
    Free,
    /// 90 days.
    Pro,
    /// Custom days, or unlimited (`None`).
    Enterprise {
        /// Days kept; `None` keeps forever.
        days: Option<u32>,
    },
}

impl Plan {
    /// Days kept; `None` = unlimited.
    pub fn retention_days(self) -> Option<u32> {
        match self {
            Plan::Free => Some(FREE_DAYS),
            Plan::Pro => Some(PRO_DAYS),
            Plan::Enterprise { days } => days,
        }
    }

    /// The value stored in `retention_days` columns: days, `0` for unlimited.
    pub fn retention_column(self) -> u32 {
        self.retention_days().unwrap_or(0)
    }

    /// The plan name (`free`, `pro`, `enterprise`).
    pub fn name(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Enterprise { .. } => "enterprise",
        }
    }

    /// Builds a plan from its name and, for enterprise, days or unlimited.
    ///
    /// Free and Pro take no days; Enterprise needs exactly one of `days` (1..=36500) or
    /// `unlimited`.
    pub fn from_parts(name: &str, days: Option<u32>, unlimited: bool) -> Result<Self> {
        let invalid = |reason: &str| Error::Invalid {
            field: "plan",
            reason: reason.to_owned(),
        };
        match (name, days, unlimited) {
            ("free", None, false) => Ok(Plan::Free),
            ("pro", None, false) => Ok(Plan::Pro),
            ("free" | "pro", _, _) => Err(invalid("free and pro plans have fixed retention; days and unlimited apply to enterprise only")),
            ("enterprise", Some(_), true) => Err(invalid("give either days or unlimited, not both")),
            ("enterprise", None, false) => Err(invalid("enterprise needs days (1 to 36500) or unlimited")),
            ("enterprise", None, true) => Ok(Plan::Enterprise { days: None }),
            ("enterprise", Some(d), false) if (1..=36_500).contains(&d) => {
                Ok(Plan::Enterprise { days: Some(d) })
            }
            ("enterprise", Some(d), false) => Err(invalid(&format!("{d} days is out of range 1 to 36500"))),
            (other, _, _) => Err(invalid(&format!("unknown plan {other:?}; expected free, pro or enterprise"))),
        }
    }

    fn from_row(name: &str, retention_days: u32) -> Self {
        match name {
            "pro" => Plan::Pro,
            "enterprise" => Plan::Enterprise {
                days: (retention_days > 0).then_some(retention_days),
            },
            _ => Plan::Free,
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retention_days() {
            Some(d) => write!(f, "{} ({d} days)", self.name()),
            None => write!(f, "{} (unlimited)", self.name()),
        }
    }
}

impl FromStr for Plan {
    type Err = Error;

    /// Parses `free`, `pro`, `enterprise:N` or `enterprise:unlimited`.
    fn from_str(s: &str) -> Result<Self> {
        match s.split_once(':') {
            Some(("enterprise", "unlimited")) => Plan::from_parts("enterprise", None, true),
            Some(("enterprise", d)) => {
                let days = d.parse().map_err(|_| Error::Invalid {
                    field: "plan",
                    reason: format!("{d:?} is not a number of days"),
                })?;
                Plan::from_parts("enterprise", Some(days), false)
            }
            _ => Plan::from_parts(s, None, false),
        }
    }
}

/// A workspace's current plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspacePlan {
    /// The tenant.
    pub workspace_id: String,
    /// Its plan.
    pub plan: Plan,
    /// Whether a plan was ever set (otherwise this is the Free default).
    pub explicit: bool,
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct PlanRow {
    workspace_id: String,
    plan: String,
    retention_days: u32,
}

/// Reads a workspace's current plan; [`Plan::Free`] when none was set.
pub async fn get_plan(client: &Client, workspace_id: &str) -> Result<WorkspacePlan> {
    let row: Option<PlanRow> = client
        .query(
            "SELECT workspace_id, argMax(plan, updated_at) AS plan, \
                    argMax(retention_days, updated_at) AS retention_days \
             FROM workspace_plans WHERE workspace_id = ? GROUP BY workspace_id",
        )
        .bind(workspace_id)
        .fetch_optional()
        .await
        .map_err(|e| Error::clickhouse("read plan", e))?;
    Ok(match row {
        Some(r) => WorkspacePlan {
            plan: Plan::from_row(&r.plan, r.retention_days),
            workspace_id: r.workspace_id,
            explicit: true,
        },
        None => WorkspacePlan {
            workspace_id: workspace_id.to_owned(),
            plan: Plan::Free,
            explicit: false,
        },
    })
}

/// Every workspace with an explicit plan (for the consumer's cache).
pub async fn all_plans(client: &Client) -> Result<Vec<WorkspacePlan>> {
    let rows: Vec<PlanRow> = client
        .query(
            "SELECT workspace_id, argMax(plan, updated_at) AS plan, \
                    argMax(retention_days, updated_at) AS retention_days \
             FROM workspace_plans GROUP BY workspace_id",
        )
        .fetch_all()
        .await
        .map_err(|e| Error::clickhouse("read plans", e))?;
    Ok(rows
        .into_iter()
        .map(|r| WorkspacePlan {
            plan: Plan::from_row(&r.plan, r.retention_days),
            workspace_id: r.workspace_id,
            explicit: true,
        })
        .collect())
}

/// Sets a workspace's plan and applies its retention to the rows already stored.
pub async fn set_plan(client: &Client, workspace_id: &str, plan: Plan) -> Result<WorkspacePlan> {
    if workspace_id.is_empty() {
        return Err(Error::Invalid {
            field: "workspace_id",
            reason: "must not be empty".into(),
        });
    }
    // One time (the server's clock) for the history row and the plan row. The history is
    // written first: a plan never takes effect without its `plan_changes` row, which the log's
    // verifier judges deletions by (a failure after it leaves a change recorded that did not
    // happen yet; retrying the same plan records it again, harmlessly later).
    let at: i64 = client
        .query("SELECT toUnixTimestamp64Milli(now64(3))")
        .fetch_one()
        .await
        .map_err(|e| Error::clickhouse("read the server's time", e))?;
    client
        .query(
            "INSERT INTO plan_changes (workspace_id, plan, retention_days, changed_at) \
             VALUES (?, ?, ?, fromUnixTimestamp64Milli(toInt64(?), 'UTC'))",
        )
        .bind(workspace_id)
        .bind(plan.name())
        .bind(plan.retention_column())
        .bind(at)
        .execute()
        .await
        .map_err(|e| Error::clickhouse("record plan change", e))?;
    client
        .query(
            "INSERT INTO workspace_plans (workspace_id, plan, retention_days, updated_at) \
             VALUES (?, ?, ?, fromUnixTimestamp64Milli(toInt64(?), 'UTC'))",
        )
        .bind(workspace_id)
        .bind(plan.name())
        .bind(plan.retention_column())
        .bind(at)
        .execute()
        .await
        .map_err(|e| Error::clickhouse("write plan", e))?;
    apply_retention(client, workspace_id, plan).await?;
    Ok(WorkspacePlan {
        workspace_id: workspace_id.to_owned(),
        plan,
        explicit: true,
    })
}

/// Rewrites `retention_days` of the workspace's stored rows to the plan's (a ClickHouse
/// mutation; TTL then deletes what is beyond it at the next merge or `MATERIALIZE TTL`).
/// Runs with the client's settings: set `mutations_sync` on the client to wait for it.
/// On a cluster the mutation runs `ON CLUSTER` on `events_local`, so every shard and replica
/// applies it.
pub async fn apply_retention(client: &Client, workspace_id: &str, plan: Plan) -> Result<()> {
    let layout = Layout::detect(client).await?.unwrap_or(Layout::Single);
    client
        .query(&layout.alter_events(
            "UPDATE retention_days = ? WHERE workspace_id = ? AND retention_days != ?",
        ))
        .bind(plan.retention_column())
        .bind(workspace_id)
        .bind(plan.retention_column())
        .execute()
        .await
        .map_err(|e| Error::clickhouse("apply plan to stored events", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_and_name_their_retention() {
        assert_eq!("free".parse::<Plan>().unwrap().retention_days(), Some(7));
        assert_eq!("pro".parse::<Plan>().unwrap().retention_days(), Some(90));
        assert_eq!(
            "enterprise:400".parse::<Plan>().unwrap(),
            Plan::Enterprise { days: Some(400) }
        );
        assert_eq!(
            "enterprise:unlimited"
                .parse::<Plan>()
                .unwrap()
                .retention_column(),
            0
        );
        for bad in [
            "gold",
            "enterprise",
            "enterprise:0",
            "enterprise:x",
            "pro:3",
        ] {
            assert!(bad.parse::<Plan>().is_err(), "{bad}");
        }
        assert!(Plan::from_parts("free", Some(3), false).is_err());
        assert!(Plan::from_parts("enterprise", Some(3), true).is_err());
    }

    #[test]
    fn stored_rows_map_back_to_plans() {
        assert_eq!(
            Plan::from_row("enterprise", 0),
            Plan::Enterprise { days: None }
        );
        assert_eq!(
            Plan::from_row("enterprise", 30),
            Plan::Enterprise { days: Some(30) }
        );
        assert_eq!(Plan::from_row("pro", 90), Plan::Pro);
    }
}
