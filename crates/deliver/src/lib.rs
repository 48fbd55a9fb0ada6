//! The stream worker (`auditlog stream-worker`): for every active stream it owns, it follows
//! the stream's feed position, renders events in the stream's format, hands batches to the
//! destination and saves the position only once the destination acknowledged them: at least
//! once, in order per workspace. docs/delivery.md states the guarantees.

pub mod destination;
pub mod http;

pub use destination::{Batch, Destination, Failure, Limits, Rendered};
