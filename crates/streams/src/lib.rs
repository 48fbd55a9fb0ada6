//! Streams: a workspace's push destinations and everything the stream worker and the admin
//! API share about them:
//!
//! - [`model`]: what is configured and recorded ([`StreamSpec`], [`Stream`], [`CursorRecord`],
//!   [`StreamStatus`]);
//! - [`validate`]: checks of a configuration (errors name the field);
//! - [`store`]: [`StreamStore`], the tables of migration `0010_streams.sql`;
//! - [`signing`]: Standard Webhooks signatures (`webhook-signature`) and their verification;
//! - [`secret`]: ids, signing secrets and the redaction of credentials in responses.
//!
//! ```no_run
//! # async fn f(client: clickhouse::Client) -> auditlog_streams::Result<()> {
//! use auditlog_streams::{Destination, StreamSpec, StreamStore};
//! let store = StreamStore::new(client);
//! let spec = StreamSpec {
//!     workspace_id: "ws_1".into(),
//!     name: "siem".into(),
//!     destination: Destination::Webhook { url: "https://hooks.example.com/audit".into() },
//!     format: Default::default(),
//!     filter: Default::default(),
//! };
//! let stream = store.create(spec, auditlog_store::FeedStart::Now).await?;
//! println!("{} signs with {}", stream.stream_id, stream.secrets[0].secret);
//! # Ok(()) }
//! ```

pub mod error;
pub mod model;
pub mod secret;
pub mod signing;
pub mod store;
pub mod validate;

pub use auditlog_formats::Format;
pub use error::{Error, Result};
pub use model::{
    CursorRecord, Desired, Destination, SigningSecret, State, Stream, StreamSpec, StreamStatus,
};
pub use store::StreamStore;
