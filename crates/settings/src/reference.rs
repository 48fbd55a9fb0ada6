//! The configuration reference, generated from the config structs: each setting's doc comment
//! and format come from the structs' `schemars` schema (`#[derive(JsonSchema)]`, which reads
//! the `///` comments and honours the serde attributes: renames, `flatten`, `with`), its
//! default from serializing the default configuration (the same value the loader starts
//! from), in declaration order. Nobody restates a default by hand: [`Reference::toml`] is
//! `auditlog config --defaults`, [`Reference::markdown`] the tables in README.md and docs/,
//! and [`Reference::stated_defaults`] finds a doc comment whose "Default `X`" disagrees with
//! the real default.

use std::fmt::Write as _;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::Value;

/// One setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The key in its section (`brokers`).
    pub key: String,
    /// The doc comment, one paragraph per `\n\n`.
    pub doc: String,
    /// The default, as serialized (a duration is its humantime string, an unset file `null`).
    pub default: Value,
    /// Whether it is a duration (`"5s"`).
    pub duration: bool,
}

/// One `[section]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// `kafka`.
    pub name: String,
    /// The doc comment of the section's field in the whole configuration.
    pub doc: String,
    /// Its settings, in declaration order.
    pub settings: Vec<Setting>,
}

/// Every section of a configuration, with the environment variable prefix of its overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// `AUDITLOG`: `AUDITLOG_KAFKA__BROKERS` sets `kafka.brokers`.
    pub env_prefix: String,
    /// The sections, in declaration order.
    pub sections: Vec<Section>,
}

impl Reference {
    /// Reads the reference of `C` (a struct of sections, each a struct of settings) from its
    /// schema and its default value.
    pub fn of<C: schemars::JsonSchema + Serialize + Default>(env_prefix: &str) -> Self {
        let generator = schemars::generate::SchemaSettings::draft2020_12()
            .with(|s| s.inline_subschemas = true)
            .into_generator();
        let schema = generator.into_root_schema_for::<C>();
        let json = serde_json::to_string(&C::default()).expect("the defaults serialize");
        let defaults: Ordered = serde_json::from_str(&json).expect("the defaults read back");
        Self::from_parts(env_prefix, schema.as_value(), &defaults)
    }

    fn from_parts(env_prefix: &str, schema: &Value, defaults: &Ordered) -> Self {
        let Ordered::Map(sections) = defaults else {
            panic!("the configuration is not a struct of sections");
        };
        let sections = sections
            .iter()
            .map(|(name, value)| {
                let section_schema = property(schema, name).unwrap_or(&Value::Null);
                let Ordered::Map(keys) = value else {
                    panic!("section {name} is not a struct");
                };
                let settings = keys
                    .iter()
                    .map(|(key, default)| {
                        let s = property(section_schema, key).unwrap_or(&Value::Null);
                        Setting {
                            key: key.clone(),
                            doc: description(s),
                            default: default.to_json(),
                            duration: s.get("format").and_then(Value::as_str) == Some("duration"),
                        }
                    })
                    .collect();
                Section {
                    name: name.clone(),
                    doc: description(section_schema),
                    settings,
                }
            })
            .collect();
        Self {
            env_prefix: env_prefix.to_owned(),
            sections,
        }
    }

    /// The section named `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The environment variable that overrides `section.key`, for a setting that is not a
    /// table.
    pub fn env_var(&self, section: &str, setting: &Setting) -> Option<String> {
        (!setting.default.is_object()).then(|| {
            format!(
                "{}_{}__{}",
                self.env_prefix,
                section.to_uppercase(),
                setting.key.to_uppercase()
            )
        })
    }

    /// Documented TOML with every setting at its default: each section and key, its doc
    /// comment as `#` lines, the environment variable that overrides it. A setting unset by
    /// default (a file path) is shown commented out. Parses back to the defaults.
    pub fn toml(&self, header: &str) -> String {
        let mut out = String::new();
        for line in header.lines() {
            let _ = writeln!(out, "{}", format!("# {line}").trim_end());
        }
        for section in &self.sections {
            out.push('\n');
            comment(&mut out, &section.doc);
            let _ = writeln!(out, "[{}]", section.name);
            for s in &section.settings {
                out.push('\n');
                comment(&mut out, &s.doc);
                if let Some(var) = self.env_var(&section.name, s) {
                    let _ = writeln!(out, "# env: {var}");
                }
                match toml_value(&s.default) {
                    Some(v) => {
                        let _ = writeln!(out, "{} = {v}", s.key);
                    }
                    None => {
                        let _ = writeln!(out, "# {} = (unset)", s.key);
                    }
                }
            }
        }
        out
    }

