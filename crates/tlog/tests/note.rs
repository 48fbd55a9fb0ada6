//! Signed notes and keys: Go's `golang.org/x/mod/sumdb/note` known answers (the PeterNeumann
//! and EnochRoot keys and signatures of its tests), round trips, and refusals.

use auditlog_tlog::note::{key_id, MAX_SIGNATURES};
use auditlog_tlog::{Error, KeyKind, Note, Signature, Signer, Verifier};

const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn malformed(r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(e @ Error::Malformed { .. }) => e.to_string(),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn go_keys_parse_and_print_back() {
    let signer = Signer::from_private_key(PETER_SKEY).unwrap();
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.kind(), KeyKind::Note);
    assert_eq!(signer.key_id(), [0xc7, 0x4f, 0x20, 0xa3]);
    assert_eq!(signer.private_key(), PETER_SKEY);
    assert_eq!(signer.verifier().to_string(), PETER_VKEY);
    let v = Verifier::parse(PETER_VKEY).unwrap();
    assert_eq!(v, signer.verifier());
    assert_eq!(v.to_string(), PETER_VKEY);
    let enoch = Verifier::parse(ENOCH_VKEY).unwrap();
    assert_eq!(enoch.key_id(), [0xaf, 0x0c, 0xfe, 0x78]);
}

#[test]
fn go_note_signature_is_reproduced_byte_for_byte() {
    let signer = Signer::from_private_key(PETER_SKEY).unwrap();
    let sig = signer.sign_note(TEXT).unwrap();
    assert_eq!(format!("{}\n", sig.to_line()), PETER_SIG);
    let note = Note {
        text: TEXT.into(),
        signatures: vec![sig],
    };
    assert_eq!(note.to_string(), format!("{TEXT}\n{PETER_SIG}"));
}

#[test]
fn go_note_with_two_signatures_verifies_each() {
    let text = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let note = Note::parse(&text).unwrap();
    assert_eq!(note.text, TEXT);
    assert_eq!(note.signatures.len(), 2);
    assert_eq!(note.signatures[1].name, "EnochRoot");
    assert_eq!(note.signatures[1].key_id, [0xaf, 0x0c, 0xfe, 0x78]);
    assert_eq!(note.signatures[1].bytes.len(), 64);
    assert!(note.verified_by(&Verifier::parse(PETER_VKEY).unwrap()));
    assert!(note.verified_by(&Verifier::parse(ENOCH_VKEY).unwrap()));
    assert_eq!(note.to_string(), text);
}

#[test]
fn refused_signatures() {
    let peter = Verifier::parse(PETER_VKEY).unwrap();
    let enoch = Verifier::parse(ENOCH_VKEY).unwrap();
    // Another key's signature, a modified text.
    let only_enoch = Note::parse(&format!("{TEXT}\n{ENOCH_SIG}")).unwrap();
    assert!(!only_enoch.verified_by(&peter));
    let changed = Note::parse(&format!(
        "{}\n{PETER_SIG}",
        TEXT.replace("cryptography", "cryptographY")
    ))
    .unwrap();
    assert!(!changed.verified_by(&peter));
    // Peter's signature bytes under Enoch's name and id, or under a wrong key id.
    let mut sig = Signature::parse_line(PETER_SIG).unwrap();
    assert!(peter.verify_note(TEXT, &sig));
    sig.key_id = enoch.key_id();
    assert!(!peter.verify_note(TEXT, &sig));
    sig.name = "EnochRoot".into();
    assert!(!enoch.verify_note(TEXT, &sig));
    // A flipped signature bit, a short signature.
    let mut sig = Signature::parse_line(PETER_SIG).unwrap();
    sig.bytes[10] ^= 1;
    assert!(!peter.verify_note(TEXT, &sig));
    sig.bytes.truncate(63);
    assert!(!peter.verify_note(TEXT, &sig));
    // A cosignature key never verifies a note signature.
    let w = Signer::generate("w.example", KeyKind::Cosignature).unwrap();
    assert!(matches!(w.sign_note(TEXT), Err(Error::Signature(_))));
}

#[test]
fn go_malformed_notes_are_refused() {
    let bad = [
        TEXT.to_string(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{TEXT}\n{PETER_SIG}"),
        format!("{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
        format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES + 1)),
        format!("{TEXT}\n— PeterNeumann AAAA\n"),
        format!("{TEXT}\n— PeterNeumann not*base64\n"),
        format!("{TEXT}\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"),
        "x".repeat((1 << 20) + 1),
    ];
    for note in bad {
        let why = malformed(Note::parse(&note));
        assert!(why.starts_with("malformed "), "{why}");
    }
    assert!(Note::parse(&format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES))).is_ok());
    // The errors say what is wrong.
    assert!(malformed(Note::parse(TEXT)).contains("no blank line"));
    assert!(malformed(Note::parse(&format!("\x01{TEXT}\n{PETER_SIG}"))).contains("control"));
}

