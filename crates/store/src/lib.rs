//! ClickHouse access shared by the consumer, the query API and the CLI:
//! connection settings, embedded schema migrations, workspace plans, the `events` table's
//! rows and column lists ([`events`]), and the one classifier of ClickHouse errors
//! ([`error::classify`]).
//!
//! ```no_run
//! # async fn f() -> auditlog_store::Result<()> {
//! let cfg = auditlog_store::ClickHouseConfig::default();
//! auditlog_store::migrate(&cfg).await?;
//! # Ok(()) }
//! ```

pub mod config;
pub mod error;
pub mod events;
pub mod failover;
pub mod feed;
pub mod layout;
pub mod log;
pub mod migrate;
pub mod on_cluster;
pub mod plans;
pub mod tls;

pub use config::{ClickHouseConfig, Compression};
pub use error::{classify, Class, Error, Result};
pub use feed::{FeedPosition, FeedStart};
pub use layout::Layout;
pub use migrate::{migrate, MIGRATIONS};
pub use plans::{Plan, WorkspacePlan};
pub use tls::SetupError;
