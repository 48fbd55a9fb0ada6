//! The process's one metrics recorder, installed by `consume`, `serve` and `stream-worker` before anything
//! records: Prometheus, with the histogram buckets the sink and the API declare. The libraries
//! only emit metrics; they render `/metrics` from the handle they are given.

use anyhow::{Context as _, Result};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs the global Prometheus recorder and returns the handle `/metrics` renders.
pub fn install() -> Result<PrometheusHandle> {
    let buckets = auditlog_sink::observe::HISTOGRAM_BUCKETS
        .iter()
        .chain(auditlog_query::api::metrics::HISTOGRAM_BUCKETS)
        .chain(auditlog_deliver::metrics::HISTOGRAM_BUCKETS)
        .chain(auditlog_sequencer::metrics::HISTOGRAM_BUCKETS)
        .chain(auditlog_relay::metrics::HISTOGRAM_BUCKETS);
    let builder = buckets
        .into_iter()
        .try_fold(PrometheusBuilder::new(), |b, (name, bounds)| {
            b.set_buckets_for_metric(Matcher::Full((*name).to_owned()), bounds)
        })
        .context("histogram buckets")?;
    builder
        .install_recorder()
        .context("installing the metrics recorder")
}
