//! Admin endpoints (admin token): plans and tokens.

use std::sync::Arc;

use auditlog_store::Plan;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::{json_rejection, path_rejection};
use super::events::plan_json;
use super::{auth, AppState};
use crate::params::Params;
use crate::tokens::{check_text, check_workspace_id, expiry_at, expiry_in};
use crate::{Error, Result};

type JsonBody<T> = std::result::Result<Json<T>, JsonRejection>;
type PathParam = std::result::Result<Path<String>, PathRejection>;

/// `PUT .../plan` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// `free` | `pro` | `enterprise`.
    pub plan: String,
    /// Enterprise days.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Enterprise unlimited.
    #[serde(default)]
    pub unlimited: bool,
}

/// `POST /v1/admin/tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// Workspace the token reads.
    pub workspace_id: String,
    /// What it is for.
    #[serde(default)]
    pub name: String,
    /// When it stops working (RFC 3339); `null` or absent: never, unless `expires_in`.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// How long it works from now (`30d`, `12h`, `90min`); not with `expires_at`.
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// A path parameter naming a token.
fn path(param: &str, p: PathParam) -> Result<String> {
    let Path(v) = p.map_err(|r| path_rejection(param, r))?;
    check_text(param, &v, true)?;
    Ok(v)
}

/// The `{workspace_id}` path parameter: an id an event can carry.
fn workspace_path(p: PathParam) -> Result<String> {
    let Path(v) = p.map_err(|r| path_rejection("workspace_id", r))?;
    check_workspace_id("workspace_id", &v)?;
    Ok(v)
}

/// Rejects every query parameter not in `allowed` (the admin routes take none but the list's
/// `workspace_id`), like the workspace endpoints.
fn params(raw: Option<&str>, allowed: &[&str]) -> Result<Params> {
    let p = Params::parse(raw)?;
    p.only(allowed)?;
    Ok(p)
}

/// `GET /v1/admin/workspaces/{workspace_id}/plan`.
pub async fn get_plan(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    ws: PathParam,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    params(raw.as_deref(), &[])?;
    let ws = workspace_path(ws)?;
    let plan = auditlog_store::plans::get_plan(s.reader.client(), &ws).await?;
    Ok(Json(plan_json(&plan)).into_response())
}

/// `PUT /v1/admin/workspaces/{workspace_id}/plan`.
pub async fn put_plan(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    ws: PathParam,
    body: JsonBody<PlanBody>,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    params(raw.as_deref(), &[])?;
    let ws = workspace_path(ws)?;
    let Json(body) = body.map_err(json_rejection)?;
    let plan = Plan::from_parts(&body.plan, body.retention_days, body.unlimited)
        .map_err(|e| Error::Unprocessable(e.to_string()))?;
    let set = auditlog_store::plans::set_plan(s.reader.client(), &ws, plan).await?;
    Ok(Json(plan_json(&set)).into_response())
}

/// `POST /v1/admin/tokens`.
pub async fn create_token(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: JsonBody<TokenBody>,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    params(raw.as_deref(), &[])?;
    let Json(body) = body.map_err(json_rejection)?;
    let now = chrono::Utc::now();
    let expires_at = match (body.expires_at.as_deref(), body.expires_in.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(Error::bad(
                "expires_in",
                "give either expires_at or expires_in, not both",
            ))
        }
        (Some(at), None) => Some(expiry_at("expires_at", at, now)?),
        (None, Some(within)) => Some(expiry_in("expires_in", within, now)?),
        (None, None) => None,
    };
    let t = s
        .tokens
        .create_expiring(&body.workspace_id, &body.name, expires_at)
        .await?;
    Ok((StatusCode::CREATED, Json(t)).into_response())
}

/// `GET /v1/admin/tokens?workspace_id=...`.
pub async fn list_tokens(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    let p = params(raw.as_deref(), &["workspace_id"])?;
    let ws = p.get("workspace_id").filter(|w| !w.is_empty());
    if let Some(ws) = ws {
        check_workspace_id("workspace_id", ws)?;
    }
    let tokens = s.tokens.list(ws).await?;
    Ok(Json(json!({"tokens": tokens})).into_response())
}

/// `DELETE /v1/admin/tokens/{token_id}`.
pub async fn revoke_token(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    id: PathParam,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    params(raw.as_deref(), &[])?;
    let id = path("token_id", id)?;
    s.tokens.revoke(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
