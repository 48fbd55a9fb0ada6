//! The consumer: Kafka -> decode -> batch -> ClickHouse -> commit, with a dead-letter topic.

pub mod config;

pub use config::SinkConfig;
