//! One module per subcommand.

pub mod config;
pub mod consume;
pub mod dlq;
pub mod emit;
pub mod keygen;
pub mod migrate;
pub mod plan;
pub mod relay;
pub mod sequencer;
pub mod serve;
pub mod stream;
pub mod stream_worker;
pub mod token;
pub mod verify;
pub mod witness;
