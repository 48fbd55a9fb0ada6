//! The verifier over synthetic exports built with the log's own primitives (a `Signer`, an
//! `Appender`, `LeafData`): a clean export verifies; each tampering with the export is
//! caught at the right leaf with the right reason; rows gone by retention (also after a
//! downgrade) are no false alarm; inclusion and consistency proofs.

use auditlog_tlog::checkpoint::Checkpoint;
use auditlog_tlog::leaf::content_sha256;
use auditlog_tlog::merkle::{consistency_proof, inclusion_proof};
use auditlog_tlog::wire::{
    CheckpointBody, ConsistencyBody, ExportHeader, InclusionBody, LeafBody, RetentionPeriod,
};
use auditlog_tlog::{Appender, KeyKind, LeafData, Note, Signer, TileSet};
use auditlog_verify::export::{ExportOptions, ExportVerifier, Reference};
use auditlog_verify::proofs::{check_consistency_notes, check_inclusion};
use auditlog_verify::{FailureKind, Keys, Report, SignedCheckpoint};
use base64::Engine as _;

const DAY: i64 = 86_400_000;
const NOW: i64 = 1_800_000_000_000;
const WS: &str = "ws_verifytest";

fn b64(h: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(h)
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A workspace log and its rows, as the export writes them.
struct Fixture {
    signer: Signer,
    origin: String,
    /// Per leaf: the leaf and the stored event text (`None`: the row is gone).
    rows: Vec<(LeafBody, Option<String>)>,
    /// Tiles of the whole log (for proofs).
    tiles: TileSet,
    exported_at: i64,
    retention: Vec<RetentionPeriod>,
    /// `unlogged` lines: (inserted_at, event text).
    unlogged: Vec<(i64, String)>,
}

fn event_text(id: &str, time_ms: i64, n: usize) -> String {
    format!(
        r#"{{"event_id":"{id}","workspace_id":"{WS}","bucket":"default","event":"key.create","time":"{}","actor":{{"type":"user","id":"u_{n}","name":"user {n}"}},"targets":[],"description":"user {n} created key {n}","context":{{"remote_ip":"10.0.0.{}","user_agent":"test"}},"request":{{"amount":{n},"name":"key {n}"}},"response":{{"ok":true}},"outcome":{{"status":"success"}},"version":1}}"#,
        rfc3339(time_ms),
        n % 250
    )
}

fn event_id(n: usize) -> String {
    format!("0190a000-0000-7000-8000-{n:012x}")
}

impl Fixture {
    /// `n` events, one a minute, the newest an hour before the export; Free retention.
    fn new(n: usize) -> Fixture {
        Self::with_times(
            (0..n)
                .map(|i| NOW - DAY / 24 - (n - i) as i64 * 60_000)
                .collect(),
        )
    }

    fn with_times(times: Vec<i64>) -> Fixture {
        let signer = Signer::generate("log.example", KeyKind::Note).unwrap();
        let mut rows = Vec::new();
        let mut app = Appender::new();
        for (i, &t) in times.iter().enumerate() {
            let id = event_id(i);
            let text = event_text(&id, t, i);
            let data = LeafData {
                event_id: id.clone(),
                time_ms: t,
                content_sha256: content_sha256(text.as_bytes()),
            };
            let h = data.leaf_hash();
            app.append(h);
            rows.push((
                LeafBody {
                    leaf_index: i as u64,
                    event_id: id,
                    time_ms: t,
                    content_sha256: hex::encode(data.content_sha256),
                    leaf_hash: b64(&h),
                },
                Some(text),
            ));
        }
        let tiles = TileSet::new(app.take_changed());
        Fixture {
            signer,
            origin: format!("log.example/{WS}"),
            rows,
            tiles,
            exported_at: NOW,
            retention: vec![RetentionPeriod {
                from_ms: i64::MIN,
                retention_days: 7,
            }],
            unlogged: Vec::new(),
        }
    }

    fn root(&self, size: u64) -> [u8; 32] {
        auditlog_tlog::merkle::tree_root(size, &self.tiles).unwrap()
    }

    /// The checkpoint of the first `size` leaves, signed by `signer`.
    fn note_by(&self, signer: &Signer, size: u64) -> String {
        let text = Checkpoint::new(&self.origin, size, self.root(size), NOW - 5_000).to_text();
        let sig = signer.sign_note(&text).unwrap();
        Note {
            text,
            signatures: vec![sig],
        }
        .to_string()
    }

    fn note(&self, size: u64) -> String {
        self.note_by(&self.signer, size)
    }

    fn keys(&self) -> Keys {
        Keys::parse(&[self.signer.verifier().to_string()], &[]).unwrap()
    }

    /// The export text with `note` as the header's checkpoint.
    fn export_with(&self, note: &str) -> String {
        let n = Note::parse(note).unwrap();
        let cp = Checkpoint::parse(&n.text).unwrap();
        let header = ExportHeader {
            kind: "header".into(),
            workspace_id: WS.into(),
            exported_at_ms: self.exported_at,
            checkpoint: CheckpointBody {
                origin: cp.origin.clone(),
                tree_size: cp.size,
                root_hash: b64(&cp.root),
                signed_at_ms: NOW - 5_000,
                note: note.to_owned(),
                witnesses: vec![],
            },
            retention: self.retention.clone(),
        };
        let mut out = serde_json::to_string(&header).unwrap();
        out.push('\n');
        for (leaf, event) in &self.rows {
            out.push_str(&format!(
                r#"{{"type":"leaf","leaf":{},"event":{}}}"#,
                serde_json::to_string(leaf).unwrap(),
                event.as_deref().unwrap_or("null")
            ));
            out.push('\n');
        }
        for (at, event) in &self.unlogged {
            out.push_str(&format!(
                r#"{{"type":"unlogged","inserted_at_ms":{at},"event":{event}}}"#
            ));
            out.push('\n');
        }
        out
    }

    fn export(&self) -> String {
        self.export_with(&self.note(self.rows.len() as u64))
    }

    fn verify_with(&self, export: &str, references: Vec<Reference>) -> Report {
        run(self.keys(), export, references, 0, 1000)
    }

    fn verify(&self) -> Report {
        self.verify_with(&self.export(), Vec::new())
    }

    fn event_mut(&mut self, i: usize) -> &mut String {
        self.rows[i].1.as_mut().unwrap()
    }
}

/// `export` through an [`ExportVerifier`] with `keys`, line by line.
fn run(
    keys: Keys,
    export: &str,
    references: Vec<Reference>,
    min_witnesses: usize,
    max_listed: usize,
) -> Report {
    let mut v = ExportVerifier::new(ExportOptions {
        keys,
        min_witnesses,
        references,
        now_ms: NOW + 10_000,
        max_listed,
    });
    for line in export.lines() {
        v.line(line);
    }
    v.finish()
}

/// The failures as (kind, leaf index).
fn kinds(r: &Report) -> Vec<(FailureKind, Option<u64>)> {
    r.failures.iter().map(|f| (f.kind, f.leaf_index)).collect()
}

#[test]
fn a_clean_export_verifies() {
    let f = Fixture::new(600);
    let r = f.verify();
    assert!(r.ok(), "{:#?}", r.failures);
    assert_eq!((r.leaves, r.events, r.expired, r.pending), (600, 600, 0, 0));
    assert_eq!(r.tree_size, Some(600));
    assert_eq!(r.origin.as_deref(), Some(f.origin.as_str()));
}

#[test]
fn an_empty_log_verifies() {
    let f = Fixture::new(0);
    let r = f.verify();
    assert!(r.ok(), "{:#?}", r.failures);
}

#[test]
fn an_edited_payload_is_caught_at_its_leaf() {
    let mut f = Fixture::new(300);
    *f.event_mut(123) = f
        .event_mut(123)
        .replace(r#""amount":123"#, r#""amount":124"#);
    let r = f.verify();
    assert_eq!(kinds(&r), vec![(FailureKind::ContentAltered, Some(123))]);
    assert_eq!(
        r.failures[0].event_id.as_deref(),
        Some(event_id(123).as_str())
    );
    assert!(
        r.failures[0].message.contains("content altered"),
        "{}",
        r.failures[0]
    );
}

#[test]
fn an_edited_description_is_caught_at_its_leaf() {
    let mut f = Fixture::new(50);
    *f.event_mut(7) = f.event_mut(7).replace("created key 7", "deleted key 7");
    assert_eq!(
        kinds(&f.verify()),
        vec![(FailureKind::ContentAltered, Some(7))]
    );
}

#[test]
fn reformatting_an_event_is_not_tampering() {
    // The content hash is over the JCS form: whitespace and key order do not matter.
    let mut f = Fixture::new(5);
    let v: serde_json::Value = serde_json::from_str(f.event_mut(2)).unwrap();
    *f.event_mut(2) = serde_json::to_string_pretty(&v).unwrap().replace('\n', " ");
    let r = f.verify();
    assert!(r.ok(), "{:#?}", r.failures);
}

#[test]
fn a_deleted_row_before_its_retention_is_caught() {
    let mut f = Fixture::new(40);
    f.rows[17].1 = None;
    let r = f.verify();
    assert_eq!(kinds(&r), vec![(FailureKind::DeletedEarly, Some(17))]);
    assert!(r.failures[0]
        .message
        .contains("deleted before its retention ended"));
    assert_eq!(
        r.failures[0].event_id.as_deref(),
        Some(event_id(17).as_str())
    );
}

#[test]
fn a_forged_unlogged_row_is_caught_and_a_fresh_one_is_pending() {
    let mut f = Fixture::new(10);
    let forged = event_id(999);
    f.unlogged
        .push((NOW - 3 * DAY, event_text(&forged, NOW - 3 * DAY, 999)));
    f.unlogged
        .push((NOW - 5_000, event_text(&event_id(1000), NOW - 5_000, 1000)));
    let r = f.verify();
    assert_eq!(kinds(&r), vec![(FailureKind::Unlogged, None)]);
    assert_eq!(r.failures[0].event_id.as_deref(), Some(forged.as_str()));
    assert!(r.failures[0].message.contains("stored but not in the log"));
    assert_eq!(r.pending, 1);
}

#[test]
fn two_swapped_rows_are_both_caught() {
    let mut f = Fixture::new(30);
    // Their payloads and descriptions swapped, the ids and times left in place.
    let a: serde_json::Value = serde_json::from_str(f.event_mut(4)).unwrap();
    let b: serde_json::Value = serde_json::from_str(f.event_mut(9)).unwrap();
    let mut a2 = a.clone();
    let mut b2 = b.clone();
    for k in ["request", "description"] {
        a2[k] = b[k].clone();
        b2[k] = a[k].clone();
    }
    *f.event_mut(4) = a2.to_string();
    *f.event_mut(9) = b2.to_string();
    assert_eq!(
        kinds(&f.verify()),
        vec![
            (FailureKind::ContentAltered, Some(4)),
            (FailureKind::ContentAltered, Some(9))
        ]
    );
}

#[test]
fn two_swapped_whole_events_are_caught_by_id() {
    let mut f = Fixture::new(30);
    let a = f.rows[4].1.take();
    f.rows[4].1 = f.rows[9].1.take();
    f.rows[9].1 = a;
    let k = kinds(&f.verify());
    for i in [4, 9] {
        assert!(k.contains(&(FailureKind::ContentAltered, Some(i))), "{k:?}");
        assert!(
            k.contains(&(FailureKind::EventIdMismatch, Some(i))),
            "{k:?}"
        );
        assert!(k.contains(&(FailureKind::TimeMismatch, Some(i))), "{k:?}");
    }
}

#[test]
fn reordered_leaf_lines_are_caught() {
    let mut f = Fixture::new(30);
    f.rows.swap(10, 11);
    let k = kinds(&f.verify());
    assert!(
        k.contains(&(FailureKind::LeafOutOfOrder, Some(11))),
        "{k:?}"
    );
    assert!(
        k.contains(&(FailureKind::LeafOutOfOrder, Some(10))),
        "{k:?}"
    );
}

#[test]
fn a_truncated_tail_is_caught() {
    let mut f = Fixture::new(300);
    let note = f.note(300);
    f.rows.truncate(290);
    let r = f.verify_with(&f.export_with(&note), Vec::new());
    assert_eq!(kinds(&r), vec![(FailureKind::Truncated, None)]);
    assert!(
        r.failures[0]
            .message
            .contains("290 of the checkpoint's 300"),
        "{}",
        r.failures[0]
    );
}

#[test]
fn an_altered_leaf_stub_breaks_the_root() {
    // A rewritten leaf whose hash is recomputed (so it is self-consistent): the root differs.
    let mut f = Fixture::new(20);
    let (leaf, event) = &mut f.rows[3];
    *event = None;
    leaf.time_ms -= 30 * DAY;
    let data = LeafData {
        event_id: leaf.event_id.clone(),
        time_ms: leaf.time_ms,
        content_sha256: hex::decode(&leaf.content_sha256)
            .unwrap()
            .try_into()
            .unwrap(),
    };
    leaf.leaf_hash = b64(&data.leaf_hash());
    assert_eq!(kinds(&f.verify()), vec![(FailureKind::RootMismatch, None)]);
}

#[test]
fn a_leaf_hash_that_is_not_of_its_fields_is_caught() {
    let mut f = Fixture::new(20);
    f.rows[5].0.leaf_hash = f.rows[6].0.leaf_hash.clone();
    let k = kinds(&f.verify());
    assert_eq!(k, vec![(FailureKind::LeafHashMismatch, Some(5))]);
}

#[test]
fn a_checkpoint_signed_by_another_key_is_caught() {
    let f = Fixture::new(20);
    let other = Signer::generate("log.example", KeyKind::Note).unwrap();
    let r = f.verify_with(&f.export_with(&f.note_by(&other, 20)), Vec::new());
    assert_eq!(kinds(&r), vec![(FailureKind::BadSignature, None)]);
    assert!(r.failures[0]
        .message
        .contains("not signed by any pinned log key"));
}

#[test]
fn a_rotated_key_verifies_when_both_are_pinned() {
    let f = Fixture::new(20);
    let new = Signer::generate("log.example", KeyKind::Note).unwrap();
    let keys = Keys::parse(
        &[f.signer.verifier().to_string(), new.verifier().to_string()],
        &[],
    )
    .unwrap();
    let r = run(
        keys,
        &f.export_with(&f.note_by(&new, 20)),
        Vec::new(),
        0,
        10,
    );
    assert!(r.ok(), "{:#?}", r.failures);
}

#[test]
fn another_workspaces_origin_is_caught() {
    let mut f = Fixture::new(5);
    f.origin = "log.example/ws_other".into();
    let k = kinds(&f.verify());
    assert!(k.contains(&(FailureKind::WrongOrigin, None)), "{k:?}");
}

fn reference(f: &Fixture, note: &str) -> Reference {
    Reference {
        source: "the remembered checkpoint".into(),
        checkpoint: SignedCheckpoint::verified(note, &f.keys(), "remembered").unwrap(),
    }
}

#[test]
fn an_export_older_than_a_remembered_checkpoint_is_rolled_back() {
    let mut f = Fixture::new(100);
    let remembered = reference(&f, &f.note(100));
    // The log rolled back to 80 leaves, consistently re-signed.
    let note = f.note(80);
    f.rows.truncate(80);
    let r = f.verify_with(&f.export_with(&note), vec![remembered]);
    assert_eq!(kinds(&r), vec![(FailureKind::RolledBack, None)]);
    assert!(r.failures[0].message.contains("rolled back / truncated"));
}

#[test]
fn an_export_extending_a_remembered_checkpoint_verifies_and_a_rewritten_one_does_not() {
    let f = Fixture::new(100);
    let r = f.verify_with(&f.export(), vec![reference(&f, &f.note(60))]);
    assert!(r.ok(), "{:#?}", r.failures);
    // The same log with event 30 rewritten (its time moved by 1 ms) and re-signed by the
    // same key: its root at 60 differs from the remembered one.
    let mut h = Fixture::with_times(
        (0..100)
            .map(|i| NOW - DAY / 24 - (100 - i) as i64 * 60_000 + i64::from(i == 30))
            .collect(),
    );
    h.signer = Signer::from_private_key(&f.signer.private_key()).unwrap();
    let r = h.verify_with(&h.export(), vec![reference(&h, &f.note(60))]);
    assert_eq!(kinds(&r), vec![(FailureKind::Inconsistent, None)]);
    assert!(
        r.failures[0].message.contains("at size 60"),
        "{}",
        r.failures[0]
    );
}

#[test]
fn a_row_gone_after_its_retention_is_no_false_alarm() {
    // Events 10 days old on Free (7 days): gone, on time.
    let mut f = Fixture::with_times((0..20).map(|i| NOW - 10 * DAY + i * 1000).collect());
    for r in &mut f.rows[..10] {
        r.1 = None;
    }
    let r = f.verify();
    assert!(r.ok(), "{:#?}", r.failures);
    assert_eq!((r.events, r.expired), (10, 10));
}

#[test]
fn a_row_gone_after_a_downgrade_is_no_false_alarm_but_not_before_it() {
    // Pro (90 days) until 2 days ago, then Free (7): a 30-day-old event may be gone.
    let mut f = Fixture::with_times(vec![NOW - 30 * DAY, NOW - 3 * DAY]);
    f.retention = vec![
        RetentionPeriod {
            from_ms: i64::MIN,
            retention_days: 90,
        },
        RetentionPeriod {
            from_ms: NOW - 2 * DAY,
            retention_days: 7,
        },
    ];
    f.rows[0].1 = None;
    let r = f.verify();
    assert!(r.ok(), "{:#?}", r.failures);
    assert_eq!(r.expired, 1);
    // The 3-day-old one is still within Free's 7 days.
    f.rows[1].1 = None;
    assert_eq!(
        kinds(&f.verify()),
        vec![(FailureKind::DeletedEarly, Some(1))]
    );
    // Without the downgrade (Pro all along), the 30-day-old one was deleted early.
    f.rows[1].1 = Some(event_text(&event_id(1), NOW - 3 * DAY, 1));
    f.retention.truncate(1);
    assert_eq!(
        kinds(&f.verify()),
        vec![(FailureKind::DeletedEarly, Some(0))]
    );
}

#[test]
fn every_failure_is_listed_up_to_the_cap_and_counted() {
    let mut f = Fixture::new(50);
    for r in &mut f.rows {
        r.1 = None;
    }
    let r = run(f.keys(), &f.export(), Vec::new(), 0, 10);
    assert_eq!((r.failures.len(), r.failure_count), (10, 50));
    assert!(r.summary().starts_with("FAILED"), "{}", r.summary());
}

#[test]
fn garbage_lines_and_a_missing_header_are_reported() {
    let f = Fixture::new(3);
    let export = f.export();
    let mut lines: Vec<&str> = export.lines().collect();
    lines.insert(2, "not json");
    let r = f.verify_with(&lines.join("\n"), Vec::new());
    assert!(r.has(FailureKind::Malformed), "{:#?}", r.failures);
    let r = f.verify_with(&lines[1..].join("\n"), Vec::new());
    assert!(r.has(FailureKind::MissingHeader), "{:#?}", r.failures);
    assert!(f
        .verify_with("", Vec::new())
        .has(FailureKind::MissingHeader));
}

#[test]
fn an_inclusion_proof_verifies_and_a_wrong_one_does_not() {
    let f = Fixture::new(1000);
    let note = f.note(1000);
    let proof = |i: usize| InclusionBody {
        leaf: f.rows[i].0.clone(),
        tree_size: 1000,
        hashes: inclusion_proof(i as u64, 1000, &f.tiles)
            .unwrap()
            .iter()
            .map(|h| b64(h))
            .collect(),
    };
    let ev = f.rows[777].1.clone();
    let r = check_inclusion(&proof(777), &note, &f.keys(), ev.as_deref());
    assert!(r.ok(), "{:#?}", r.failures);
    // Another event with this proof.
    let other = f.rows[778].1.clone();
    let r = check_inclusion(&proof(777), &note, &f.keys(), other.as_deref());
    assert!(r.has(FailureKind::ContentAltered) && r.has(FailureKind::EventIdMismatch));
    // Another leaf's proof.
    let mut p = proof(777);
    p.leaf = f.rows[776].0.clone();
    let r = check_inclusion(&p, &note, &f.keys(), None);
    assert_eq!(kinds(&r), vec![(FailureKind::NotIncluded, Some(776))]);
}

#[test]
fn a_consistency_proof_verifies_and_a_forked_log_does_not() {
    let f = Fixture::new(700);
    let body = |old: u64, new: u64| ConsistencyBody {
        first: old,
        second: new,
        hashes: consistency_proof(old, new, &f.tiles)
            .unwrap()
            .iter()
            .map(|h| b64(h))
            .collect(),
    };
    let r = check_consistency_notes(&body(300, 700), &f.note(300), &f.note(700), &f.keys());
    assert!(r.ok(), "{:#?}", r.failures);
    // A checkpoint of size 300 of another log (a fork).
    let g = Fixture::with_times((0..700).map(|i| NOW - 1000 * DAY + i).collect());
    let fork = g.note_by(&f.signer, 300);
    let r = check_consistency_notes(&body(300, 700), &fork, &f.note(700), &f.keys());
    assert_eq!(kinds(&r), vec![(FailureKind::Inconsistent, None)]);
    // Old and new the wrong way round.
    let r = check_consistency_notes(&body(300, 700), &f.note(700), &f.note(300), &f.keys());
    assert!(!r.ok());
}

#[test]
fn witness_cosignatures_are_counted_and_required() {
    let f = Fixture::new(10);
    let witness = Signer::generate("witness.example", KeyKind::Cosignature).unwrap();
    let keys = Keys::parse(
        &[f.signer.verifier().to_string()],
        &[witness.verifier().to_string()],
    )
    .unwrap();
    let plain = f.note(10);
    let mut cosigned = Note::parse(&plain).unwrap();
    let sig = auditlog_tlog::cosignature::cosign(&witness, &cosigned.text, 1_800_000_000).unwrap();
    cosigned.signatures.push(sig);
    let run = |note: &str| run(keys.clone(), &f.export_with(note), Vec::new(), 1, 10);
    let r = run(&cosigned.to_string());
    assert!(r.ok(), "{:#?}", r.failures);
    assert_eq!(kinds(&run(&plain)), vec![(FailureKind::NotWitnessed, None)]);
    // A cosignature by another witness of the same name does not count.
    let impostor = Signer::generate("witness.example", KeyKind::Cosignature).unwrap();
    let mut forged = Note::parse(&plain).unwrap();
    forged
        .signatures
        .push(auditlog_tlog::cosignature::cosign(&impostor, &forged.text, 1).unwrap());
    assert_eq!(
        kinds(&run(&forged.to_string())),
        vec![(FailureKind::NotWitnessed, None)]
    );
}
