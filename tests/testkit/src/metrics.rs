//! The metrics recorder of a test process, standing in for the one `auditlog consume|serve`
//! installs (the libraries only emit metrics and render the handle they are given).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// This test process's Prometheus recorder, installed as the global recorder on the first
/// call with `buckets` for the named histograms (e.g. `auditlog_query::api::metrics::HISTOGRAM_BUCKETS`);
/// later calls return the same handle. Panics when another recorder is already installed.
pub fn prometheus(buckets: &[(&str, &[f64])]) -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = buckets
                .iter()
                .try_fold(PrometheusBuilder::new(), |b, (name, bounds)| {
                    b.set_buckets_for_metric(Matcher::Full((*name).to_owned()), bounds)
                })
                .expect("histogram buckets are not empty");
            builder
                .install_recorder()
                .expect("no other metrics recorder in this test process")
        })
        .clone()
}
