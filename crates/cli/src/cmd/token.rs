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
    },
}

/// Runs the subcommand.
pub async fn run(cfg: &Config, args: TokenArgs) -> Result<()> {
    let tokens = auditlog_query::tokens::Tokens::new(cfg.clickhouse.client(), Default::default());
    match args.command {
        TokenCommand::Create { workspace, name } => {
            let t = tokens
                .create(&workspace, &name)
                .await
                .with_context(|| format!("create a token for {workspace}"))?;
            eprintln!("created {} for workspace {}", t.token_id, t.workspace_id);
            println!("{}", t.token);
        }
        TokenCommand::Revoke { token_id } => {
            tokens
                .revoke(&token_id)
                .await
                .with_context(|| format!("revoke {token_id}"))?;
            eprintln!("revoked {token_id}");
        }
        TokenCommand::List { workspace } => {
            let list = tokens
                .list(workspace.as_deref())
                .await
                .context("list tokens")?;
            println!("TOKEN_ID\tWORKSPACE\tNAME\tCREATED_AT\tREVOKED_AT");
            for t in list {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.token_id,
                    t.workspace_id,
                    t.name,
                    t.created_at,
                    t.revoked_at.as_deref().unwrap_or("-")
                );
            }
        }
    }
    Ok(())
}
