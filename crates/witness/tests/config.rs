//! Startup checks of `[witness]`, and the config example of docs/witness.md.

mod support;

use auditlog_tlog::{KeyKind, Signer};
use auditlog_witness::{OpenError, TrustedLog, Witness, WitnessConfig};
use support::{config, witness_key, PREFIX};

fn field(err: OpenError) -> String {
    match err {
        OpenError::Setting(b) => b.field,
        OpenError::State(e) => panic!("a state error: {e}"),
    }
}

#[test]
fn bad_settings_stop_startup_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let log = Signer::generate("auditlog.test", KeyKind::Note).unwrap();
    let good = config(dir.path(), &witness_key(), &[(PREFIX, &log.verifier())]);
    Witness::open(&good).unwrap();

    let missing = WitnessConfig {
        key_file: dir.path().join("nope.key").display().to_string(),
        ..good.clone()
    };
    assert_eq!(
        field(Witness::open(&missing).unwrap_err()),
        "witness.key_file"
    );

    // A log's note key is not a cosignature key.
    let note_key = dir.path().join("log.key");
    std::fs::write(&note_key, log.private_key()).unwrap();
    let wrong_kind = WitnessConfig {
        key_file: note_key.display().to_string(),
        ..good.clone()
    };
    let err = Witness::open(&wrong_kind).unwrap_err();
    assert!(err.to_string().contains("keygen --witness"), "{err}");
    assert_eq!(field(err), "witness.key_file");

    let garbage = dir.path().join("garbage.key");
    std::fs::write(&garbage, "PRIVATE+KEY+nonsense").unwrap();
    let bad = WitnessConfig {
        key_file: garbage.display().to_string(),
        ..good.clone()
    };
    assert_eq!(field(Witness::open(&bad).unwrap_err()), "witness.key_file");

    let mut bad_log = good.clone();
    bad_log.logs.push(TrustedLog {
        origin_prefix: "other/".into(),
        verifier_key: "not+a+key".into(),
    });
    assert_eq!(
        field(Witness::open(&bad_log).unwrap_err()),
        "witness.logs[1].verifier_key"
    );
    // A witness key in place of a log key.
    bad_log.logs[1].verifier_key = witness_key().verifier().to_string();
    assert_eq!(
        field(Witness::open(&bad_log).unwrap_err()),
        "witness.logs[1].verifier_key"
    );

    let no_state = WitnessConfig {
        state_dir: " ".into(),
        ..good.clone()
    };
    assert_eq!(
        field(Witness::open(&no_state).unwrap_err()),
        "witness.state_dir"
    );
    let no_key = WitnessConfig {
        key_file: String::new(),
        ..good.clone()
    };
    assert_eq!(
        field(Witness::open(&no_key).unwrap_err()),
        "witness.key_file"
    );
    let tiny = WitnessConfig {
        max_body_bytes: 10,
        ..good
    };
    assert_eq!(
        field(Witness::open(&tiny).unwrap_err()),
        "witness.max_body_bytes"
    );
}

#[test]
fn a_corrupt_state_file_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let log = Signer::generate("auditlog.test", KeyKind::Note).unwrap();
    let cfg = config(dir.path(), &witness_key(), &[(PREFIX, &log.verifier())]);
    std::fs::create_dir_all(&cfg.state_dir).unwrap();
    std::fs::write(
        std::path::Path::new(&cfg.state_dir).join("checkpoints.ndjson"),
        "garbage\n{}\n",
    )
    .unwrap();
    let err = Witness::open(&cfg).unwrap_err();
    assert!(matches!(err, OpenError::State(_)), "{err}");
    assert!(err.to_string().contains("line 1"), "{err}");
}

/// The `[witness]` example of docs/witness.md (between `<!-- witness-config:start -->` and
/// `<!-- witness-config:end -->`) reads and validates.
#[test]
fn the_docs_config_example_is_valid() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/witness.md"),
    )
    .unwrap();
    let start = doc.find("<!-- witness-config:start").expect("start marker");
    let end = doc.find("<!-- witness-config:end -->").expect("end marker");
    let block = &doc[start..end];
    let toml_text = block
        .split("```toml")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a toml block");
    #[derive(serde::Deserialize)]
    struct File {
        witness: WitnessConfig,
    }
    let file: File = toml::from_str(toml_text).unwrap();
    file.witness.validate().unwrap();
    assert!(!file.witness.logs.is_empty());
}
