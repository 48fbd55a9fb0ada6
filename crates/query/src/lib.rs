//! Typed reads of the audit log and the HTTP API that serves them.
//!
//! - [`filter`]: the typed [`Filter`] parsed from request parameters (errors name them).
//! - [`sql`]: SQL text with every user value as a ClickHouse server-side parameter.
//! - [`cursor`]: opaque, signed keyset cursors on `(time, event_id)`.
//! - [`reader`]: list pages, one event, counts and the export stream; every read is scoped to
//!   one workspace and to its current plan's retention.
//! - [`tokens`]: hashed workspace tokens.
//! - [`api`]: the axum application (`auditlog serve`).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let ch = auditlog_store::ClickHouseConfig::default();
//! let state = auditlog_query::api::AppState::new(&auditlog_query::ApiConfig::default(), ch.client());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // The peer address is what failed authentications are limited by.
//! let app = auditlog_query::api::app(state)
//!     .into_make_service_with_connect_info::<std::net::SocketAddr>();
//! axum::serve(listener, app).await
//! # }
//! ```

pub mod api;
pub mod config;
pub mod cursor;
pub mod error;
pub mod filter;
pub mod params;
pub mod reader;
pub mod sql;
pub mod tokens;

pub use config::{ApiConfig, Dedup};
pub use error::{Error, Result};
pub use filter::{Filter, Order};
pub use reader::Reader;
