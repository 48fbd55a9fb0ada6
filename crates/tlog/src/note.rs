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

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::{Error, Result};

/// The longest note [`Note::parse`] reads (1 MiB).
pub const MAX_NOTE_BYTES: usize = 1 << 20;
/// The most signature lines a note may carry (Go's limit).
pub const MAX_SIGNATURES: usize = 100;
/// What starts a signature line: U+2014 EM DASH and a space.
const SIG_PREFIX: &str = "\u{2014} ";

fn malformed(what: &'static str, why: impl Into<String>) -> Error {
    Error::Malformed {
        what,
        why: why.into(),
    }
}

/// What a key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A log's checkpoint signing key (signature type 0x01, Ed25519 over the note text).
    Note,
    /// A witness's cosigning key (signature type 0x04, C2SP tlog-cosignature/v1).
    Cosignature,
}

impl KeyKind {
    /// The algorithm byte of the key text.
    pub fn alg(self) -> u8 {
        match self {
            KeyKind::Note => 0x01,
            KeyKind::Cosignature => 0x04,
        }
    }
    fn from_alg(alg: u8) -> Result<KeyKind> {
        match alg {
            0x01 => Ok(KeyKind::Note),
            0x04 => Ok(KeyKind::Cosignature),
            other => Err(malformed(
                "key",
                format!("unknown signature algorithm 0x{other:02x} (known: 0x01, 0x04)"),
            )),
        }
    }
}

/// A key name: non-empty, no `+`, no whitespace, no control character.
fn check_name(what: &'static str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(malformed(what, "empty key name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '+' || c.is_whitespace() || c.is_control())
    {
        return Err(malformed(
            what,
            format!("key name {name:?} has {c:?} (no '+', whitespace or control characters)"),
        ));
    }
    Ok(())
}

/// The key id: the first 4 bytes of `SHA-256(name || 0x0A || alg || public key)`.
pub fn key_id(name: &str, kind: KeyKind, public_key: &[u8; 32]) -> [u8; 4] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0a, kind.alg()]);
    h.update(public_key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// `<hex id>+<base64(alg || key)>` after the name, checked against the name.
fn parse_id_and_key(
    what: &'static str,
    name: &str,
    id_hex: &str,
    key_b64: &str,
) -> Result<(KeyKind, [u8; 4], [u8; 32])> {
    check_name(what, name)?;
    let id = parse_key_id(what, id_hex)?;
    let raw = B64
        .decode(key_b64)
        .map_err(|e| malformed(what, format!("key is not base64: {e}")))?;
    let Some((&alg, key)) = raw.split_first() else {
        return Err(malformed(what, "empty key"));
    };
    let kind = KeyKind::from_alg(alg)?;
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| malformed(what, format!("key has {} bytes, not 32", key.len())))?;
    Ok((kind, id, key))
}

fn parse_key_id(what: &'static str, id_hex: &str) -> Result<[u8; 4]> {
    let bad = || malformed(what, format!("key id {id_hex:?} is not 8 hex digits"));
    if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut id = [0u8; 4];
    hex::decode_to_slice(id_hex, &mut id).map_err(|_| bad())?;
    Ok(id)
}

fn check_key_id(what: &'static str, given: [u8; 4], computed: [u8; 4]) -> Result<()> {
    if given != computed {
        return Err(malformed(
            what,
            format!(
                "key id {} does not match the name and key ({})",
                hex::encode(given),
                hex::encode(computed)
            ),
        ));
    }
    Ok(())
}

