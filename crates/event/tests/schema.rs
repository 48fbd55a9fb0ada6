//! The JSON Schema file against real example events: every valid example passes both the
//! schema and `decode`; every invalid example is rejected by both.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(sub)
}

fn json_files(sub: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn validator() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_slice(&std::fs::read(dir("schema/audit-event.schema.json")).unwrap())
            .unwrap();
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

#[test]
fn valid_examples_pass_schema_and_decode() {
    let schema = validator();
    let files = json_files("examples");
    let mut resources = std::collections::BTreeSet::new();
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        let errors: Vec<String> = schema.iter_errors(&value).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        let event =
            auditlog_event::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        resources.insert(event.event.resource().to_owned());
        // Written back, the event is the same event.
        assert_eq!(
            auditlog_event::decode(&event.to_json_bytes()).unwrap(),
            event
        );
    }
    let expected = ["api", "key", "permission", "ratelimit", "role", "workspace"];
    assert_eq!(
        resources.into_iter().collect::<Vec<_>>(),
        expected,
        "one example per category"
    );
}

#[test]
fn invalid_examples_fail_schema_and_decode() {
    let schema = validator();
    let files = json_files("examples/invalid");
    assert!(files.len() >= 10);
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(
            !schema.is_valid(&value),
            "schema accepted {}",
            path.display()
        );
        let err = auditlog_event::decode(&bytes)
            .expect_err(&format!("decode accepted {}", path.display()));
        assert!(
            err.field().is_some(),
            "{}: {err} names no field",
            path.display()
        );
    }
}

#[test]
fn synthetic_events_pass_the_schema() {
    use auditlog_event::synth::{Synth, SynthConfig};
    let schema = validator();
    let synth = Synth::new(SynthConfig {
        seed: 3,
        ..SynthConfig::default()
    });
    for event in synth.take(500) {
        let value = serde_json::to_value(&event).unwrap();
        let errors: Vec<String> = schema.iter_errors(&value).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{value}: {errors:?}");
    }
}
