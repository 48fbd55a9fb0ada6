//! The log's signing key: read from `sequencer.signing_key_file` at startup (a file holding
//! the `PRIVATE+KEY+<name>+<id>+<key>` text `auditlog keygen` writes). Missing, unreadable or
//! not a note signing key: startup stops with an error naming the setting.

use std::path::Path;

use auditlog_settings::BadSetting;
use auditlog_tlog::{KeyKind, Signer};

/// The setting this module reads.
pub const FIELD: &str = "sequencer.signing_key_file";

/// The signer of the key in `path` (`sequencer.signing_key_file`).
pub fn load(path: &str) -> Result<Signer, BadSetting> {
    if path.trim().is_empty() {
        return Err(BadSetting::new(
            FIELD,
            "is required: the file holding the log's private key (create one with \
             `auditlog keygen`, see docs/integrity.md)",
        ));
    }
    let text = std::fs::read_to_string(Path::new(path))
        .map_err(|e| BadSetting::new(FIELD, format!("cannot read {path}: {e}")))?;
    let signer = Signer::from_private_key(text.trim()).map_err(|e| {
        BadSetting::new(
            FIELD,
            format!("{path} does not hold a private key (PRIVATE+KEY+...): {e}"),
        )
    })?;
    if signer.kind() != KeyKind::Note {
        return Err(BadSetting::new(
            FIELD,
            format!(
                "{path} holds a witness cosignature key, not a log signing key \
                 (`auditlog keygen` without --witness)"
            ),
        ));
    }
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_names_the_setting() {
        let dir = std::env::temp_dir().join(format!("seqkey{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let garbage = dir.join("garbage");
        std::fs::write(&garbage, "not a key\n").unwrap();
        for path in [
            String::new(),
            dir.join("missing").display().to_string(),
            garbage.display().to_string(),
            dir.display().to_string(),
        ] {
            let e = load(&path).unwrap_err();
            assert_eq!(e.field, FIELD, "{path}: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_generated_key_loads() {
        let dir = std::env::temp_dir().join(format!("seqkeyok{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = Signer::generate("log.example", KeyKind::Note).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, format!("{}\n", s.private_key())).unwrap();
        let loaded = load(&path.display().to_string()).unwrap();
        assert_eq!(loaded.verifier().to_string(), s.verifier().to_string());
        let w = Signer::generate("witness.example", KeyKind::Cosignature).unwrap();
        std::fs::write(&path, w.private_key()).unwrap();
        assert_eq!(load(&path.display().to_string()).unwrap_err().field, FIELD);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
