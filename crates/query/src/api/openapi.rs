//! The OpenAPI 3.1 document served at `GET /openapi.json`, generated from code: one
//! `#[utoipa::path]` per handler (its parameters from the `IntoParams` types the handlers
//! check against, its bodies from the types they serialize), the error responses from
//! [`ErrorCode`], and the event's shape from the event's JSON Schema
//! (`crates/event/schema/audit-event.schema.json`), so the wire format has one description.
//!
//! The event schema is spliced in as JSON rather than read into utoipa's schema types, which
//! have no `const`, `if`/`then`/`else` or `not` and would drop those rules. The document is
//! built once, on first use.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, ResponseBuilder, Type,
};
use utoipa::{IntoResponses, Modify, OpenApi, ToResponse};

use super::error::{ErrorBody, ErrorCode, RETRY_AFTER_SECS};
use super::ingest::EVENT_SCHEMA;
use super::{admin, events, feed, health, ingest, log, streams};
use crate::filter::MAX_VALUE_LEN;

/// Name of the listed event's schema (the wire format without payloads).
pub const EVENT: &str = "Event";
/// Name of the detailed event's schema (with payloads and `inserted_at`).
pub const EVENT_DETAIL: &str = "EventDetail";

/// Codes answered by the router and middleware on any path rather than by an operation.
const ROUTER_CODES: [ErrorCode; 2] = [ErrorCode::NotFound, ErrorCode::MethodNotAllowed];

#[derive(OpenApi)]
#[openapi(
    info(title = "auditlog query API"),
    paths(
        events::workspace,
        events::list,
        events::detail,
        events::counts,
        events::export,
        feed::feed,
        log::checkpoint,
        log::inclusion,
        log::consistency,
        log::leaves,
        log::keys,
        log::retention,
        admin::get_plan,
        admin::put_plan,
        admin::create_token,
        admin::list_tokens,
        admin::revoke_token,
        streams::create,
        streams::list,
        streams::get,
        streams::delete,
        streams::pause,
        streams::resume,
        streams::replay,
        streams::rotate_secret,
        streams::workspace,
        ingest::ingest,
        ingest::schema,
        health::health,
        health::health_live,
        health::health_ready,
        serve,
        super::metrics_text,
    ),
    components(
        schemas(ErrorBody),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Gone,
            PayloadTooLarge,
            UnsupportedMediaType,
            Unprocessable,
            TooManyRequests,
            HeadersTooLarge,
            Internal,
            Unavailable,
        )
    ),
    modifiers(&Finish),
    security(("workspaceToken" = [])),
    tags(
        (name = "workspace", description = "The token's workspace."),
        (name = "events", description = "Reads of the workspace's events (workspace token)."),
        (name = "feed", description = "The workspace's events in the order they became visible, by cursor (workspace token)."),
        (name = "log", description = "The workspace's tamper-evident log: checkpoints, proofs, leaves, keys, retention history (workspace token; docs/integrity.md)."),
        (name = "ingest", description = "Publishing events over HTTP (ingest token; docs/ingest.md), and the event's JSON Schema."),
        (name = "admin", description = "Plans, tokens and streams (admin token)."),
        (name = "health", description = "Health and metrics (no token)."),
    )
)]
struct ApiDoc;

/// What the derive cannot say: the description, the security schemes, the 431 of every
/// operation.
struct Finish;

impl Modify for Finish {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let router: Vec<String> = ROUTER_CODES
            .iter()
            .map(|c| format!("`{}` ({}): {}.", c.as_str(), c.status().as_u16(), c.when()))
            .collect();
        doc.info.description = Some(format!(
            "Audit log reads and HTTP ingest. Workspace endpoints take a read token (the token \
             decides the workspace); `POST /v1/ingest` takes an ingest token; admin endpoints \
             take the admin token. Errors are \
             `{{\"error\":{{\"code\",\"message\"}}}}` (schema `Error`); a parameter error's \
             message starts with the parameter's name. Unknown and repeated query parameters \
             are a 400; an empty value counts as absent; values are at most {MAX_VALUE_LEN} \
             bytes. Every route: {} Any path: {}",
            HeadersTooLarge::description(),
            router.join(" ")
        ));
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, what) in [
            (
                "workspaceToken",
                "A read token of one workspace (`alt_...`), created by `POST /v1/admin/tokens` or `auditlog token create WS`.",
            ),
            (
                "ingestToken",
                "An ingest token (`alt_...`) of one workspace or a service token of several, created by `POST /v1/admin/tokens` with `\"scope\": \"ingest\"` or `auditlog token create WS --ingest`.",
            ),
            ("adminToken", "The configured `api.admin_token`."),
        ] {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(what.to_owned());
            components.add_security_scheme(name, SecurityScheme::Http(http));
        }
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                op.responses.responses.insert(
                    "431".to_owned(),
                    RefOr::Ref(Ref::from_response_name("HeadersTooLarge")),
                );
            }
        }
    }
}

