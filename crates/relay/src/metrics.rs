//! The relay's Prometheus metrics. Labels are bounded: `kind` is one of [`FAILURE_KINDS`].
//! Never a workspace.

use std::sync::Once;

/// Counter: rows published, acknowledged by the broker and deleted from the outbox.
pub const SHIPPED: &str = "auditlog_relay_rows_shipped_total";
/// Counter: rows published and acknowledged but not deleted (the claim's commit failed, or a
/// failure earlier in their workspace): they go out again (duplicates the consumer collapses).
pub const REPUBLISHED: &str = "auditlog_relay_rows_unconfirmed_total";
/// Counter, label `kind`: failures (see [`FAILURE_KINDS`]).
pub const FAILURES: &str = "auditlog_relay_failures_total";
/// Gauge: rows in the outbox (read at most once a second).
pub const BACKLOG: &str = "auditlog_relay_backlog_rows";
/// Histogram: seconds of one claim -> publish -> acknowledged -> delete round with rows.
pub const BATCH_DURATION: &str = "auditlog_relay_batch_duration_seconds";
/// Histogram: rows per round with rows.
pub const BATCH_ROWS: &str = "auditlog_relay_batch_rows";
/// Gauge: epoch seconds of the last round that succeeded (rows or not).
pub const LAST_ROUND: &str = "auditlog_relay_last_round_timestamp_seconds";

/// The `kind` label of [`FAILURES`]: `database` (claim, delete, backlog count), `broker` (a row
/// not acknowledged within `producer.delivery_timeout`), `rejected` (the client refused a row:
/// too large for the broker), `listen` (PostgreSQL `LISTEN` connection).
pub const FAILURE_KINDS: &[&str] = &["database", "broker", "rejected", "listen"];

/// Every metric the relay exports (process and producer metrics aside).
pub const ALL: &[&str] = &[
    SHIPPED,
    REPUBLISHED,
    FAILURES,
    BACKLOG,
    BATCH_DURATION,
    BATCH_ROWS,
    LAST_ROUND,
];

/// Histogram buckets, for the recorder the binary installs.
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[
    (
        BATCH_DURATION,
        &[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ],
    ),
    (
        BATCH_ROWS,
        &[1.0, 10.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, 50000.0],
    ),
];

/// Describes every metric and creates the series at zero (once per process).
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
        describe_counter!(
            SHIPPED,
            "Outbox rows acknowledged by the broker and deleted from the outbox"
        );
        describe_counter!(
            REPUBLISHED,
            "Outbox rows acknowledged but not deleted (shipped again later; the consumer collapses the duplicate)"
        );
        describe_counter!(
            FAILURES,
            "Relay failures, by kind (database, broker, rejected, listen)"
        );
        describe_gauge!(BACKLOG, "Rows waiting in the outbox");
        describe_histogram!(
            BATCH_DURATION,
            Unit::Seconds,
            "One claim -> publish -> acknowledged -> delete round (rounds with rows)"
        );
        describe_histogram!(BATCH_ROWS, "Rows per round (rounds with rows)");
        describe_gauge!(
            LAST_ROUND,
            "Epoch seconds of the last round that succeeded"
        );
        metrics::counter!(SHIPPED).absolute(0);
        metrics::counter!(REPUBLISHED).absolute(0);
        for kind in FAILURE_KINDS {
            metrics::counter!(FAILURES, "kind" => *kind).absolute(0);
        }
        metrics::gauge!(BACKLOG).set(0.0);
        metrics::gauge!(LAST_ROUND).set(0.0);
    });
}

/// Counts a failure of `kind` (one of [`FAILURE_KINDS`]).
pub fn failed(kind: &'static str) {
    debug_assert!(FAILURE_KINDS.contains(&kind));
    metrics::counter!(FAILURES, "kind" => kind).increment(1);
}
