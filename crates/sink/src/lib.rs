//! The consumer: Kafka -> decode -> batch -> ClickHouse -> commit, with a dead-letter topic.
//!
//! Delivery: every event on the topic ends up as exactly one visible row (with `FINAL`, and
//! without it once ClickHouse's insert deduplication did its job), through crashes, restarts
//! and rebalances. Offsets are committed only after ClickHouse accepted the rows they cover;
//! each batch is a range of offsets recorded before it is inserted and inserted with a
//! deduplication token derived from that range, so a range consumed twice (after a crash,
//! a failed commit or a rebalance) is written once. Caveat: ClickHouse forgets tokens after
//! `non_replicated_deduplication_window` inserts; a replay older than that writes duplicate
//! rows, which the ReplacingMergeTree collapses on `event_id` (exact with `FINAL`).
//! See ARCHITECTURE.md for the whole story.
//!
//! ```no_run
//! # async fn f() -> auditlog_sink::Result<()> {
//! // The process's one metrics recorder (the binary's job), rendering `/metrics`.
//! let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
//!     .install_recorder()
//!     .expect("no other recorder installed");
//! let summary = auditlog_sink::run(
//!     &auditlog_sink::config::KafkaSettings::default(),
//!     &auditlog_store::ClickHouseConfig::default(),
//!     &auditlog_sink::SinkConfig::default(),
//!     prometheus,
//!     async { let _ = tokio::signal::ctrl_c().await; },
//! ).await?;
//! println!("{} rows inserted", summary.inserted);
//! # Ok(()) }
//! ```

pub mod batch;
mod commit;
pub mod config;
pub mod consume;
pub mod decode;
pub mod dlq;
pub mod error;
#[cfg(test)]
mod fakes;
mod interrupt;
pub mod observe;
pub mod originals;
pub mod partitions;
mod pipeline;
pub mod replay;
pub mod retention;
mod retry;
pub mod sink;
pub mod watchdog;
pub mod write;

pub use config::SinkConfig;
pub use error::{Error, Result};
pub use sink::{run, Summary};