/// A note text: ends in `\n`, no control character other than `\n`.
fn check_text(text: &str) -> Result<()> {
    if !text.ends_with('\n') {
        return Err(malformed("note", "text does not end in a line break"));
    }
    if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\n') {
        return Err(malformed(
            "note",
            format!("text has control character {c:?}"),
        ));
    }
    Ok(())
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
        check_name("key", name)?;
        Ok(Signer::from_seed(name, kind, rand::random::<[u8; 32]>()))
    }
    fn from_seed(name: &str, kind: KeyKind, seed: [u8; 32]) -> Signer {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        Signer {
            name: name.to_owned(),
            kind,
            key_id: key_id(name, kind, key.verifying_key().as_bytes()),
            key,
        }
    }
    /// From the private key text (`PRIVATE+KEY+...`), checking its key id.
    pub fn from_private_key(text: &str) -> Result<Signer> {
        const WHAT: &str = "private key";
        let text = text.trim_end_matches(['\n', '\r']);
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| malformed(WHAT, "does not start with PRIVATE+KEY+"))?;
        // The base64 key may itself hold '+': split off the name and id only.
        let parts: Vec<&str> = rest.splitn(3, '+').collect();
        let [name, id_hex, key_b64] = parts[..] else {
            return Err(malformed(WHAT, "not PRIVATE+KEY+<name>+<id>+<key>"));
        };
        let (kind, id, seed) = parse_id_and_key(WHAT, name, id_hex, key_b64)?;
        let signer = Signer::from_seed(name, kind, seed);
        check_key_id(WHAT, id, signer.key_id)?;
        Ok(signer)
    }
    /// The private key text (`PRIVATE+KEY+...`), for a key file.
    pub fn private_key(&self) -> String {
        let mut raw = vec![self.kind.alg()];
        raw.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            B64.encode(raw)
        )
    }
    /// The matching public key.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            kind: self.kind,
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
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
        if self.kind != KeyKind::Note {
            return Err(Error::Signature(format!(
                "key {} is a cosignature key, not a note key",
                self.name
            )));
        }
        check_text(text)?;
        Ok(self.signature(self.sign_raw(text.as_bytes()).to_vec()))
    }
    /// A signature line of this key carrying `bytes`.
    pub(crate) fn signature(&self, bytes: Vec<u8>) -> Signature {
        Signature {
            name: self.name.clone(),
            key_id: self.key_id,
            bytes,
        }
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
        const WHAT: &str = "verifier key";
        let text = text.trim_end_matches(['\n', '\r']);
        // The base64 key may itself hold '+': split off the name and id only.
        let parts: Vec<&str> = text.splitn(3, '+').collect();
        let [name, id_hex, key_b64] = parts[..] else {
            return Err(malformed(WHAT, "not <name>+<id>+<key>"));
        };
        let (kind, id, public) = parse_id_and_key(WHAT, name, id_hex, key_b64)?;
        check_key_id(WHAT, id, key_id(name, kind, &public))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public)
            .map_err(|e| malformed(WHAT, format!("not an Ed25519 public key: {e}")))?;
        Ok(Verifier {
            name: name.to_owned(),
            kind,
            key_id: id,
            key,
        })
    }
    /// Whether `sig` names this key (same name and key id).
    pub fn names(&self, sig: &Signature) -> bool {
        sig.name == self.name && sig.key_id == self.key_id
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
        let Ok(bytes) = <[u8; 64]>::try_from(sig.bytes.as_slice()) else {
            return false;
        };
        self.kind == KeyKind::Note && self.names(sig) && self.verify_raw(text.as_bytes(), &bytes)
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
        let mut raw = vec![self.kind.alg()];
        raw.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            B64.encode(raw)
        )
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
        let mut raw = self.key_id.to_vec();
        raw.extend_from_slice(&self.bytes);
        format!("{SIG_PREFIX}{} {}", self.name, B64.encode(raw))
    }
    /// From one signature line (with or without its line break).
    pub fn parse_line(line: &str) -> Result<Signature> {
        const WHAT: &str = "signature line";
        let line = line.strip_suffix('\n').unwrap_or(line);
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| malformed(WHAT, format!("{line:?} does not start with \"— \"")))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| malformed(WHAT, format!("{line:?} has no signature after the name")))?;
        check_name(WHAT, name)?;
        let raw = B64
            .decode(b64)
            .map_err(|e| malformed(WHAT, format!("signature of {name} is not base64: {e}")))?;
        if raw.len() < 5 {
            return Err(malformed(
                WHAT,
                format!("signature of {name} has {} bytes, too short", raw.len()),
            ));
        }
        Ok(Signature {
            name: name.to_owned(),
            key_id: [raw[0], raw[1], raw[2], raw[3]],
            bytes: raw[4..].to_vec(),
        })
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
        if note.len() > MAX_NOTE_BYTES {
            return Err(malformed(
                "note",
                format!("{} bytes, more than {MAX_NOTE_BYTES}", note.len()),
            ));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| malformed("note", "no blank line before the signatures"))?;
        let (text, sigs) = (&note[..=split], &note[split + 2..]);
        check_text(text)?;
        if sigs.is_empty() {
            return Err(malformed("note", "no signature lines"));
        }
        if !sigs.ends_with('\n') {
            return Err(malformed("note", "last signature line has no line break"));
        }
        let signatures = sigs[..sigs.len() - 1]
            .split('\n')
            .map(Signature::parse_line)
            .collect::<Result<Vec<_>>>()?;
        if signatures.len() > MAX_SIGNATURES {
            return Err(malformed(
                "note",
                format!(
                    "{} signatures, more than {MAX_SIGNATURES}",
                    signatures.len()
                ),
            ));
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }
    /// The first signature by `v` (same name and key id) that verifies as a note signature.
    pub fn verified_by(&self, v: &Verifier) -> bool {
        self.signatures
            .iter()
            .filter(|s| v.names(s))
            .any(|s| v.verify_note(&self.text, s))
    }
}

impl std::fmt::Display for Note {
    /// The note's text form: text, blank line, one line per signature.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.text)?;
        for s in &self.signatures {
            writeln!(f, "{}", s.to_line())?;
        }
        Ok(())
    }
}
