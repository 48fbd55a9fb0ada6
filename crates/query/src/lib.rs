//! Typed reads of the audit log and the HTTP API that serves them.
//!
//! - [`filter`]: the typed [`Filter`] parsed from request parameters (errors name them).
//! - [`sql`]: SQL text with every user value as a ClickHouse server-side parameter.
//! - [`cursor`]: opaque, signed keyset cursors on `(time, event_id)`.
//! - [`reader`]: list pages, one event, counts and the export stream; every read is scoped to
//!   one workspace and to its current plan's retention.
//! - [`feed`]: the feed, events in the order they became visible, read by position
//!   (`GET /v1/feed` and the stream worker), and its change [`feed::Notifier`].
//! - [`tokens`]: hashed workspace tokens.
//! - [`api`]: the axum application and the server with its connection limits
//!   (`auditlog serve`).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use auditlog_query::api::{app, serve, AppState};
//! let cfg = auditlog_query::ApiConfig::default();
//! let ch = auditlog_store::ClickHouseConfig::default();
//! // The process's one metrics recorder (the binary's job), rendering `/metrics`.
//! let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
//!     .install_recorder()
//!     .expect("no other recorder installed");
//! let listener = tokio::net::TcpListener::bind(&cfg.listen).await?;
//! let limits = serve::Limits::from_config(&cfg);
//! let state = AppState::new(&cfg, ch.client(), prometheus);
//! serve::serve(listener, app(state), limits, std::future::pending()).await;
//! // serve() hands handlers the peer address (failed authentications are limited by it).
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod config;
pub mod cursor;
pub mod error;
pub mod feed;
pub mod filter;
pub mod params;
pub mod reader;
pub mod sql;
pub mod tokens;

pub use config::{ApiConfig, Dedup};
pub use error::{Error, Result};
pub use feed::{FeedItem, FeedPage, Notifier};
pub use filter::{Filter, Order};
pub use reader::Reader;
