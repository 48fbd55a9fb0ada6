//! C2SP tlog-cosignature/v1: a third-party known answer (produced with
//! github.com/transparency-dev/formats' `NewSignerForCosignatureV1`), round trips, refusals.

use auditlog_tlog::cosignature::{cosign, message, verify};
use auditlog_tlog::{Error, KeyKind, Note, Signature, Signer, Verifier};

const WIT_SKEY: &str =
    "PRIVATE+KEY+witness.example.com/vector+416f103d+BJEX3xv88eoQIKT4E+GkxZcXaJCYlQfi/GJ3NDFmZIW8";
const WIT_VKEY: &str =
    "witness.example.com/vector+416f103d+BK/QmJFVP3SKJOqAMhFxBQPtylo3sjwWibyFDAlZKK8B";
const LOG_SKEY: &str =
    "PRIVATE+KEY+example.com/vector-log+4516a1da+ARnX7cNOLM36CVoVFnmyY1Yp3SE+vpow5cbV4Sw8rjRE";
const LOG_VKEY: &str =
    "example.com/vector-log+4516a1da+ARGkVJ4QEa2MOOLGBO6i7NVSJ1FQ97tIX+w+Ku0RZ6Em";
const BODY: &str = "example.com/vector-log\n1234\nSBNJTRN+FjG7owHVrKtue7eqdM4RhdRWVl71HXN2d7I=\n";
const LOG_LINE: &str = "— example.com/vector-log RRah2qlLrSlk6J8DA1HmNewppUM15Quhs5cAIb1KjBsV3otVirJTW8AFVsQtJkTW1Zny7GuoAxZpI6bUPcpM68QOIgE=";
const WIT_LINE: &str = "— witness.example.com/vector QW8QPQAAAABqwLUbDdj7sDNRIVjmjYgqFI6y4UJhPg/UAA8J8wAdqSd3q4PedRhkgXA4xFN/Jg5uWn7ZkBA+H/UHQs5d9hITdXmQAA==";
const TIME: u64 = 1_791_014_171;

#[test]
fn third_party_vector_is_reproduced_and_verifies() {
    let w = Signer::from_private_key(WIT_SKEY).unwrap();
    assert_eq!(w.kind(), KeyKind::Cosignature);
    assert_eq!(w.verifier().to_string(), WIT_VKEY);
    let sig = cosign(&w, BODY, TIME).unwrap();
    assert_eq!(sig.to_line(), WIT_LINE);
    let v = Verifier::parse(WIT_VKEY).unwrap();
    assert_eq!(
        verify(&v, BODY, &Signature::parse_line(WIT_LINE).unwrap()).unwrap(),
        TIME
    );
    // The log's signature of the same body, and the whole cosigned note.
    let log = Signer::from_private_key(LOG_SKEY).unwrap();
    assert_eq!(log.verifier().to_string(), LOG_VKEY);
    assert_eq!(log.sign_note(BODY).unwrap().to_line(), LOG_LINE);
    let note = Note::parse(&format!("{BODY}\n{LOG_LINE}\n{WIT_LINE}\n")).unwrap();
    assert!(note.verified_by(&Verifier::parse(LOG_VKEY).unwrap()));
    // A cosignature is never a note signature.
    assert!(!note.verified_by(&v));
}

#[test]
fn the_message_is_the_c2sp_one() {
    assert_eq!(
        message("o\n1\nAAAA\n", 7),
        b"cosignature/v1\ntime 7\no\n1\nAAAA\n".to_vec()
    );
}

#[test]
fn round_trip_and_refusals() {
    let w = Signer::generate("witness.example/w1", KeyKind::Cosignature).unwrap();
    let v = w.verifier();
    let sig = cosign(&w, BODY, 1_700_000_000).unwrap();
    assert_eq!(sig.bytes.len(), 72);
    assert_eq!(&sig.bytes[..8], &1_700_000_000u64.to_be_bytes());
    let parsed = Signature::parse_line(&sig.to_line()).unwrap();
    assert_eq!(verify(&v, BODY, &parsed).unwrap(), 1_700_000_000);

    let refused = |v: &Verifier, body: &str, s: &Signature| {
        assert!(matches!(verify(v, body, s), Err(Error::Signature(_))));
    };
    // Another body, another time, another key (same name), a note key, bad lengths.
    refused(&v, &BODY.replace("1234", "1235"), &sig);
    let mut later = sig.clone();
    later.bytes[..8].copy_from_slice(&1_700_000_001u64.to_be_bytes());
    refused(&v, BODY, &later);
    let other = Signer::generate("witness.example/w1", KeyKind::Cosignature).unwrap();
    refused(&other.verifier(), BODY, &sig);
    let mut renamed = sig.clone();
    renamed.key_id = other.key_id();
    refused(&other.verifier(), BODY, &renamed);
    let mut short = sig.clone();
    short.bytes.truncate(71);
    refused(&v, BODY, &short);
    let mut flipped = sig.clone();
    flipped.bytes[40] ^= 1;
    refused(&v, BODY, &flipped);
    let log = Signer::generate("witness.example/w1", KeyKind::Note).unwrap();
    assert!(matches!(cosign(&log, BODY, 1), Err(Error::Signature(_))));
    refused(&log.verifier(), BODY, &sig);
}
