//! The receiver's verification example of docs/streams.md (the fenced `python` block) is
//! run with `python3` against requests signed by `auditlog_streams::signing::sign`: it must
//! accept good signatures (also across a rotation) and refuse a tampered body, an old
//! timestamp and another secret. Needs `python3` (3.9 or later) on PATH.

use std::io::Write as _;
use std::process::{Command, Stdio};

use auditlog_streams::secret::new_signing_secret;
use auditlog_streams::signing::sign;
use auditlog_streams::SigningSecret;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

/// The one fenced `python` block of docs/streams.md.
fn python_block() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/streams.md");
    let doc = std::fs::read_to_string(path).expect("docs/streams.md");
    let blocks: Vec<&str> = doc.split("```python\n").skip(1).collect();
    assert_eq!(blocks.len(), 1, "docs/streams.md has one python block");
    let end = blocks[0].find("\n```").expect("the python block ends");
    blocks[0][..end].to_owned()
}

/// Runs the block's `verify_webhook` over `cases` (each `{secrets, headers, body, now}`);
/// returns what it answered for each.
fn run_python(cases: &[Value]) -> Vec<bool> {
    let script = format!(
        "{}\n\nimport json, sys\nout = []\nfor c in json.load(sys.stdin):\n    \
         out.append(verify_webhook(c['secrets'], c['headers'], base64.b64decode(c['body']), now=c['now']))\n\
         print(json.dumps(out))\n",
        python_block()
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 on PATH");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(cases).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON list of booleans")
}

fn case(secrets: &[&str], id: &str, ts: i64, signature: &str, body: &[u8], now: i64) -> Value {
    json!({
        "secrets": secrets,
        "headers": {"webhook-id": id, "webhook-timestamp": ts.to_string(), "webhook-signature": signature},
        "body": STANDARD.encode(body),
        "now": now,
    })
}

#[test]
fn the_documented_python_receiver_verifies_our_signatures() {
    let (old, new) = (new_signing_secret(), new_signing_secret());
    let other = new_signing_secret();
    let now = 1_767_225_600_i64;
    let id = "str_abc.0.3-1041";
    let body = r#"{"stream_id":"str_abc","workspace_id":"ws_1","batch_id":"str_abc.0.3-1041","events":[{"event_id":"0190","description":"café, naïve"}]}"#.as_bytes();
    let current = |s: &str| SigningSecret {
        secret: s.to_owned(),
        created_at_ms: 0,
        expires_at_ms: None,
    };
    let one = sign(&[current(&old)], now * 1000, id, now, body);
    // During a rotation: the new secret first, the old one until it expires.
    let rotating = [
        current(&new),
        SigningSecret {
            expires_at_ms: Some(now * 1000 + 3_600_000),
            ..current(&old)
        },
    ];
    let both = sign(&rotating, now * 1000, id, now, body);
    assert_eq!(both.split(' ').count(), 2);
    let mut tampered = body.to_vec();
    tampered[40] ^= 1;

    let cases = [
        // Good: the one secret, clock a little ahead or behind.
        (case(&[&old], id, now, &one, body, now), true),
        (case(&[&old], id, now, &one, body, now + 299), true),
        (case(&[&old], id, now, &one, body, now - 299), true),
        // A rotation: receivers with either secret, or both, accept.
        (case(&[&new], id, now, &both, body, now), true),
        (case(&[&old], id, now, &both, body, now), true),
        (case(&[&new, &old], id, now, &both, body, now), true),
        // Refused: tampered body, other id, old or future timestamp, other secret, no signature.
        (case(&[&old], id, now, &one, &tampered, now), false),
        (
            case(&[&old], "str_abc.0.3-1042", now, &one, body, now),
            false,
        ),
        (case(&[&old], id, now, &one, body, now + 301), false),
        (case(&[&old], id, now, &one, body, now - 301), false),
        (case(&[&other], id, now, &both, body, now), false),
        (case(&[&old], id, now, "", body, now), false),
        (case(&[&old], id, now, "v2,abc", body, now), false),
    ];
    let (inputs, wanted): (Vec<Value>, Vec<bool>) = cases.into_iter().unzip();
    let got = run_python(&inputs);
    for (i, (g, w)) in got.iter().zip(&wanted).enumerate() {
        assert_eq!(g, w, "case {i}: {}", inputs[i]);
    }
    assert_eq!(got.len(), wanted.len());
    // A timestamp that is not a number is refused, not an exception.
    let mut bad_ts = case(&[&old], id, now, &one, body, now);
    bad_ts["headers"]["webhook-timestamp"] = json!("soon");
    assert_eq!(run_python(&[bad_ts]), vec![false]);
}