    /// A Markdown table `| Setting | Default | Meaning |` of `sections` (all when empty).
    /// `summary` keeps only the first sentence of each doc comment, otherwise the whole
    /// comment less its sentences that only state the default (the Default column says it).
    pub fn markdown(&self, sections: &[&str], summary: bool) -> String {
        let mut out = String::from("| Setting | Default | Meaning |\n|---|---|---|\n");
        for section in &self.sections {
            if !sections.is_empty() && !sections.contains(&section.name.as_str()) {
                continue;
            }
            for s in &section.settings {
                let doc = one_line(&s.doc);
                let meaning = if summary {
                    first_sentence(&doc).to_owned()
                } else {
                    without_stated_default(&doc)
                };
                let _ = writeln!(
                    out,
                    "| `{}.{}` | {} | {} |",
                    section.name,
                    s.key,
                    markdown_default(&s.default),
                    meaning.replace('|', "\\|")
                );
            }
        }
        out
    }

    /// Doc comments that state a default ("Default `30s`", "Default empty", "Default none")
    /// other than the real one: `section.key: says X, is Y`.
    pub fn stated_defaults(&self) -> Vec<String> {
        let mut wrong = Vec::new();
        for section in &self.sections {
            for s in &section.settings {
                let doc = one_line(&s.doc);
                for stated in stated_defaults(&doc) {
                    if !agrees(&stated, s) {
                        wrong.push(format!(
                            "{}.{}: its doc says \"Default {stated}\", the default is {}",
                            section.name,
                            s.key,
                            markdown_default(&s.default)
                        ));
                    }
                }
            }
        }
        wrong
    }
}

/// The schema of property `name` of an object schema (looking into `allOf`/`anyOf`/`oneOf`).
fn property<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(p) = schema.get("properties").and_then(|p| p.get(name)) {
        return Some(p);
    }
    ["allOf", "anyOf", "oneOf"]
        .iter()
        .filter_map(|k| schema.get(*k).and_then(Value::as_array))
        .flatten()
        .find_map(|s| property(s, name))
}

fn description(schema: &Value) -> String {
    schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `# ` lines of `text`, wrapped at 96 columns, paragraphs separated by `#`.
fn comment(out: &mut String, text: &str) {
    for (i, para) in text.split("\n\n").enumerate() {
        if i > 0 {
            out.push_str("#\n");
        }
        let mut line = String::from("#");
        for word in para.split_whitespace() {
            if line.len() + 1 + word.len() > 96 && line.len() > 1 {
                let _ = writeln!(out, "{line}");
                line = String::from("#");
            }
            line.push(' ');
            line.push_str(word);
        }
        if line.len() > 1 {
            let _ = writeln!(out, "{line}");
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Up to the first `. ` that ends a sentence (not `e.g.`, not inside backticks).
fn first_sentence(text: &str) -> &str {
    let mut in_code = false;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'`' => in_code = !in_code,
            b'.' if !in_code && bytes.get(i + 1).is_none_or(|&n| n == b' ') => {
                let before = &text[..i];
                if !(before.ends_with("e.g") || before.ends_with("i.e")) {
                    return &text[..=i];
                }
            }
            _ => {}
        }
    }
    text
}

fn toml_value(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => toml::Value::String(s.clone()).to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().filter_map(toml_value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) if map.is_empty() => "{}".into(),
        Value::Object(map) => {
            let pairs: Vec<String> = map
                .iter()
                .filter_map(|(k, v)| {
                    let key = toml::Value::String(k.clone()).to_string();
                    toml_value(v).map(|v| format!("{key} = {v}"))
                })
                .collect();
            format!("{{ {} }}", pairs.join(", "))
        }
    })
}

fn markdown_default(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::String(s) if s.is_empty() => "empty".into(),
        Value::String(s) => format!("`{s}`"),
        Value::Object(map) if map.is_empty() => "empty".into(),
        other => format!("`{}`", toml_value(other).unwrap_or_default()),
    }
}

