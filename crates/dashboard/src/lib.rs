//! The dashboard: a single-page audit-log viewer, plain HTML/CSS/JS, embedded in the binary.
//!
//! [`router`] serves the page at `/` and its files under `/assets/`. The API binary merges it
//! into its own router, so one process serves both and the page calls the API on the same
//! origin (`/v1/...`) with the workspace token the user signs in with.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let app = axum::Router::new().merge(auditlog_dashboard::router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! Caching: `index.html` is `no-cache` (revalidated with its `ETag` on every load) and refers
//! to each asset as `/assets/<file>?v=<version>`, where the version is a hash of all assets.
//! A request carrying the current version is cached for a year (`immutable`); any other asset
//! request is `no-cache`. A new binary therefore never serves a stale script to a browser.

mod assets;
mod routes;

pub use assets::{asset_names, total_size, version};
pub use routes::router;