/// The error response of `status`: every code answered with it, the error body and its
/// headers.
fn error_doc(status: StatusCode) -> utoipa::openapi::Response {
    let codes: Vec<ErrorCode> = ErrorCode::ALL
        .into_iter()
        .filter(|c| c.status() == status)
        .collect();
    let description: Vec<String> = codes
        .iter()
        .map(|c| format!("`{}`: {}.", c.as_str(), c.when()))
        .collect();
    let example = codes
        .first()
        .map(|c| json!({"error": {"code": c.as_str(), "message": example_message(*c)}}));
    let mut r = ResponseBuilder::new()
        .description(description.join(" "))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .example(example)
                .build(),
        );
    let integer = || ObjectBuilder::new().schema_type(Type::Integer).build();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r = r.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(integer())
                .description(Some(format!("Seconds to wait: {RETRY_AFTER_SECS}.")))
                .build(),
        );
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        r = r.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(integer())
                .description(Some(format!(
                    "Seconds to wait: `too_many_requests`, until one more failure is allowed (at least 1); `overloaded`, {}.",
                    super::error::OVERLOADED_RETRY_AFTER_SECS
                )))
                .build(),
        );
    }
    if status == StatusCode::UNAUTHORIZED {
        r = r.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String).build())
                .description(Some("`Bearer`."))
                .build(),
        );
    }
    r.build()
}

/// A message as the API writes it for `code`, for the examples.
fn example_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::BadParameter => "limit: \"0\" is not an integer in 1..=1000",
        ErrorCode::BadCursor => "cursor: signature mismatch (modified, or from another server)",
        ErrorCode::Unauthorized => "missing, unknown or revoked bearer token",
        ErrorCode::Forbidden => "this is an ingest token: it can only publish events (POST /v1/ingest); reads need a read token",
        ErrorCode::NotFound => "event_id: no event 0190f3b2-7c1e-7000-8000-000000000000",
        ErrorCode::NoCheckpoint => "the log of workspace ws_demo has no signed checkpoint yet",
        ErrorCode::NotInLog => {
            "event_id: 0190f3b2-7c1e-7000-8000-000000000000 is not a leaf below the latest checkpoint (size 42)"
        }
        ErrorCode::MethodNotAllowed => "method not allowed on this route",
        ErrorCode::CursorExpired => {
            "cursor: issued 2026-01-01T00:00:00.000Z, longer ago than the workspace's retention (7 days); start again with start=beginning, start=now or start=<time>"
        }
        ErrorCode::PayloadTooLarge => {
            "body: larger than 5242880 bytes (api.ingest_max_body_bytes); send smaller batches"
        }
        ErrorCode::UnsupportedMediaType => {
            "Content-Type: \"text/plain\" is not accepted; send application/json (one event) or application/x-ndjson (one event per line)"
        }
        ErrorCode::Unprocessable => "plan: enterprise needs days (1 to 36500) or unlimited",
        ErrorCode::TooManyRequests => {
            "too many failed authentications from this address; retry in 1 s with a valid token"
        }
        ErrorCode::Overloaded => {
            "3 of 10 valid events were not acknowledged (see failed); those in accepted were"
        }
        ErrorCode::HeadersTooLarge => "headers: 101 header fields, at most 100",
        ErrorCode::Internal => "internal error",
        ErrorCode::Unavailable => "the event store is unavailable; retry later",
    }
}

/// One reusable error response per status, named like the status.
macro_rules! error_responses {
    ($($name:ident = $status:ident;)*) => {$(
        #[doc = concat!("The `", stringify!($status), "` error response (OpenAPI component).")]
        #[derive(Debug)]
        pub struct $name;

        impl $name {
            /// The response's description: its codes and when they are answered.
            pub fn description() -> String {
                error_doc(StatusCode::$status).description
            }
        }

        impl<'s> ToResponse<'s> for $name {
            fn response() -> (&'s str, RefOr<utoipa::openapi::Response>) {
                (stringify!($name), RefOr::T(error_doc(StatusCode::$status)))
            }
        }
    )*};
}

