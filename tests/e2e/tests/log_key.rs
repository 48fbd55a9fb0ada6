//! A missing, unreadable or wrong signing key stops `auditlog sequencer` at startup with an
//! error naming `sequencer.signing_key_file`; an empty setting says it is required.

mod ingest_support;

use anyhow::{ensure, Result};
use ingest_support::World;

#[tokio::test]
async fn a_bad_key_file_stops_startup_naming_the_setting() -> Result<()> {
    let w = World::new("logkey", 1).await?;
    let dir = std::env::temp_dir().join(auditlog_testkit::unique_name("logkeys"));
    std::fs::create_dir_all(&dir)?;
    let garbage = dir.join("garbage.key");
    std::fs::write(&garbage, "this is not a key\n")?;
    let cases = [
        (String::new(), "is required"),
        (dir.join("missing.key").display().to_string(), "cannot read"),
        // A directory cannot be read as a file (running as root, mode bits would not stop it).
        (dir.display().to_string(), "cannot read"),
        (garbage.display().to_string(), "does not hold a private key"),
    ];
    for (path, says) in cases {
        let out = w
            .command(&["sequencer"])
            .env("AUDITLOG_SEQUENCER__SIGNING_KEY_FILE", &path)
            .env("AUDITLOG_SEQUENCER__LISTEN", "")
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success(), "{path:?}: started anyway");
        ensure!(
            stderr.contains("sequencer.signing_key_file") && stderr.contains(says),
            "{path:?}: the error does not name the setting or say {says:?}:\n{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
