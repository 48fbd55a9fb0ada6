//! The leaf: RFC 8785 examples, key order and whitespace ignored, the raw-bytes fallback, and
//! the leaf data's exact bytes (frozen known answer).

use auditlog_tlog::leaf::{canonical_json, content_sha256, LeafData};
use auditlog_tlog::Error;
use sha2::Digest as _;

fn jcs(text: &str) -> String {
    String::from_utf8(canonical_json(text.as_bytes()).unwrap()).unwrap()
}

/// RFC 8785 Appendix B: IEEE 754 bits and their JCS text.
const NUMBERS: [(u64, &str); 24] = [
    (0x0000000000000000, "0"),
    (0x8000000000000000, "0"),
    (0x0000000000000001, "5e-324"),
    (0x8000000000000001, "-5e-324"),
    (0x7fefffffffffffff, "1.7976931348623157e+308"),
    (0xffefffffffffffff, "-1.7976931348623157e+308"),
    (0x4340000000000000, "9007199254740992"),
    (0xc340000000000000, "-9007199254740992"),
    (0x4430000000000000, "295147905179352830000"),
    (0x44b52d02c7e14af5, "9.999999999999997e+22"),
    (0x44b52d02c7e14af6, "1e+23"),
    (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
    (0x444b1ae4d6e2ef4e, "999999999999999700000"),
    (0x444b1ae4d6e2ef4f, "999999999999999900000"),
    (0x444b1ae4d6e2ef50, "1e+21"),
    (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
    (0x3eb0c6f7a0b5ed8d, "0.000001"),
    (0x41b3de4355555553, "333333333.3333332"),
    (0x41b3de4355555554, "333333333.33333325"),
    (0x41b3de4355555555, "333333333.3333333"),
    (0x41b3de4355555556, "333333333.3333334"),
    (0x41b3de4355555557, "333333333.33333343"),
    (0xbecbf647612f3696, "-0.0000033333333333333333"),
    (0x43143ff3c1cb0959, "1424953923781206.2"),
];

#[test]
fn rfc8785_numbers() {
    for (bits, want) in NUMBERS {
        let f = f64::from_bits(bits);
        // Rust writes the shortest text that reads back as the same double.
        let text = format!("[{f:e}]");
        assert_eq!(jcs(&text), format!("[{want}]"), "{bits:016x} as {text}");
    }
}

#[test]
fn rfc8785_section_3_2_2_sample() {
    let input = r#"{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"#;
    let want = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
    assert_eq!(jcs(input), want);
}

#[test]
fn rfc8785_section_3_2_3_sorting() {
    let input = r#"{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"#;
    let want = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
    assert_eq!(jcs(input), want);
}

#[test]
fn content_hash_ignores_key_order_and_whitespace() {
    let a = br#"{"event_id":"x","payload":{"b":[1,2.0,{"z":null,"a":true}],"a":"\u00e9"},"n":10}"#;
    let b = b"{ \"n\" : 1e1,\n \"payload\": {\"a\":\"\xc3\xa9\", \"b\": [1, 2, {\"a\": true, \"z\": null}]},\t\"event_id\":\"x\" }";
    assert_eq!(content_sha256(a), content_sha256(b));
    let c = br#"{"event_id":"x","payload":{"b":[2,1,{"z":null,"a":true}],"a":"\u00e9"},"n":10}"#;
    assert_ne!(content_sha256(a), content_sha256(c), "array order matters");
    // It is SHA-256 of the canonical text.
    let canon = canonical_json(a).unwrap();
    assert_eq!(
        content_sha256(a),
        <[u8; 32]>::from(sha2::Sha256::digest(&canon))
    );
}

#[test]
fn what_jcs_cannot_write_is_hashed_as_given() {
    for raw in [
        &br#"{"big":1e400}"#[..],
        br#"{"neg":-1e400}"#,
        b"not json",
        br#"{"a":1"#,
        b"\xff\xfe",
        b"",
    ] {
        assert!(
            matches!(canonical_json(raw), Err(Error::Canonical(_))),
            "{raw:?}"
        );
        let want: [u8; 32] = sha2::Sha256::digest(raw).into();
        assert_eq!(content_sha256(raw), want, "{raw:?}");
    }
    // Whitespace matters then: the bytes are the export's text, byte for byte.
    assert_ne!(
        content_sha256(br#"{"big":1e400}"#),
        content_sha256(br#"{"big": 1e400}"#)
    );
}

/// Frozen: the leaf data bytes and the leaf hash of a fixed event.
#[test]
fn leaf_data_known_answer() {
    let event = br#"{"event_id":"0192f3a4-5b6c-7d8e-9f01-23456789abcd","time":"2026-01-01T00:00:00.123Z","action":"login","payload":{"ok":true}}"#;
    let content = content_sha256(event);
    assert_eq!(hex::encode(content), CONTENT);
    let leaf = LeafData {
        event_id: "0192f3a4-5b6c-7d8e-9f01-23456789abcd".into(),
        time_ms: 1_767_225_600_123,
        content_sha256: content,
    };
    let text = String::from_utf8(leaf.canonical()).unwrap();
    assert_eq!(
        text,
        format!("{{\"content_sha256\":\"{CONTENT}\",\"event_id\":\"0192f3a4-5b6c-7d8e-9f01-23456789abcd\",\"time_ms\":1767225600123,\"v\":1}}")
    );
    assert_eq!(hex::encode(leaf.leaf_hash()), LEAF_HASH);
    assert_eq!(
        leaf.leaf_hash(),
        auditlog_tlog::merkle::leaf_hash(text.as_bytes())
    );
}

// Independently computed (Python: json.dumps(sort_keys=True, separators=(",", ":")), hashlib).
const CONTENT: &str = "26bcd3be4ff5673814e3fa25138903caf178223cca6d44cdb983de3399a51b23";
const LEAF_HASH: &str = "d99ec397bc10734848e7e1d0252115d312c46c9486b8feccee3fe0f75e19bdaa";

#[test]
fn leaf_data_escapes_like_jcs() {
    let leaf = LeafData {
        event_id: "a\"b\\c\u{1}".into(),
        time_ms: -5,
        content_sha256: [0; 32],
    };
    let text = String::from_utf8(leaf.canonical()).unwrap();
    assert!(text.contains(r#""event_id":"a\"b\\c\u0001""#), "{text}");
    assert!(text.contains(r#""time_ms":-5,"#), "{text}");
}
