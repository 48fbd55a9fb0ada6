//! The sequencer's loop: startup checks, then steps every `poll_interval` (at once again while
//! there is a backlog), a signing round every `checkpoint_interval`, and on the shutdown signal
//! the step in progress finished, a last signing round, the witnesses given their last
//! checkpoints, exit.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_settings::BadSetting;
use auditlog_store::{ClickHouseConfig, Layout};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::checkpoints::{self, Signing};
use crate::config::SequencerConfig;
use crate::error::{Error, Result};
use crate::health::{self, Health};
use crate::key;
use crate::metrics as m;
use crate::step::Sequencer;
use crate::witness::Witnesses;

/// Runs the sequencer until `shutdown` completes.
pub async fn run(
    cfg: &SequencerConfig,
    clickhouse: &ClickHouseConfig,
    prometheus: PrometheusHandle,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    cfg.validate()?;
    let signer = key::load(&cfg.signing_key_file)?;
    refuse_cluster(clickhouse.layout())?;
    m::register(cfg.witnesses.len());
    let client = clickhouse.client();
    let (stop_tx, stop_rx) = watch::channel(false);
    let health = Arc::new(Health::default());
    let server = if cfg.listen.is_empty() {
        None
    } else {
        let stuck = (cfg.poll_interval * 20).max(Duration::from_secs(60));
        let h = health::serve(
            &cfg.listen,
            health.clone(),
            stuck,
            prometheus,
            stop_rx.clone(),
        )
        .await?;
        info!(listen = %cfg.listen, "serving /metrics, /health/live and /health/ready");
        Some(h)
    };
    tokio::pin!(shutdown);

    // Startup reads, retried while ClickHouse is unreachable (a bad setting stops at once).
    let started = tokio::select! {
        r = startup(cfg, &client, signer) => Some(r?),
        () = &mut shutdown => None,
    };
    let Some((mut seq, mut signing, witnesses)) = started else {
        let _ = stop_tx.send(true);
        return Ok(());
    };
    info!(
        key = %signing.key_name(),
        logs = seq.logs.heads.len(),
        witnesses = cfg.witnesses.len(),
        "sequencer started"
    );

    let mut next_round = Instant::now() + cfg.checkpoint_interval;
    let mut backoff = Duration::from_millis(100);
    loop {
        health.turned();
        let again;
        match seq.step().await {
            Ok(o) => {
                health.step_ok();
                backoff = Duration::from_millis(100);
                metrics::counter!(m::STEPS, "outcome" => "ok").increment(1);
                metrics::gauge!(m::LAST_STEP).set(crate::step::now_ms() as f64 / 1000.0);
                again = o.backlog;
            }
            Err(e) => {
                metrics::counter!(m::STEPS, "outcome" => "failed").increment(1);
                warn!(error = %e, retry_in = ?backoff, "sequencer step failed; reloading the stored state");
                health.step_failed(&e);
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = &mut shutdown => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                if let Err(e) = seq.reload().await {
                    warn!(error = %e, "cannot reload the log state");
                }
                continue;
            }
        }
        if Instant::now() >= next_round {
            next_round = Instant::now() + cfg.checkpoint_interval;
            sign_round(&mut signing, &client, &mut seq, &witnesses).await;
        }
        let pause = if again {
            Duration::ZERO
        } else {
            cfg.poll_interval
                .min(next_round.saturating_duration_since(Instant::now()))
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = &mut shutdown => break,
        }
    }
    health.stopping();
    info!("stopping: a last signing round");
    sign_round(&mut signing, &client, &mut seq, &witnesses).await;
    witnesses.finish(cfg.witness_timeout * 2).await;
    let _ = stop_tx.send(true);
    if let Some(h) = server {
        let _ = h.await;
    }
    info!("sequencer stopped");
    Ok(())
}

/// A cluster is not supported yet: its rows reach the shards at different moments, so the
/// positions would have to be per shard (docs/integrity.md, "Limits").
fn refuse_cluster(layout: Layout) -> Result<()> {
    match layout {
        Layout::Single => Ok(()),
        Layout::Cluster(name) => Err(Error::Config(BadSetting::new(
            "clickhouse.cluster",
            format!(
                "is {name:?}: `auditlog sequencer` runs on a single ClickHouse server only for now \
                 (docs/integrity.md, \"Limits\")"
            ),
        ))),
    }
}

/// The key announced, the state read, the witness tasks started; retried while ClickHouse
/// fails (not for a bad setting).
async fn startup(
    cfg: &SequencerConfig,
    client: &clickhouse::Client,
    signer: auditlog_tlog::Signer,
) -> Result<(Sequencer, Signing, Witnesses)> {
    let mut signing = Signing::new(signer, &cfg.origin_prefix);
    let mut wait = Duration::from_millis(250);
    loop {
        let attempt = async {
            if let Some(Layout::Cluster(name)) = Layout::detect(client).await? {
                refuse_cluster(Layout::Cluster(name))?;
            }
            checkpoints::announce(client, signing.signer()).await?;
            let seq = Sequencer::start(client.clone(), cfg.page_rows).await?;
            signing.load(client).await?;
            let witnesses = Witnesses::start(cfg, client).await?;
            Ok::<_, Error>((seq, witnesses))
        };
        match attempt.await {
            Ok((seq, witnesses)) => return Ok((seq, signing, witnesses)),
            Err(e @ Error::Config(_)) => return Err(e),
            Err(e) => {
                warn!(error = %e, retry_in = ?wait, "sequencer startup: ClickHouse failed");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn sign_round(
    signing: &mut Signing,
    client: &clickhouse::Client,
    seq: &mut Sequencer,
    witnesses: &Witnesses,
) {
    match signing.round(client, seq).await {
        Ok(signed) => witnesses.send(&signed),
        Err(e) => warn!(error = %e, "signing round failed (retried next round)"),
    }
}
