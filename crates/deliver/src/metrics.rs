//! The worker's Prometheus metrics. Labels are bounded: `kind` (destination kind, one of
//! four), `outcome` (`ok`, `failed`), `state` (`active`, `failing`, `paused`). Figures per
//! stream go to `stream_status`, never to a label.

use std::sync::Once;

/// Counter, labels `kind`, `outcome`: delivery attempts (one request per batch).
pub const DELIVERIES: &str = "auditlog_stream_deliveries_total";
/// Counter, label `kind`: events acknowledged by destinations.
pub const DELIVERED_EVENTS: &str = "auditlog_stream_delivered_events_total";
/// Counter, label `kind`: failed delivery attempts.
pub const FAILURES: &str = "auditlog_stream_failures_total";
/// Counter, label `kind`: events delivered again after an unacknowledged attempt.
pub const REDELIVERED_EVENTS: &str = "auditlog_stream_redelivered_events_total";
/// Histogram, label `kind`: seconds from an event becoming visible (stored) to its batch
/// being acknowledged.
pub const LATENCY: &str = "auditlog_stream_delivery_latency_seconds";
/// Gauge, label `state`: streams this worker owns, by state.
pub const STREAMS: &str = "auditlog_stream_streams";
/// Gauge: streams this worker owns (delivering or in takeover grace).
pub const OWNED: &str = "auditlog_stream_owned_streams";
/// Gauge: the largest lag of this worker's streams, seconds (oldest unacknowledged visible event).
pub const MAX_LAG: &str = "auditlog_stream_max_lag_seconds";
/// Counter: cursor and status saves that failed (retried at the next flush).
pub const FLUSH_ERRORS: &str = "auditlog_stream_flush_errors_total";

/// Every metric the worker exports (process metrics aside).
pub const ALL: &[&str] = &[
    DELIVERIES,
    DELIVERED_EVENTS,
    FAILURES,
    REDELIVERED_EVENTS,
    LATENCY,
    STREAMS,
    OWNED,
    MAX_LAG,
    FLUSH_ERRORS,
];

/// Destination kinds (the `kind` label's values).
pub const KINDS: &[&str] = &["webhook", "splunk_hec", "datadog", "s3"];

/// Histogram buckets, for the recorder the binary installs.
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[(
    LATENCY,
    &[
        0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
    ],
)];

/// Describes every metric and creates the labelled series at zero (once per process).
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
        describe_counter!(DELIVERIES, "Delivery attempts (one request per batch)");
        describe_counter!(DELIVERED_EVENTS, "Events acknowledged by destinations");
        describe_counter!(FAILURES, "Failed delivery attempts");
        describe_counter!(
            REDELIVERED_EVENTS,
            "Events delivered again after an unacknowledged attempt"
        );
        describe_histogram!(
            LATENCY,
            Unit::Seconds,
            "Event stored -> its batch acknowledged by the destination"
        );
        describe_gauge!(STREAMS, "Streams this worker owns, by state");
        describe_gauge!(OWNED, "Streams this worker owns");
        describe_gauge!(
            MAX_LAG,
            Unit::Seconds,
            "Largest lag of this worker's streams"
        );
        describe_counter!(FLUSH_ERRORS, "Cursor or status saves that failed");
        for kind in KINDS {
            for outcome in ["ok", "failed"] {
                metrics::counter!(DELIVERIES, "kind" => *kind, "outcome" => outcome).absolute(0);
            }
            metrics::counter!(DELIVERED_EVENTS, "kind" => *kind).absolute(0);
            metrics::counter!(FAILURES, "kind" => *kind).absolute(0);
            metrics::counter!(REDELIVERED_EVENTS, "kind" => *kind).absolute(0);
        }
        for state in ["active", "failing", "paused"] {
            metrics::gauge!(STREAMS, "state" => state).set(0.0);
        }
        metrics::gauge!(OWNED).set(0.0);
        metrics::gauge!(MAX_LAG).set(0.0);
        metrics::counter!(FLUSH_ERRORS).absolute(0);
    });
}
