//! An event's payloads are evidence: the text given is the text decoded, byte for byte, on the
//! consumer's path (`decode`) and on `auditlog emit`'s (`decode_with_defaults`); and both
//! paths report another schema version with the same code.

use auditlog_event::{decode, decode_with_defaults, DecodeError};

/// Payloads whose exact text a JSON round trip through numbers or maps would change (one per
/// line of the shared fixture `crates/event/tests/exact-payloads.txt`).
static PAYLOADS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| include_str!("exact-payloads.txt").lines().collect());

fn line(request: &str, response: &str) -> String {
    format!(
        r#"{{"workspace_id":"ws_fidelity","event":"key.create","actor":{{"type":"user","id":"u_1","name":"Ada"}},"targets":[{{"type":"key","id":"key_1"}}],"description":"fidelity","request":{request},"response":{response}}}"#
    )
}

#[test]
fn payload_bytes_survive_both_decode_paths() {
    for (i, p) in PAYLOADS.iter().enumerate() {
        let other = PAYLOADS[(i + 1) % PAYLOADS.len()];
        let text = line(p, other);
        let filled = decode_with_defaults(text.as_bytes()).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(filled.request.as_json(), *p);
        assert_eq!(filled.response.as_json(), other);
        // The wire bytes carry the same text, and the consumer's decode keeps it.
        let wire = filled.to_json_bytes();
        let back = decode(&wire).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(back.request.as_json(), *p);
        assert_eq!(back.response.as_json(), other);
    }
}

#[test]
fn defaults_are_filled_only_when_absent() {
    let e = decode_with_defaults(line("null", "null").as_bytes()).unwrap();
    assert_eq!(e.event_id.get_version_num(), 7);
    assert_eq!(e.version, 1);
    // Leading whitespace and an explicit time are kept.
    let text = format!(
        "  \t{}",
        line("1", "2").replacen('{', r#"{"time":1764000000123,"#, 1)
    );
    let e = decode_with_defaults(text.as_bytes()).unwrap();
    assert_eq!(e.time.timestamp_millis(), 1_764_000_000_123);
    // A field given as `null` is wrong, not missing: it is not replaced.
    let text = line("1", "2").replacen('{', r#"{"event_id":null,"#, 1);
    let err = decode_with_defaults(text.as_bytes()).unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("invalid_field", Some("event_id"))
    );
    // Not an object, or not JSON: the same reasons as without defaults.
    for bad in ["[1,2,3]", "{", "{}{}", "\"x\""] {
        let a = decode_with_defaults(bad.as_bytes()).unwrap_err();
        let b = decode(bad.as_bytes()).unwrap_err();
        assert_eq!(a.code(), b.code(), "{bad}: {a} / {b}");
    }
    let err = decode_with_defaults(b"{}").unwrap_err();
    assert_eq!(err.code(), "invalid_field", "{err}");
}

#[test]
fn another_schema_version_is_unknown_version_on_both_paths() {
    for version in ["2", "0", "70000", "\"1\"", "1.5"] {
        let text = line("null", "null").replacen('{', &format!(r#"{{"version":{version},"#), 1);
        let with_id = text.replacen(
            '{',
            r#"{"event_id":"019ad9a8-8a3e-7c55-9d63-7b8a3c2a1f00","time":1764000000123,"#,
            1,
        );
        for (path, err) in [
            ("decode", decode(with_id.as_bytes()).unwrap_err()),
            (
                "decode_with_defaults",
                decode_with_defaults(text.as_bytes()).unwrap_err(),
            ),
        ] {
            assert_eq!(err.code(), "unknown_version", "{path} {version}: {err}");
            assert_eq!(err.field(), Some("version"), "{path} {version}");
            assert!(
                matches!(err, DecodeError::UnknownVersion(_)),
                "{path} {version}: {err:?}"
            );
        }
    }
}
