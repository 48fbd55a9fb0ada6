//! docs/api.md's filter and error tables are generated: the filters from the served OpenAPI
//! document (the `FilterParams` docs), the errors from `ErrorCode`. This test fails when a
//! table is out of date; `UPDATE_DOCS=1 cargo test -p auditlog-query --test docs` rewrites it.

use std::path::Path;

use auditlog_query::api::error::ErrorCode;
use auditlog_query::api::openapi::document_json;
use auditlog_testkit::docs::{sync_sections, Section};

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

#[test]
fn api_md_tables_are_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md");
    let note = |source: &str| format!("generated from {source} by crates/query/tests/docs.rs");
    let sections = [
        Section::new("filters", &note("FilterParams"), filters()),
        Section::new("errors", &note("ErrorCode"), errors()),
    ];
    sync_sections(&path, &sections, "cargo test -p auditlog-query --test docs");
}
