//! The log API (`/v1/log/...`) and the verifiable export (`GET /v1/export?format=log`) against
//! a real ClickHouse. The log tables are seeded directly, with what the sequencer writes
//! computed by `auditlog_tlog` (the `Appender`'s tiles, a test `Signer`'s notes, a test
//! witness's cosignatures); every proof served is checked by `auditlog_tlog`'s verifiers
//! against the checkpoints' roots.

mod common;

use auditlog_store::events::{StoredEvent, DETAIL_PROJECTION};
use auditlog_store::log::leaf_of;
use auditlog_store::log::rows::{
    CheckpointRow, CosignatureRow, KeyRow, LeafRow, PlanChangeRow, TileRow,
};
use auditlog_tlog::merkle::{verify_consistency, verify_inclusion, Hash};
use auditlog_tlog::{cosignature, Appender, Checkpoint, KeyKind, LeafData, Note, Signer};
use axum::http::StatusCode;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use uuid::Uuid;

const ORIGIN_PREFIX: &str = "audit.example.com/log";

fn b64d(s: &str) -> Hash {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap()
        .try_into()
        .unwrap()
}

/// Inserts `rows` (one row type of `auditlog_store::log::rows`) into `table`, one INSERT.
macro_rules! insert {
    ($client:expr, $table:expr, $ty:ty, $rows:expr) => {{
        let mut ins = $client.insert::<$ty>($table).await.unwrap();
        for r in $rows.iter() {
            ins.write(r).await.unwrap();
        }
        ins.end().await.unwrap();
    }};
}

/// A workspace's log as the sequencer would have built it, written to the log tables.
struct Log {
    ws: String,
    signer: Signer,
    witness: Signer,
    appender: Appender,
    /// Root after each size (index = size).
    roots: Vec<Hash>,
    leaves: Vec<LeafRow>,
}

impl Log {
    fn new(ws: &str) -> Self {
        let appender = Appender::new();
        Self {
            ws: ws.into(),
            signer: Signer::generate("audit.example.com", KeyKind::Note).unwrap(),
            witness: Signer::generate("witness.example.org", KeyKind::Cosignature).unwrap(),
            roots: vec![appender.root()],
            appender,
            leaves: Vec::new(),
        }
    }

    /// The stored rows of the workspace, by Kafka offset (as the sequencer reads them).
    async fn stored(h: &Harness, ws: &str) -> Vec<StoredEvent> {
        h.client
            .query(&format!(
                "SELECT {DETAIL_PROJECTION} FROM events WHERE workspace_id = ? \
                 ORDER BY kafka_offset LIMIT 1 BY event_id"
            ))
            .bind(ws)
            .fetch_all()
            .await
            .unwrap()
    }

    /// Appends these stored rows as leaves and writes their leaf and tile rows.
    async fn append(&mut self, h: &Harness, rows: &[&StoredEvent]) {
        let mut new = Vec::new();
        for row in rows {
            let data = leaf_of(row).unwrap();
            let hash = data.leaf_hash();
            let leaf = LeafRow {
                workspace_id: self.ws.clone(),
                leaf_index: self.appender.size(),
                event_id: row.event_id(),
                time: data.time_ms,
                content_sha256: data.content_sha256,
                leaf_hash: hash,
                kafka_partition: 0,
                kafka_offset: self.appender.size() as i64,
                sequenced_at: now_ms(),
            };
            self.appender.append(hash);
            self.roots.push(self.appender.root());
            new.push(leaf);
        }
        insert!(h.client, "log_leaves", LeafRow, &new);
        insert!(h.client, "log_leaves_by_event", LeafRow, &new);
        let tiles: Vec<TileRow> = self
            .appender
            .take_changed()
            .into_iter()
            .map(|t| TileRow {
                workspace_id: self.ws.clone(),
                tile_level: t.id.level,
                tile_index: t.id.index,
                width: t.hashes.len() as u16,
                hashes: t.to_bytes(),
                written_at: now_ms(),
            })
            .collect();
        insert!(h.client, "log_tiles", TileRow, &tiles);
        self.leaves.extend(new);
    }

