//! `auditlog plan`: read or set a workspace's plan (its retention).

use anyhow::{Context as _, Result};
use auditlog_store::plans::{get_plan, set_plan};
use auditlog_store::Plan;
use clap::{Args, Subcommand};

use crate::config::Config;

/// Read or set a workspace's plan. Free keeps 7 days, Pro 90, Enterprise N days or forever.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(subcommand)]
    command: PlanCommand,
}

#[derive(Debug, Subcommand)]
enum PlanCommand {
    /// Set the plan; also applies its retention to the workspace's stored events
    /// (a downgrade deletes what is beyond the new retention at the next TTL pass).
    Set {
        /// Workspace id.
        workspace: String,
        /// free, pro or enterprise.
        #[arg(value_parser = ["free", "pro", "enterprise"])]
        plan: String,
        /// Enterprise only: days to keep (1 to 36500).
        #[arg(long, conflicts_with = "unlimited")]
        days: Option<u32>,
        /// Enterprise only: keep forever.
        #[arg(long)]
        unlimited: bool,
    },
    /// Show the current plan (Free when none was set).
    Get {
        /// Workspace id.
        workspace: String,
    },
}

/// Runs `plan set` or `plan get`.
pub async fn run(cfg: &Config, args: PlanArgs) -> Result<()> {
    let client = cfg.clickhouse.client();
    match args.command {
        PlanCommand::Set {
            workspace,
            plan,
            days,
            unlimited,
        } => {
            let plan = Plan::from_parts(&plan, days, unlimited)?;
            let set = set_plan(&client, &workspace, plan)
                .await
                .with_context(|| format!("setting the plan of {workspace}"))?;
            println!(
                "{}: {} (applied to stored events)",
                set.workspace_id, set.plan
            );
        }
        PlanCommand::Get { workspace } => {
            let wp = get_plan(&client, &workspace)
                .await
                .with_context(|| format!("reading the plan of {workspace}"))?;
            let note = if wp.explicit {
                ""
            } else {
                " (default: no plan set)"
            };
            println!("{}: {}{note}", wp.workspace_id, wp.plan);
        }
    }
    Ok(())
}
