//! docs/log-format.md carries generated worked examples: every hash, key, proof, checkpoint,
//! note and cosignature it shows is computed here by the crate, so the document cannot drift
//! from the code. `UPDATE_DOCS=1 cargo test -p auditlog-tlog --test docs` rewrites them.

mod common;

use std::path::Path;

use auditlog_testkit::docs::{sync_sections, Section};
use auditlog_tlog::cosignature::{cosign, message};
use auditlog_tlog::leaf::{canonical_json, content_sha256, LeafData};
use auditlog_tlog::merkle::{
    consistency_nodes, consistency_proof, empty_root, inclusion_nodes, inclusion_proof, leaf_hash,
    node_hash, tree_root, Hash, Node,
};
use auditlog_tlog::note::key_id;
use auditlog_tlog::tiles::{tiles_for, width_at};
use auditlog_tlog::{Appender, Checkpoint, KeyKind, Note, Signer, TileId};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::kat_tree;
use sha2::Digest as _;

/// The event of the examples, as the export writes it (one line; field order and number
/// spelling as stored).
const EVENT: &str = r#"{"event_id":"0192f3a4-5b6c-7d8e-9f01-23456789abcd","workspace_id":"ws_123","bucket":"default","event":"key.create","time":"2026-01-01T00:00:00.123Z","actor":{"type":"user","id":"user_1","name":"Alice Chen"},"targets":[{"type":"key","id":"key_9","name":"prod-billing"}],"description":"Alice Chen created key 'prod-billing'","request":{"ttl_s":3.0e2,"name":"prod-billing"},"response":null,"outcome":{"status":"success"},"version":1}"#;
const EVENT_ID: &str = "0192f3a4-5b6c-7d8e-9f01-23456789abcd";
const EVENT_MS: i64 = 1_767_225_600_123;
const ORIGIN: &str = "auditlog.example.com/ws_123";
const SIGNED_MS: i64 = 1_767_225_660_000;
const COSIGNED_S: u64 = 1_767_225_661;

fn b64(h: &[u8]) -> String {
    B64.encode(h)
}

/// A key from a fixed seed (SHA-256 of `label`), so the examples are reproducible.
fn fixed_signer(name: &str, kind: KeyKind, label: &str) -> Signer {
    let seed: [u8; 32] = sha2::Sha256::digest(label.as_bytes()).into();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let id = key_id(name, kind, public.as_bytes());
    let mut raw = vec![kind.alg()];
    raw.extend_from_slice(&seed);
    let text = format!("PRIVATE+KEY+{name}+{}+{}", hex::encode(id), b64(&raw));
    Signer::from_private_key(&text).unwrap()
}

fn log_signer() -> Signer {
    fixed_signer(ORIGIN, KeyKind::Note, "auditlog docs: log key")
}

fn witness_signer() -> Signer {
    fixed_signer(
        "witness.example.org",
        KeyKind::Cosignature,
        "auditlog docs: witness key",
    )
}

fn fence(body: &str) -> String {
    format!("```text\n{body}```\n")
}

fn hashing() -> String {
    let (a, b) = (leaf_hash(b""), leaf_hash(&[0x00]));
    fence(&format!(
        "SHA-256(\"\")                    = {}   (the empty tree's root)\n\
         leaf_hash(\"\")   = SHA-256(00)   = {}\n\
         leaf_hash(00)   = SHA-256(00 00) = {}\n\
         node_hash(the two above)        = {}   (root of the 2-leaf tree)\n",
        hex::encode(empty_root()),
        hex::encode(a),
        hex::encode(b),
        hex::encode(node_hash(&a, &b)),
    ))
}

fn hex_list(hashes: &[Hash]) -> String {
    hashes
        .iter()
        .map(|h| format!("  {}\n", hex::encode(h)))
        .collect()
}

fn tree() -> String {
    let t = kat_tree();
    let mut out = String::from("roots (hex):\n");
    for size in 1..=8u64 {
        out.push_str(&format!(
            "  size {size}: {}\n",
            hex::encode(tree_root(size, &t).unwrap())
        ));
    }
    out.push_str("\nPATH(5, D[0:8]), the inclusion proof of leaf 5 (data 40414243) in size 8:\n");
    out.push_str(&hex_list(&inclusion_proof(5, 8, &t).unwrap()));
    out.push_str("\nPATH(1, D[0:5]):\n");
    out.push_str(&hex_list(&inclusion_proof(1, 5, &t).unwrap()));
    out.push_str("\nPROOF(6, D[0:8]), the consistency proof from size 6 to size 8:\n");
    out.push_str(&hex_list(&consistency_proof(6, 8, &t).unwrap()));
    out.push_str("\nPROOF(2, D[0:5]):\n");
    out.push_str(&hex_list(&consistency_proof(2, 5, &t).unwrap()));
    fence(&out)
}

fn example_leaf() -> LeafData {
    LeafData {
        event_id: EVENT_ID.into(),
        time_ms: EVENT_MS,
        content_sha256: content_sha256(EVENT.as_bytes()),
    }
}

fn leaf() -> String {
    let canon = String::from_utf8(canonical_json(EVENT.as_bytes()).unwrap()).unwrap();
    let leaf = example_leaf();
    let data = String::from_utf8(leaf.canonical()).unwrap();
    fence(&format!(
        "event, as the export's line carries it:\n{EVENT}\n\n\
         JCS(event):\n{canon}\n\n\
         content_sha256 = SHA-256(JCS(event)) = {}\n\n\
         leaf data (event_id {EVENT_ID}, time_ms {EVENT_MS}):\n{data}\n\n\
         leaf hash = SHA-256(00 || leaf data):\n  hex    {}\n  base64 {}\n",
        hex::encode(leaf.content_sha256),
        hex::encode(leaf.leaf_hash()),
        b64(&leaf.leaf_hash()),
    ))
}

