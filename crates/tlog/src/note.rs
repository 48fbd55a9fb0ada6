//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519, in the key formats of Go's
//! `golang.org/x/mod/sumdb/note` (so `note`-based tools read our keys and notes):
//!
//! - verifier key: `<name>+<hex key id>+<base64(alg || 32-byte public key)>`
//! - private key: `PRIVATE+KEY+<name>+<hex key id>+<base64(alg || 32-byte seed)>`
//! - key id: the first 4 bytes of `SHA-256(name || 0x0A || alg || public key)`
//! - alg: `0x01` for a log's note key ([`KeyKind::Note`]), `0x04` for a witness's
//!   tlog-cosignature/v1 key ([`KeyKind::Cosignature`], see [`crate::cosignature`]).
//! - a note: text (ending in `\n`), a blank line, then signature lines
//!   `— <name> <base64(key id || signature)>` (U+2014 EM DASH).

use crate::Result;

/// What a key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A log's checkpoint signing key (signature type 0x01, Ed25519 over the note text).
    Note,
    /// A witness's cosigning key (signature type 0x04, C2SP tlog-cosignature/v1).
    Cosignature,
}

/// A private key with its name.
pub struct Signer {
    name: String,
    kind: KeyKind,
    key_id: [u8; 4],
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A new random key. [`crate::Error::Malformed`] for a name that is empty or has `+`,
    /// whitespace or a control character.
    pub fn generate(name: &str, kind: KeyKind) -> Result<Signer> {
        todo!("{name}{kind:?}")
    }
    /// From the private key text (`PRIVATE+KEY+...`), checking its key id.
    pub fn from_private_key(text: &str) -> Result<Signer> {
        todo!("{text}")
    }
    /// The private key text (`PRIVATE+KEY+...`), for a key file.
    pub fn private_key(&self) -> String {
        todo!("{:?}", self.key.to_bytes())
    }
    /// The matching public key.
    pub fn verifier(&self) -> Verifier {
        todo!()
    }
    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }
    /// The key id.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }
    /// A [`KeyKind::Note`] signature over `text` (a note's text, ending in `\n`).
    /// [`crate::Error::Signature`] for a cosignature key.
    pub fn sign_note(&self, text: &str) -> Result<Signature> {
        todo!("{text}")
    }
    /// Sign raw bytes with the Ed25519 key (the cosignature module builds its message).
    pub(crate) fn sign_raw(&self, msg: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.key.sign(msg).to_bytes()
    }
}

/// A public key with its name (parsed from / written as the verifier key text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    kind: KeyKind,
    key_id: [u8; 4],
    key: ed25519_dalek::VerifyingKey,
}

impl Verifier {
    /// From `<name>+<hex id>+<base64(alg || key)>`; checks the id, knows alg 0x01 and 0x04.
    pub fn parse(text: &str) -> Result<Verifier> {
        todo!("{text}")
    }
    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }
    /// The key id.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }
    /// Whether `sig` is this key's valid [`KeyKind::Note`] signature over `text`.
    pub fn verify_note(&self, text: &str, sig: &Signature) -> bool {
        todo!("{text}{sig:?}{:?}", self.key)
    }
    /// Verify raw bytes (the cosignature module builds its message).
    pub(crate) fn verify_raw(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        self.key
            .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
            .is_ok()
    }
}

impl std::fmt::Display for Verifier {
    /// The verifier key text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _ = f;
        todo!()
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The signer's name.
    pub name: String,
    /// The key id.
    pub key_id: [u8; 4],
    /// What follows the key id: 64 bytes for a note signature, 8 (timestamp) + 64 for a
    /// cosignature.
    pub bytes: Vec<u8>,
}

impl Signature {
    /// The line, without its line break: `— <name> <base64(key id || bytes)>`.
    pub fn to_line(&self) -> String {
        todo!()
    }
    /// From one signature line (with or without its line break).
    pub fn parse_line(line: &str) -> Result<Signature> {
        todo!("{line}")
    }
}

/// A signed note: its text and its signature lines (none verified yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The text, ending in `\n` (for a checkpoint: its body).
    pub text: String,
    /// The signatures, in the order written.
    pub signatures: Vec<Signature>,
}

impl Note {
    /// From the note's text form. [`crate::Error::Malformed`] for a note without a blank line
    /// before the signatures, a line that is not a signature, a text over 1 MiB.
    pub fn parse(note: &str) -> Result<Note> {
        todo!("{note}")
    }
    /// The first signature by `v` (same name and key id) that verifies as a note signature.
    pub fn verified_by(&self, v: &Verifier) -> bool {
        todo!("{v:?}")
    }
}

impl std::fmt::Display for Note {
    /// The note's text form: text, blank line, one line per signature.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _ = f;
        todo!()
    }
}
