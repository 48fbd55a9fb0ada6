//! The sequencer's Prometheus metrics. Labels are bounded: `witness` is the witness's position
//! in `sequencer.witnesses` (`0`, `1`, ...), `outcome` is `ok` or `failed`. Never a workspace.

use std::sync::Once;

/// Counter: leaves appended (events that became leaves).
pub const LEAVES: &str = "auditlog_log_leaves_appended_total";
/// Counter, label `outcome`: steps (one read and one insert per log table).
pub const STEPS: &str = "auditlog_log_steps_total";
/// Counter: rows read that were not appended: their event is already a leaf of its log.
pub const DUPLICATES: &str = "auditlog_log_duplicates_skipped_total";
/// Counter: checkpoints signed.
pub const CHECKPOINTS: &str = "auditlog_log_checkpoints_signed_total";
/// Counter, label `witness`: cosignatures received.
pub const COSIGNATURES: &str = "auditlog_log_witness_cosignatures_total";
/// Counter, label `witness`: checkpoints a witness did not cosign this round (down, refused).
pub const WITNESS_FAILURES: &str = "auditlog_log_witness_failures_total";
/// Gauge: seconds from the oldest row the last step read being stored to now (0 when caught
/// up).
pub const SEQUENCING_LAG: &str = "auditlog_log_sequencing_lag_seconds";
/// Histogram: seconds from the oldest event a checkpoint newly covers being stored to the
/// checkpoint being signed.
pub const CHECKPOINT_LAG: &str = "auditlog_log_checkpoint_lag_seconds";
/// Gauge: epoch seconds of the last successful step (liveness).
pub const LAST_STEP: &str = "auditlog_log_last_step_timestamp_seconds";

/// Every metric the sequencer exports (process metrics aside).
pub const ALL: &[&str] = &[
    LEAVES,
    STEPS,
    DUPLICATES,
    CHECKPOINTS,
    COSIGNATURES,
    WITNESS_FAILURES,
    SEQUENCING_LAG,
    CHECKPOINT_LAG,
    LAST_STEP,
];

/// Histogram buckets, for the recorder the binary installs.
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[(
    CHECKPOINT_LAG,
    &[
        0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 30.0, 60.0, 300.0,
    ],
)];

/// Describes every metric and creates the series at zero (once per process), for `witnesses`
/// witnesses.
pub fn register(witnesses: usize) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
        describe_counter!(LEAVES, "Leaves appended to workspace logs");
        describe_counter!(
            STEPS,
            "Sequencer steps (one insert per log table), by outcome"
        );
        describe_counter!(
            DUPLICATES,
            "Rows not appended: their event is already a leaf of its log"
        );
        describe_counter!(CHECKPOINTS, "Checkpoints signed");
        describe_counter!(COSIGNATURES, "Witness cosignatures received, by witness");
        describe_counter!(
            WITNESS_FAILURES,
            "Checkpoints a witness did not cosign (down or refused), by witness"
        );
        describe_gauge!(
            SEQUENCING_LAG,
            Unit::Seconds,
            "Oldest row the last step read: seconds since it was stored"
        );
        describe_histogram!(
            CHECKPOINT_LAG,
            Unit::Seconds,
            "Event stored -> covered by a signed checkpoint (oldest event of each checkpoint)"
        );
        describe_gauge!(LAST_STEP, "Epoch seconds of the last successful step");
        metrics::counter!(LEAVES).absolute(0);
        for outcome in ["ok", "failed"] {
            metrics::counter!(STEPS, "outcome" => outcome).absolute(0);
        }
        metrics::counter!(DUPLICATES).absolute(0);
        metrics::counter!(CHECKPOINTS).absolute(0);
        for i in 0..witnesses {
            let w = i.to_string();
            metrics::counter!(COSIGNATURES, "witness" => w.clone()).absolute(0);
            metrics::counter!(WITNESS_FAILURES, "witness" => w).absolute(0);
        }
        metrics::gauge!(SEQUENCING_LAG).set(0.0);
        metrics::gauge!(LAST_STEP).set(0.0);
    });
}