fn fallback() -> String {
    let raw = r#"{"request":{"n":1e400}}"#;
    assert!(canonical_json(raw.as_bytes()).is_err());
    fence(&format!(
        "event text: {raw}\n(1e400 is beyond IEEE 754 double range: JCS cannot write it)\n\
         content_sha256 = SHA-256(the text as given) = {}\n",
        hex::encode(content_sha256(raw.as_bytes()))
    ))
}

fn tile_name(t: TileId) -> String {
    format!("{}/{}", t.level, t.index)
}

fn tiles() -> String {
    let size = 70_000u64;
    let mut out = format!("tree size {size}:\n");
    for level in 0..3u8 {
        let n = size >> (8 * u32::from(level));
        let last = TileId {
            level,
            index: n.div_ceil(256) - 1,
        };
        out.push_str(&format!(
            "  level {level}: {n} hashes of tree level {}, tiles {level}/0..{level}/{}; last tile width {}\n",
            8 * level,
            last.index,
            width_at(last, size)
        ));
    }
    let edge: Vec<String> = Appender::edge_tiles(size)
        .into_iter()
        .map(tile_name)
        .collect();
    out.push_str(&format!(
        "  edge tiles (the partial ones): {}\n",
        edge.join(", ")
    ));
    let show = |nodes: &[Node]| -> String {
        nodes
            .iter()
            .map(|n| format!("({},{})", n.level, n.index))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let inc = inclusion_nodes(1000, size).unwrap();
    let inc_tiles: Vec<String> = tiles_for(&inc, size).into_iter().map(tile_name).collect();
    out.push_str(&format!(
        "\ninclusion proof of leaf 1000 at size {size}\n  nodes (level,index): {}\n  tiles: {}\n",
        show(&inc),
        inc_tiles.join(", ")
    ));
    let con = consistency_nodes(65_536 + 300, size).unwrap();
    let con_tiles: Vec<String> = tiles_for(&con, size).into_iter().map(tile_name).collect();
    out.push_str(&format!(
        "\nconsistency proof from size 65836 to {size}\n  nodes (level,index): {}\n  tiles: {}\n",
        show(&con),
        con_tiles.join(", ")
    ));
    fence(&out)
}

fn example_checkpoint() -> Checkpoint {
    let mut app = Appender::new();
    app.append(example_leaf().leaf_hash());
    Checkpoint::new(ORIGIN, 1, app.root(), SIGNED_MS)
}

fn checkpoint() -> String {
    let c = example_checkpoint();
    fence(&format!(
        "{}\n(the body above: a log whose only leaf is the example leaf of section 3; the root of a\n1-leaf tree is its leaf hash)\n",
        c.to_text()
    ))
}

fn keys() -> String {
    let log = log_signer();
    let v = log.verifier();
    let public = &B64
        .decode(v.to_string().splitn(3, '+').nth(2).unwrap())
        .unwrap()[1..];
    fence(&format!(
        "private key: {}\n(an example from a published seed, SHA-256(\"auditlog docs: log key\"): never use it)\nverifier key: {v}\n\n\
         public key (hex): {}\n\
         key id = SHA-256(\"{ORIGIN}\" || 0a || 01 || public key)[0..4] = {}\n",
        log.private_key(),
        hex::encode(public),
        hex::encode(log.key_id()),
    ))
}

fn signed_note() -> String {
    let body = example_checkpoint().to_text();
    let sig = log_signer().sign_note(&body).unwrap();
    let raw = B64
        .decode(sig.to_line().rsplit(' ').next().unwrap())
        .unwrap();
    let note = Note {
        text: body,
        signatures: vec![sig.clone()],
    };
    fence(&format!(
        "{note}\nsignature line payload (base64-decoded, 68 bytes):\n  key id    {}\n  Ed25519   {}\n",
        hex::encode(&raw[..4]),
        hex::encode(&raw[4..]),
    ))
}

fn cosignature() -> String {
    let body = example_checkpoint().to_text();
    let w = witness_signer();
    let log_sig = log_signer().sign_note(&body).unwrap();
    let cosig = cosign(&w, &body, COSIGNED_S).unwrap();
    let msg = String::from_utf8(message(&body, COSIGNED_S)).unwrap();
    let raw = B64
        .decode(cosig.to_line().rsplit(' ').next().unwrap())
        .unwrap();
    let note = Note {
        text: body,
        signatures: vec![log_sig, cosig],
    };
    fence(&format!(
        "witness verifier key: {}\n\nsigned message (time {COSIGNED_S}):\n{msg}\n\
         cosigned note (the log's line, then the witness's):\n{note}\n\
         cosignature line payload (base64-decoded, 76 bytes):\n  key id    {}\n  timestamp {} (= {COSIGNED_S})\n  Ed25519   {}\n",
        w.verifier(),
        hex::encode(&raw[..4]),
        hex::encode(&raw[4..12]),
        hex::encode(&raw[12..]),
    ))
}

#[test]
fn log_format_md_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/log-format.md");
    let note = "generated by crates/tlog/tests/docs.rs";
    let sections = [
        Section::new("hashing", note, hashing()),
        Section::new("tree", note, tree()),
        Section::new("leaf", note, leaf()),
        Section::new("fallback", note, fallback()),
        Section::new("tiles", note, tiles()),
        Section::new("checkpoint", note, checkpoint()),
        Section::new("keys", note, keys()),
        Section::new("note", note, signed_note()),
        Section::new("cosignature", note, cosignature()),
    ];
    sync_sections(&path, &sections, "cargo test -p auditlog-tlog --test docs");
}
