//! The dashboard assets.
