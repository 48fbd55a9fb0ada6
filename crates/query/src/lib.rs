//! Typed reads of the audit log and the HTTP API that serves them.

pub mod config;

pub use config::ApiConfig;