error_responses! {
    BadRequest = BAD_REQUEST;
    Unauthorized = UNAUTHORIZED;
    Forbidden = FORBIDDEN;
    NotFound = NOT_FOUND;
    Gone = GONE;
    PayloadTooLarge = PAYLOAD_TOO_LARGE;
    UnsupportedMediaType = UNSUPPORTED_MEDIA_TYPE;
    Unprocessable = UNPROCESSABLE_ENTITY;
    TooManyRequests = TOO_MANY_REQUESTS;
    HeadersTooLarge = REQUEST_HEADER_FIELDS_TOO_LARGE;
    Internal = INTERNAL_SERVER_ERROR;
    Unavailable = SERVICE_UNAVAILABLE;
}

/// The error responses every `/v1` operation can answer: 400, 401, 403, 429, 500 and 503 (its own,
/// such as a 404, are listed beside it; the 431 of every route is added by [`Finish`]).
#[derive(Debug)]
pub struct V1Errors;

impl IntoResponses for V1Errors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        [
            (StatusCode::BAD_REQUEST, "BadRequest"),
            (StatusCode::UNAUTHORIZED, "Unauthorized"),
            (StatusCode::FORBIDDEN, "Forbidden"),
            (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal"),
            (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
        ]
        .into_iter()
        .map(|(status, name)| {
            (
                status.as_u16().to_string(),
                RefOr::Ref(Ref::from_response_name(name)),
            )
        })
        .collect()
    }
}

/// Fields the API always writes although a producer may leave them out (they have defaults),
/// by JSON pointer of the object in the event schema: required in the API's schemas.
const ALWAYS_WRITTEN: [(&str, &[&str]); 4] = [
    ("", &["bucket", "context", "outcome"]),
    ("/properties/actor", &["name"]),
    ("/properties/targets/items", &["name"]),
    ("/properties/context", &["remote_ip", "user_agent"]),
];

/// `$ref`s to the file's `$defs` replaced by the definitions (keeping the referring
/// description), so the schemas stand alone inside the document.
fn inline_defs(v: &mut Value, defs: &Map<String, Value>) {
    match v {
        Value::Object(o) => {
            let def = o
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/$defs/"))
                .and_then(|name| defs.get(name));
            if let Some(Value::Object(def)) = def {
                o.remove("$ref");
                for (k, d) in def {
                    o.entry(k.clone()).or_insert_with(|| d.clone());
                }
            }
            o.values_mut().for_each(|c| inline_defs(c, defs));
        }
        Value::Array(a) => a.iter_mut().for_each(|c| inline_defs(c, defs)),
        _ => {}
    }
}

fn require(schema: &mut Value, names: &[&str]) {
    if let Some(Value::Array(req)) = schema.get_mut("required") {
        for n in names {
            if !req.iter().any(|r| r == n) {
                req.push(Value::from(*n));
            }
        }
    } else if let Some(o) = schema.as_object_mut() {
        o.insert("required".into(), json!(names));
    }
}

