//! Streams: a workspace's push destinations and everything the stream worker and the admin
//! API share about them: the model ([`model`]), stored in ClickHouse.

pub mod model;

pub use model::{
    CursorRecord, Desired, Destination, SigningSecret, State, Stream, StreamSpec, StreamStatus,
};
