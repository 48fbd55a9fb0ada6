//! `ocsf`: OCSF 1.3.0 (schema.ocsf.io/1.3.0): API Activity (6003) for mutations of platform
//! resources, Account Change (3001) when the target is a user account; see [`crate::mapping`]
//! and docs/formats.md for the field by field mapping.
//!
//! The document is built from structs that borrow from the event. Payloads go to
//! `unmapped.request` / `unmapped.response` as the stored JSON text, byte for byte.

use auditlog_event::{ActorType, AuditEvent, Metadata, OutcomeStatus, Payload, Target};
use serde::Serialize;
use uuid::Uuid;

use crate::mapping::{Mapping, OcsfClass};

/// The OCSF version written in `metadata.version`.
pub const VERSION: &str = "1.3.0";

/// `metadata.product.name` and `metadata.product.vendor_name`.
pub const PRODUCT: &str = "auditlog";

/// The target types that are user accounts (the `user` of an Account Change).
pub const USER_TARGET_TYPES: [&str; 3] = ["user", "member", "account"];

/// One event (stored at `inserted_ms`) as an OCSF document, ready to serialize.
pub(crate) fn document(event: &AuditEvent, inserted_ms: i64) -> impl Serialize + '_ {
    Document::new(event, inserted_ms)
}

#[derive(Serialize)]
struct Document<'a> {
    activity_id: u32,
    activity_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    class_uid: u32,
    class_name: &'static str,
    type_uid: u32,
    type_name: String,
    time: i64,
    timezone_offset: i32,
    severity_id: u8,
    severity: &'static str,
    status_id: u8,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_detail: Option<&'a str>,
    message: &'a str,
    metadata: EventMetadata<'a>,
    actor: Actor<'a>,
    /// Account Change: the account changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User<'a>>,
    src_endpoint: Endpoint<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_request: Option<HttpRequest<'a>>,
    /// API Activity only.
    #[serde(skip_serializing_if = "Option::is_none")]
    api: Option<Api<'a>>,
    /// API Activity only.
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Vec<Resource<'a>>>,
    unmapped: Unmapped<'a>,
}

#[derive(Serialize)]
struct EventMetadata<'a> {
    version: &'static str,
    product: Product,
    uid: &'a Uuid,
    event_code: &'a str,
    logged_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_uid: Option<&'a str>,
    tenant_uid: &'a str,
}

#[derive(Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
}

#[derive(Serialize)]
struct Actor<'a> {
    user: User<'a>,
}

#[derive(Serialize)]
struct User<'a> {
    uid: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    type_id: u8,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// A network endpoint: the IP when known, otherwise `name: "unknown"` (the class requires the
/// object and the object one of its identifying attributes).
#[derive(Serialize)]
struct Endpoint<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'static str>,
}

#[derive(Serialize)]
struct HttpRequest<'a> {
    user_agent: &'a str,
}

#[derive(Serialize)]
struct Api<'a> {
    operation: &'a str,
}

#[derive(Serialize)]
struct Resource<'a> {
    uid: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Metadata>,
}

/// What OCSF has no attribute for.
#[derive(Serialize)]
struct Unmapped<'a> {
    bucket: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor_meta: Option<&'a Metadata>,
    /// Account Change: every target as recorded (the class has no `resources`).
    #[serde(skip_serializing_if = "Option::is_none")]
    targets: Option<&'a [Target]>,
    request: &'a Payload,
    response: &'a Payload,
}

impl<'a> Document<'a> {
    fn new(e: &'a AuditEvent, inserted_ms: i64) -> Self {
        let m = Mapping::of(&e.event);
        let (activity_id, activity_name) = m.activity();
        let failed = e.outcome.status == OutcomeStatus::Failure;
        let api_activity = m.class == OcsfClass::ApiActivity;
        Self {
            activity_id,
            activity_name,
            category_uid: m.class.category_uid(),
            category_name: m.class.category_name(),
            class_uid: m.class.uid(),
            class_name: m.class.name(),
            type_uid: m.type_uid(),
            type_name: format!("{}: {activity_name}", m.class.name()),
            time: e.time.timestamp_millis(),
            timezone_offset: 0,
            severity_id: if failed { 2 } else { 1 },
            severity: if failed { "Low" } else { "Informational" },
            status_id: if failed { 2 } else { 1 },
            status: if failed { "Failure" } else { "Success" },
            status_detail: e.outcome.reason.as_deref(),
            message: &e.description,
            metadata: EventMetadata {
                version: VERSION,
                product: Product {
                    name: PRODUCT,
                    vendor_name: PRODUCT,
                },
                uid: &e.event_id,
                event_code: e.event.as_str(),
                logged_time: inserted_ms,
                correlation_uid: e.correlation_id.as_deref(),
                tenant_uid: &e.workspace_id,
            },
            actor: Actor {
                user: actor_user(e),
            },
            user: (!api_activity).then(|| account(&e.targets)),
            src_endpoint: match e.context.remote_ip.as_str() {
                "" => Endpoint {
                    ip: None,
                    name: Some("unknown"),
                },
                ip => Endpoint {
                    ip: Some(ip),
                    name: None,
                },
            },
            http_request: (!e.context.user_agent.is_empty()).then(|| HttpRequest {
                user_agent: &e.context.user_agent,
            }),
            api: api_activity.then(|| Api {
                operation: e.event.as_str(),
            }),
            resources: api_activity.then(|| e.targets.iter().map(resource).collect()),
            unmapped: Unmapped {
                bucket: &e.bucket,
                location: e.context.location.as_deref(),
                actor_meta: e.actor.meta.as_ref(),
                targets: (!api_activity).then_some(e.targets.as_slice()),
                request: &e.request,
                response: &e.response,
            },
        }
    }
}

/// `actor.user`: user type 1 (User) for dashboard users, 3 (System) for the platform,
/// 99 (Other, "Root Key") for API root keys.
fn actor_user(e: &AuditEvent) -> User<'_> {
    let (type_id, kind) = match e.actor.kind {
        ActorType::User => (1, "User"),
        ActorType::RootKey => (99, "Root Key"),
        ActorType::System => (3, "System"),
    };
    User {
        uid: &e.actor.id,
        name: &e.actor.name,
        type_id,
        kind,
    }
}

/// The account of an Account Change: the first target whose type is a user account, else the
/// first target (validated events have one at least).
fn account(targets: &[Target]) -> User<'_> {
    let t = targets
        .iter()
        .find(|t| USER_TARGET_TYPES.contains(&t.kind.as_str()))
        .or(targets.first());
    User {
        uid: t.map_or("", |t| t.id.as_str()),
        name: t.map_or("", |t| t.name.as_str()),
        type_id: 1,
        kind: "User",
    }
}

fn resource(t: &Target) -> Resource<'_> {
    Resource {
        uid: &t.id,
        name: &t.name,
        kind: &t.kind,
        data: t.meta.as_ref(),
    }
}
