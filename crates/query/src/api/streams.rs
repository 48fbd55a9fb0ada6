//! Stream endpoints: the admin API that configures a workspace's push destinations
//! (`/v1/admin/streams...`, admin token) and the workspace's own read-only list with each
//! stream's delivery status (`GET /v1/streams`, workspace token; the dashboard's panel).
//!
//! Responses never carry credentials: destination tokens and keys and signing secrets are
//! redacted (`****abcd`); only `POST /v1/admin/streams` (for a webhook) and
//! `POST /v1/admin/streams/{stream_id}/rotate-secret` show the new signing secret, once.
//! docs/streams.md describes destinations, signatures and rotation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use auditlog_store::FeedStart;
use auditlog_streams::validate::parse_start;
use auditlog_streams::{Desired, Stream, StreamSpec, StreamStatus, StreamStore};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::path_rejection;
use super::openapi::{NotFound, V1Errors};
use super::{auth, AppState};
use crate::filter::Filter;
use crate::params::Params;
use crate::tokens::{check_text, check_workspace_id};
use crate::{Error, Result};

type PathParam = std::result::Result<Path<String>, PathRejection>;
type RawBody = std::result::Result<Bytes, BytesRejection>;

/// How long the previous signing secret keeps signing after a rotation, by default.
pub const DEFAULT_KEEP_OLD_FOR: Duration = Duration::from_secs(24 * 3600);
/// Longest `keep_old_for`: 30 days.
pub const MAX_KEEP_OLD_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

impl From<auditlog_streams::Error> for Error {
    fn from(e: auditlog_streams::Error) -> Self {
        use auditlog_streams::Error as E;
        match e {
            E::Invalid { field, reason } => Error::bad(field, reason),
            E::NotFound(id) => Error::NotFound(format!("no stream {id}")),
            E::ClickHouse { what, source } => Error::clickhouse(what, source),
            other => Error::Internal(other.to_string()),
        }
    }
}

/// `POST /v1/admin/streams` body: the stream's configuration ([`StreamSpec`]) and where it
/// starts. Unknown fields are refused ([`check_fields`]).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = StreamRequest, example = json!({
    "workspace_id": "ws_demo", "name": "siem",
    "destination": {"type": "webhook", "url": "https://hooks.example.com/audit"},
    "format": "json", "filter": {"event": "key.*"}, "start": "now"}))]
pub struct CreateBody {
    /// The configuration.
    #[serde(flatten)]
    pub spec: StreamSpec,
    /// Where delivery starts: `beginning` (of retention), `now` (default) or an RFC 3339 time
    /// (events stored at or after it).
    #[serde(default)]
    pub start: Option<String>,
}

/// `POST /v1/admin/streams/{stream_id}/replay` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReplayRequest, example = json!({"from": "2026-01-31T12:00:00Z"}))]
pub struct ReplayBody {
    /// `beginning` (of retention), `now` or an RFC 3339 time (events stored at or after it).
    pub from: String,
}

/// `POST /v1/admin/streams/{stream_id}/rotate-secret` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RotateRequest, example = json!({"keep_old_for": "24h"}))]
pub struct RotateBody {
    /// How long the previous secret keeps signing (a second signature): a duration like
    /// `24h` (the default), `90min` or `0s`, at most 30 days.
    #[serde(default)]
    pub keep_old_for: Option<String>,
}

/// A stream as the API shows it: its configuration (credentials and secrets redacted), its
/// delivery status and its replay generation.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = StreamInfo)]
pub struct StreamInfo {
    /// The stream, credentials redacted (`****abcd`).
    #[serde(flatten)]
    pub stream: Stream,
    /// Delivery as the worker last reported it; `null` until a worker did.
    #[schema(required = true)]
    pub status: Option<StreamStatus>,
    /// Replay generation of its cursor (0 until the first replay).
    pub generation: u64,
}

/// A stream with its new signing secret (created, or rotated).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = StreamWithSecret)]
pub struct StreamWithSecret {
    /// The stream.
    #[serde(flatten)]
    pub info: StreamInfo,
    /// The current webhook signing secret (`whsec_...`), shown only here; `null` for other
    /// destinations.
    #[schema(required = true)]
    pub secret: Option<String>,
}

/// The admin list body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = StreamList)]
pub struct StreamListBody {
    /// Oldest first; deleted streams are not listed.
    pub streams: Vec<StreamInfo>,
}

/// The workspace list body (the dashboard's streams panel).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WorkspaceStreams)]
pub struct WorkspaceStreamsBody {
    /// The workspace's streams, oldest first.
    pub data: Vec<StreamInfo>,
}

