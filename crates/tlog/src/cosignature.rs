//! C2SP tlog-cosignature/v1 (<https://c2sp.org/tlog-cosignature>): a witness signs
//! `cosignature/v1\ntime <unix seconds>\n` followed by the checkpoint's body with its
//! [`KeyKind::Cosignature`](crate::KeyKind) key; the signature line carries
//! `key id || timestamp (8 bytes, big-endian) || Ed25519 signature`.

use crate::note::KeyKind;
use crate::note::{Signature, Signer, Verifier};
use crate::{Error, Result};

/// The signed message: `cosignature/v1\ntime <time>\n` then the checkpoint body.
pub fn message(body: &str, time: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{body}").into_bytes()
}

/// `signer`'s cosignature of the checkpoint `body` (the note text) at `time` (unix seconds).
/// [`crate::Error::Signature`] for a key that is not a cosignature key.
pub fn cosign(signer: &Signer, body: &str, time: u64) -> Result<Signature> {
    if signer.kind() != KeyKind::Cosignature {
        return Err(Error::Signature(format!(
            "key {} is a note key, not a cosignature key",
            signer.name()
        )));
    }
    let mut bytes = time.to_be_bytes().to_vec();
    bytes.extend_from_slice(&signer.sign_raw(&message(body, time)));
    Ok(signer.signature(bytes))
}

/// The time (unix seconds) of `sig` when it is `v`'s valid cosignature of `body`.
/// [`crate::Error::Signature`] says why not (other key, bad length, does not verify).
pub fn verify(v: &Verifier, body: &str, sig: &Signature) -> Result<u64> {
    let refuse = |why: String| Err(Error::Signature(why));
    if v.kind() != KeyKind::Cosignature {
        return refuse(format!("key {} is not a cosignature key", v.name()));
    }
    if !v.names(sig) {
        return refuse(format!(
            "signature by {}+{} is not by key {}+{}",
            sig.name,
            hex::encode(sig.key_id),
            v.name(),
            hex::encode(v.key_id())
        ));
    }
    let Ok(bytes) = <[u8; 72]>::try_from(sig.bytes.as_slice()) else {
        return refuse(format!(
            "cosignature has {} bytes, not 8 + 64",
            sig.bytes.len()
        ));
    };
    let (time, ed) = bytes.split_at(8);
    let time = u64::from_be_bytes(time.try_into().unwrap_or_default());
    let ed: [u8; 64] = ed.try_into().unwrap_or([0; 64]);
    if !v.verify_raw(&message(body, time), &ed) {
        return refuse(format!("cosignature by {} does not verify", v.name()));
    }
    Ok(time)
}
