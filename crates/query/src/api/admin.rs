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
use crate::tokens::check_text;
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
}

fn path(param: &str, p: PathParam) -> Result<String> {
    let Path(v) = p.map_err(|r| path_rejection(param, r))?;
    check_text(param, &v, true)?;
    Ok(v)
}

/// `GET /v1/admin/workspaces/{workspace_id}/plan`.
pub async fn get_plan(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    ws: PathParam,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    let ws = path("workspace_id", ws)?;
    let plan = auditlog_store::plans::get_plan(s.reader.client(), &ws).await?;
    Ok(Json(plan_json(&plan)).into_response())
}

/// `PUT /v1/admin/workspaces/{workspace_id}/plan`.
pub async fn put_plan(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    ws: PathParam,
    body: JsonBody<PlanBody>,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    let ws = path("workspace_id", ws)?;
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
    body: JsonBody<TokenBody>,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    let Json(body) = body.map_err(json_rejection)?;
    let t = s.tokens.create(&body.workspace_id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(t)).into_response())
}

/// `GET /v1/admin/tokens?workspace_id=...`.
pub async fn list_tokens(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    let p = Params::parse(raw.as_deref())?;
    p.only(&["workspace_id"])?;
    let ws = p.get("workspace_id").filter(|w| !w.is_empty());
    if let Some(ws) = ws {
        check_text("workspace_id", ws, true)?;
    }
    let tokens = s.tokens.list(ws).await?;
    Ok(Json(json!({"tokens": tokens})).into_response())
}

/// `DELETE /v1/admin/tokens/{token_id}`.
pub async fn revoke_token(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    id: PathParam,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    let id = path("token_id", id)?;
    s.tokens.revoke(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
