//! `auditlog config --defaults`: every setting at its default as documented TOML, generated
//! from the config structs (their `///` comments, serde attributes and `Default`s, read through
//! `schemars`; see `auditlog_settings::reference`). The settings tables of README.md and
//! docs/*.md are generated the same way and checked by this module's tests.

use anyhow::Result;
use clap::Args;

use auditlog_settings::reference::Reference;

use crate::config::Config;

/// Print the configuration reference (settings: every section).
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print every section and setting at its default as TOML, each with its documentation and
    /// the environment variable that overrides it (a config file to start from).
    #[arg(long, required = true)]
    pub defaults: bool,
}

/// The reference of the whole configuration.
pub fn reference() -> Reference {
    Reference::of::<Config>("AUDITLOG")
}

/// The text `auditlog config --defaults` prints.
pub fn defaults_toml() -> String {
    reference().toml(
        "auditlog configuration: every setting at its default (`auditlog config --defaults`).\n\
         Read from defaults, then this file (--config FILE or AUDITLOG_CONFIG), then AUDITLOG_*\n\
         environment variables. Durations are written like \"5ms\", \"1s\", \"30s\", \"2m\".",
    )
}

/// Prints the reference.
pub fn run(_args: &ConfigArgs) -> Result<()> {
    print!("{}", defaults_toml());
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use figment::providers::{Format, Toml};
    use figment::Figment;

    use super::*;

    #[test]
    fn defaults_toml_reads_back_as_the_defaults() {
        let text = defaults_toml();
        let cfg: Config = Figment::from(Toml::string(&text)).extract().unwrap();
        assert_eq!(cfg, Config::default());
        for needle in [
            "[kafka]\n",
            "# env: AUDITLOG_KAFKA__BROKERS\nbrokers = \"127.0.0.1:9092\"\n",
            "# env: AUDITLOG_KAFKA__DLQ_TOPIC\ndlq_topic = \"audit-events-dlq\"\n",
            "# ssl_ca_file = (unset)\n",
            "linger = \"5ms\"\n",
            "[consumer]\n",
            "batch_max_wait = \"1s\"\n",
            "token_cache = \"2s\"\n",
            "properties = {}\n",
            "[log]\n",
        ] {
            assert!(text.contains(needle), "{needle:?} not in:\n{text}");
        }
    }

    #[test]
    fn every_setting_is_documented_and_its_stated_default_is_the_real_one() {
        let r = reference();
        let names: Vec<&str> = r.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "kafka",
                "clickhouse",
                "producer",
                "consumer",
                "api",
                "streams",
                "sequencer",
                "witness",
                "relay",
                "log"
            ]
        );
        for section in &r.sections {
            assert!(!section.doc.is_empty(), "[{}] has no doc", section.name);
            for s in &section.settings {
                assert!(!s.doc.is_empty(), "{}.{} has no doc", section.name, s.key);
            }
        }
        assert_eq!(r.stated_defaults(), Vec::<String>::new());
    }

    /// `<!-- config-reference:start SECTIONS MODE ... -->`: SECTIONS is `all` or a comma
    /// separated list, MODE `summary` (first sentence of each doc) or `full`.
    const START: &str = "<!-- config-reference:start ";
    const END: &str = "<!-- config-reference:end -->";

    fn docs_with_tables() -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = vec![root.join("README.md")];
        let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect();
        docs.sort();
        files.extend(docs);
        files
    }

    /// `doc` with every generated table regenerated.
    fn regenerate(doc: &str, r: &Reference) -> String {
        let mut out = String::new();
        let mut rest = doc;
        while let Some(s) = rest.find(START) {
            let head_end = s + rest[s..].find("-->").expect("an unclosed marker") + 3;
            let head = &rest[s + START.len()..head_end - 3];
            let mut words = head.split_whitespace();
            let sections: Vec<&str> = match words.next() {
                Some("all") | None => Vec::new(),
                Some(list) => list.split(',').collect(),
            };
            for name in &sections {
                assert!(r.section(name).is_some(), "no section [{name}] in {head:?}");
            }
            let summary = words.next() == Some("summary");
            let e = head_end
                + rest[head_end..]
                    .find(END)
                    .expect("a table without its end marker");
            out.push_str(&rest[..head_end]);
            out.push('\n');
            out.push_str(&r.markdown(&sections, summary));
            rest = &rest[e..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn docs_settings_tables_are_generated_from_the_structs() {
        let r = reference();
        let mut stale = Vec::new();
        let mut tables = 0;
        for path in docs_with_tables() {
            let doc = std::fs::read_to_string(&path).unwrap();
            tables += doc.matches(START).count();
            let wanted = regenerate(&doc, &r);
            if wanted != doc {
                if std::env::var_os("UPDATE_DOCS").is_some() {
                    std::fs::write(&path, wanted).unwrap();
                } else {
                    stale.push(path.display().to_string());
                }
            }
        }
        assert!(
            tables >= 4,
            "README.md and docs/ lost their settings tables"
        );
        assert!(
            stale.is_empty(),
            "settings tables out of date in {stale:?}; run UPDATE_DOCS=1 cargo test -p auditlog \
             docs_settings_tables"
        );
    }
}
