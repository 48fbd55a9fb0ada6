//! `auditlog token`: create, revoke and list API tokens: read tokens, ingest tokens of one
//! workspace (`--ingest`) and service ingest tokens (`--ingest --service NAME`).

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};

use auditlog_query::tokens::{Scope, TokenSpec, SERVICE_WORKSPACE};

use crate::config::Config;

/// Create, revoke or list API tokens (read, ingest, service).
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token for WORKSPACE (reads it; `--ingest`: publishes its events), or a service
    /// ingest token (`--ingest --service NAME [--workspaces a,b]`). Prints only the secret on
    /// stdout (`TOKEN=$(auditlog token create demo)`); its id goes to stderr.
    Create {
        /// Workspace the token reads (or writes, with `--ingest`); not with `--service`.
        #[arg(required_unless_present = "service", conflicts_with = "service")]
        workspace: Option<String>,
        /// What the token is for.
        #[arg(long, default_value = "", conflicts_with = "service")]
        name: String,
        /// An ingest token: it can only publish events (`POST /v1/ingest`), not read.
        #[arg(long)]
        ingest: bool,
        /// A service ingest token named NAME, for several or all workspaces (needs `--ingest`).
        #[arg(long, value_name = "NAME", requires = "ingest")]
        service: Option<String>,
        /// The workspaces a service token may write, comma separated; default every workspace.
        #[arg(long, value_name = "A,B", value_delimiter = ',', requires = "service")]
        workspaces: Vec<String>,
        /// The token stops working this long from now (`30d`, `12h`, `90min`); default never.
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
        /// Print `{"token_id","token","workspace_id","scope","workspaces","expires_at"}` (one
        /// JSON document).
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id (takes effect within `api.token_cache` on running servers).
    Revoke {
        /// Token id (`tok_...`).
        token_id: String,
    },
    /// List tokens (of one workspace, or all), one per line.
    List {
        /// Only this workspace's tokens (`*`: the service tokens).
        workspace: Option<String>,
        /// Print `{"tokens":[...]}` (one JSON document, the admin API's shape).
        #[arg(long)]
        json: bool,
    },
}

/// Runs the subcommand.
pub async fn run(cfg: &Config, args: TokenArgs) -> Result<()> {
    let tokens = auditlog_query::tokens::Tokens::new(cfg.clickhouse.client(), Default::default());
    match args.command {
        TokenCommand::Create {
            workspace,
            name,
            ingest,
            service,
            workspaces,
            expires_in,
            json,
        } => {
            let expires_at = expires_in
                .as_deref()
                .map(|d| auditlog_query::tokens::expiry_in("--expires-in", d, chrono::Utc::now()))
                .transpose()?;
            let spec = TokenSpec {
                name: service.unwrap_or(name),
                scope: if ingest { Scope::Ingest } else { Scope::Read },
                workspace_id: workspace,
                workspaces,
                expires_at,
            };
            let t = tokens.create_with(&spec).await.with_context(|| {
                format!(
                    "create a token for {}",
                    holder(&spec.workspace_id, &spec.workspaces)
                )
            })?;
            let until = t.expires_at.as_deref().unwrap_or("never");
            eprintln!(
                "created {} ({}) for {} (expires: {until})",
                t.token_id,
                t.scope.as_str(),
                holder(
                    &Some(t.workspace_id.clone()).filter(|w| w != SERVICE_WORKSPACE),
                    &t.workspaces
                )
            );
            if json {
                println!("{}", serde_json::to_string(&t)?);
            } else {
                println!("{}", t.token);
            }
        }
        TokenCommand::Revoke { token_id } => {
            tokens
                .revoke(&token_id)
                .await
                .with_context(|| format!("revoke {token_id}"))?;
            eprintln!("revoked {token_id}");
        }
        TokenCommand::List { workspace, json } => {
            let list = tokens
                .list(workspace.as_deref())
                .await
                .context("list tokens")?;
            if json {
                println!("{}", serde_json::json!({ "tokens": list }));
                return Ok(());
            }
            println!(
                "TOKEN_ID\tWORKSPACE\tSCOPE\tNAME\tCREATED_AT\tEXPIRES_AT\tLAST_USED_AT\tREVOKED_AT"
            );
            for t in list {
                // A service token: `*` (every workspace) or its list.
                let ws = if t.workspaces.is_empty() {
                    t.workspace_id.clone()
                } else {
                    t.workspaces.join(",")
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    t.token_id,
                    ws,
                    t.scope.as_str(),
                    t.name,
                    t.created_at,
                    t.expires_at.as_deref().unwrap_or("-"),
                    t.last_used_at.as_deref().unwrap_or("-"),
                    t.revoked_at.as_deref().unwrap_or("-")
                );
            }
        }
    }
    Ok(())
}

/// `workspace demo`, `every workspace` or `workspaces a, b`.
fn holder(workspace: &Option<String>, workspaces: &[String]) -> String {
    match workspace {
        Some(ws) => format!("workspace {ws}"),
        None if workspaces.is_empty() => "every workspace".to_owned(),
        None => format!("workspaces {}", workspaces.join(", ")),
    }
}