/// The API's event schemas from the event's JSON Schema: [`EVENT`] (as listed: the wire
/// format without `request` and `response`) and [`EVENT_DETAIL`] (with them and
/// `inserted_at`). Both as written by the API: `time` is always RFC 3339 with milliseconds in
/// UTC, and fields with defaults are always present.
pub fn event_schemas() -> [(&'static str, Value); 2] {
    let mut s: Value = serde_json::from_str(EVENT_SCHEMA)
        .unwrap_or_else(|e| unreachable!("audit-event.schema.json is JSON: {e}"));
    let defs = match s.as_object_mut().and_then(|o| o.remove("$defs")) {
        Some(Value::Object(d)) => d,
        _ => Map::new(),
    };
    inline_defs(&mut s, &defs);
    let o = s.as_object_mut().map(std::mem::take).unwrap_or_default();
    let mut event = Map::new();
    for (k, v) in o {
        if !matches!(k.as_str(), "$schema" | "$id" | "title") {
            event.insert(k, v);
        }
    }
    let mut event = Value::Object(event);
    // The API writes the RFC 3339 form only.
    if let Some(time) = event.pointer_mut("/properties/time") {
        let description = time.get("description").cloned();
        if let Some(string) = time.pointer("/oneOf/0").cloned() {
            *time = string;
            if let Some(d) = description {
                time["description"] = d;
            }
        }
    }
    for (pointer, names) in ALWAYS_WRITTEN {
        if let Some(obj) = event.pointer_mut(pointer) {
            require(obj, names);
        }
    }
    let mut payloads = Map::new();
    if let Some(Value::Object(props)) = event.get_mut("properties") {
        for name in ["request", "response"] {
            if let Some(p) = props.remove(name) {
                payloads.insert(name.to_owned(), p);
            }
        }
    }
    let mut detail = event.clone();
    event["description"] = json!(
        "An event as listed: the wire format (audit-event.schema.json) without `request` and `response`."
    );
    detail["description"] = json!(
        "An event with its payloads as stored (byte for byte) and when it was written; NDJSON export lines are this without `inserted_at`."
    );
    if let Some(Value::Object(props)) = detail.get_mut("properties") {
        props.extend(payloads);
        props.insert(
            "inserted_at".into(),
            json!({"type": "string", "format": "date-time", "description": "When the event was written to the store (RFC 3339, milliseconds, UTC)."}),
        );
    }
    require(&mut detail, &["request", "response", "inserted_at"]);
    [(EVENT, event), (EVENT_DETAIL, detail)]
}

/// The document as JSON.
pub fn document_json() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi())
        .unwrap_or_else(|e| unreachable!("the OpenAPI document serializes: {e}"));
    if let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas") {
        for (name, schema) in event_schemas() {
            schemas.insert(name.to_owned(), schema);
        }
    }
    doc
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| document_json().to_string());

/// The document's text (built on first use).
pub fn document() -> &'static str {
    &DOCUMENT
}

