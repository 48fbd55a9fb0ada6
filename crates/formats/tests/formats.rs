//! The three formats over catalog events: OCSF documents carry every attribute their class
//! requires (lists below, from the OCSF 1.3.0 schema), ECS documents the fields ECS and the
//! Elastic integrations rely on, `json` is the detail body, payloads keep their bytes, and the
//! output is stable (golden files; `UPDATE_GOLDEN=1` rewrites them).

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_event::{AuditEvent, KnownEvent, Payload};
use auditlog_formats::{render, Format, Mapping, OcsfClass};
use serde_json::Value;

/// Required attributes, from github.com/ocsf/ocsf-schema at tag 1.3.0:
/// `includes/classification.json` (activity_id, category_uid, class_uid, type_uid),
/// `includes/occurrence.json` (time), `events/base_event.json` (metadata, severity_id),
/// and the class file.
const BASE_REQUIRED: [&str; 7] = [
    "activity_id",
    "category_uid",
    "class_uid",
    "type_uid",
    "time",
    "metadata",
    "severity_id",
];
/// `events/application/api.json` (API Activity, uid 3 in category 6).
const API_ACTIVITY_REQUIRED: [&str; 3] = ["actor", "api", "src_endpoint"];
/// `events/iam/account_change.json` (Account Change, uid 1 in category 3).
const ACCOUNT_CHANGE_REQUIRED: [&str; 1] = ["user"];
/// `objects/metadata.json`, `objects/product.json`, `objects/api.json`.
const METADATA_REQUIRED: [&str; 2] = ["product", "version"];
const PRODUCT_REQUIRED: [&str; 1] = ["vendor_name"];
const API_REQUIRED: [&str; 1] = ["operation"];

/// Every attribute a class defines (base event, classification, occurrence, the category
/// file and the class file): a document with anything else would fail strict validation.
fn allowed(class: u64) -> BTreeSet<&'static str> {
    let mut a: BTreeSet<&str> = [
        // classification + occurrence
        "activity_id",
        "activity_name",
        "category_uid",
        "category_name",
        "class_uid",
        "class_name",
        "type_uid",
        "type_name",
        "count",
        "duration",
        "end_time",
        "start_time",
        "time",
        "timezone_offset",
        // base_event
        "enrichments",
        "message",
        "metadata",
        "observables",
        "raw_data",
        "severity",
        "severity_id",
        "status",
        "status_code",
        "status_detail",
        "status_id",
        "unmapped",
    ]
    .into();
    match class {
        6003 => a.extend([
            "actor",
            "api",
            "dst_endpoint",
            "http_request",
            "resources",
            "src_endpoint",
        ]),
        // iam.json adds http_request and src_endpoint
        3001 => a.extend([
            "actor",
            "policy",
            "user",
            "user_result",
            "http_request",
            "src_endpoint",
        ]),
        other => panic!("unexpected class {other}"),
    }
    a
}

fn has(v: &Value, key: &str) -> bool {
    v.get(key).is_some_and(|x| !x.is_null())
}

