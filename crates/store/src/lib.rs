//! ClickHouse access shared by the consumer, the query API and the CLI:
//! connection settings, embedded schema migrations and workspace plans.
//!
//! ```no_run
//! # async fn f() -> auditlog_store::Result<()> {
//! let cfg = auditlog_store::ClickHouseConfig::default();
//! auditlog_store::migrate(&cfg).await?;
//! # Ok(()) }
//! ```

pub mod config;
pub mod error;
pub mod migrate;
pub mod plans;
pub mod tls;

pub use config::{ClickHouseConfig, Compression};
pub use error::{Error, Result};
pub use migrate::{migrate, MIGRATIONS};
pub use plans::{Plan, WorkspacePlan};
pub use tls::SetupError;
