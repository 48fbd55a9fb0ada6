//! C2SP tlog-cosignature/v1 (<https://c2sp.org/tlog-cosignature>): a witness signs
//! `cosignature/v1\ntime <unix seconds>\n` followed by the checkpoint's body with its
//! [`KeyKind::Cosignature`](crate::KeyKind) key; the signature line carries
//! `key id || timestamp (8 bytes, big-endian) || Ed25519 signature`.

use crate::note::{Signature, Signer, Verifier};
use crate::Result;

/// `signer`'s cosignature of the checkpoint `body` (the note text) at `time` (unix seconds).
/// [`crate::Error::Signature`] for a key that is not a cosignature key.
pub fn cosign(signer: &Signer, body: &str, time: u64) -> Result<Signature> {
    todo!("{signer:?}{body}{time}")
}

/// The time (unix seconds) of `sig` when it is `v`'s valid cosignature of `body`.
/// [`crate::Error::Signature`] says why not (other key, bad length, does not verify).
pub fn verify(v: &Verifier, body: &str, sig: &Signature) -> Result<u64> {
    todo!("{v:?}{body}{sig:?}")
}
