//! `auditlog relay` (docs/relay.md): ships committed outbox rows to Kafka.
//!
//! Loop: claim free buckets ([`auditlog_outbox::Outbox::claim`]), publish their rows in
//! `(workspace, seq)` order with the idempotent `acks=all` producer, wait for every
//! acknowledgement, delete what was acknowledged and commit ([`ship`]). Woken by PostgreSQL
//! `NOTIFY auditlog_outbox`, or by `relay.poll_interval` on MySQL (and as a safety net on
//! PostgreSQL) ([`listen`]). A crash between publish and delete republishes the same
//! `event_id`s, which the consumer's deduplication collapses.

pub mod backoff;
pub mod config;
pub mod health;
pub mod listen;
pub mod metrics;
mod probe;
pub mod ship;

pub use config::RelayConfig;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use auditlog_outbox::{Outbox, NOTIFY_CHANNEL};
use auditlog_producer::{KafkaConfig, Producer, ProducerConfig};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::health::Health;
use crate::listen::Wake;
use crate::metrics as m;
use crate::ship::{Round, ShipError};

/// How long the batch in flight may still take after the shutdown signal before it is
/// dropped (rolled back: its rows stay in the outbox and go out again, possibly twice).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The first and the longest pause after a failed round.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(10));
/// The loop counts as stuck (`/health/live`) when it has not turned for this long (a round
/// waits at most `producer.delivery_timeout` for the broker).
const STUCK_AFTER: Duration = Duration::from_secs(300);

/// Runs the relay until `shutdown` resolves; then finishes the batch in flight and returns.
pub async fn run(
    cfg: &RelayConfig,
    kafka: &KafkaConfig,
    producer: &ProducerConfig,
    prometheus: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    cfg.validate_for_run()?;
    m::register();
    let outbox = connect(cfg, cfg.max_connections).await?;
    let producer_cfg = producer;
    let mut producer = Producer::builder(kafka)
        .config(producer_cfg)
        .build()
        .await
        .context("connecting to the broker")?;
    let health = Arc::new(Health::default());
    health.database(Ok("connected"));
    health.probed(Ok("answered at startup"));

    let (stop_tx, stop_rx) = watch::channel(false);
    let server = if cfg.listen.is_empty() {
        None
    } else {
        Some(
            health::serve(
                &cfg.listen,
                health.clone(),
                STUCK_AFTER,
                prometheus,
                stop_rx,
            )
            .await?,
        )
    };
    let wake = Arc::new(Wake::default());
    let mut tasks = vec![
        tokio::spawn(count_backlog(outbox.clone(), health.clone())),
        probe::spawn(kafka, health.clone())?,
    ];
    if let Outbox::Postgres(pool) = &outbox {
        tasks.push(listen::spawn(
            pool.clone(),
            NOTIFY_CHANNEL,
            wake.clone(),
            health.clone(),
        ));
    }
    tracing::info!(
        database = if outbox.is_postgres() { "postgresql" } else { "mysql" },
        topic = %kafka.topic,
        batch_rows = cfg.batch_rows,
        max_buckets = cfg.max_buckets,
        "relay started"
    );

    let limit = cfg.batch_rows as usize;
    let max_buckets = cfg.max_buckets as usize;
    let mut backoff = Backoff::new(BACKOFF.0, BACKOFF.1);
    tokio::pin!(shutdown);
    loop {
        health.turned();
        let (outcome, stop) = {
            let round = ship::round(&outbox, &producer, limit, max_buckets);
            tokio::pin!(round);
            tokio::select! {
            biased;
            out = &mut round => (out, false),
            () = &mut shutdown => {
                health.stopping();
                tracing::info!("shutting down: finishing the batch in flight");
                match tokio::time::timeout(SHUTDOWN_GRACE, &mut round).await {
                    Ok(out) => (out, true),
                    Err(_) => {
                        tracing::warn!(
                            grace = ?SHUTDOWN_GRACE,
                            "the batch in flight did not finish in time: rolled back, its rows go out again"
                        );
                        break;
                    }
                }
            }
            }
        };
        let broker_failed = matches!(outcome, Err(ShipError::Broker { .. }));
        let next = settle(&health, outcome, limit);
        if stop {
            break;
        }
        let wait = match next {
            Next::Again => {
                backoff.reset();
                continue;
            }
            Next::Wait => {
                backoff.reset();
                None
            }
            Next::Backoff => Some(backoff.next_delay()),
        };
        tokio::select! {
            biased;
            () = &mut shutdown => {
                health.stopping();
                break;
            }
            () = async {
                match wait {
                    None => wake.wait(cfg.poll_interval).await,
                    Some(d) => tokio::time::sleep(d).await,
                }
            } => {}
        }
        if broker_failed {
            // After delivery timeouts the idempotent producer can stay unable to deliver once
            // the broker is back (seen with Tansu after a restart: every later record fails
            // with an unknown broker error). A fresh producer (new producer id) starts clean;
            // nothing is lost, the failed rows are still in the outbox.
            match Producer::builder(kafka).config(producer_cfg).build().await {
                Ok(fresh) => {
                    let old = std::mem::replace(&mut producer, fresh);
                    let _ = old.close(Duration::ZERO).await;
                    tracing::info!("producer recreated after failed deliveries");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "recreating the producer failed; retrying later")
                }
            }
        }
    }

    for t in &tasks {
        t.abort();
    }
    let _ = stop_tx.send(true);
    match producer.close(Duration::from_secs(5)).await {
        Ok(report) if !report.is_complete() => {
            tracing::warn!(
                ?report,
                "events still undelivered at shutdown (they stay in the outbox)"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "closing the producer"),
    }
    if let Some(server) = server {
        let _ = server.await;
    }
    tracing::info!("relay stopped");
    Ok(())
}

