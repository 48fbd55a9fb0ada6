//! `auditlog token`: create, revoke and list workspace API tokens.

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};

use crate::config::Config;

/// Create, revoke or list workspace API tokens.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token for WORKSPACE. Prints only the secret on stdout
    /// (`TOKEN=$(auditlog token create demo)`); its id goes to stderr.
    Create {
        /// Workspace the token reads.
        workspace: String,
        /// What the token is for.
        #[arg(long, default_value = "")]
        name: String,
        /// The token stops working this long from now (`30d`, `12h`, `90min`); default never.
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
        /// Print `{"token_id","token","workspace_id","expires_at"}` (one JSON document).
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
        /// Only this workspace's tokens.
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
            expires_in,
            json,
        } => {
            let expires_at = expires_in
                .as_deref()
                .map(|d| auditlog_query::tokens::expiry_in("--expires-in", d, chrono::Utc::now()))
                .transpose()?;
            let t = tokens
                .create_expiring(&workspace, &name, expires_at)
                .await
                .with_context(|| format!("create a token for {workspace}"))?;
            let until = t.expires_at.as_deref().unwrap_or("never");
            eprintln!(
                "created {} for workspace {} (expires: {until})",
                t.token_id, t.workspace_id
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
            println!("TOKEN_ID\tWORKSPACE\tNAME\tCREATED_AT\tEXPIRES_AT\tLAST_USED_AT\tREVOKED_AT");
            for t in list {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    t.token_id,
                    t.workspace_id,
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