/// The query parameters of the admin list.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamListParams {
    /// Only this workspace's streams (empty: every workspace's).
    pub workspace_id: Option<String>,
}

/// What the admin list accepts: the names of [`StreamListParams`] (a test checks).
pub const STREAM_LIST_PARAMS: &[&str] = &["workspace_id"];

/// Largest accepted body of a stream endpoint.
pub const MAX_BODY: usize = 64 * 1024;

/// A deserialization error naming the field it is at (`body` for the whole body).
fn field_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> Error {
    let path = e.path().to_string();
    let field = if path == "." { "body".to_owned() } else { path };
    Error::bad(field, e.into_inner().to_string())
}

/// The body as received (an unreadable one is a 400 naming `body`).
fn read_body(b: RawBody) -> Result<Bytes> {
    b.map_err(|r| Error::bad("body", r.body_text()))
}

/// The body parsed strictly; an error names the field (`destination.window_seconds`) and,
/// inside a destination, a field its type does not have is refused.
fn body<T: DeserializeOwned>(bytes: &[u8], optional: bool) -> Result<Option<T>> {
    if bytes.len() > MAX_BODY {
        return Err(Error::bad("body", format!("larger than {MAX_BODY} bytes")));
    }
    if optional && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::bad("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed: T = serde_path_to_error::deserialize(&mut de).map_err(field_error)?;
    Ok(Some(parsed))
}

/// The create body: [`StreamSpec`] read with the path of a bad field kept (serde's
/// `flatten` would lose it), and `start`.
fn create_body(bytes: &[u8]) -> Result<CreateBody> {
    let mut v: serde_json::Value =
        body(bytes, false)?.ok_or_else(|| Error::bad("body", "required"))?;
    let start = match v.as_object_mut().and_then(|o| o.remove("start")) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(t)) => Some(t),
        Some(_) => return Err(Error::bad("start", "must be a string")),
    };
    let spec: StreamSpec = serde_path_to_error::deserialize(v).map_err(field_error)?;
    Ok(CreateBody { spec, start })
}

/// Fields of the body, or of its `destination`, that the stream does not have (serde would
/// ignore them: a typo like `windows_seconds` would silently keep the default).
fn check_fields(bytes: &[u8], parsed: &CreateBody) -> Result<()> {
    let given: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    let known = serde_json::to_value(&parsed.spec).unwrap_or_default();
    let unknown = |given: &serde_json::Value, known: &serde_json::Value, extra: &[&str]| {
        let (Some(given), Some(known)) = (given.as_object(), known.as_object()) else {
            return None;
        };
        given
            .iter()
            .find(|(k, v)| {
                !v.is_null() && !known.contains_key(k.as_str()) && !extra.contains(&k.as_str())
            })
            .map(|(k, _)| k.chars().take(64).collect::<String>())
    };
    if let Some(k) = unknown(&given, &known, &["start"]) {
        return Err(Error::bad(
            k,
            "unknown field (accepted: workspace_id, name, destination, format, filter, start)",
        ));
    }
    if let Some(k) = unknown(&given["destination"], &known["destination"], &[]) {
        let kind = auditlog_streams::store::destination_kind(&parsed.spec.destination);
        return Err(Error::bad(
            format!("destination.{k}"),
            format!("unknown field of a {kind} destination"),
        ));
    }
    Ok(())
}

/// The filter checked like the list endpoint's parameters; errors name `filter.<name>`.
fn check_filter(filter: &BTreeMap<String, String>) -> Result<()> {
    Filter::from_pairs(filter).map(|_| ()).map_err(|e| match e {
        Error::BadParameter { param, reason } => Error::bad(format!("filter.{param}"), reason),
        other => other,
    })
}

/// The `{stream_id}` path parameter.
fn stream_path(p: PathParam) -> Result<String> {
    let Path(v) = p.map_err(|r| path_rejection("stream_id", r))?;
    check_text("stream_id", &v, true)?;
    Ok(v)
}

fn no_params(raw: Option<&str>) -> Result<()> {
    Params::parse(raw)?.only(&[])
}

fn store(s: &AppState) -> StreamStore {
    StreamStore::new(s.reader.client().clone())
}

/// The streams with their status and generation (two reads for any number of streams),
/// credentials redacted: what the API and `auditlog stream list --json` show.
pub async fn infos(store: &StreamStore, streams: Vec<Stream>) -> Result<Vec<StreamInfo>> {
    let ids: Vec<String> = streams.iter().map(|s| s.stream_id.clone()).collect();
    let mut statuses: HashMap<String, StreamStatus> = store
        .statuses(&ids)
        .await?
        .into_iter()
        .map(|s| (s.stream_id.clone(), s))
        .collect();
    let generations: HashMap<String, u64> = store
        .cursors(&ids)
        .await?
        .into_iter()
        .map(|c| (c.stream_id, c.generation))
        .collect();
    Ok(streams
        .into_iter()
        .map(|s| StreamInfo {
            status: statuses.remove(&s.stream_id),
            generation: generations.get(&s.stream_id).copied().unwrap_or(0),
            stream: s.redacted(),
        })
        .collect())
}

