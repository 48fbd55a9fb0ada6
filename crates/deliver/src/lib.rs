//! The stream worker (`auditlog stream-worker`): for every active stream it owns, it follows
//! the stream's feed position, renders events in the stream's format, hands batches to the
//! destination and saves the position only once the destination acknowledged them: at least
//! once, in order per workspace. docs/delivery.md states the guarantees.
//!
//! One file per step: [`config`] (`[streams]`), [`membership`] (who owns which stream),
//! [`worker`] (the supervisor of per-stream tasks), [`stream`] (one stream's loop),
//! [`batch`] (render and cut), [`backoff`], [`flush`] (the one batched writer of cursors and
//! statuses), [`metrics`], [`health`], [`destination`] (one file per kind), [`http`].

pub mod backoff;
pub mod batch;
pub mod config;
pub mod destination;
pub mod flush;
pub mod health;
pub mod http;
pub mod membership;
pub mod metrics;
pub mod stream;
pub mod worker;

use std::future::Future;
use std::sync::Arc;

pub use config::StreamsConfig;
pub use destination::{Batch, Destination, Failure, Limits, Rendered};

use auditlog_query::feed::Notifier;
use auditlog_query::{Dedup, Reader};
use auditlog_store::ClickHouseConfig;
use metrics_exporter_prometheus::PrometheusHandle;

/// Errors that stop the worker at startup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] auditlog_settings::BadSetting),
    /// `streams.listen` could not be bound.
    #[error("streams.listen: cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Feed reads' deadline.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs the stream worker until `shutdown` completes; `/metrics` renders `prometheus`.
pub async fn run(
    cfg: &StreamsConfig,
    clickhouse: &ClickHouseConfig,
    prometheus: PrometheusHandle,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    cfg.validate()?;
    metrics::register();
    let worker_id = if cfg.worker_id.is_empty() {
        worker::default_worker_id()
    } else {
        cfg.worker_id.clone()
    };
    let client = clickhouse.client();
    let reader = Reader::new(client.clone(), Dedup::LimitBy, READ_TIMEOUT);
    let store = auditlog_streams::store::StreamStore::new(client.clone());
    let notifier = Notifier::new(client);
    let shared = Arc::new(worker::Shared::new(
        cfg.clone(),
        worker_id.clone(),
        reader,
        store,
        notifier,
    ));
    let health = Arc::new(worker::Health::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = if cfg.listen.is_empty() {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(&cfg.listen)
            .await
            .map_err(|source| Error::Listen {
                addr: cfg.listen.clone(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| cfg.listen.clone());
        tracing::info!(listen = %addr, "serving /metrics and /health");
        Some(health::serve(
            listener,
            health.clone(),
            worker_id.clone(),
            cfg.worker_expiry,
            prometheus,
            stop_rx,
        ))
    };
    tracing::info!(worker_id = %worker_id, "stream worker started");
    worker::run(shared, health, shutdown).await;
    let _ = stop_tx.send(true);
    if let Some(s) = server {
        let _ = s.await;
    }
    Ok(())
}
