//! docs/api.md's filter and error tables are generated: the filters from the served OpenAPI
//! document (the `FilterParams` docs), the errors from `ErrorCode`. This test fails when a
//! table is out of date; `UPDATE_DOCS=1 cargo test -p auditlog-query --test docs` rewrites it.

use std::path::Path;

use auditlog_query::api::error::ErrorCode;
use auditlog_query::api::openapi::document_json;

fn cell(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}

fn filters() -> String {
    let doc = document_json();
    let mut out = String::from("| parameter | meaning |\n|---|---|\n");
    for p in doc["paths"]["/v1/event-counts"]["get"]["parameters"]
        .as_array()
        .unwrap()
    {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            p["name"].as_str().unwrap(),
            cell(p["description"].as_str().unwrap())
        ));
    }
    out
}

fn errors() -> String {
    let mut out = String::from("| status | code | when |\n|---|---|---|\n");
    for c in ErrorCode::ALL {
        out.push_str(&format!(
            "| {} | `{}` | {} |\n",
            c.status().as_u16(),
            c.as_str(),
            cell(c.when())
        ));
    }
    out
}

/// Replaces the text between `<!-- name:start ... -->` and `<!-- name:end -->`; `Err` names
/// the stale table.
fn check(doc: &mut String, name: &str, source: &str, table: &str) -> Result<(), String> {
    let start =
        format!("<!-- {name}:start (generated from {source} by crates/query/tests/docs.rs) -->");
    let end = format!("<!-- {name}:end -->");
    let (Some(s), Some(e)) = (doc.find(&start), doc.find(&end)) else {
        panic!("docs/api.md lacks the {name} markers: {start} ... {end}");
    };
    let wanted = format!("\n{table}");
    if doc[s + start.len()..e] == wanted {
        return Ok(());
    }
    *doc = format!("{}{start}{wanted}{}", &doc[..s], &doc[e..]);
    Err(name.to_owned())
}

#[test]
fn api_md_tables_are_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md");
    let mut doc = std::fs::read_to_string(&path).unwrap();
    let stale: Vec<String> = [
        check(&mut doc, "filters", "FilterParams", &filters()),
        check(&mut doc, "errors", "ErrorCode", &errors()),
    ]
    .into_iter()
    .filter_map(Result::err)
    .collect();
    if stale.is_empty() {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, doc).unwrap();
    } else {
        panic!(
            "docs/api.md tables {stale:?} are out of date; run UPDATE_DOCS=1 cargo test -p auditlog-query --test docs"
        );
    }
}
