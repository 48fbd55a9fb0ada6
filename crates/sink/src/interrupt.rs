//! Interrupts: what tells a retry loop to give up. Each interrupt is raised (and lowered) only by
//! its owner, the one that has the reason: the rebalance callback for a revocation
//! ([`crate::consume::SinkContext`]), the pipeline at shutdown. The retry loops only look
//! ([`Interrupts`]).

use tokio::sync::watch;

/// One interrupt, held by its owner (not `Clone`: whoever holds it is the one who raises it).
#[derive(Debug)]
pub struct Interrupt(watch::Sender<bool>);

impl Default for Interrupt {
    fn default() -> Self {
        Self(watch::Sender::new(false))
    }
}

impl Interrupt {
    /// Asks every retry loop watching this interrupt to give up.
    pub fn raise(&self) {
        self.0.send_replace(true);
    }

    /// The reason is over (the revocation completed): retries go on again.
    pub fn lower(&self) {
        self.0.send_replace(false);
    }

    /// A view for the retry loops.
    pub fn watch(&self) -> Interrupts {
        Interrupts(vec![self.0.subscribe()])
    }
}

/// What a retry loop looks at: raised while any interrupt it watches is raised.
#[derive(Debug, Clone, Default)]
pub struct Interrupts(Vec<watch::Receiver<bool>>);

impl Interrupts {
    /// Also watches `other`.
    #[must_use]
    pub fn and(mut self, other: &Interrupt) -> Self {
        self.0.push(other.0.subscribe());
        self
    }

    /// Whether any watched interrupt is raised now.
    pub fn raised(&self) -> bool {
        self.0.iter().any(|r| *r.borrow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_while_any_owner_raises_it() {
        let (revoking, stopping) = (Interrupt::default(), Interrupt::default());
        let seen = revoking.watch().and(&stopping);
        assert!(!seen.raised());
        revoking.raise();
        assert!(seen.raised());
        revoking.lower();
        assert!(!seen.raised());
        stopping.raise();
        assert!(seen.raised());
    }
}
