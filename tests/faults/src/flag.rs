//! A shared stop flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Set once to ask tasks to stop; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