#[test]
fn go_mangled_keys_are_refused() {
    // Every proper substring and every one-byte change of the verifier key (Go's test).
    let b = PETER_VKEY.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if (i, j) != (0, b.len()) {
                let k = std::str::from_utf8(&b[i..j]).unwrap();
                assert!(Verifier::parse(k).is_err(), "{k}");
            }
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        let k = String::from_utf8(m).unwrap();
        assert!(Verifier::parse(&k).is_err(), "{k}");
    }
    // Wrong key length and unknown algorithm, each with its key id adjusted.
    let why = malformed(Verifier::parse(
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
    ));
    assert!(why.contains("bytes") || why.contains("base64"), "{why}");
    let why = malformed(Verifier::parse(
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ));
    assert!(why.contains("algorithm"), "{why}");
    let b = PETER_SKEY.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if (i, j) != (0, b.len()) {
                let k = std::str::from_utf8(&b[i..j]).unwrap();
                assert!(Signer::from_private_key(k).is_err(), "{k}");
            }
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        let k = String::from_utf8(m).unwrap();
        assert!(Signer::from_private_key(&k).is_err(), "{k}");
    }
    let why = malformed(Verifier::parse(
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ));
    assert!(why.contains("does not match"), "{why}");
}

#[test]
fn generated_keys_round_trip() {
    for kind in [KeyKind::Note, KeyKind::Cosignature] {
        let s = Signer::generate("log.example.com/ws-1", kind).unwrap();
        let again = Signer::from_private_key(&s.private_key()).unwrap();
        assert_eq!(again.verifier(), s.verifier());
        let v = Verifier::parse(&s.verifier().to_string()).unwrap();
        assert_eq!(v.kind(), kind);
        assert_eq!(v.key_id(), s.key_id());
        assert_eq!(v.name(), "log.example.com/ws-1");
        let alg = if kind == KeyKind::Note { "+AQ" } else { "+BA" };
        assert!(
            v.to_string().contains(alg) || v.to_string().contains(&alg[..2]),
            "{v}"
        );
        assert!(s
            .private_key()
            .starts_with("PRIVATE+KEY+log.example.com/ws-1+"));
    }
    let s = Signer::generate("n", KeyKind::Note).unwrap();
    let sig = s.sign_note("hello\n").unwrap();
    let note = Note {
        text: "hello\n".into(),
        signatures: vec![sig.clone()],
    };
    let parsed = Note::parse(&note.to_string()).unwrap();
    assert_eq!(parsed, note);
    assert!(parsed.verified_by(&s.verifier()));
    assert_eq!(Signature::parse_line(&sig.to_line()).unwrap(), sig);
    // Another generated key of the same name: a different key id, so no match.
    let other = Signer::generate("n", KeyKind::Note).unwrap();
    assert_ne!(other.key_id(), s.key_id());
    assert!(!parsed.verified_by(&other.verifier()));
    // The text must end in a line break.
    assert!(matches!(s.sign_note("hello"), Err(Error::Malformed { .. })));
}

#[test]
fn bad_key_names_are_refused() {
    for name in ["", "a+b", "a b", "a\tb", "a\u{7}"] {
        assert!(
            matches!(
                Signer::generate(name, KeyKind::Note),
                Err(Error::Malformed { .. })
            ),
            "{name:?}"
        );
    }
}

#[test]
fn key_id_is_sha256_of_name_newline_alg_key() {
    use sha2::Digest as _;
    let v = Verifier::parse(PETER_VKEY).unwrap();
    let line = v.to_string();
    let b64 = line.rsplit('+').next().unwrap();
    let raw = base64_decode(b64);
    let public: [u8; 32] = raw[1..].try_into().unwrap();
    let mut input = b"PeterNeumann\n".to_vec();
    input.extend_from_slice(&raw);
    let d = sha2::Sha256::digest(&input);
    assert_eq!(&d[..4], &v.key_id());
    assert_eq!(key_id("PeterNeumann", KeyKind::Note, &public), v.key_id());
    assert_ne!(
        key_id("PeterNeumann", KeyKind::Cosignature, &public),
        v.key_id()
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
