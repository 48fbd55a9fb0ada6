//! `auditlog witness`: cosigns consistent checkpoints (settings: `[witness]`; docs/witness.md).
//! The API of [`auditlog_witness::server`] plus `/metrics`, served with the connection limits
//! of `auditlog serve`'s loop ([`auditlog_query::api::serve`]) from `[witness]`.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use auditlog_query::api::serve::{self, Limits};
use auditlog_witness::Witness;
use clap::Args;
use metrics_exporter_prometheus::PrometheusHandle;
use tracing::info;

use crate::config::Config;

/// Serve the witness (C2SP tlog-witness) until signalled.
#[derive(Debug, Args)]
pub struct WitnessArgs {
    /// Listen address; overrides `[witness] listen`.
    #[arg(long)]
    pub listen: Option<String>,
}

/// Runs the witness until SIGTERM/SIGINT, then finishes the requests in flight (at most
/// `witness.shutdown_timeout`). `/metrics` renders `prometheus`.
pub async fn run(cfg: &Config, args: WitnessArgs, prometheus: PrometheusHandle) -> Result<()> {
    let mut wcfg = cfg.witness.clone();
    if let Some(listen) = args.listen {
        wcfg.listen = listen;
    }
    // A bad key file, log key or state file stops startup naming the setting.
    let witness = Arc::new(Witness::open(&wcfg)?);
    auditlog_witness::metrics::describe();
    auditlog_witness::metrics::origins(witness.origin_count());
    let app = auditlog_witness::server::app(witness.clone(), wcfg.max_body_bytes);
    let app = auditlog_witness::server::with_metrics(app, move || prometheus.render());
    let limits = Limits {
        header_read_timeout: wcfg.header_read_timeout,
        idle_timeout: wcfg.idle_timeout,
        max_connections: wcfg.max_connections,
        shutdown_timeout: wcfg.shutdown_timeout,
        listener: "witness",
    };
    let listener = tokio::net::TcpListener::bind(&wcfg.listen)
        .await
        .with_context(|| format!("bind witness.listen {}", wcfg.listen))?;
    info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or(wcfg.listen.clone()),
        key = %witness.verifier(),
        logs = wcfg.logs.len(),
        "serving the witness"
    );
    serve::serve(listener, app, limits, crate::shutdown::signal()).await;
    info!("stopped");
    Ok(())
}