/// Checks `doc` against the OCSF 1.3.0 requirements of its class.
fn check_ocsf(doc: &Value, what: &str) {
    for k in BASE_REQUIRED {
        assert!(has(doc, k), "{what}: missing {k} in {doc}");
    }
    let class = doc["class_uid"].as_u64().unwrap();
    let activity = doc["activity_id"].as_u64().unwrap();
    let class_required: &[&str] = match class {
        6003 => &API_ACTIVITY_REQUIRED,
        3001 => &ACCOUNT_CHANGE_REQUIRED,
        other => panic!("{what}: class {other}"),
    };
    for k in class_required {
        assert!(has(doc, k), "{what}: missing {k} in {doc}");
    }
    for k in doc.as_object().unwrap().keys() {
        assert!(
            allowed(class).contains(k.as_str()),
            "{what}: {k} is not an attribute of {class}"
        );
    }
    // Enumerations.
    let activities: &[u64] = if class == 6003 {
        &[0, 1, 2, 3, 4, 99]
    } else {
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 99]
    };
    assert!(
        activities.contains(&activity),
        "{what}: activity {activity}"
    );
    assert_eq!(
        doc["category_uid"].as_u64().unwrap(),
        class / 1000,
        "{what}"
    );
    assert_eq!(
        doc["type_uid"].as_u64().unwrap(),
        class * 100 + activity,
        "{what}"
    );
    assert!([0, 1, 2, 3, 4, 5, 6, 99].contains(&doc["severity_id"].as_u64().unwrap()));
    assert!([0, 1, 2, 99].contains(&doc["status_id"].as_u64().unwrap()));
    assert!(doc["time"].is_i64());
    // Objects.
    for k in METADATA_REQUIRED {
        assert!(has(&doc["metadata"], k), "{what}: metadata.{k}");
    }
    for k in PRODUCT_REQUIRED {
        assert!(
            has(&doc["metadata"]["product"], k),
            "{what}: metadata.product.{k}"
        );
    }
    assert_eq!(doc["metadata"]["version"], "1.3.0");
    // user: at least one of account, name, uid; endpoint: at least one of ip, name, ...
    let user_ok = |u: &Value| has(u, "uid") || has(u, "name") || has(u, "account");
    if class == 6003 {
        for k in API_REQUIRED {
            assert!(has(&doc["api"], k), "{what}: api.{k}");
        }
        assert!(user_ok(&doc["actor"]["user"]), "{what}: actor.user");
        for r in doc["resources"].as_array().unwrap() {
            assert!(has(r, "uid") || has(r, "name"), "{what}: resource {r}");
        }
    } else {
        assert!(user_ok(&doc["user"]), "{what}: user");
    }
    if has(doc, "actor") {
        assert!(user_ok(&doc["actor"]["user"]), "{what}: actor.user");
    }
    let ep = &doc["src_endpoint"];
    assert!(
        has(ep, "ip") || has(ep, "name"),
        "{what}: src_endpoint {ep}"
    );
}

