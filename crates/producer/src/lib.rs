//! Library for producing services: validate audit events and publish them to Kafka.

pub mod config;

pub use config::{KafkaConfig, ProducerConfig};