/// `doc` without the sentences "Default `X`.", "Default empty." and "Default none.".
fn without_stated_default(doc: &str) -> String {
    let mut out = String::with_capacity(doc.len());
    let mut rest = doc;
    while let Some(i) = rest.find("Default ") {
        let after = &rest[i + "Default ".len()..];
        let stated = if let Some(code) = after.strip_prefix('`') {
            code.find('`').map(|end| end + 2)
        } else {
            ["empty", "none"]
                .iter()
                .find(|w| after.starts_with(*w))
                .map(|w| w.len())
        };
        let whole = stated.filter(|&n| {
            after[n..].starts_with('.') && after[n + 1..].chars().next().is_none_or(|c| c == ' ')
        });
        let sentence_start = i == 0 || rest[..i].ends_with(' ');
        match whole {
            Some(n) if sentence_start => {
                out.push_str(rest[..i].trim_end());
                rest = &after[n + 1..];
            }
            _ => {
                out.push_str(&rest[..i + "Default ".len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}

/// What follows each "Default " in `doc`: `` `X` `` (the X), `empty` or `none`.
fn stated_defaults(doc: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find("Default ") {
        rest = &rest[i + "Default ".len()..];
        if let Some(code) = rest.strip_prefix('`') {
            if let Some(end) = code.find('`') {
                found.push(code[..end].to_owned());
            }
        } else if rest.starts_with("empty") {
            found.push("empty".into());
        } else if rest.starts_with("none") {
            found.push("none".into());
        }
    }
    found
}

fn agrees(stated: &str, s: &Setting) -> bool {
    match (&s.default, stated) {
        (Value::Null, "none") => true,
        (Value::String(v), "empty") => v.is_empty(),
        (Value::Object(m), "empty") => m.is_empty(),
        (Value::String(v), _) if s.duration => {
            crate::duration::parse(v).ok() == crate::duration::parse(stated).ok()
        }
        (Value::String(v), _) => v == stated,
        (other, _) => toml_value(other).as_deref() == Some(stated),
    }
}

/// A JSON value whose objects keep their keys in the order they were written (struct
/// declaration order), whatever `serde_json`'s map does.
#[derive(Debug, Clone, PartialEq)]
enum Ordered {
    Scalar(Value),
    List(Vec<Ordered>),
    Map(Vec<(String, Ordered)>),
}

impl Ordered {
    fn to_json(&self) -> Value {
        match self {
            Ordered::Scalar(v) => v.clone(),
            Ordered::List(items) => Value::Array(items.iter().map(Ordered::to_json).collect()),
            Ordered::Map(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Ordered::Map(pairs))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Example settings.
    #[derive(Debug, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields, default)]
    struct Net {
        /// Where to listen. Default `127.0.0.1:1`.
        listen: String,
        /// How long to wait, e.g. for a peer. Default `2s`.
        #[serde(with = "crate::duration")]
        #[schemars(with = "crate::DurationSchema")]
        wait: Duration,
        /// A file. Default none.
        file: Option<String>,
        /// Whether it is on. Default `true`.
        on: bool,
    }

    impl Default for Net {
        fn default() -> Self {
            Self {
                listen: "127.0.0.1:1".into(),
                wait: Duration::from_secs(2),
                file: None,
                on: false,
            }
        }
    }

    #[derive(Debug, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields, default)]
    struct Whole {
        /// `[net]`: the network.
        net: Net,
    }

    #[test]
    fn toml_parses_back_to_the_defaults_with_docs_and_env() {
        let r = Reference::of::<Whole>("APP");
        let text = r.toml("Defaults.");
        let back = toml::from_str::<Whole>(&text).unwrap();
        assert_eq!(back, Whole::default());
        assert!(
            text.starts_with("# Defaults.\n\n# `[net]`: the network.\n[net]\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "# How long to wait, e.g. for a peer. Default `2s`.\n# env: APP_NET__WAIT\nwait = \"2s\"\n"
            ),
            "{text}"
        );
        assert!(text.contains("# file = (unset)\n"), "{text}");
        let table = r.markdown(&[], true);
        assert!(
            table.contains("| `net.wait` | `2s` | How long to wait, e.g. for a peer. |"),
            "{table}"
        );
        assert!(table.contains("| `net.file` | none | A file. |"), "{table}");
        let full = r.markdown(&["net"], false);
        assert!(
            full.contains("| `net.wait` | `2s` | How long to wait, e.g. for a peer. |"),
            "{full}"
        );
        assert_eq!(
            without_stated_default("A. Default `x` (why). B. Default empty. C"),
            "A. Default `x` (why). B. C"
        );
        assert_eq!(
            r.stated_defaults(),
            ["net.on: its doc says \"Default true\", the default is `false`"]
        );
    }
}