/// One stream as [`infos`] shows it.
pub async fn info(store: &StreamStore, stream: Stream) -> Result<StreamInfo> {
    let mut all = infos(store, vec![stream]).await?;
    all.pop()
        .ok_or_else(|| Error::Internal("stream info lost".into()))
}

/// The stream with its current secret (webhooks), for the create and rotate answers.
pub async fn with_secret(store: &StreamStore, stream: Stream) -> Result<StreamWithSecret> {
    let secret = stream.secrets.first().map(|k| k.secret.clone());
    Ok(StreamWithSecret {
        info: info(store, stream).await?,
        secret,
    })
}

/// A stream that exists and is not deleted.
async fn existing(store: &StreamStore, id: &str) -> Result<Stream> {
    match store.get(id).await? {
        Some(s) if s.desired != Desired::Deleted => Ok(s),
        _ => Err(Error::NotFound(format!("no stream {id}"))),
    }
}

/// Create a stream; for a webhook, the answer carries its signing secret (the only time).
#[utoipa::path(
    post,
    path = "/v1/admin/streams",
    operation_id = "createStream",
    tag = "admin",
    request_body = CreateBody,
    security(("adminToken" = [])),
    responses(
        (status = 201, description = "Created; `secret` is the webhook signing secret.", body = StreamWithSecret),
        V1Errors,
    )
)]
pub async fn create(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    bytes: RawBody,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    no_params(raw.as_deref())?;
    let bytes = read_body(bytes)?;
    let b = create_body(&bytes)?;
    check_fields(&bytes, &b)?;
    check_workspace_id("workspace_id", &b.spec.workspace_id)?;
    check_filter(&b.spec.filter)?;
    let start = parse_start("start", b.start.as_deref().unwrap_or("now"))?;
    let store = store(&s);
    let stream = store.create(b.spec, start).await?;
    Ok((
        StatusCode::CREATED,
        Json(with_secret(&store, stream).await?),
    )
        .into_response())
}

/// Streams, optionally of one workspace, oldest first (deleted ones are not listed).
#[utoipa::path(
    get,
    path = "/v1/admin/streams",
    operation_id = "listStreams",
    tag = "admin",
    params(StreamListParams),
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "The streams.", body = StreamListBody),
        V1Errors,
    )
)]
pub async fn list(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    let p = Params::parse(raw.as_deref())?;
    p.only(STREAM_LIST_PARAMS)?;
    let ws = p.get("workspace_id").filter(|w| !w.is_empty());
    if let Some(ws) = ws {
        check_workspace_id("workspace_id", ws)?;
    }
    let store = store(&s);
    let streams = infos(&store, store.list(ws).await?).await?;
    Ok(Json(StreamListBody { streams }).into_response())
}

/// One stream with its status and replay generation.
#[utoipa::path(
    get,
    path = "/v1/admin/streams/{stream_id}",
    operation_id = "getStream",
    tag = "admin",
    params(("stream_id" = String, Path, description = "The stream's id (`str_...`).")),
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "The stream.", body = StreamInfo),
        (status = 404, response = NotFound),
        V1Errors,
    )
)]
pub async fn get(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    id: PathParam,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    no_params(raw.as_deref())?;
    let id = stream_path(id)?;
    let store = store(&s);
    let stream = existing(&store, &id).await?;
    Ok(Json(info(&store, stream).await?).into_response())
}

async fn set_desired(s: &AppState, id: PathParam, desired: Desired) -> Result<Response> {
    let id = stream_path(id)?;
    let store = store(s);
    let stream = store.set_desired(&id, desired, "").await?;
    Ok(Json(info(&store, stream).await?).into_response())
}

/// Pause a stream: nothing is delivered; its cursor stays where it is.
#[utoipa::path(
    post,
    path = "/v1/admin/streams/{stream_id}/pause",
    operation_id = "pauseStream",
    tag = "admin",
    params(("stream_id" = String, Path, description = "The stream's id (`str_...`).")),
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "The paused stream.", body = StreamInfo),
        (status = 404, response = NotFound),
        V1Errors,
    )
)]
pub async fn pause(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    id: PathParam,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    no_params(raw.as_deref())?;
    set_desired(&s, id, Desired::Paused).await
}

