//! The keys and configuration files of the stack's witness and sequencer (the tamper-evident
//! log, docs/integrity.md). Each stack generates its own keys once, with `auditlog keygen`,
//! into `<data dir>/keys/` (`log.key` / `log.pub`, `witness.key` / `witness.pub`; private keys
//! mode 0600), and writes `<data dir>/witness.toml` and `<data dir>/sequencer.toml`, passed as
//! `--config` (the other settings come from the same `AUDITLOG_*` variables as every app).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};

use crate::settings::Component;
use crate::Stack;

/// Origin prefix of the stack's logs (a workspace's log is `auditlog.local/<workspace>`) and
/// the name of its signing key.
pub const ORIGIN_PREFIX: &str = "auditlog.local";
/// Name of the stack witness's key.
pub const WITNESS_NAME: &str = "witness.local";

/// Writes the configuration file of the witness or the sequencer (generating keys first if
/// needed) and returns its path.
pub fn config_file(stack: &Stack, c: Component) -> Result<PathBuf> {
    let s = &stack.settings;
    let keys = s.data_dir.join("keys");
    std::fs::create_dir_all(&keys).with_context(|| format!("create {}", keys.display()))?;
    let log_pub = key(&s.auditlog_bin, &keys, "log", ORIGIN_PREFIX, false)?;
    let witness_pub = key(&s.auditlog_bin, &keys, "witness", WITNESS_NAME, true)?;
    let witness_port = s.app_port(Component::Witness);
    let (file, text) = match c {
        Component::Witness => (
            "witness.toml",
            format!(
                "[witness]\nlisten = {listen}\nkey_file = {key}\nstate_dir = {state}\n\n\
                 [[witness.logs]]\norigin_prefix = {prefix}\nverifier_key = {log_pub}\n",
                listen = quote(&format!("127.0.0.1:{witness_port}")),
                key = quote(&keys.join("witness.key").display().to_string()),
                state = quote(&s.data_dir.join("witness").display().to_string()),
                prefix = quote(&format!("{ORIGIN_PREFIX}/")),
                log_pub = quote(&log_pub),
            ),
        ),
        Component::Sequencer => (
            "sequencer.toml",
            format!(
                "[sequencer]\nlisten = {listen}\nsigning_key_file = {key}\norigin_prefix = {prefix}\n\n\
                 [[sequencer.witnesses]]\nurl = {url}\nverifier_key = {witness_pub}\n",
                listen = quote(&format!("127.0.0.1:{}", s.app_port(Component::Sequencer))),
                key = quote(&keys.join("log.key").display().to_string()),
                prefix = quote(ORIGIN_PREFIX),
                url = quote(&format!("http://127.0.0.1:{witness_port}")),
                witness_pub = quote(&witness_pub),
            ),
        ),
        _ => bail!("{} has no configuration file", c.name()),
    };
    let path = s.data_dir.join(file);
    crate::components::write(&path, &text)?;
    Ok(path)
}

/// The verifier key of `<keys>/<stem>.key`, generating the key (and `<stem>.pub`) when absent.
fn key(bin: &Path, keys: &Path, stem: &str, name: &str, witness: bool) -> Result<String> {
    let private = keys.join(format!("{stem}.key"));
    let public = keys.join(format!("{stem}.pub"));
    if private.exists() {
        let text = std::fs::read_to_string(&public).with_context(|| {
            format!(
                "read {} (delete {} to make a new key)",
                public.display(),
                private.display()
            )
        })?;
        return Ok(text.trim().to_owned());
    }
    let mut cmd = Command::new(bin);
    cmd.args(["keygen", "--name", name, "--out"]).arg(&private);
    if witness {
        cmd.arg("--witness");
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {} keygen", bin.display()))?;
    if !out.status.success() {
        bail!(
            "auditlog keygen for {} failed: {}",
            private.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let verifier = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    crate::components::write(&public, &format!("{verifier}\n"))?;
    Ok(verifier)
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_toml_strings() {
        assert_eq!(quote(r#"/a "b"\c"#), r#""/a \"b\"\\c""#);
        let parsed: toml::Value = toml::from_str(&format!("x = {}", quote("a\"\\\u{1}b"))).unwrap();
        assert_eq!(parsed["x"].as_str(), Some("a\"\\\u{1}b"));
    }
}