/// Creates the outbox tables in `cfg.database_url` (`auditlog relay migrate`).
pub async fn migrate(cfg: &RelayConfig) -> anyhow::Result<()> {
    cfg.validate_for_run()?;
    let outbox = connect(cfg, 2).await?;
    outbox.migrate().await.context("migrating the outbox")?;
    tracing::info!("outbox tables ready");
    Ok(())
}

async fn connect(cfg: &RelayConfig, max_connections: u32) -> anyhow::Result<Outbox> {
    Outbox::connect(&cfg.database_url, max_connections)
        .await
        .map_err(|e| match e {
            auditlog_outbox::Error::Url(_) => anyhow::Error::new(
                auditlog_settings::BadSetting::new("relay.database_url", e.to_string()),
            ),
            e => anyhow::Error::new(e)
                .context("relay.database_url: connecting to the outbox database"),
        })
}

enum Next {
    /// The claim was full: more is waiting.
    Again,
    /// Caught up: wait for a notification or the poll interval.
    Wait,
    /// Failed: pause.
    Backoff,
}

fn settle(health: &Health, outcome: Result<Round, ShipError>, limit: usize) -> Next {
    match outcome {
        Ok(round) => {
            health.database(Ok("answers"));
            if round.claimed > 0 {
                health.delivered(Ok("delivering"));
                tracing::debug!(claimed = round.claimed, deleted = round.deleted, "shipped");
            }
            ::metrics::gauge!(m::LAST_ROUND).set(health::now_ms() as f64 / 1000.0);
            if round.claimed >= limit {
                Next::Again
            } else {
                Next::Wait
            }
        }
        Err(e) => {
            m::failed(e.kind());
            match &e {
                ShipError::Database(_) => health.database(Err(e.to_string())),
                ShipError::Broker { .. } | ShipError::Rejected { .. } => {
                    health.database(Ok("answers"));
                    health.delivered(Err(e.to_string()));
                }
            }
            tracing::warn!(error = %e, kind = e.kind(), "relay round failed; retrying");
            Next::Backoff
        }
    }
}

/// Counts the outbox's rows once a second: the backlog gauge, and a database check.
async fn count_backlog(outbox: Outbox, health: Arc<Health>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match tokio::time::timeout(Duration::from_secs(5), outbox.len()).await {
            Ok(Ok(rows)) => {
                ::metrics::gauge!(m::BACKLOG).set(rows as f64);
                health.backlog(rows);
                health.database(Ok("answers"));
            }
            Ok(Err(e)) => {
                m::failed("database");
                health.database(Err(e.to_string()));
            }
            Err(_) => {
                m::failed("database");
                health.database(Err("counting the outbox took more than 5s".into()));
            }
        }
    }
}
