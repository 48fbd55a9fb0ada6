//! `auditlog serve`: the query API and the dashboard on `[api] listen` (and `/metrics` on
//! `[api] metrics_listen` when set), with the connection limits of
//! [`auditlog_query::api::serve`]. With `api.ingest_enabled` (the default) it also connects a
//! Kafka producer (`[kafka]`, `[producer]`) for `POST /v1/ingest`, in the background: a broker
//! that is down or a topic not yet created delays ingest (503 until connected), never reads.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, Result};
use auditlog_producer::{Producer, ProducerError};
use auditlog_query::api::serve::{self, Limits};
use clap::Args;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::Config;

/// Serve the HTTP API (`/v1`), `/health`, `/metrics`, `/openapi.json` and the dashboard.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address; overrides `[api] listen` (env `AUDITLOG_API__LISTEN`).
    #[arg(long)]
    pub listen: Option<String>,
}

/// Runs until SIGTERM or SIGINT, then finishes the requests in flight (at most
/// `api.shutdown_timeout`).
/// `/metrics` renders `prometheus`.
pub async fn run(cfg: &Config, args: ServeArgs, prometheus: PrometheusHandle) -> Result<()> {
    let listen = args.listen.unwrap_or_else(|| cfg.api.listen.clone());
    if cfg.api.admin_token.is_empty() {
        info!("api.admin_token is empty: admin endpoints answer 401");
    }
    // A TLS setting ClickHouse refuses stops startup, naming it (ClickHouse down does not).
    cfg.clickhouse.check_startup().await?;
    let state = auditlog_query::api::AppState::new(&cfg.api, cfg.clickhouse.client(), prometheus);
    let producer = cfg
        .api
        .ingest_enabled
        .then(|| tokio::spawn(connect_producer(cfg.clone(), state.ingest.producer_slot())));
    let metrics = (!cfg.api.metrics_listen.is_empty()).then(|| {
        (
            auditlog_query::api::metrics_app(&state),
            Limits::metrics_listener(&cfg.api),
        )
    });
    let app = auditlog_query::api::app(state);

    // Every connection is a descriptor: take the hard limit, and keep the cap below it.
    let others = metrics.as_ref().map_or(0, |(_, l)| l.max_connections);
    let limits = match serve::raise_nofile_limit() {
        Ok(nofile) => {
            let fitted = Limits::from_config(&cfg.api).fitted_to(nofile, others);
            if fitted.max_connections < cfg.api.max_connections {
                warn!(
                    nofile,
                    configured = cfg.api.max_connections,
                    effective = fitted.max_connections,
                    "api.max_connections lowered to fit the open-file limit (raise `ulimit -n`)"
                );
            }
            fitted
        }
        Err(e) => {
            warn!(error = %e, "could not read or raise the open-file limit");
            Limits::from_config(&cfg.api)
        }
    };

    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("bind {listen}"))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let metrics_server = match metrics {
        Some((metrics_app, metrics_limits)) => {
            let addr = &cfg.api.metrics_listen;
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("bind api.metrics_listen {addr}"))?;
            info!(metrics_listen = %l.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| addr.clone()), "serving /metrics");
            Some(tokio::spawn(serve::serve(
                l,
                metrics_app,
                metrics_limits,
                stopped(stop_rx.clone()),
            )))
        }
        None => None,
    };
    info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or(listen),
        database = %cfg.clickhouse.database,
        max_connections = limits.max_connections,
        "serving the query API"
    );
    tokio::spawn(async move {
        crate::shutdown::signal().await;
        info!("finishing requests in flight");
        let _ = stop_tx.send(true);
    });
    // serve() hands handlers the peer address (ConnectInfo<SocketAddr>), which the
    // failed-authentication limit counts against.
    serve::serve(listener, app, limits, stopped(stop_rx)).await;
    if let Some(m) = metrics_server {
        m.await.context("metrics listener")?;
    }
    if let Some(task) = producer {
        task.abort();
    }
    info!("stopped");
    Ok(())
}

/// How long to wait before connecting the ingest producer again.
const RECONNECT_EVERY: Duration = Duration::from_secs(5);

/// Connects the ingest producer into `slot`, trying again every [`RECONNECT_EVERY`] while no
/// broker answers or the topic is missing. Events are acknowledged before a request is
/// answered, so nothing is left to flush at shutdown.
async fn connect_producer(cfg: Config, slot: Arc<OnceLock<Producer>>) {
    loop {
        match Producer::builder(&cfg.kafka)
            .config(&cfg.producer)
            .build()
            .await
        {
            Ok(p) => {
                let _ = slot.set(p);
                info!(brokers = %cfg.kafka.brokers, topic = %cfg.kafka.topic, "ingest producer connected: POST /v1/ingest is on");
                return;
            }
            Err(e @ (ProducerError::Unreachable { .. } | ProducerError::TopicMissing { .. })) => {
                warn!(error = %e, "ingest producer not connected yet (POST /v1/ingest answers 503); retrying");
                tokio::time::sleep(RECONNECT_EVERY).await;
            }
            Err(e) => {
                error!(error = %e, "cannot create the ingest producer; POST /v1/ingest answers 503");
                return;
            }
        }
    }
}