/// This document (OpenAPI 3.1).
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "health",
    security(()),
    responses((status = 200, description = "OpenAPI 3.1.", body = Object))
)]
pub async fn serve() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::admin::TOKEN_LIST_PARAMS;
    use crate::api::events::{CountsQuery, ExportQuery, ListQuery};
    use crate::api::extract::ReadQuery;
    use crate::filter::{DEFAULT_LIMIT, MAX_EVENT_ENTRIES, MAX_LIMIT};
    use crate::reader::Summary;

    const METHODS: [&str; 4] = ["get", "put", "post", "delete"];

    /// `(method, path, operation)` of every documented operation.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
        out
    }

    fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("{r} does not resolve")),
            None => v,
        }
    }

    #[test]
    fn every_route_is_documented_once() {
        let doc = document_json();
        let mut documented: Vec<(String, String)> = operations(&doc)
            .into_iter()
            .map(|(m, p, _)| (m, p))
            .collect();
        let mut routed: Vec<(String, String)> = crate::api::routes()
            .into_iter()
            .map(|(m, p)| (m.to_owned(), p.to_owned()))
            .collect();
        documented.sort();
        routed.sort();
        assert_eq!(documented, routed);
        let mut ids: Vec<String> = operations(&doc)
            .iter()
            .map(|(m, p, op)| {
                op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{m} {p} has no operationId"))
                    .to_owned()
            })
            .collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "operationIds are unique");
    }

    #[test]
    fn every_accepted_parameter_is_documented() {
        // What each handler passes to `Params::only` (health, metrics and this document read no
        // parameters).
        let accepted = |method: &str, path: &str| -> Vec<&'static str> {
            match (method, path) {
                ("get", "/v1/events") => ListQuery::accepted(),
                ("get", "/v1/event-counts") => CountsQuery::accepted(),
                ("get", "/v1/export") => ExportQuery::accepted(),
                ("get", "/v1/feed") => crate::api::feed::FeedQuery::accepted(),
                ("get", "/v1/log/proof/inclusion") => log::INCLUSION_PARAMS.to_vec(),
                ("get", "/v1/log/proof/consistency") => log::CONSISTENCY_PARAMS.to_vec(),
                ("get", "/v1/log/leaves") => log::LEAVES_PARAMS.to_vec(),
                ("get", "/v1/admin/tokens") => TOKEN_LIST_PARAMS.to_vec(),
                ("get", "/v1/admin/streams") => super::streams::STREAM_LIST_PARAMS.to_vec(),
                ("get", "/v1/workspace")
                | ("get", "/v1/events/{event_id}")
                | ("get" | "put", "/v1/admin/workspaces/{workspace_id}/plan")
                | ("post", "/v1/admin/tokens")
                | ("delete", "/v1/admin/tokens/{token_id}")
                | ("post", "/v1/admin/streams")
                | ("get" | "delete", "/v1/admin/streams/{stream_id}")
                | ("post", "/v1/admin/streams/{stream_id}/pause")
                | ("post", "/v1/admin/streams/{stream_id}/resume")
                | ("post", "/v1/admin/streams/{stream_id}/replay")
                | ("post", "/v1/admin/streams/{stream_id}/rotate-secret")
                | ("get", "/v1/streams")
                | ("post", "/v1/ingest")
                | ("get", "/v1/schemas/audit-event.json")
                | ("get", "/v1/log/checkpoint" | "/v1/log/keys" | "/v1/log/retention")
                | ("get", "/health" | "/health/live" | "/health/ready")
                | ("get", "/openapi.json" | "/metrics") => Vec::new(),
                other => panic!("{other:?}: say which parameters it accepts"),
            }
        };
        let doc = document_json();
        for (method, path, op) in operations(&doc) {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let named = |place: &str| -> Vec<String> {
                params
                    .iter()
                    .filter(|p| p["in"] == place)
                    .map(|p| p["name"].as_str().unwrap().to_owned())
                    .collect()
            };
            assert_eq!(named("query"), accepted(&method, &path), "{method} {path}");
            let in_path: Vec<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_owned)
                .collect();
            assert_eq!(named("path"), in_path, "{method} {path}");
            for p in &params {
                assert!(p["description"].is_string(), "{method} {path}: {p}");
            }
        }
        // The documented bounds are the parser's.
        let limit = doc["paths"]["/v1/events"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap()["schema"]
            .clone();
        assert_eq!(limit["maximum"], MAX_LIMIT);
        assert_eq!(limit["default"], DEFAULT_LIMIT);
        let described = |name: &str| -> String {
            doc["paths"]["/v1/events"]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap()["description"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert!(described("limit").contains(&format!("1..={MAX_LIMIT}, default {DEFAULT_LIMIT}")));
        assert!(described("event").contains(&format!("at most {MAX_EVENT_ENTRIES} entries")));
    }

    #[test]
    fn every_error_code_is_documented() {
        let doc = document_json();
        let listed: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(listed, ErrorCode::ALL.map(ErrorCode::as_str));
        let info = doc["info"]["description"].as_str().unwrap();
        for code in ErrorCode::ALL {
            let name = format!("`{}`", code.as_str());
            let status = code.status().as_u16().to_string();
            let answered = operations(&doc).iter().any(|(_, _, op)| {
                op["responses"].get(&status).is_some_and(|r| {
                    let r = resolve(&doc, r);
                    r["description"].as_str().unwrap().contains(&name)
                        && r["content"]["application/json"]["schema"]["$ref"]
                            == "#/components/schemas/Error"
                })
            });
            let by_router = ROUTER_CODES.contains(&code) && info.contains(&name);
            assert!(answered || by_router, "{name} is not documented");
        }
        // Every error response names its codes, and only codes of its status.
        for (name, r) in doc["components"]["responses"].as_object().unwrap() {
            let text = r["description"].as_str().unwrap();
            assert!(
                ErrorCode::ALL
                    .iter()
                    .any(|c| text.contains(&format!("`{}`", c.as_str()))),
                "{name}: {text}"
            );
        }
    }

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    out.push(r);
                }
                o.values().for_each(|c| refs(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }

    #[test]
    fn the_served_document_is_openapi_3_1() {
        let text = document();
        let doc: Value = serde_json::from_str(text).unwrap();
        // utoipa's types read every part but the event schemas, which use what they cannot
        // hold (schemas without `type`); every schema is checked as JSON Schema 2020-12, the
        // dialect of OpenAPI 3.1.
        for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
            if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
                panic!("{name}: {e}");
            }
        }
        let mut without_events = doc.clone();
        for name in [EVENT, EVENT_DETAIL] {
            without_events["components"]["schemas"][name] = json!({"type": "object"});
        }
        let parsed: utoipa::openapi::OpenApi = serde_json::from_value(without_events).unwrap();
        assert_eq!(
            serde_json::to_value(&parsed.openapi).unwrap(),
            "3.1.0",
            "OpenAPI 3.1"
        );
        let mut routed: Vec<&str> = crate::api::routes().into_iter().map(|(_, p)| p).collect();
        routed.sort();
        routed.dedup();
        assert_eq!(
            parsed
                .paths
                .paths
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            routed
        );
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            assert!(
                r.starts_with("#/") && doc.pointer(&r[1..]).is_some(),
                "{r} does not resolve"
            );
        }
        for (method, path, op) in operations(&doc) {
            assert!(METHODS.contains(&method.as_str()), "{method} {path}");
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.contains('\n')),
                "{method} {path}"
            );
            let security = op["security"].as_array().unwrap();
            let scheme = security[0].as_object().unwrap().keys().next().cloned();
            match scheme.as_deref() {
                Some(s) => assert!(
                    doc["components"]["securitySchemes"][s].is_object(),
                    "{method} {path}: {s}"
                ),
                None => assert!(
                    !path.starts_with("/v1/") || path.starts_with("/v1/schemas/"),
                    "{method} {path} needs a token"
                ),
            }
            assert!(
                op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|c| c.starts_with('2')),
                "{method} {path}"
            );
        }
        for code in ["429", "503"] {
            let r = &doc["components"]["responses"][if code == "429" {
                "TooManyRequests"
            } else {
                "Unavailable"
            }];
            assert!(r["headers"]["Retry-After"].is_object(), "{code}");
        }
    }

    fn validator(schema: &Value) -> jsonschema::Validator {
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(schema)
            .unwrap()
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    fn required(schema: &Value) -> Vec<String> {
        let mut k: Vec<String> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        k.sort();
        k
    }

    #[test]
    fn the_event_schemas_describe_what_the_api_writes() {
        let [(_, event), (_, detail)] = event_schemas();
        let now = chrono::Utc::now().to_rfc3339();
        let id = uuid::Uuid::now_v7();
        let minimal = format!(
            r#"{{"event_id":"{id}","workspace_id":"w","event":"key.create","time":"{now}",
                "actor":{{"type":"user","id":"u"}},"targets":[{{"type":"key","id":"k"}}],
                "description":"d","version":1}}"#
        );
        let full = format!(
            r#"{{"event_id":"{id}","workspace_id":"w","bucket":"b","event":"key.create","time":"{now}",
                "actor":{{"type":"user","id":"u","name":"U","meta":{{"a":1}}}},
                "targets":[{{"type":"key","id":"k","name":"K","meta":{{}}}}],"description":"d",
                "context":{{"remote_ip":"10.0.0.1","user_agent":"curl","location":"x"}},
                "request":{{"n":1,"s":"x"}},"response":[1.5,null],
                "outcome":{{"status":"failure","reason":"no"}},"correlation_id":"c","version":1}}"#
        );
        let (event_v, detail_v) = (validator(&event), validator(&detail));
        for text in [&minimal, &full] {
            let e = auditlog_event::decode(text.as_bytes()).unwrap();
            let listed = serde_json::to_value(Summary::from(&e)).unwrap();
            let errors: Vec<String> = event_v
                .iter_errors(&listed)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{listed}: {errors:?}");
            let mut shown: Value = serde_json::from_slice(&e.to_json_bytes()).unwrap();
            shown["inserted_at"] = json!(crate::filter::rfc3339_ms(1_767_225_600_123));
            let errors: Vec<String> = detail_v
                .iter_errors(&shown)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{shown}: {errors:?}");
        }
        // The minimal event written has exactly the required fields, at every level.
        let e = auditlog_event::decode(minimal.as_bytes()).unwrap();
        let listed = serde_json::to_value(Summary::from(&e)).unwrap();
        assert_eq!(keys(&listed), required(&event));
        for (pointer, value) in [
            ("/properties/actor", &listed["actor"]),
            ("/properties/targets/items", &listed["targets"][0]),
            ("/properties/context", &listed["context"]),
            ("/properties/outcome", &listed["outcome"]),
        ] {
            assert_eq!(
                keys(value),
                required(event.pointer(pointer).unwrap()),
                "{pointer}"
            );
        }
        // The list never carries payloads; the detail always does.
        assert!(event["properties"].get("request").is_none());
        assert!(detail["required"]
            .as_array()
            .unwrap()
            .contains(&json!("request")));
    }
}
