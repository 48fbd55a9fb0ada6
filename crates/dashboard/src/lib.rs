//! The dashboard: a single-page audit-log viewer, plain HTML/CSS/JS (ES modules, no build
//! step), embedded in the binary.
//!
//! [`router`] serves the page at `/` and its files under `/assets/`. The API binary merges it
//! into its own router, so one process serves both and the page calls the API on the same
//! origin (`/v1/...`) with the workspace token the user signs in with. The API passes the names
//! of its filter parameters; the page receives them with the event catalog in a small contract
//! embedded in `index.html` (`src/contract.rs`), so the scripts copy neither.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let filters = ["event", "actor_type", "actor_id", "since", "until", "q"];
//! let app = axum::Router::new().merge(auditlog_dashboard::router(&filters));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! Caching: `index.html` is `no-cache` (revalidated with its `ETag` on every load) and refers
//! to each asset as `/assets/<file>?v=<version>`, where the version is a hash of all assets;
//! the scripts import each other the same way (`./list.js?v=<version>`), so a page loads the
//! modules of one binary only. A request carrying the current version is cached for a year
//! (`immutable`); any other asset request is `no-cache`. A new binary therefore never serves a
//! stale script to a browser.

mod assets;
mod contract;
mod routes;

pub use assets::{asset_names, total_size, version};
pub use routes::router;