    /// Signs a checkpoint of the current size (cosigned by the witness when `cosign`).
    async fn checkpoint(&self, h: &Harness, signed_at: i64, cosign: bool) {
        let size = self.appender.size();
        let origin = format!("{ORIGIN_PREFIX}/{}", self.ws);
        let text = Checkpoint::new(&origin, size, self.appender.root(), signed_at).to_text();
        let sig = self.signer.sign_note(&text).unwrap();
        let note = Note {
            text: text.clone(),
            signatures: vec![sig],
        };
        let row = CheckpointRow {
            workspace_id: self.ws.clone(),
            tree_size: size,
            root_hash: self.appender.root(),
            signed_at,
            key_name: self.signer.name().into(),
            note: note.to_string(),
        };
        insert!(h.client, "log_checkpoints", CheckpointRow, &[row]);
        if cosign {
            let c = cosignature::cosign(&self.witness, &text, (signed_at / 1000) as u64).unwrap();
            let row = CosignatureRow {
                workspace_id: self.ws.clone(),
                tree_size: size,
                witness: self.witness.name().into(),
                signature_line: c.to_line(),
                cosigned_at: signed_at + 5,
            };
            insert!(h.client, "log_cosignatures", CosignatureRow, &[row]);
        }
        let key = KeyRow {
            verifier_key: self.signer.verifier().to_string(),
            key_name: self.signer.name().into(),
            first_used: 1_000,
            last_used: signed_at,
        };
        insert!(h.client, "log_keys", KeyRow, &[key]);
    }
}

fn assert_bad(st: StatusCode, body: &Value, param: &str) {
    assert_eq!(st, StatusCode::BAD_REQUEST, "{param}: {body}");
    assert_eq!(body["error"]["code"], "bad_parameter", "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with(&format!("{param}:")), "{param}: {msg}");
}

/// Each `(query, param)`: `GET <path>?<query>` is a 400 naming `param`.
async fn assert_bad_queries(h: &Harness, token: &str, path: &str, cases: &[(String, &str)]) {
    for (query, param) in cases {
        let (st, body) = h
            .json("GET", &format!("{path}?{query}"), Some(token), None)
            .await;
        assert_bad(st, &body, param);
    }
}

fn assert_code(st: StatusCode, body: &Value, status: StatusCode, code: &str) {
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (status, Some(code)),
        "{body}"
    );
}

/// Events e0..e4 of `ws`; e0 has a payload with a number beyond u64 and odd whitespace.
fn events(ws: &str) -> Vec<Seed> {
    let now = now_ms();
    (0..5)
        .map(|i| {
            let mut s = Seed::new(ws, "key.create", now - 60_000 + i * 1000);
            s.kafka_offset = i;
            if i == 0 {
                s.request = "{ \"big\" :  18446744073709551617 ,\n\t\"f\": [1.50, -0E0 ] }".into();
                s.response = "[ ]".into();
            }
            s
        })
        .collect()
}

/// A log of e0..e3 with checkpoints at sizes 2 and 4 (the latest cosigned); e4 unlogged.
async fn four_leaves(h: &Harness, ws: &str) -> (Log, Vec<StoredEvent>) {
    h.seed(&events(ws)).await;
    let stored = Log::stored(h, ws).await;
    assert_eq!(stored.len(), 5);
    let mut log = Log::new(ws);
    log.append(h, &[&stored[0], &stored[1]]).await;
    log.checkpoint(h, 1_767_225_600_000, false).await;
    log.append(h, &[&stored[2], &stored[3]]).await;
    log.checkpoint(h, 1_767_225_660_000, true).await;
    (log, stored)
}

