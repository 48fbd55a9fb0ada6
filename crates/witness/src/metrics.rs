//! The witness's Prometheus metrics (labels are bounded: a result from a fixed set, never an
//! origin). Recorded into whatever recorder the binary installed.

/// `add-checkpoint` requests, by `result` (`cosigned`, `malformed`, `unknown_origin`,
/// `forbidden`, `size_conflict`, `root_conflict`, `bad_proof`, `error`).
pub const ADD_CHECKPOINT: &str = "auditlog_witness_add_checkpoint_total";
/// Origins with a cosigned checkpoint.
pub const ORIGINS: &str = "auditlog_witness_origins";

/// Describes the metrics (once, at startup).
pub fn describe() {
    metrics::describe_counter!(ADD_CHECKPOINT, "add-checkpoint requests, by result");
    metrics::describe_gauge!(ORIGINS, "Origins (logs) with a cosigned checkpoint");
}

/// One `add-checkpoint` answered with `result`.
pub fn added(result: &'static str) {
    metrics::counter!(ADD_CHECKPOINT, "result" => result).increment(1);
}

/// The number of origins with a cosigned checkpoint.
pub fn origins(n: usize) {
    metrics::gauge!(ORIGINS).set(n as f64);
}