/// Resume a stream (paused by hand or automatically): delivery continues from its cursor.
#[utoipa::path(
    post,
    path = "/v1/admin/streams/{stream_id}/resume",
    operation_id = "resumeStream",
    tag = "admin",
    params(("stream_id" = String, Path, description = "The stream's id (`str_...`).")),
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "The active stream.", body = StreamInfo),
        (status = 404, response = NotFound),
        V1Errors,
    )
)]
pub async fn resume(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    id: PathParam,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    no_params(raw.as_deref())?;
    set_desired(&s, id, Desired::Active).await
}

/// Deliver again from a point inside retention (a new cursor generation).
#[utoipa::path(
    post,
    path = "/v1/admin/streams/{stream_id}/replay",
    operation_id = "replayStream",
    tag = "admin",
    params(("stream_id" = String, Path, description = "The stream's id (`str_...`).")),
    request_body = ReplayBody,
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "The stream with its new generation.", body = StreamInfo),
        (status = 404, response = NotFound),
        V1Errors,
    )
)]
pub async fn replay(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    id: PathParam,
    bytes: RawBody,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    no_params(raw.as_deref())?;
    let id = stream_path(id)?;
    let b: ReplayBody =
        body(&read_body(bytes)?, false)?.ok_or_else(|| Error::bad("body", "required"))?;
    let from: FeedStart = parse_start("from", &b.from)?;
    let store = store(&s);
    store.replay(&id, from).await?;
    let stream = existing(&store, &id).await?;
    Ok(Json(info(&store, stream).await?).into_response())
}

/// Give a webhook stream a new signing secret; the old one keeps signing for `keep_old_for`.
#[utoipa::path(
    post,
    path = "/v1/admin/streams/{stream_id}/rotate-secret",
    operation_id = "rotateStreamSecret",
    tag = "admin",
    params(("stream_id" = String, Path, description = "The stream's id (`str_...`).")),
    request_body(content = RotateBody, description = "Optional."),
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "The stream and its new secret (the only time it is shown).", body = StreamWithSecret),
        (status = 404, response = NotFound),
        V1Errors,
    )
)]
pub async fn rotate_secret(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    id: PathParam,
    bytes: RawBody,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    no_params(raw.as_deref())?;
    let id = stream_path(id)?;
    let b: RotateBody = body(&read_body(bytes)?, true)?.unwrap_or_default();
    let keep = match b.keep_old_for.as_deref() {
        None => DEFAULT_KEEP_OLD_FOR,
        Some(text) => keep_old_for("keep_old_for", text)?,
    };
    let store = store(&s);
    let stream = store.rotate_secret(&id, keep).await?;
    Ok(Json(with_secret(&store, stream).await?).into_response())
}

/// Parses how long an old secret keeps signing: a humantime duration, at most 30 days.
pub fn keep_old_for(field: &str, text: &str) -> Result<Duration> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        Error::bad(
            field,
            format!("{text:?} is not a duration like 24h, 90min or 0s: {e}"),
        )
    })?;
    if d > MAX_KEEP_OLD_FOR {
        return Err(Error::bad(field, "at most 30 days"));
    }
    Ok(d)
}

/// Delete a stream: the worker stops delivering it; its credentials are forgotten.
#[utoipa::path(
    delete,
    path = "/v1/admin/streams/{stream_id}",
    operation_id = "deleteStream",
    tag = "admin",
    params(("stream_id" = String, Path, description = "The stream's id (`str_...`).")),
    security(("adminToken" = [])),
    responses(
        (status = 204, description = "Deleted (also when it already was)."),
        (status = 404, response = NotFound),
        V1Errors,
    )
)]
pub async fn delete(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    id: PathParam,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    no_params(raw.as_deref())?;
    let id = stream_path(id)?;
    let store = store(&s);
    match store.get(&id).await? {
        None => return Err(Error::NotFound(format!("no stream {id}"))),
        Some(st) if st.desired == Desired::Deleted => {}
        Some(_) => {
            store.set_desired(&id, Desired::Deleted, "").await?;
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The workspace's streams with their delivery status (credentials redacted).
#[utoipa::path(
    get,
    path = "/v1/streams",
    operation_id = "listWorkspaceStreams",
    tag = "workspace",
    security(("workspaceToken" = [])),
    responses(
        (status = 200, description = "The streams, oldest first.", body = WorkspaceStreamsBody),
        V1Errors,
    )
)]
pub async fn workspace(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let ws = auth::workspace(&s, &headers).await?;
    no_params(raw.as_deref())?;
    let store = store(&s);
    let data = infos(&store, store.list(Some(&ws)).await?).await?;
    Ok(Json(WorkspaceStreamsBody { data }).into_response())
}
