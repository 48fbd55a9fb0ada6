//! The producer's metrics (names are part of the public contract; see docs/producer.md).

use metrics::{Counter, Gauge, Histogram};

/// Events acknowledged by the broker.
pub const SENT_TOTAL: &str = "auditlog_producer_sent_total";
/// Events not sent or not delivered, by `reason`: `invalid`, `queue_full`, `delivery`.
pub const FAILED_TOTAL: &str = "auditlog_producer_failed_total";
/// Events enqueued and not yet acknowledged or failed.
pub const QUEUE_DEPTH: &str = "auditlog_producer_queue_depth";
/// Seconds from enqueue to broker acknowledgement.
pub const DELIVERY_LATENCY_SECONDS: &str = "auditlog_producer_delivery_latency_seconds";

/// Every metric the producer exports (for docs and drift tests).
pub const ALL: &[&str] = &[
    SENT_TOTAL,
    FAILED_TOTAL,
    QUEUE_DEPTH,
    DELIVERY_LATENCY_SECONDS,
];

/// Handles resolved once, so the hot path does no registry lookup.
#[derive(Clone)]
pub(crate) struct Metrics {
    pub sent: Counter,
    pub failed_invalid: Counter,
    pub failed_queue_full: Counter,
    pub failed_delivery: Counter,
    pub queue_depth: Gauge,
    pub latency: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        metrics::describe_counter!(SENT_TOTAL, "Audit events acknowledged by the broker.");
        metrics::describe_counter!(
            FAILED_TOTAL,
            "Audit events not sent (invalid, queue_full) or not delivered (delivery)."
        );
        metrics::describe_gauge!(
            QUEUE_DEPTH,
            "Audit events enqueued and not yet acknowledged."
        );
        metrics::describe_histogram!(
            DELIVERY_LATENCY_SECONDS,
            metrics::Unit::Seconds,
            "Time from enqueue to broker acknowledgement."
        );
        Self {
            sent: metrics::counter!(SENT_TOTAL),
            failed_invalid: metrics::counter!(FAILED_TOTAL, "reason" => "invalid"),
            failed_queue_full: metrics::counter!(FAILED_TOTAL, "reason" => "queue_full"),
            failed_delivery: metrics::counter!(FAILED_TOTAL, "reason" => "delivery"),
            queue_depth: metrics::gauge!(QUEUE_DEPTH),
            latency: metrics::histogram!(DELIVERY_LATENCY_SECONDS),
        }
    }
}
