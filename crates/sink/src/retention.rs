//! Retention: each workspace's retention in days, from its plan, re-read every
//! `consumer.plans_refresh`. Unknown workspaces are on the Free plan.
//!
//! Rows are stamped in one place, [`stamp`], just before their batch goes to the write stage
//! (decode leaves the Free plan's value as a placeholder), and the refresh happens between
//! writes of the one pipeline task: when a refresh sees a workspace's retention change, every row written
//! before it is already in ClickHouse, so one catch-up mutation
//! ([`auditlog_store::plans::apply_retention`]) fixes rows written with the stale value while
//! `auditlog plan set` was running, and every row written after carries the new value.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use auditlog_store::plans::{all_plans, apply_retention, FREE_DAYS};
use auditlog_store::Plan;
use clickhouse::Client;
use tracing::{info, warn};

use auditlog_store::events::EventRow;

/// Each workspace's retention, as the pipeline reads it ([`Retention`] is the real one).
pub trait Plans: Send {
    /// Days kept for `workspace_id` (0 = unlimited).
    fn days(&self, workspace_id: &str) -> u32;
    /// Re-reads the plans when they are due.
    fn refresh_if_due(&mut self) -> impl Future<Output = ()> + Send;
}

/// Stamps every row with its workspace's retention as `plans` has it now (a plan may have
/// changed since the rows were decoded).
pub fn stamp(plans: &impl Plans, rows: &mut [EventRow]) {
    for row in rows {
        row.retention_days = plans.days(&row.workspace_id);
    }
}

/// The cache.
pub struct Retention {
    client: Client,
    every: Duration,
    plans: HashMap<String, Plan>,
    refreshed: Instant,
}

impl Retention {
    /// Loads every plan once.
    pub async fn load(client: Client, every: Duration) -> auditlog_store::Result<Self> {
        let plans = read(&client).await?;
        Ok(Self {
            client,
            every,
            plans,
            refreshed: Instant::now(),
        })
    }
}

impl Plans for Retention {
    fn days(&self, workspace_id: &str) -> u32 {
        self.plans
            .get(workspace_id)
            .map_or(FREE_DAYS, |p| p.retention_column())
    }

    /// Re-reads the plans when `every` has passed; applies changed retentions to stored rows.
    /// A failure keeps the previous plans (logged) and is retried at the next call.
    async fn refresh_if_due(&mut self) {
        if self.refreshed.elapsed() < self.every {
            return;
        }
        self.refreshed = Instant::now();
        let fresh = match read(&self.client).await {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "could not refresh workspace plans; keeping the cached ones");
                return;
            }
        };
        for (ws, plan) in &fresh {
            let before = self
                .plans
                .get(ws)
                .map_or(FREE_DAYS, |p| p.retention_column());
            if before != plan.retention_column() {
                info!(workspace = %ws, plan = %plan, "plan changed; applying it to stored rows");
                if let Err(e) = apply_retention(&self.client, ws, *plan).await {
                    warn!(workspace = %ws, error = %e, "could not apply the new retention to stored rows");
                }
            }
        }
        self.plans = fresh;
    }
}

async fn read(client: &Client) -> auditlog_store::Result<HashMap<String, Plan>> {
    Ok(all_plans(client)
        .await?
        .into_iter()
        .map(|w| (w.workspace_id, w.plan))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{row, FixedPlans};

    #[test]
    fn stamping_takes_each_workspace_plan_as_it_is_now() {
        let mut rows = vec![row(0, 0), row(0, 1)];
        assert_eq!(rows[0].retention_days, FREE_DAYS, "decode's placeholder");
        let plans = FixedPlans::new(&[(&rows[1].workspace_id.clone(), 90)]);
        stamp(&plans, &mut rows);
        let days: Vec<u32> = rows.iter().map(|r| r.retention_days).collect();
        assert_eq!(days, vec![plans.days(&rows[0].workspace_id), 90]);
        assert_ne!(rows[0].workspace_id, rows[1].workspace_id);
    }
}
