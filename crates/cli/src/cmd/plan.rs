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
        /// Print the plan set as one JSON document (the shape of `plan get --json`).
        #[arg(long)]
        json: bool,
    },
    /// Show the current plan (Free when none was set).
    Get {
        /// Workspace id.
        workspace: String,
        /// Print `{"workspace_id","plan","retention_days","explicit"}` (one JSON document;
        /// `retention_days` null = unlimited, `explicit` false = the Free default).
        #[arg(long)]
        json: bool,
    },
}

/// The JSON document of a workspace's plan: the admin API's fields plus `explicit`.
fn plan_json(wp: &auditlog_store::WorkspacePlan) -> serde_json::Value {
    serde_json::json!({
        "workspace_id": wp.workspace_id,
        "plan": wp.plan.name(),
        "retention_days": wp.plan.retention_days(),
        "explicit": wp.explicit,
    })
}

/// Refuses a workspace id no event can carry (the rule of events, as the admin API does).
fn check_workspace(workspace: &str) -> Result<()> {
    auditlog_event::validate::check_id("WORKSPACE", workspace)?;
    Ok(())
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
            json,
        } => {
            check_workspace(&workspace)?;
            let plan = Plan::from_parts(&plan, days, unlimited)?;
            let set = set_plan(&client, &workspace, plan)
                .await
                .with_context(|| format!("setting the plan of {workspace}"))?;
            if json {
                println!("{}", plan_json(&set));
                return Ok(());
            }
            println!(
                "{}: {} (applied to stored events)",
                set.workspace_id, set.plan
            );
        }
        PlanCommand::Get { workspace, json } => {
            check_workspace(&workspace)?;
            let wp = get_plan(&client, &workspace)
                .await
                .with_context(|| format!("reading the plan of {workspace}"))?;
            if json {
                println!("{}", plan_json(&wp));
                return Ok(());
            }
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