#[tokio::test]
async fn checkpoint_is_the_latest_with_its_cosignatures() {
    let h = Harness::new("log_cp").await;
    let (log, _) = four_leaves(&h, "ws_log").await;
    let token = h.token("ws_log").await;
    let (st, body) = h
        .json("GET", "/v1/log/checkpoint", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["tree_size"], 4);
    assert_eq!(body["origin"], format!("{ORIGIN_PREFIX}/ws_log"));
    assert_eq!(b64d(body["root_hash"].as_str().unwrap()), log.roots[4]);
    assert_eq!(body["signed_at_ms"], 1_767_225_660_000i64);
    assert_eq!(body["witnesses"], json!([log.witness.name()]));
    // One signed note: the log's signature, then the witness's cosignature.
    let note = Note::parse(body["note"].as_str().unwrap()).unwrap();
    assert!(note.verified_by(&log.signer.verifier()));
    assert_eq!(note.signatures.len(), 2);
    let cp = Checkpoint::parse(&note.text).unwrap();
    assert_eq!(
        (cp.size, cp.root, cp.time_ms()),
        (4, log.roots[4], Some(1_767_225_660_000))
    );
    let time =
        cosignature::verify(&log.witness.verifier(), &note.text, &note.signatures[1]).unwrap();
    assert_eq!(time, 1_767_225_660);
    // The keys.
    let (st, body) = h.json("GET", "/v1/log/keys", Some(&token), None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["keys"], json!([log.signer.verifier().to_string()]));
    // No parameters, a token needed.
    let (st, body) = h
        .json("GET", "/v1/log/checkpoint?x=1", Some(&token), None)
        .await;
    assert_bad(st, &body, "x");
    for uri in [
        "/v1/log/checkpoint",
        "/v1/log/keys",
        "/v1/log/retention",
        "/v1/log/leaves",
    ] {
        let (st, body) = h.json("GET", uri, None, None).await;
        assert_code(st, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

#[tokio::test]
async fn inclusion_proofs_verify_against_the_checkpoint_roots() {
    let h = Harness::new("log_incl").await;
    let (log, stored) = four_leaves(&h, "ws_log").await;
    let token = h.token("ws_log").await;
    for (i, row) in stored.iter().take(4).enumerate() {
        for (size, query) in [
            (4u64, String::new()),
            (2, "&tree_size=2".into()),
            (i as u64 + 1, format!("&tree_size={}", i + 1)),
        ] {
            if (i as u64) >= size {
                continue;
            }
            let uri = format!("/v1/log/proof/inclusion?event_id={}{query}", row.id);
            let (st, body) = h.json("GET", &uri, Some(&token), None).await;
            assert_eq!(st, StatusCode::OK, "{uri}: {body}");
            assert_eq!(body["tree_size"], size);
            let leaf = &body["leaf"];
            assert_eq!(leaf["leaf_index"], i as u64);
            assert_eq!(leaf["event_id"], row.id);
            // The leaf hash is recomputed from the leaf's fields, then walked to the root.
            let data = LeafData {
                event_id: leaf["event_id"].as_str().unwrap().into(),
                time_ms: leaf["time_ms"].as_i64().unwrap(),
                content_sha256: hex::decode(leaf["content_sha256"].as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap(),
            };
            assert_eq!(data.leaf_hash(), b64d(leaf["leaf_hash"].as_str().unwrap()));
            assert_eq!(data, leaf_of(row).unwrap());
            let proof: Vec<Hash> = body["hashes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| b64d(h.as_str().unwrap()))
                .collect();
            verify_inclusion(
                &data.leaf_hash(),
                i as u64,
                size,
                &proof,
                &log.roots[size as usize],
            )
            .unwrap_or_else(|e| panic!("{uri}: {e}"));
        }
    }
    // A leaf row that was re-sequenced before its commit (an older version of index 3 holding
    // e4) does not make e4 a leaf: only the final version of an index counts. Its row in the
    // lookup by event (a candidate for e4 at index 3) is refused: the tile holds another hash.
    let mut stale = log.leaves[3].clone();
    stale.event_id = stored[4].event_id();
    stale.sequenced_at = 1;
    insert!(h.client, "log_leaves", LeafRow, &[stale.clone()]);
    insert!(h.client, "log_leaves_by_event", LeafRow, &[stale]);
    let e2 = &stored[2].id;
    let e4 = &stored[4].id;
    let q = |s: &str| format!("/v1/log/proof/inclusion?{s}");
    let cases = [
        (String::new(), "event_id"),
        ("event_id=nope".into(), "event_id"),
        (format!("event_id={e2}&tree_size=5"), "tree_size"),
        (format!("event_id={e2}&tree_size=2"), "tree_size"),
        (format!("event_id={e2}&tree_size=0"), "tree_size"),
        (format!("event_id={e2}&tree_size=-1"), "tree_size"),
        (format!("event_id={e2}&tree_size=x"), "tree_size"),
        (format!("event_id={e2}&size=2"), "size"),
    ];
    assert_bad_queries(&h, &token, "/v1/log/proof/inclusion", &cases).await;
    for id in [e4.clone(), Uuid::now_v7().to_string()] {
        let (st, body) = h
            .json("GET", &q(&format!("event_id={id}")), Some(&token), None)
            .await;
        assert_code(st, &body, StatusCode::NOT_FOUND, "not_in_log");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(&id),
            "{body}"
        );
    }
    let (st, body) = h
        .json(
            "GET",
            &q(&format!("event_id={}", stored[3].id)),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (st, &body["leaf"]["leaf_index"]),
        (StatusCode::OK, &json!(3)),
        "{body}"
    );
    // Another workspace's token does not see this log.
    let other = h.token("ws_other").await;
    let (st, body) = h
        .json("GET", &q(&format!("event_id={e2}")), Some(&other), None)
        .await;
    assert_code(st, &body, StatusCode::NOT_FOUND, "no_checkpoint");
}

#[tokio::test]
async fn consistency_proofs_and_leaves() {
    let h = Harness::new("log_cons").await;
    let (log, stored) = four_leaves(&h, "ws_log").await;
    let token = h.token("ws_log").await;
    for (first, second, query) in [
        (2u64, 4u64, "first=2".to_owned()),
        (1, 3, "first=1&second=3".into()),
        (3, 4, "first=3&second=4".into()),
        (0, 4, "first=0".into()),
        (4, 4, "first=4".into()),
        (1, 1, "first=1&second=1".into()),
    ] {
        let uri = format!("/v1/log/proof/consistency?{query}");
        let (st, body) = h.json("GET", &uri, Some(&token), None).await;
        assert_eq!(st, StatusCode::OK, "{uri}: {body}");
        assert_eq!(
            (body["first"].as_u64(), body["second"].as_u64()),
            (Some(first), Some(second))
        );
        let proof: Vec<Hash> = body["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| b64d(h.as_str().unwrap()))
            .collect();
        verify_consistency(
            first,
            second,
            &proof,
            &log.roots[first as usize],
            &log.roots[second as usize],
        )
        .unwrap_or_else(|e| panic!("{uri}: {e}"));
    }
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "first"),
        ("first=3&second=2".into(), "first"),
        ("first=2&second=5".into(), "second"),
        ("first=-1".into(), "first"),
        ("first=1.5".into(), "first"),
        ("first=1&second=x".into(), "second"),
        ("first=1&old=0".into(), "old"),
    ];
    assert_bad_queries(&h, &token, "/v1/log/proof/consistency", &cases).await;
    // Leaves, page by page, up to the checkpoint's size.
    let (st, body) = h
        .json("GET", "/v1/log/leaves?limit=3", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["next_start"], 3);
    let (_, rest) = h
        .json("GET", "/v1/log/leaves?start=3", Some(&token), None)
        .await;
    assert_eq!(rest["next_start"], Value::Null);
    let all: Vec<Value> = [
        body["data"].as_array().unwrap().clone(),
        rest["data"].as_array().unwrap().clone(),
    ]
    .concat();
    assert_eq!(all.len(), 4);
    for (i, l) in all.iter().enumerate() {
        assert_eq!(l["leaf_index"], i as u64);
        assert_eq!(l["event_id"], stored[i].id);
        assert_eq!(
            b64d(l["leaf_hash"].as_str().unwrap()),
            log.leaves[i].leaf_hash
        );
    }
    let (st, body) = h
        .json("GET", "/v1/log/leaves?start=4", Some(&token), None)
        .await;
    assert_eq!(
        (st, body),
        (StatusCode::OK, json!({"data": [], "next_start": null}))
    );
    let cases: Vec<(String, &str)> = vec![
        ("limit=0".into(), "limit"),
        ("limit=10001".into(), "limit"),
        ("start=5".into(), "start"),
        ("start=x".into(), "start"),
        ("from=1".into(), "from"),
    ];
    assert_bad_queries(&h, &token, "/v1/log/leaves", &cases).await;
    let (st, body) = h
        .json("GET", "/v1/log/leaves?limit=10000", Some(&token), None)
        .await;
    assert_eq!(
        (st, body["data"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(4))
    );
}

#[tokio::test]
async fn a_workspace_without_checkpoints_is_a_404_no_checkpoint() {
    let h = Harness::new("log_none").await;
    h.seed(&events("ws_new")).await;
    let token = h.token("ws_new").await;
    let id = Uuid::now_v7();
    for uri in [
        "/v1/log/checkpoint".to_owned(),
        format!("/v1/log/proof/inclusion?event_id={id}"),
        "/v1/log/proof/consistency?first=0".into(),
        "/v1/log/leaves".into(),
        "/v1/export?format=log".into(),
    ] {
        let (st, body) = h.json("GET", &uri, Some(&token), None).await;
        assert_code(st, &body, StatusCode::NOT_FOUND, "no_checkpoint");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("ws_new"),
            "{body}"
        );
    }
    // Keys and retention answer without a log.
    let (st, body) = h.json("GET", "/v1/log/keys", Some(&token), None).await;
    assert_eq!((st, body), (StatusCode::OK, json!({"keys": []})));
    let (st, body) = h.json("GET", "/v1/log/retention", Some(&token), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        body,
        json!({"workspace_id": "ws_new", "periods": [{"from_ms": i64::MIN, "retention_days": 7}]})
    );
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let text = bytes.strip_suffix(b"\n").expect("ends in a line break");
    text.split(|b| *b == b'\n').collect()
}

#[tokio::test]
async fn the_log_export_has_a_header_every_leaf_and_the_unlogged_rows() {
    let h = Harness::new("log_export").await;
    let (log, stored) = four_leaves(&h, "ws_log").await;
    let token = h.token("ws_log").await;
    // e1's row is deleted (its leaf stays); a copy of e3 is stored twice (one line anyway).
    h.client
        .query("DELETE FROM events WHERE event_id = toUUID(?)")
        .bind(&stored[1].id)
        .with_setting("mutations_sync", "2")
        .execute()
        .await
        .unwrap();
    let mut again = events("ws_log");
    let mut copy = again.remove(3);
    copy.event_id = stored[3].event_id();
    copy.time = stored[3].time_ms;
    h.seed(&[copy]).await;

    let (st, headers, body) = h
        .raw("GET", "/v1/export?format=log", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "application/x-ndjson");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"audit-log-ws_log.ndjson\""
    );
    let lines = lines(&body);
    assert_eq!(lines.len(), 1 + 4 + 1, "{}", String::from_utf8_lossy(&body));
    let header: Value = serde_json::from_slice(lines[0]).unwrap();
    assert_eq!(header["type"], "header");
    assert_eq!(header["workspace_id"], "ws_log");
    assert!((header["exported_at_ms"].as_i64().unwrap() - now_ms()).abs() < 60_000);
    let (_, cp) = h
        .json("GET", "/v1/log/checkpoint", Some(&token), None)
        .await;
    assert_eq!(header["checkpoint"], cp);
    assert_eq!(
        header["retention"],
        json!([{"from_ms": i64::MIN, "retention_days": 7}])
    );

    // The NDJSON export's lines of the same events, for the byte-for-byte comparison.
    let (_, _, ndjson) = h
        .raw(
            "GET",
            "/v1/export?format=ndjson&order=asc",
            Some(&token),
            None,
        )
        .await;
    let exported: Vec<&[u8]> = self::lines(&ndjson);
    let line_of = |id: &str| -> Vec<u8> {
        exported
            .iter()
            .find(|l| serde_json::from_slice::<Value>(l).unwrap()["event_id"] == id)
            .unwrap()
            .to_vec()
    };
    for i in 0..4 {
        let v: Value = serde_json::from_slice(lines[1 + i]).unwrap();
        assert_eq!(v["type"], "leaf");
        assert_eq!(v["leaf"]["leaf_index"], i as u64);
        assert_eq!(
            b64d(v["leaf"]["leaf_hash"].as_str().unwrap()),
            log.leaves[i].leaf_hash
        );
        if i == 1 {
            assert_eq!(v["event"], Value::Null, "a deleted row: null");
            continue;
        }
        // The event is the NDJSON export's text, byte for byte, and hashes to the leaf.
        let text = std::str::from_utf8(lines[1 + i]).unwrap();
        let start = text.find("\"event\":").unwrap() + "\"event\":".len();
        let event = &text[start..text.len() - 1];
        assert_eq!(event.as_bytes(), line_of(&stored[i].id), "leaf {i}");
        assert_eq!(
            hex::encode(auditlog_tlog::leaf::content_sha256(event.as_bytes())),
            v["leaf"]["content_sha256"]
        );
    }
    let first = std::str::from_utf8(lines[1]).unwrap();
    assert!(
        first.contains("{ \"big\" :  18446744073709551617 , \t\"f\": [1.50, -0E0 ] }"),
        "{first}"
    );
    let unlogged: Value = serde_json::from_slice(lines[5]).unwrap();
    assert_eq!(unlogged["type"], "unlogged");
    assert_eq!(unlogged["event"]["event_id"], stored[4].id);
    assert!(unlogged["inserted_at_ms"].as_i64().unwrap() > 0);

    // The log is exported whole.
    let cases: Vec<(String, &str)> = vec![
        ("format=log&order=asc".into(), "order"),
        ("format=log&event=key.create".into(), "event"),
        ("format=log&since=2026-01-01T00:00:00Z".into(), "since"),
        ("format=log&actor_id=u".into(), "actor_id"),
        ("format=log&csv_raw=true".into(), "csv_raw"),
    ];
    assert_bad_queries(&h, &token, "/v1/export", &cases).await;
    let (st, body) = h
        .json("GET", "/v1/export?format=xml", Some(&token), None)
        .await;
    assert_bad(st, &body, "format");
}

#[tokio::test]
async fn plan_changes_are_recorded_and_served_as_retention_history() {
    let h = Harness::new("log_plans").await;
    let token = h.token("ws_p").await;
    for plan in [
        json!({"plan": "pro"}),
        json!({"plan": "enterprise", "retention_days": 30}),
    ] {
        let (st, body) = h
            .json(
                "PUT",
                "/v1/admin/workspaces/ws_p/plan",
                Some(ADMIN),
                Some(plan),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }
    let changes: Vec<PlanChangeRow> = h
        .client
        .query("SELECT ?fields FROM plan_changes WHERE workspace_id = 'ws_p' ORDER BY changed_at")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.plan.as_str(), c.retention_days))
            .collect::<Vec<_>>(),
        [("pro", 90), ("enterprise", 30)]
    );
    // Each change at the time of its plan row.
    let updated: Vec<i64> = h
        .client
        .query("SELECT toUnixTimestamp64Milli(updated_at) FROM workspace_plans WHERE workspace_id = 'ws_p' ORDER BY updated_at")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        updated,
        changes.iter().map(|c| c.changed_at).collect::<Vec<_>>()
    );
    let (st, body) = h.json("GET", "/v1/log/retention", Some(&token), None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"workspace_id": "ws_p", "periods": [
            {"from_ms": i64::MIN, "retention_days": 7},
            {"from_ms": changes[0].changed_at, "retention_days": 90},
            {"from_ms": changes[1].changed_at, "retention_days": 30},
        ]})
    );
}
