//! `auditlog serve`: the query API and the dashboard on `[api] listen`.

use anyhow::{Context as _, Result};
use clap::Args;
use tracing::info;

use crate::config::Config;

/// Serve the HTTP API (`/v1`), `/health`, `/metrics`, `/openapi.json` and the dashboard.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address; overrides `[api] listen` (env `AUDITLOG_API__LISTEN`).
    #[arg(long)]
    pub listen: Option<String>,
}

/// Runs until SIGTERM or SIGINT, then finishes the requests in flight.
pub async fn run(cfg: &Config, args: ServeArgs) -> Result<()> {
    let listen = args.listen.unwrap_or_else(|| cfg.api.listen.clone());
    if cfg.api.admin_token.is_empty() {
        info!("api.admin_token is empty: admin endpoints answer 401");
    }
    let state = auditlog_query::api::AppState::new(&cfg.api, cfg.clickhouse.client());
    let app = auditlog_query::api::app(state);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("bind {listen}"))?;
    info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or(listen),
        database = %cfg.clickhouse.database,
        "serving the query API"
    );
    // The peer address is what the failed-authentication limit counts against.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serve")?;
    info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    info!("shutdown signal received; finishing requests in flight");
}
