//! Admin endpoints (admin token): plans and tokens.

use std::sync::Arc;

use auditlog_store::Plan;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{json_rejection, path_rejection};
use super::events::{plan_json, plan_names, WorkspacePlanBody};
use super::openapi::{NotFound, Unprocessable, V1Errors};
use super::{auth, AppState};
use crate::params::Params;
use crate::tokens::{
    check_text, check_workspace_id, expiry_at, expiry_in, NewToken, Scope, TokenInfo, TokenSpec,
    SERVICE_WORKSPACE,
};
use crate::{Error, Result};

type JsonBody<T> = std::result::Result<Json<T>, JsonRejection>;
type PathParam = std::result::Result<Path<String>, PathRejection>;

/// `PUT .../plan` body: free and pro take nothing else; enterprise takes exactly one of
/// `retention_days` or `unlimited`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PlanRequest, example = json!({"plan": "enterprise", "retention_days": 365}))]
pub struct PlanBody {
    /// `free`, `pro` or `enterprise`.
    #[schema(schema_with = plan_names)]
    pub plan: String,
    /// Enterprise: days kept, 1..=36500.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 36500, nullable = false)]
    pub retention_days: Option<u32>,
    /// Enterprise: keep forever.
    #[serde(default)]
    pub unlimited: bool,
}

/// `POST /v1/admin/tokens` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TokenRequest, example = json!({"workspace_id": "ws_demo", "name": "ci", "expires_in": "90d"}))]
pub struct TokenBody {
    /// Workspace the token reads (or, scope `ingest`, writes): the rule of events'
    /// `workspace_id` (not empty, at most 256 bytes, no whitespace or control characters).
    /// Absent with scope `ingest`: a service token (`name` required) that writes the
    /// workspaces of `workspaces`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub workspace_id: Option<String>,
    /// What it is for (a service token: the service's name).
    #[serde(default)]
    pub name: String,
    /// `read` (default: reads its workspace) or `ingest` (only `POST /v1/ingest`).
    #[serde(default)]
    pub scope: Scope,
    /// Service tokens only: the workspaces it may write (at most 1000); empty or absent: every
    /// workspace.
    #[serde(default)]
    pub workspaces: Vec<String>,
    /// When the token stops working (RFC 3339, in the future, at most 36500 days ahead).
    /// `null` or absent: never, unless `expires_in`. Not with `expires_in`.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// How long the token works from now: `30d`, `12h`, `90min` (1s to 36500 days). Not with
    /// `expires_at`.
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// The query parameters of the token list.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenListParams {
    /// Only this workspace's tokens (`*`: the service tokens; empty: every token).
    pub workspace_id: Option<String>,
}

/// What the token list accepts: the names of [`TokenListParams`] (a test checks).
pub const TOKEN_LIST_PARAMS: &[&str] = &["workspace_id"];

/// The token list body.
#[derive(Serialize, ToSchema)]
#[schema(as = TokenList)]
pub struct TokenListBody {
    /// Oldest first.
    tokens: Vec<TokenInfo>,
}

/// The `{workspace_id}` path parameter, as documented.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WorkspacePath {
    /// The workspace: the rule of events' `workspace_id` (not empty, at most 256 bytes, no
    /// whitespace or control characters); anything else is a 400 naming `workspace_id`.
    pub workspace_id: String,
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

/// A workspace's plan.
#[utoipa::path(
    get,
    path = "/v1/admin/workspaces/{workspace_id}/plan",
    operation_id = "getPlan",
    tag = "admin",
    params(WorkspacePath),
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "The plan.", body = WorkspacePlanBody),
        V1Errors,
    )
)]
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

/// Set a workspace's plan; reads apply the new retention at once.
#[utoipa::path(
    put,
    path = "/v1/admin/workspaces/{workspace_id}/plan",
    operation_id = "setPlan",
    tag = "admin",
    params(WorkspacePath),
    request_body = PlanBody,
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "The new plan.", body = WorkspacePlanBody),
        (status = 422, response = Unprocessable),
        V1Errors,
    )
)]
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

/// Create a read, ingest or service token (the only time its secret is shown).
///
/// A read or ingest token of one workspace (`workspace_id`), or a service ingest token (no
/// `workspace_id`, a `name`, optional `workspaces`).
#[utoipa::path(
    post,
    path = "/v1/admin/tokens",
    operation_id = "createToken",
    tag = "admin",
    request_body = TokenBody,
    security(("adminToken" = [])),
    responses(
        (status = 201, description = "Created.", body = NewToken),
        V1Errors,
    )
)]
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
        .create_with(&TokenSpec {
            workspace_id: body.workspace_id,
            name: body.name,
            scope: body.scope,
            workspaces: body.workspaces,
            expires_at,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(t)).into_response())
}

/// Tokens, optionally of one workspace, oldest first.
#[utoipa::path(
    get,
    path = "/v1/admin/tokens",
    operation_id = "listTokens",
    tag = "admin",
    params(TokenListParams),
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "The tokens.", body = TokenListBody),
        V1Errors,
    )
)]
pub async fn list_tokens(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    auth::admin(&s, &headers)?;
    let p = params(raw.as_deref(), TOKEN_LIST_PARAMS)?;
    let ws = p.get("workspace_id").filter(|w| !w.is_empty());
    if let Some(ws) = ws.filter(|w| *w != SERVICE_WORKSPACE) {
        check_workspace_id("workspace_id", ws)?;
    }
    let tokens = s.tokens.list(ws).await?;
    Ok(Json(TokenListBody { tokens }).into_response())
}

/// Revoke a token (idempotent).
#[utoipa::path(
    delete,
    path = "/v1/admin/tokens/{token_id}",
    operation_id = "revokeToken",
    tag = "admin",
    params(("token_id" = String, Path, description = "The token's id (`tok_...`).")),
    security(("adminToken" = [])),
    responses(
        (status = 204, description = "Revoked (also when it already was)."),
        (status = 404, response = NotFound),
        V1Errors,
    )
)]
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