/// Checks the ECS fields every document carries.
fn check_ecs(doc: &Value, e: &AuditEvent, inserted_ms: i64) {
    let what = e.event.as_str();
    assert_eq!(
        doc["@timestamp"],
        e.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    assert_eq!(doc["ecs"]["version"], "8.11.0");
    let ev = &doc["event"];
    assert_eq!(ev["id"], e.event_id.to_string());
    assert_eq!(ev["kind"], "event");
    assert_eq!(ev["action"], what);
    assert_eq!(ev["dataset"], "auditlog.audit");
    assert_eq!(ev["outcome"], e.outcome.status.as_str());
    assert_eq!(
        ev["ingested"],
        chrono::DateTime::from_timestamp_millis(inserted_ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    // ECS allowed values (ecs/schemas event.category / event.type, and the pairs ECS allows).
    let cat = ev["category"][0].as_str().unwrap();
    let types: &[&str] = match cat {
        "iam" => &[
            "admin", "change", "creation", "deletion", "group", "info", "user",
        ],
        "configuration" => &["access", "change", "creation", "deletion", "info"],
        "authentication" => &["start", "end", "info"],
        other => panic!("{what}: category {other}"),
    };
    for t in ev["type"].as_array().unwrap() {
        assert!(types.contains(&t.as_str().unwrap()), "{what}: {cat}/{t}");
    }
    assert_eq!(doc["user"]["id"], e.actor.id.as_str());
    assert_eq!(doc["organization"]["id"], e.workspace_id.as_str());
    assert_eq!(doc["message"], e.description.as_str());
    assert!(doc["related"]["user"]
        .as_array()
        .unwrap()
        .contains(&Value::from(e.actor.id.as_str())));
    if !e.context.remote_ip.is_empty() {
        assert_eq!(doc["source"]["ip"], e.context.remote_ip.as_str());
        assert_eq!(doc["related"]["ip"][0], e.context.remote_ip.as_str());
    }
    assert_eq!(
        doc["auditlog"]["targets"].as_array().unwrap().len(),
        e.targets.len()
    );
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn synth() -> Synth {
    Synth::new(SynthConfig {
        seed: 17,
        ..SynthConfig::default()
    })
}

#[test]
fn every_catalog_event_renders_valid_ocsf() {
    let mut synth = synth();
    let mut classes = BTreeSet::new();
    for k in KnownEvent::ALL {
        let e = synth.event_of(*k);
        let doc = parse(&render(Format::Ocsf, &e, 1_764_000_000_000).unwrap());
        check_ocsf(&doc, k.as_str());
        let m = Mapping::known(*k);
        assert_eq!(doc["class_uid"], m.class.uid());
        assert_eq!(
            doc["api"]["operation"]
                .as_str()
                .or(doc["metadata"]["event_code"].as_str()),
            Some(k.as_str())
        );
        assert_eq!(doc["metadata"]["uid"], e.event_id.to_string());
        assert_eq!(doc["metadata"]["tenant_uid"], e.workspace_id.as_str());
        assert_eq!(doc["metadata"]["logged_time"], 1_764_000_000_000_i64);
        assert_eq!(doc["time"], e.time.timestamp_millis());
        assert_eq!(doc["message"], e.description.as_str());
        assert_eq!(doc["actor"]["user"]["uid"], e.actor.id.as_str());
        let failed = e.outcome.reason.is_some();
        assert_eq!(doc["status_id"], if failed { 2 } else { 1 }, "{k}");
        assert_eq!(doc["status_detail"].as_str(), e.outcome.reason.as_deref());
        if m.class == OcsfClass::AccountChange {
            let user = e.targets.iter().find(|t| t.kind == "user").unwrap();
            assert_eq!(doc["user"]["uid"], user.id.as_str(), "{k}");
        } else {
            assert_eq!(doc["resources"].as_array().unwrap().len(), e.targets.len());
        }
        classes.insert(m.class.uid());
    }
    assert_eq!(classes, [3001, 6003].into(), "both classes are in use");
}

#[test]
fn every_catalog_event_renders_ecs_and_json() {
    let mut synth = synth();
    for k in KnownEvent::ALL {
        let e = synth.event_of(*k);
        let ecs = parse(&render(Format::Ecs, &e, 1_764_000_000_000).unwrap());
        check_ecs(&ecs, &e, 1_764_000_000_000);
        // json: the wire format with `inserted_at` appended.
        let json = render(Format::Json, &e, 1_764_000_000_000).unwrap();
        let wire = e.to_json_bytes();
        let mut want = wire[..wire.len() - 1].to_vec();
        want.extend_from_slice(br#","inserted_at":"2025-11-24T16:00:00.000Z"}"#);
        assert_eq!(
            String::from_utf8(json).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }
}

#[test]
fn custom_event_types_render_too() {
    for t in [
        "billing.invoice_paid",
        "user.disable",
        "team.member_invite",
        "webhook.create",
    ] {
        let e = AuditEvent::builder("ws_1", t)
            .target(auditlog_event::Target::new("thing", "t_1", ""))
            .description("custom")
            .build()
            .unwrap();
        check_ocsf(&parse(&render(Format::Ocsf, &e, 0).unwrap()), t);
        check_ecs(&parse(&render(Format::Ecs, &e, 0).unwrap()), &e, 0);
    }
}

/// Request text with numbers no `f64` holds.
const WIDE_NUMBERS: &str = r#"{"big": 18446744073709551617, "huge": 1e400, "tiny": -1e-400, "exact": 0.1000000000000000000001}"#;

#[test]
fn payload_bytes_are_preserved_in_every_format() {
    let mut e = support::key_create();
    e.request = Payload::from_json(WIDE_NUMBERS).unwrap();
    e.response = Payload::from_json("[1e400 , 18446744073709551617]").unwrap();
    for f in Format::ALL {
        let text = String::from_utf8(render(f, &e, support::INSERTED_MS).unwrap()).unwrap();
        // json: top-level `request`; ocsf: `unmapped.request`; ecs: `auditlog.request`.
        assert!(
            text.contains(&format!(r#""request":{WIDE_NUMBERS}"#)),
            "{f:?}: {text}"
        );
        assert!(
            text.contains(r#""response":[1e400 , 18446744073709551617]"#),
            "{f:?}: {text}"
        );
        assert_eq!(text.matches("18446744073709551617").count(), 2, "{f:?}");
    }
}

#[test]
fn golden_output_is_stable() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for (name, e) in [
        ("key_create", support::key_create()),
        ("member_remove", support::member_remove()),
    ] {
        for f in Format::ALL {
            let path = dir.join(format!("{name}.{}.json", f.as_str()));
            let got = render(f, &e, support::INSERTED_MS).unwrap();
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::write(&path, &got).unwrap();
                continue;
            }
            let want = std::fs::read(&path).unwrap_or_default();
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap(),
                "{} changed; UPDATE_GOLDEN=1 cargo test -p auditlog-formats rewrites it",
                path.display()
            );
        }
    }
}
