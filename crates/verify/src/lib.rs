//! `auditlog verify` (docs/verification.md).
